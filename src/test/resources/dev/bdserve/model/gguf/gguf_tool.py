"""Test helper: GGUF files through llama.cpp's gguf-py and libggml-base, in bdserve's JSON form.

JSON form: {"version": 3, "kv": [{"key": k, "type": t, "value": v}], "tensors": [{"name", "dims", "type", "offset", "hex"}]}
where t is a gguf type name (u8 .. f64, bool, str, arr), integers are numbers, f32/f64 are their bit patterns as
signed int32/int64, an array is {"type": element type, "items": [...]}, dims are in ggml order (innermost first)
and offset is absolute in the file.

  gguf_tool.py write SPEC.json OUT.gguf        gguf-py's GGUFWriter writes the kv and tensors of SPEC
  gguf_tool.py dump IN.gguf OUT.json           gguf-py's GGUFReader reads IN
  gguf_tool.py ggml LIBGGML_BASE IN.gguf OUT.json   llama.cpp's gguf_init_from_file reads IN (data blob included)
"""
import ctypes
import json
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter

NAMES = {"u8": GGUFValueType.UINT8, "i8": GGUFValueType.INT8, "u16": GGUFValueType.UINT16,
         "i16": GGUFValueType.INT16, "u32": GGUFValueType.UINT32, "i32": GGUFValueType.INT32,
         "f32": GGUFValueType.FLOAT32, "bool": GGUFValueType.BOOL, "str": GGUFValueType.STRING,
         "arr": GGUFValueType.ARRAY, "u64": GGUFValueType.UINT64, "i64": GGUFValueType.INT64,
         "f64": GGUFValueType.FLOAT64}
LABELS = {int(v): k for k, v in NAMES.items()}


def f32_bits(x):
    return struct.unpack("<i", struct.pack("<f", x))[0]


def f64_bits(x):
    return struct.unpack("<q", struct.pack("<d", x))[0]


def json_value(t, v):
    """A Python value read from a file -> the JSON form."""
    if t == "f32":
        return f32_bits(float(v))
    if t == "f64":
        return f64_bits(float(v))
    if t == "bool":
        return bool(v)
    if t == "str":
        return v
    return int(v)


def py_value(t, v, nested=False):
    """The JSON form -> the Python value GGUFWriter takes."""
    if t == "f32":
        return struct.unpack("<f", struct.pack("<i", v))[0]
    if t == "f64":
        return struct.unpack("<d", struct.pack("<q", v))[0]
    if t == "arr":
        if nested and v["type"] not in ("i32", "f32", "str", "bool", "arr"):
            raise SystemExit("gguf-py infers the types of nested arrays: it cannot write a nested " + v["type"] + " array")
        return [py_value(v["type"], x, True) for x in v["items"]]
    return v


def write(spec_path, out_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    w = GGUFWriter(out_path, arch="unused")
    w.remove_key("general.architecture")
    for kv in spec["kv"]:
        t, v = kv["type"], kv["value"]
        if kv["key"] == "general.alignment":
            w.add_custom_alignment(v)
        elif t == "arr":
            w.add_key_value(kv["key"], py_value(t, v), GGUFValueType.ARRAY, sub_type=NAMES[v["type"]])
        else:
            w.add_key_value(kv["key"], py_value(t, v), NAMES[t])
    for t in spec["tensors"]:
        qtype = GGMLQuantizationType[t["type"]]
        data = np.frombuffer(bytes.fromhex(t["hex"]), dtype=np.uint8)
        dims = t["dims"]
        row_bytes = len(data) // int(np.prod(dims[1:], dtype=np.int64))
        w.add_tensor(t["name"], data.reshape(tuple(reversed(dims[1:])) + (row_bytes,)), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def parts_value(parts, i, vtype):
    """Rebuilds a value from GGUFReader's field parts (nested arrays included); returns (value, next part)."""
    t = LABELS[int(vtype)]
    if t == "str":
        return str(bytes(parts[i + 1]), encoding="utf-8"), i + 2
    if t == "arr":
        et, n = int(parts[i][0]), int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(n):
            v, i = parts_value(parts, i, et)
            items.append(v)
        return {"type": LABELS[et], "items": items}, i
    return json_value(t, parts[i][0]), i + 1


def dump(in_path, out_path):
    r = GGUFReader(in_path)
    kvs = []
    for field in list(r.fields.values())[3:]:  # the first three are the header
        vtype = int(field.parts[2][0])
        value, _ = parts_value(field.parts, 3, vtype)
        kvs.append({"key": field.name, "type": LABELS[vtype], "value": value})
    tensors = [{"name": t.name, "dims": [int(d) for d in t.shape], "type": t.tensor_type.name,
                "offset": int(t.data_offset), "hex": t.data.tobytes().hex()} for t in r.tensors]
    version = int(r.fields["GGUF.version"].parts[0][0])
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"version": version, "kv": kvs, "tensors": tensors}, out)


class InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]


def ggml(lib_path, in_path, out_path):
    lib = ctypes.CDLL(lib_path)
    p, i64, sz, s = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p

    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, list(argtypes)
        return f

    init = fn("gguf_init_from_file", p, s, InitParams)
    ctx_data = ctypes.c_void_p()
    ctx = init(in_path.encode(), InitParams(False, ctypes.pointer(ctx_data)))
    if not ctx:
        raise SystemExit("llama.cpp's gguf_init_from_file refused " + in_path)
    scalar = {"u8": ctypes.c_uint8, "i8": ctypes.c_int8, "u16": ctypes.c_uint16, "i16": ctypes.c_int16,
              "u32": ctypes.c_uint32, "i32": ctypes.c_int32, "f32": ctypes.c_float, "u64": ctypes.c_uint64,
              "i64": ctypes.c_int64, "f64": ctypes.c_double, "bool": ctypes.c_bool}
    kvs = []
    for k in range(fn("gguf_get_n_kv", i64, p)(ctx)):
        key = fn("gguf_get_key", s, p, i64)(ctx, k).decode()
        t = LABELS[fn("gguf_get_kv_type", ctypes.c_int, p, i64)(ctx, k)]
        if t == "str":
            value = fn("gguf_get_val_str", s, p, i64)(ctx, k).decode()
        elif t == "arr":
            et = LABELS[fn("gguf_get_arr_type", ctypes.c_int, p, i64)(ctx, k)]
            n = fn("gguf_get_arr_n", sz, p, i64)(ctx, k)
            if et == "str":
                get = fn("gguf_get_arr_str", s, p, i64, sz)
                items = [get(ctx, k, j).decode() for j in range(n)]
            else:
                data = fn("gguf_get_arr_data", p, p, i64)(ctx, k) if n else None
                arr = ctypes.cast(data, ctypes.POINTER(scalar[et])) if n else []
                items = [json_value(et, arr[j]) for j in range(n)]
            value = {"type": et, "items": items}
        else:
            raw = fn("gguf_get_val_data", p, p, i64)(ctx, k)
            value = json_value(t, ctypes.cast(raw, ctypes.POINTER(scalar[t]))[0])
        kvs.append({"key": key, "type": t, "value": value})
    start = fn("gguf_get_data_offset", sz, p)(ctx)
    with open(in_path, "rb") as f:
        blob = f.read()
    tensors = []
    for j in range(fn("gguf_get_n_tensors", i64, p)(ctx)):
        name = fn("gguf_get_tensor_name", s, p, i64)(ctx, j).decode()
        ne = fn("gguf_get_tensor_ne", ctypes.POINTER(ctypes.c_int64), p, i64)(ctx, j)
        qtype = GGMLQuantizationType(fn("gguf_get_tensor_type", ctypes.c_int, p, i64)(ctx, j)).name
        off = start + fn("gguf_get_tensor_offset", sz, p, i64)(ctx, j)
        n = fn("gguf_get_tensor_size", sz, p, i64)(ctx, j)
        dims = [ne[d] for d in range(4)]
        while len(dims) > 1 and dims[-1] == 1:
            dims.pop()
        tensors.append({"name": name, "dims": dims, "type": qtype, "offset": off, "hex": blob[off:off + n].hex()})
    version = fn("gguf_get_version", ctypes.c_uint32, p)(ctx)
    fn("gguf_free", None, p)(ctx)
    fn("ggml_free", None, p)(ctx_data)
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"version": version, "kv": kvs, "tensors": tensors}, out)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2], sys.argv[3])
    elif cmd == "dump":
        dump(sys.argv[2], sys.argv[3])
    elif cmd == "ggml":
        ggml(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit("unknown command " + cmd)
