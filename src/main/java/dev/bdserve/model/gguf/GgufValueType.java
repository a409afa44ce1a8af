package dev.bdserve.model.gguf;

/**
 * The value types of GGUF metadata, with their ids in gguf's {@code enum gguf_type}, their short names (as
 * llama.cpp prints them) and their encoded size ({@code 0} for the variable-length string and array).
 * Integers read as {@link Long}, floats as {@link Double}, bool as {@link Boolean}, string as {@link String},
 * array as {@code List<Object>}.
 */
public enum GgufValueType {
    UINT8(0, "u8", 1), INT8(1, "i8", 1), UINT16(2, "u16", 2), INT16(3, "i16", 2), UINT32(4, "u32", 4),
    INT32(5, "i32", 4), FLOAT32(6, "f32", 4), BOOL(7, "bool", 1), STRING(8, "str", 0), ARRAY(9, "arr", 0),
    UINT64(10, "u64", 8), INT64(11, "i64", 8), FLOAT64(12, "f64", 8);

    private static final GgufValueType[] BY_ID = values();

    /** The id stored in the file. */
    public final int id;
    /** Short name: u8, i8, ..., f64, bool, str, arr. */
    public final String label;
    /** Bytes of one encoded value; 0 for {@link #STRING} and {@link #ARRAY}. */
    public final int size;

    GgufValueType(int id, String label, int size) {
        this.id = id;
        this.label = label;
        this.size = size;
    }

    /** The type of an id, or null when the id is not a GGUF value type. */
    public static GgufValueType ofId(long id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
    }

    /** The type of a short name (u8, ..., arr), or null. */
    public static GgufValueType ofLabel(String label) {
        for (GgufValueType t : BY_ID) if (t.label.equals(label)) return t;
        return null;
    }

    /** Whether values of this type read as {@link Long}. */
    public boolean integer() {
        return this != FLOAT32 && this != FLOAT64 && this != BOOL && this != STRING && this != ARRAY;
    }

    /** Whether values of this type read as {@link Double}. */
    public boolean floating() { return this == FLOAT32 || this == FLOAT64; }

    /** The fewest bytes a value of this type takes in a file (a string's length, an array's type and length). */
    long minBytes() {
        return switch (this) {
            case STRING -> 8;
            case ARRAY -> 12;
            default -> size;
        };
    }
}
