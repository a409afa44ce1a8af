"""Test helper: quantizes a GGUF model with llama.cpp's own llama_model_quantize (node-llama-cpp's prebuilt libllama).

  llamacpp_quantize.py LIBLLAMA IN.gguf OUT.gguf FTYPE [NTHREAD]

FTYPE is a number of llama.h's enum llama_ftype (1 F16, 2 Q4_0, 3 Q4_1, 7 Q8_0, 8 Q5_0, 9 Q5_1, 15 Q4_K_M, 17 Q5_K_M,
18 Q6_K, 32 BF16). Runs as its own process so that an abort inside llama.cpp ends only this script. Exits non-zero
when the library's default parameters do not read back as this layout expects, or when quantizing fails.
"""
import ctypes
import sys


class QuantizeParams(ctypes.Structure):
    # struct llama_model_quantize_params of llama.h (node-llama-cpp 3.22.1, llama.cpp release v0.5.0), in order
    _fields_ = [
        ("nthread", ctypes.c_int32),
        ("ftype", ctypes.c_int32),                 # enum llama_ftype
        ("output_tensor_type", ctypes.c_int32),    # enum ggml_type
        ("token_embedding_type", ctypes.c_int32),  # enum ggml_type
        ("allow_requantize", ctypes.c_bool),
        ("quantize_output_tensor", ctypes.c_bool),
        ("only_copy", ctypes.c_bool),
        ("pure", ctypes.c_bool),
        ("keep_split", ctypes.c_bool),
        ("dry_run", ctypes.c_bool),
        ("imatrix", ctypes.c_void_p),
        ("kv_overrides", ctypes.c_void_p),
        ("tt_overrides", ctypes.c_void_p),
        ("prune_layers", ctypes.c_void_p),
        ("max_buf_size", ctypes.c_size_t),
    ]


def check_defaults(p):
    """The defaults of llama-quant.cpp, read through this layout: a shifted or resized field shows up here."""
    want = {"ftype": 7, "allow_requantize": False, "quantize_output_tensor": True, "only_copy": False, "pure": False,
            "keep_split": False, "dry_run": False, "imatrix": None, "kv_overrides": None, "tt_overrides": None,
            "prune_layers": None, "max_buf_size": 8 << 30}
    bad = {k: getattr(p, k) for k, v in want.items() if getattr(p, k) != v}
    # GGML_TYPE_COUNT (no override) for both tensor types
    if p.output_tensor_type != p.token_embedding_type or not 30 < p.output_tensor_type < 100:
        bad["output_tensor_type/token_embedding_type"] = (p.output_tensor_type, p.token_embedding_type)
    if bad:
        raise SystemExit("llama_model_quantize_default_params does not match the expected struct layout: " + repr(bad))


def main():
    lib_path, src, dst, ftype = sys.argv[1:5]
    nthread = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    lib = ctypes.CDLL(lib_path)
    lib.llama_backend_init.restype = None
    lib.llama_backend_init.argtypes = []
    lib.llama_model_quantize_default_params.restype = QuantizeParams
    lib.llama_model_quantize_default_params.argtypes = []
    lib.llama_model_quantize.restype = ctypes.c_uint32
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(QuantizeParams)]

    lib.llama_backend_init()
    params = lib.llama_model_quantize_default_params()
    check_defaults(params)
    params.nthread = nthread
    params.ftype = int(ftype)
    rc = lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise SystemExit("llama_model_quantize returned %d" % rc)


if __name__ == "__main__":
    main()
