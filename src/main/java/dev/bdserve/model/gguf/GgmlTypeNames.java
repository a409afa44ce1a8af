package dev.bdserve.model.gguf;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The names of all ggml type ids (from ggml.h's {@code enum ggml_type}), for messages about types bdserve does not read. */
final class GgmlTypeNames {
    private GgmlTypeNames() {}

    private static final String[] NAMES = {
            "F32", "F16", "Q4_0", "Q4_1", null, null, "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
            "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
            "I32", "I64", "F64", "IQ1_M", "BF16", null, null, null, "TQ1_0", "TQ2_0", null, null, null, "MXFP4", "NVFP4",
            "Q1_0", "Q2_0"};

    private static final String SUPPORTED = Arrays.stream(GgmlType.values())
            .map(t -> t + " (" + t.id + ")").collect(Collectors.joining(", "));

    /** ggml's name of a type id, or "unknown" (also for ids ggml has removed). */
    static String name(long id) {
        return id >= 0 && id < NAMES.length && NAMES[(int) id] != null ? NAMES[(int) id] : "unknown";
    }

    /** The types bdserve reads, as "F32 (0), F16 (1), ...". */
    static String supported() { return SUPPORTED; }
}
