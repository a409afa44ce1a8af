package dev.bdserve.model.gguf;

import dev.bdserve.LlamaCpp;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.EnumMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * ggml's own row converters, called through FFM from the prebuilt {@code libggml-base.so} ({@link LlamaCpp}):
 * {@code ggml_get_type_traits(type)} gives a {@code struct ggml_type_traits} whose {@code to_float} and
 * {@code from_float_ref} pointers are the functions {@link GgmlCodec} must agree with bit for bit.
 */
final class GgmlReference {
    /** {@code struct ggml_type_traits} of ggml.h (x86-64 System V layout). */
    private static final StructLayout TRAITS = MemoryLayout.structLayout(
            ADDRESS.withName("type_name"),
            JAVA_LONG.withName("blck_size"),
            JAVA_LONG.withName("blck_size_interleave"),
            JAVA_LONG.withName("type_size"),
            JAVA_BOOLEAN.withName("is_quantized"),
            MemoryLayout.paddingLayout(7),
            ADDRESS.withName("to_float"),
            ADDRESS.withName("from_float_ref"));
    /** {@code void (*)(const void * x, void * y, int64_t k)}: both converters. */
    private static final FunctionDescriptor ROW = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG);

    private static GgmlReference instance;

    private final MethodHandle getTypeTraits;
    private final Map<GgmlType, Traits> traits = new EnumMap<>(GgmlType.class);

    private GgmlReference() {
        SymbolLookup lib = SymbolLookup.libraryLookup(LlamaCpp.ggmlBase(), Arena.global());
        getTypeTraits = Linker.nativeLinker().downcallHandle(lib.findOrThrow("ggml_get_type_traits"),
                FunctionDescriptor.of(ADDRESS.withTargetLayout(TRAITS), JAVA_INT));
    }

    static synchronized GgmlReference get() {
        if (instance == null) instance = new GgmlReference();
        return instance;
    }

    /** One type's entry of ggml's traits table; a converter is null where ggml has none. */
    record Traits(String name, long blockSize, long typeSize, boolean quantized, MethodHandle toFloat, MethodHandle fromFloatRef) {}

    synchronized Traits traits(GgmlType type) {
        return traits.computeIfAbsent(type, t -> {
            MemorySegment s;
            try {
                s = (MemorySegment) getTypeTraits.invokeExact(t.id);
            } catch (Throwable e) {
                throw new AssertionError(e);
            }
            return new Traits(s.get(ADDRESS, at("type_name")).reinterpret(64).getString(0),
                    s.get(JAVA_LONG, at("blck_size")), s.get(JAVA_LONG, at("type_size")),
                    s.get(JAVA_BOOLEAN, at("is_quantized")),
                    function(s.get(ADDRESS, at("to_float"))), function(s.get(ADDRESS, at("from_float_ref"))));
        });
    }

    private static long at(String field) {
        return TRAITS.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    private static MethodHandle function(MemorySegment pointer) {
        return pointer.equals(MemorySegment.NULL) ? null : Linker.nativeLinker().downcallHandle(pointer, ROW);
    }

    /** ggml's {@code to_float} of {@code type} on {@code blocks} (a whole number of blocks). */
    float[] toFloat(GgmlType type, byte[] blocks) {
        int n = Math.toIntExact(blocks.length / type.blockBytes * type.blockSize);
        MethodHandle f = traits(type).toFloat();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment x = a.allocate(blocks.length, 16), y = a.allocate(4L * n, 16);
            MemorySegment.copy(blocks, 0, x, ValueLayout.JAVA_BYTE, 0, blocks.length);
            f.invokeExact(x, y, (long) n);
            return y.toArray(ValueLayout.JAVA_FLOAT);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }

    /** ggml's {@code from_float_ref} of {@code type} on {@code x} (a whole number of blocks). */
    byte[] fromFloatRef(GgmlType type, float[] x) {
        MethodHandle f = traits(type).fromFloatRef();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment in = a.allocate(4L * x.length, 16), out = a.allocate(type.bytes(x.length), 16);
            MemorySegment.copy(x, 0, in, ValueLayout.JAVA_FLOAT, 0, x.length);
            f.invokeExact(in, out, (long) x.length);
            return out.toArray(ValueLayout.JAVA_BYTE);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }
}
