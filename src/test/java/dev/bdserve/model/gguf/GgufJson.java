package dev.bdserve.model.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The JSON form of a GGUF file shared with gguf_tool.py: {"version", "kv": [{"key", "type", "value"}],
 * "tensors": [{"name", "dims", "type", "offset", "hex"}]}; f32/f64 values as their bits (signed), arrays as
 * {"type": element type, "items": [...]}. Also random specs (kv and tensors to write) for the round trips.
 */
final class GgufJson {
    private GgufJson() {}

    static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory N = JsonNodeFactory.instance;
    private static final HexFormat HEX = HexFormat.of();

    /** What a random spec may hold, for the readers and writers it goes through. */
    enum Profile {
        /** Everything GgufWriter and GgufFile take: empty arrays, nested arrays of any type, NUL in strings. */
        BDSERVE,
        /** What gguf-py's GGUFWriter writes: no empty arrays, nested arrays only of the types it infers. */
        GGUF_PY_WRITER,
        /** What llama.cpp's reader takes (no nested arrays), without NUL in strings (read back as C strings). */
        LLAMA_CPP
    }

    static JsonNode read(Path p) {
        try {
            return JSON.readTree(p.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void write(JsonNode n, Path p) {
        try {
            JSON.writeValue(p.toFile(), n);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Re-parses {@code n} so that numbers get the node types a parsed file has (IntNode vs LongNode). */
    static JsonNode normal(JsonNode n) {
        try {
            return JSON.readTree(JSON.writeValueAsString(n));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A file as read by GgufFile. */
    static JsonNode dump(GgufFile f) {
        ObjectNode root = N.objectNode();
        root.put("version", f.version());
        ArrayNode kv = root.putArray("kv");
        for (Map.Entry<String, Object> e : f.metadata().entrySet()) {
            GgufValueType t = f.valueType(e.getKey());
            kv.addObject().put("key", e.getKey()).put("type", t.label).set("value", value(t, e.getValue()));
        }
        ArrayNode ts = root.putArray("tensors");
        for (GgufFile.TensorInfo t : f.tensors()) {
            ObjectNode o = ts.addObject().put("name", t.name());
            ArrayNode dims = o.putArray("dims");
            for (long d : t.dims()) dims.add(d);
            o.put("type", t.type().name()).put("offset", t.offset())
                    .put("hex", HEX.formatHex(f.data(t).toArray(ValueLayout.JAVA_BYTE)));
        }
        return normal(root);
    }

    private static JsonNode value(GgufValueType t, Object v) {
        return switch (t) {
            case FLOAT32 -> N.numberNode(Float.floatToRawIntBits((float) (double) (Double) v));
            case FLOAT64 -> N.numberNode(Double.doubleToRawLongBits((Double) v));
            case BOOL -> N.booleanNode((Boolean) v);
            case STRING -> N.textNode((String) v);
            case ARRAY -> {
                GgufArray a = (GgufArray) v;
                ObjectNode o = N.objectNode().put("type", a.elementType().label);
                ArrayNode items = o.putArray("items");
                for (Object x : a) items.add(value(a.elementType(), x));
                yield o;
            }
            default -> N.numberNode((Long) v);
        };
    }

    /** A GgufWriter holding the kv and tensors of a spec. */
    static GgufWriter writer(JsonNode spec) {
        GgufWriter w = new GgufWriter();
        for (JsonNode kv : spec.get("kv")) {
            GgufValueType t = GgufValueType.ofLabel(kv.get("type").asText());
            w.put(kv.get("key").asText(), t, javaValue(t, kv.get("value")));
        }
        for (JsonNode t : spec.get("tensors")) {
            long[] dims = new long[t.get("dims").size()];
            for (int i = 0; i < dims.length; i++) dims[i] = t.get("dims").get(i).asLong();
            w.addTensor(t.get("name").asText(), dims, GgmlType.valueOf(t.get("type").asText()), HEX.parseHex(t.get("hex").asText()));
        }
        return w;
    }

    private static Object javaValue(GgufValueType t, JsonNode v) {
        return switch (t) {
            case FLOAT32 -> (double) Float.intBitsToFloat(v.asInt());
            case FLOAT64 -> Double.longBitsToDouble(v.asLong());
            case BOOL -> v.asBoolean();
            case STRING -> v.asText();
            case ARRAY -> {
                GgufValueType et = GgufValueType.ofLabel(v.get("type").asText());
                List<Object> items = new ArrayList<>();
                for (JsonNode x : v.get("items")) items.add(javaValue(et, x));
                yield new GgufWriter.Array(et, items);
            }
            default -> v.asLong();
        };
    }

    /** Asserts equal trees, naming the first difference (not the whole, often huge, trees). */
    static void assertSameJson(JsonNode expected, JsonNode actual) {
        String d = firstDifference("", expected, actual);
        if (d != null) throw new org.opentest4j.AssertionFailedError("JSON differs at " + d);
    }

    private static String firstDifference(String path, JsonNode a, JsonNode b) {
        if (a.equals(b)) return null;
        if (a.isArray() && b.isArray()) {
            for (int i = 0; i < Math.min(a.size(), b.size()); i++) {
                String d = firstDifference(path + "[" + i + "]", a.get(i), b.get(i));
                if (d != null) return d;
            }
            return path + ": " + a.size() + " vs " + b.size() + " elements";
        }
        if (a.isObject() && b.isObject()) {
            java.util.Set<String> names = new java.util.TreeSet<>();
            a.fieldNames().forEachRemaining(names::add);
            b.fieldNames().forEachRemaining(names::add);
            for (String n : names) {
                if (a.get(n) == null || b.get(n) == null) return path + "." + n + ": present in only one";
                String d = firstDifference(path + "." + n, a.get(n), b.get(n));
                if (d != null) return d;
            }
        }
        String x = a.toString(), y = b.toString();
        return path + ": expected " + (x.length() > 300 ? x.substring(0, 300) + "..." : x) + " but was "
                + (y.length() > 300 ? y.substring(0, 300) + "..." : y);
    }

    /** The kv and tensors of {@code n} without the offsets and the version (what a spec has). */
    static JsonNode content(JsonNode n) {
        ObjectNode o = N.objectNode();
        o.set("kv", n.get("kv"));
        ArrayNode ts = o.putArray("tensors");
        for (JsonNode t : n.get("tensors")) ts.add(((ObjectNode) t.deepCopy()).without("offset"));
        return o;
    }

    /** A random spec: several keys of every value type, arrays of every element type, a tensor of every GgmlType. */
    static JsonNode randomSpec(long seed, Profile profile) {
        Random r = new Random(seed);
        ObjectNode spec = N.objectNode();
        ArrayNode kv = spec.putArray("kv");
        kv.addObject().put("key", "general.architecture").put("type", "str").put("value", "llama");
        if (r.nextBoolean()) kv.addObject().put("key", GgufFile.ALIGNMENT_KEY).put("type", "u32").put("value", 1 << r.nextInt(9));
        int k = 0;
        for (int round = 0; round < 3; round++)
            for (GgufValueType t : GgufValueType.values()) {
                if (t == GgufValueType.ARRAY) {
                    for (GgufValueType et : GgufValueType.values())
                        if (et != GgufValueType.ARRAY || profile != Profile.LLAMA_CPP)
                            kv.addObject().put("key", "test.k" + k++ + ".arr." + et.label).put("type", "arr").set("value", array(r, et, profile, 0));
                } else {
                    kv.addObject().put("key", "test.k" + k++ + "." + t.label).put("type", t.label).set("value", scalar(r, t, profile));
                }
            }
        ArrayNode ts = spec.putArray("tensors");
        int i = 0;
        for (GgmlType type : GgmlType.values())
            for (int j = 0; j < 2; j++) {
                int nd = 1 + r.nextInt(4);
                long[] dims = new long[nd];
                dims[0] = (long) type.blockSize * (1 + r.nextInt(type.blockSize == 1 ? 40 : 3));
                for (int d = 1; d < nd; d++) dims[d] = 1 + r.nextInt(3);
                long n = 1;
                for (long d : dims) n *= d;
                byte[] data = new byte[(int) type.bytes(n)];
                r.nextBytes(data);
                ObjectNode o = ts.addObject().put("name", "blk." + i++ + "." + type.name().toLowerCase() + ".weight");
                ArrayNode dn = o.putArray("dims");
                for (long d : dims) dn.add(d);
                o.put("type", type.name()).put("hex", HEX.formatHex(data));
            }
        return normal(spec);
    }

    private static JsonNode array(Random r, GgufValueType et, Profile profile, int depth) {
        boolean py = profile == Profile.GGUF_PY_WRITER;
        if (et == GgufValueType.ARRAY && depth > 0 && py) et = GgufValueType.INT32;
        int n = r.nextInt(py ? 1 : 0, depth > 1 ? 3 : 8);
        ObjectNode o = N.objectNode().put("type", et.label);
        ArrayNode items = o.putArray("items");
        for (int i = 0; i < n; i++) {
            if (et == GgufValueType.ARRAY) {
                List<GgufValueType> inner = new ArrayList<>(List.of(GgufValueType.values()));
                if (py) inner = List.of(GgufValueType.INT32, GgufValueType.FLOAT32, GgufValueType.STRING, GgufValueType.BOOL, GgufValueType.ARRAY);
                GgufValueType it = depth >= 2 ? GgufValueType.INT32 : inner.get(r.nextInt(inner.size()));
                items.add(array(r, it, profile, depth + 1));
            } else {
                items.add(scalar(r, et, profile));
            }
        }
        return o;
    }

    private static final float[] SPECIAL_F32 = {0f, -0f, 1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
            Float.MIN_VALUE, Float.MAX_VALUE, 1e-5f};
    private static final double[] SPECIAL_F64 = {0d, -0d, Double.NaN, Double.POSITIVE_INFINITY, Double.MIN_VALUE, Double.MAX_VALUE, 1e-5};
    private static final String[] PIECES = {"a", "Z", " ", "é", "ß", "中", "文", "😀", "Ġ", "▁", "\n", "\"", "\\", "<0x0A>", "{%", "\u00A0"};

    private static JsonNode scalar(Random r, GgufValueType t, Profile profile) {
        return switch (t) {
            case UINT8 -> N.numberNode(r.nextInt(256));
            case INT8 -> N.numberNode(r.nextInt(-128, 128));
            case UINT16 -> N.numberNode(r.nextInt(65536));
            case INT16 -> N.numberNode(r.nextInt(-32768, 32768));
            case UINT32 -> N.numberNode(r.nextInt(4) == 0 ? 0xFFFF_FFFFL : r.nextLong(1L << 32));
            case INT32 -> N.numberNode(r.nextInt(4) == 0 ? Integer.MIN_VALUE : r.nextInt());
            case UINT64 -> N.numberNode(r.nextInt(4) == 0 ? Long.MAX_VALUE : r.nextLong() >>> 1);
            case INT64 -> N.numberNode(r.nextInt(4) == 0 ? Long.MIN_VALUE : r.nextLong());
            case FLOAT32 -> {
                float f = r.nextInt(3) == 0 ? SPECIAL_F32[r.nextInt(SPECIAL_F32.length)] : Float.intBitsToFloat(r.nextInt());
                yield N.numberNode(Float.floatToRawIntBits(Float.isNaN(f) ? Float.NaN : f));
            }
            case FLOAT64 -> {
                double d = r.nextInt(3) == 0 ? SPECIAL_F64[r.nextInt(SPECIAL_F64.length)] : Double.longBitsToDouble(r.nextLong());
                yield N.numberNode(Double.doubleToRawLongBits(Double.isNaN(d) ? Double.NaN : d));
            }
            case BOOL -> N.booleanNode(r.nextBoolean());
            case STRING -> {
                StringBuilder s = new StringBuilder();
                int n = r.nextInt(4) == 0 ? 0 : r.nextInt(1, 12);
                for (int i = 0; i < n; i++) s.append(PIECES[r.nextInt(PIECES.length)]);
                if (profile == Profile.BDSERVE && r.nextInt(5) == 0) s.append('\0');
                yield N.textNode(s.toString());
            }
            case ARRAY -> throw new IllegalArgumentException("arr is not a scalar");
        };
    }
}
