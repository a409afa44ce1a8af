package dev.bdserve.tokenizer;

import dev.bdserve.model.ModelFormatException;

import java.util.BitSet;
import java.util.List;
import java.util.Map;

/**
 * Typed reading of a GGUF file's {@code tokenizer.ggml.*} metadata, as the GGUF reader gives it: integers as
 * {@link Long}, floats as {@link Double}, arrays as {@link List}. A missing required key or a value of the wrong type
 * is refused with a {@link ModelFormatException} naming {@code source} (the file) and the key.
 */
final class GgufTokenizerMetadata {
    private GgufTokenizerMetadata() {}

    static Object required(String source, Map<String, Object> md, String key) {
        Object v = md.get(key);
        if (v == null) throw new ModelFormatException(source + ": metadata key " + key + " is missing");
        return v;
    }

    static String string(String source, Map<String, Object> md, String key) {
        if (required(source, md, key) instanceof String s) return s;
        throw new ModelFormatException(source + ": metadata key " + key + " is " + md.get(key).getClass().getSimpleName() + ", expected a string");
    }

    static List<?> list(String source, Map<String, Object> md, String key) {
        if (required(source, md, key) instanceof List<?> l) return l;
        throw new ModelFormatException(source + ": metadata key " + key + " is " + md.get(key).getClass().getSimpleName() + ", expected an array");
    }

    @SuppressWarnings("unchecked")
    static List<String> strings(String source, Map<String, Object> md, String key) {
        List<?> l = list(source, md, key);
        for (int i = 0; i < l.size(); i++)
            if (!(l.get(i) instanceof String))
                throw new ModelFormatException(source + ": metadata key " + key + "[" + i + "] is not a string");
        return (List<String>) l;
    }

    private static long id(Map<String, Object> md, String key, long dflt) {
        return md.get(key) instanceof Number n ? n.longValue() : dflt;
    }

    /** A bool key, {@code dflt} when absent; any other type is refused (llama.cpp refuses it too). */
    static boolean flag(String source, Map<String, Object> md, String key, boolean dflt) {
        Object v = md.get(key);
        if (v == null) return dflt;
        if (v instanceof Boolean b) return b;
        throw new ModelFormatException(source + ": metadata key " + key + " is " + v.getClass().getSimpleName() + ", expected a bool");
    }

    /** A special token id: the key's when inside the vocabulary, else {@code dflt} when inside it, else -1. */
    static int specialId(Map<String, Object> md, String key, long dflt, int n) {
        long v = id(md, key, -1);
        if (v >= 0 && v < n) return (int) v;
        return dflt >= 0 && dflt < n ? (int) dflt : -1;
    }

    /** The ids whose {@code tokenizer.ggml.token_type} is {@code type} (none without token types). */
    static BitSet ofType(Map<String, Object> md, long type) {
        BitSet ids = new BitSet();
        if (md.get("tokenizer.ggml.token_type") instanceof List<?> types)
            for (int i = 0; i < types.size(); i++) if (types.get(i) instanceof Number num && num.longValue() == type) ids.set(i);
        return ids;
    }
}
