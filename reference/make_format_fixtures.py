#!/usr/bin/env python3
"""Generate the golden fixtures for Finch's file-format tests (FinchFormatsTests).

Python is only the oracle here: the Swift tests read the files this script writes and never run
Python. Every output is deterministic (fixed seeds, no timestamps), so re-running the script must
reproduce identical bytes; check with `sha256sum` before committing a regeneration.

Usage (from the repo root, inside the reference venv, see reference/README.md):

    python reference/make_format_fixtures.py /path/to/SmolLM2-135M-Instruct.Q4_1.gguf [--out DIR]

Outputs (DIR defaults to Tests/FinchFormatsTests/Fixtures):
  smollm2_tensors.json            a. the real GGUF as transformers 5.24 loads it (HF names/layout)
  gguf_types.gguf                 b. a tiny GGUF with every KV value type and 11 tensor types
  gguf_types_expected.json           its metadata, tensor infos and offsets, as on disk
  gguf_types_expected.safetensors    gguf.dequantize() of every tensor, float32, numpy shape
  gguf_quant_sources.safetensors     the float32 inputs of the tensors that gguf-py quantized
  python_written.safetensors      c. written by the `safetensors` package (all dtypes, edge values)
  python_written.json                its values, exact header string and serializer ordering
  tiny_llama/                     d. a random 2-layer LlamaForCausalLM saved in 2 shards
  tiny_llama_expected.json           per-tensor shape/dtype/sha256 and a logits check
  tiny_qwen2/config.json, tiny_phi/config.json, tiny_configs_expected.json
"""

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import struct
import sys

# Never touch the network: everything is loaded from local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchFormatsTests", "Fixtures")


# ---------------------------------------------------------------------------------------------
# Small helpers shared by all parts
# ---------------------------------------------------------------------------------------------

def jfloat(x):
    """A float as JSON: a number whose repr round-trips exactly, or a string for non-finite values
    (JSON has no inf/nan). Python's repr of a double is the shortest string that parses back to
    the same double, so float32 values (exactly representable as doubles) round-trip too."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def sha256_f32(arr):
    """sha256 of the little-endian float32 C-order bytes: the canonical digest of a tensor's values."""
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj):
    # allow_nan=False makes a stray inf/nan an error instead of invalid JSON ("Infinity").
    # ensure_ascii=False keeps UTF-8 test strings readable; insertion order is kept on purpose.
    text = json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def sample_indices(numel):
    """Flat indices round(k*(numel-1)/7), k = 0..7, in integer arithmetic (never a .5 tie, since
    the fraction is a multiple of 1/7)."""
    if numel == 0:
        return []
    return [(2 * k * (numel - 1) + 7) // 14 for k in range(8)]


def tensor_summary(arr):
    """shape, numel, sha256, exact sum and 8 samples of a float32 array."""
    flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    idx = sample_indices(flat.size)
    return {
        "numel": int(flat.size),
        "sha256_f32": sha256_f32(flat),
        # math.fsum is the correctly rounded sum, so the value does not depend on summation order;
        # compare with a relative tolerance from Swift, whose summation order differs.
        "sum_f64": jfloat(math.fsum(flat.astype(np.float64).tolist())),
        "samples": [[int(i), jfloat(flat[i])] for i in idx],
    }


# ---------------------------------------------------------------------------------------------
# A minimal independent GGUF header parser. It describes what is actually on disk (so the
# expected JSON does not just echo what we meant to write) and can read nested arrays.
# ---------------------------------------------------------------------------------------------

_SCALAR_FMT = {
    VT.UINT8: "<B", VT.INT8: "<b", VT.UINT16: "<H", VT.INT16: "<h", VT.UINT32: "<I",
    VT.INT32: "<i", VT.FLOAT32: "<f", VT.UINT64: "<Q", VT.INT64: "<q", VT.FLOAT64: "<d",
}


class _Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s


def _read_value(cur, vtype):
    """Returns the JSON form used in gguf_types_expected.json."""
    vtype = VT(vtype)
    if vtype in _SCALAR_FMT:
        v = cur.take(_SCALAR_FMT[vtype])
        return jfloat(v) if vtype in (VT.FLOAT32, VT.FLOAT64) else v
    if vtype == VT.BOOL:
        b = cur.take("<B")
        assert b in (0, 1)
        return bool(b)
    if vtype == VT.STRING:
        return cur.string()
    if vtype == VT.ARRAY:
        etype = VT(cur.take("<I"))
        count = cur.take("<Q")
        items = [_read_value(cur, etype) for _ in range(count)]
        if etype == VT.ARRAY:
            return {"element_type": "ARRAY", "value": items}
        return {"element_type": etype.name, "value": items}
    raise ValueError(f"unknown GGUF value type {vtype}")


def parse_gguf_header(path):
    with open(path, "rb") as f:
        data = f.read()
    cur = _Cursor(data)
    assert data[:4] == b"GGUF"
    cur.pos = 4
    version = cur.take("<I")
    n_tensors = cur.take("<Q")
    n_kv = cur.take("<Q")
    kvs = {}
    for _ in range(n_kv):
        key = cur.string()
        vtype = VT(cur.take("<I"))
        value = _read_value(cur, vtype)
        if vtype == VT.ARRAY:
            entry = {"type": "ARRAY", "element_type": value["element_type"], "value": value["value"]}
        else:
            entry = {"type": vtype.name, "value": value}
        if vtype in (VT.UINT64, VT.INT64):
            # JSON parsers often read big integers as doubles; the decimal string is unambiguous.
            entry["value_string"] = str(value)
        assert key not in kvs
        kvs[key] = entry
    infos = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.take("<I")
        ne = [cur.take("<Q") for _ in range(n_dims)]
        ttype = cur.take("<I")
        offset = cur.take("<Q")
        infos.append({"name": name, "ne": ne, "type_id": ttype, "offset": offset})
    end_of_infos = cur.pos
    alignment = kvs.get("general.alignment", {"value": 32})["value"]
    data_start = (end_of_infos + alignment - 1) // alignment * alignment
    return {
        "version": version, "kv": kvs, "tensors": infos, "end_of_tensor_infos": end_of_infos,
        "alignment": alignment, "data_start": data_start, "file_size": len(data),
    }


# ---------------------------------------------------------------------------------------------
# a. The real SmolLM2 GGUF, as transformers 5.24 loads it
# ---------------------------------------------------------------------------------------------

def make_smollm2(gguf_path, out_dir):
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS, TensorProcessor, get_gguf_hf_weights_map, load_gguf_checkpoint,
    )

    gguf_path = os.path.abspath(gguf_path)
    folder, fname = os.path.split(gguf_path)

    # In transformers 5.24, `from_pretrained(..., gguf_file=)` only uses the new packed-GGUF path
    # for qwen35/qwen35moe/lfm2; a llama file goes through the legacy `load_gguf_checkpoint`
    # (gguf.dequantize -> LlamaTensorProcessor un-permutes attn_q/attn_k -> rename -> cast).
    # We call that function directly (the brief's reference) and cross-check every tensor against
    # the model that from_pretrained actually builds.
    config = AutoConfig.from_pretrained(folder, gguf_file=fname)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    model.eval()
    parsed = load_gguf_checkpoint(gguf_path, return_tensors=True, model_to_load=model,
                                  torch_dtype=torch.float32)
    hf_tensors = parsed["tensors"]

    # Same GGUF->HF name map that load_gguf_checkpoint builds internally, so we can record both.
    processor = TENSOR_PROCESSORS.get("llama", TensorProcessor)(config=parsed["config"])
    gguf_to_hf = get_gguf_hf_weights_map(model, processor)

    state = model.state_dict()
    reader = gguf.GGUFReader(gguf_path)
    n_heads, n_kv = config.num_attention_heads, config.num_key_value_heads

    tensors, raw = [], {}
    for t in reader.tensors:  # file order
        qtype = QT(t.tensor_type)
        ne = [int(x) for x in t.shape]
        deq = gguf.dequantize(t.data, qtype).reshape(list(reversed(ne)))
        raw[t.name] = {
            "ggml_type": qtype.name, "ggml_type_id": int(qtype), "ne": ne,
            "data_offset": int(t.data_offset), "n_bytes": int(t.n_bytes),
            "sha256_f32": sha256_f32(deq),
        }
        hf_name = gguf_to_hf[t.name]
        hf = hf_tensors[hf_name].detach().numpy()
        # The loaded model must hold exactly the same values (catches any later loader step).
        assert torch.equal(state[hf_name], hf_tensors[hf_name]), hf_name
        # Independent check of formats.md §4.8: HF row h*hd + j*(hd/2) + i = GGUF row h*hd + 2i + j.
        if ".attn_q." in t.name or ".attn_k." in t.name:
            n = n_heads if ".attn_q." in t.name else n_kv
            rows, cols = deq.shape
            hd = rows // n
            expect = deq.reshape(n, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)
            assert np.array_equal(hf, expect), t.name
            assert not np.array_equal(hf, deq), t.name  # the permutation really did something
        else:
            assert np.array_equal(hf, deq), t.name
        entry = {"hf_name": hf_name, "gguf_name": t.name, "ggml_type": qtype.name,
                 "shape": list(hf.shape)}
        entry.update(tensor_summary(hf))
        tensors.append(entry)

    assert len(tensors) == len(hf_tensors)
    tied = [k for k in state if k not in hf_tensors]
    # Parameters, counting the tied lm_head/embedding once (model.parameters() de-duplicates).
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(e["numel"] for e in tensors)

    rope = dict(config.rope_parameters)
    result = {
        "source": {
            "file": fname, "sha256": sha256_file(gguf_path), "size": os.path.getsize(gguf_path),
            "loader": "transformers.modeling_gguf_pytorch_utils.load_gguf_checkpoint(return_tensors=True, torch_dtype=float32)",
            "versions": {"transformers": __import__("transformers").__version__,
                         "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0",
                         "torch": torch.__version__, "numpy": np.__version__},
            "notes": [
                "tensors: file order; shape is the HF (PyTorch) shape = reversed GGUF ne",
                "sha256_f32: little-endian float32 C-order bytes of the dequantized HF-layout tensor",
                "sum_f64: math.fsum (exact, order-independent) of the float32 values",
                "samples: [flat index, float32 value] at round(k*(numel-1)/7), k=0..7",
                "attn_q/attn_k rows are un-permuted (formats.md 4.8); all other tensors equal gguf.dequantize",
                "gguf_raw: gguf.dequantize(data, type) in the GGUF's own layout (numpy shape = reversed ne), no un-permute",
                "data_offset in gguf_raw is absolute (from the start of the file)",
            ],
        },
        "config": {
            "model_type": config.model_type,
            "num_hidden_layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_attention_heads": config.num_attention_heads,
            "num_key_value_heads": config.num_key_value_heads,
            "head_dim": config.head_dim,
            "vocab_size": config.vocab_size,
            "max_position_embeddings": config.max_position_embeddings,
            "rms_norm_eps": jfloat(config.rms_norm_eps),
            "rope_theta": jfloat(rope["rope_theta"]),
            "rope_parameters": {k: (jfloat(v) if isinstance(v, float) else v) for k, v in rope.items()},
            "tie_word_embeddings": bool(config.tie_word_embeddings),
            "bos_token_id": config.bos_token_id,
            "eos_token_id": config.eos_token_id,
            "pad_token_id": config.pad_token_id,
        },
        "total_parameters": int(n_params),
        "state_dict_entries": len(state),
        "tied_aliases": {k: "model.embed_tokens.weight" for k in tied},
        "tensors": tensors,
        "gguf_raw": raw,
    }
    write_json(os.path.join(out_dir, "smollm2_tensors.json"), result)
    return result


# ---------------------------------------------------------------------------------------------
# b. gguf_types.gguf: every KV value type and 11 tensor types
# ---------------------------------------------------------------------------------------------

# Byte offsets of the f16 scale fields inside one block, per quant type (formats.md 4.6).
F16_FIELDS = {
    QT.Q8_0: [0], QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2],
    QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
}


def random_blocks(rng, qtype, rows, cols):
    """Random raw blocks: every quant bit pattern is exercised, while the f16 scales are set to
    finite random values of modest size (|v| in [1e-3, 0.1], random sign) so nothing is NaN/Inf."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    nblocks = cols // block_elems
    raw = rng.integers(0, 256, size=(rows, nblocks, block_bytes), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        mag = rng.uniform(1e-3, 0.1, size=(rows, nblocks))
        sign = rng.choice([-1.0, 1.0], size=(rows, nblocks))
        raw[:, :, off:off + 2] = (mag * sign).astype("<f2").view(np.uint8).reshape(rows, nblocks, 2)
    return raw.reshape(rows, nblocks * block_bytes)


def make_gguf_types(out_dir):
    from safetensors.numpy import save_file as np_save_file

    rng = np.random.default_rng(20240601)
    path = os.path.join(out_dir, "gguf_types.gguf")
    w = gguf.GGUFWriter(path, arch="llama")  # adds general.architecture = "llama" first
    w.add_custom_alignment(64)  # general.alignment (UINT32) = 64, not the default 32
    w.add_name("finch gguf types fixture")

    f32 = lambda x: float(np.float32(x))  # values exactly representable in float32  # noqa: E731
    # Scalars of every KV value type.
    w.add_uint8("test.uint8", 255)
    w.add_int8("test.int8", -128)
    w.add_uint16("test.uint16", 65535)
    w.add_int16("test.int16", -32768)
    w.add_uint32("test.uint32", 4294967295)
    w.add_int32("test.int32", -2147483648)
    w.add_float32("test.float32", f32(3.14159265))
    w.add_float32("test.float32_eps", f32(1e-5))  # like layer_norm_rms_epsilon: 9.999999747e-06
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "hello")
    w.add_string("test.string_utf8", "héllo wörld — 日本語 🦙")
    # add_string() silently drops empty strings, so write this one through add_key_value.
    w.add_key_value("test.string_empty", "", VT.STRING)
    w.add_uint64("test.uint64", 2**64 - 1)
    w.add_int64("test.int64", -2**63)
    w.add_float64("test.float64", 0.1)
    # Arrays. add_array infers the element type from the first item (int -> INT32,
    # float -> FLOAT32, str -> STRING, bool -> BOOL, list -> ARRAY); other element types need
    # add_key_value with sub_type.
    w.add_array("test.array_int32", [1, -2, 3, 2147483647, -2147483648])
    w.add_array("test.array_string", ["alpha", "", "ünïcödé", "🦙 llama"])
    w.add_array("test.array_float32", [0.5, -1.25, f32(0.1), f32(1e-5)])
    w.add_array("test.array_bool", [True, False, True])
    w.add_key_value("test.array_uint8", [0, 1, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("test.array_int64", [-2**63, 2**63 - 1], VT.ARRAY, sub_type=VT.INT64)
    w.add_key_value("test.array_float64", [0.1, -2.5], VT.ARRAY, sub_type=VT.FLOAT64)
    # Nested arrays (array of arrays): GGUFWriter handles them; the inner element type is again
    # inferred per inner array, and inner arrays may have different lengths.
    w.add_key_value("test.array_nested_int32", [[1, 2], [3, 4, 5], [-6]], VT.ARRAY, sub_type=VT.ARRAY)
    w.add_key_value("test.array_nested_string", [["a", "b"], ["ç"]], VT.ARRAY, sub_type=VT.ARRAY)

    # Tensors, in file order. numpy shape = reversed ne; blocks run along the last numpy axis.
    sources = {}  # float32 inputs of tensors that gguf-py quantized itself

    x = rng.standard_normal((3, 64)).astype(np.float32)
    w.add_tensor("f32", x)
    w.add_tensor("f32_3d", rng.standard_normal((2, 3, 32)).astype(np.float32))  # ne = [32, 3, 2]
    w.add_tensor("f32_1d", rng.standard_normal(64).astype(np.float32))           # ne = [64]

    h = rng.standard_normal((3, 64)).astype(np.float16)
    # Edge values: +0, -0, smallest subnormal, largest normal (both signs), +inf, -inf.
    h.reshape(-1)[:7] = np.array([0.0, -0.0, 2.0**-24, 65504.0, -65504.0, np.inf, -np.inf], np.float16)
    w.add_tensor("f16", h)

    b = torch.from_numpy(rng.standard_normal((3, 64)).astype(np.float32)).to(torch.bfloat16)
    bbits = b.view(torch.int16).numpy().view(np.uint16).copy()
    # Edge bit patterns: +0, -0, smallest subnormal, a larger subnormal, largest finite, +inf, -inf.
    bbits.reshape(-1)[:7] = [0x0000, 0x8000, 0x0001, 0x007F, 0x7F7F, 0x7F80, 0xFF80]
    w.add_tensor("bf16", bbits, raw_dtype=QT.BF16)  # uint16 array: shape is taken as-is

    for qtype, name in [(QT.Q8_0, "q8_0"), (QT.Q4_0, "q4_0"), (QT.Q4_1, "q4_1"),
                        (QT.Q5_0, "q5_0"), (QT.Q5_1, "q5_1")]:
        w.add_tensor(name, random_blocks(rng, qtype, 3, 64), raw_dtype=qtype)
    for qtype, name in [(QT.Q4_K, "q4_k"), (QT.Q5_K, "q5_k"), (QT.Q6_K, "q6_k")]:
        w.add_tensor(name, random_blocks(rng, qtype, 2, 512), raw_dtype=qtype)
    # Quantized by gguf-py from random floats (realistic blocks; also a quantizer oracle: the
    # float inputs are in gguf_quant_sources.safetensors under the same name).
    for qtype, name in [(QT.Q8_0, "q8_0_from_f32"), (QT.Q4_0, "q4_0_from_f32"),
                        (QT.Q4_1, "q4_1_from_f32"), (QT.Q5_0, "q5_0_from_f32"),
                        (QT.Q5_1, "q5_1_from_f32")]:
        src = rng.standard_normal((3, 64)).astype(np.float32)
        src[0, :32] = 0.0  # an all-zero block: d = 0 must not produce NaN
        sources[name] = src
        w.add_tensor(name, gguf.quantize(src, qtype), raw_dtype=qtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # --- Describe the file as it is on disk, and the reference dequantization. ---
    hdr = parse_gguf_header(path)
    reader = gguf.GGUFReader(path)  # gguf-py's own reader, for cross-checks
    assert reader.data_offset == hdr["data_start"], (reader.data_offset, hdr["data_start"])
    expected, tensor_list = {}, []
    for info, t in zip(hdr["tensors"], reader.tensors):
        assert info["name"] == t.name and info["ne"] == [int(v) for v in t.shape]
        qtype = QT(info["type_id"])
        # Exactly what transformers does: gguf.dequantize on the reader's data, float32 out.
        deq = gguf.dequantize(t.data, qtype).astype(np.float32).reshape(list(reversed(info["ne"])))
        assert deq.dtype == np.float32 and np.isfinite(deq).sum() >= deq.size - 4
        expected[info["name"]] = np.ascontiguousarray(deq)
        assert t.data_offset == hdr["data_start"] + info["offset"]
        tensor_list.append({
            "name": info["name"], "type_id": info["type_id"], "type": qtype.name, "ne": info["ne"],
            "offset": info["offset"], "absolute_offset": hdr["data_start"] + info["offset"],
            "n_bytes": int(t.n_bytes), "sha256_f32": sha256_f32(deq),
        })
    # Round trip of the gguf-py quantizer inputs is lossy, but dequantize(quantize(x)) must be close.
    for name, src in sources.items():
        assert np.max(np.abs(expected[name] - src)) < 0.5, name

    np_save_file(expected, os.path.join(out_dir, "gguf_types_expected.safetensors"))
    np_save_file(sources, os.path.join(out_dir, "gguf_quant_sources.safetensors"))
    write_json(os.path.join(out_dir, "gguf_types_expected.json"), {
        "file": "gguf_types.gguf",
        "notes": [
            "metadata: in file order (kv_order); type = GGUF value type name; floats are exact reprs",
            "arrays: element_type + value; nested arrays have element_type ARRAY and each item is {element_type, value}",
            "UINT64/INT64 scalars also carry value_string (exact decimal)",
            "tensors: in file order; offset is relative to data_start, absolute_offset = data_start + offset",
            "expected values: gguf_types_expected.safetensors (float32, numpy shape = reversed ne), from gguf.dequantize",
            "q*_0/q*_1/q*_k tensors hold random raw blocks with finite random f16 scales (|v| in [1e-3, 0.1], random sign)",
            "*_from_f32 tensors were quantized by gguf.quantize; their float32 inputs are in gguf_quant_sources.safetensors",
            "f16 and bf16 tensors start with edge values (+-0, subnormal, max finite, +inf, -inf): compare bit-exactly",
        ],
        "version": hdr["version"],
        "tensor_count": len(hdr["tensors"]),
        "kv_count": len(hdr["kv"]),
        "alignment": hdr["alignment"],
        "end_of_tensor_infos": hdr["end_of_tensor_infos"],
        "data_start": hdr["data_start"],
        "file_size": hdr["file_size"],
        "kv_order": list(hdr["kv"].keys()),
        "metadata": hdr["kv"],
        "tensors": tensor_list,
    })
    return hdr


# ---------------------------------------------------------------------------------------------
# c. python_written.safetensors
# ---------------------------------------------------------------------------------------------

def f32_from_bits(bits):
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def probe_serializer_order():
    """Find the installed serializer's tensor order by experiment: one tensor per dtype torch can
    hand it, named so that name order is the reverse of any dtype order; then names in one dtype."""
    from safetensors.torch import save
    names = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16",
             "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
    torch_dt = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8,
                "F8_E5M2": torch.float8_e5m2, "F8_E4M3": torch.float8_e4m3fn,
                "F8_E8M0": getattr(torch, "float8_e8m0fnu", None), "I16": torch.int16,
                "U16": torch.uint16, "F16": torch.float16, "BF16": torch.bfloat16,
                "I32": torch.int32, "U32": torch.uint32, "F32": torch.float32,
                "C64": torch.complex64, "F64": torch.float64, "I64": torch.int64, "U64": torch.uint64}
    names = [n for n in names if torch_dt[n] is not None]
    tensors = {f"{chr(ord('z') - i)}_{n}": torch.zeros(2, dtype=torch_dt[n]) for i, n in enumerate(names)}
    blob = save(tensors)
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    dtype_order = [hdr[k]["dtype"] for k in sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0])]
    same = {"b": torch.zeros(1), "a": torch.zeros(2), "B": torch.zeros(1), "a.10": torch.zeros(1),
            "a.9": torch.zeros(1), "é": torch.zeros(1), "_x": torch.zeros(1)}
    blob = save(same)
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    name_order = sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0])
    assert name_order == sorted(same, key=lambda s: s.encode("utf-8"))
    return dtype_order, name_order


def make_python_written(out_dir):
    from safetensors.torch import save_file

    # The float edge-case vector, built in float32 and converted to f16/bf16 by torch (RNE).
    special = np.array([
        1.0, -2.5, 0.0, -0.0, np.inf, -np.inf, np.nan,
        1e-40,                    # float32 subnormal (stays subnormal in bf16)
        1e-6,                     # normal in f32, subnormal in f16
        1e5,                      # overflows f16 -> inf
        f32_from_bits(0x3F808000),  # 1.00390625: exact bf16 tie -> even (down to 1.0)
        f32_from_bits(0x3F818000),  # 1.01171875: exact bf16 tie -> even (up to 0x3F82)
        f32_from_bits(0x3F808001),  # just above the tie -> rounds up
        -3.0e38,                  # large negative, finite in bf16
        65520.0,                  # f16 tie at the top -> rounds to inf
        0.1,
    ], dtype=np.float32).reshape(4, 4)
    sp = torch.from_numpy(special)

    tensors = {
        # Inserted in a scrambled order on purpose: the file order is the serializer's choice.
        "int.i32_3d": torch.from_numpy(
            ((np.arange(24, dtype=np.int64) * 123457) % 2001 - 1000).astype(np.int32).reshape(2, 3, 4)),
        "float.bf16": sp.to(torch.bfloat16),
        "uint.u64": torch.from_numpy(np.array([0, 1, 2**64 - 1], dtype=np.uint64)),
        "scalar": torch.tensor(3.5, dtype=torch.float32),  # shape []
        "bool.mask": torch.tensor([True, False, False, True, True]),
        "float.f64": torch.tensor([[-0.0, 1.0 / 3.0, -2.5], [1e-310, 1e300, -1e-5]], dtype=torch.float64),
        "empty": torch.zeros((0, 3), dtype=torch.float32),  # zero-size: data_offsets begin == end
        "int.i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
        "float.f16": sp.to(torch.float16),
        "uint.u16": torch.from_numpy(np.array([0, 1, 65535], dtype=np.uint16)),
        "int.i64": torch.tensor([-2**63, -1, 0, 1, 2**63 - 1], dtype=torch.int64),
        "uint.u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "float.f32": sp.clone(),
        "int.i16": torch.tensor([-32768, -1, 0, 1, 12345, 32767], dtype=torch.int16),
        "uint.u32": torch.from_numpy(np.array([0, 1, 4294967295], dtype=np.uint32)),
    }
    path = os.path.join(out_dir, "python_written.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})

    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header_bytes = blob[8:8 + n]
    header = json.loads(header_bytes)
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])

    def describe(name, t):
        st_dtype = header[name]["dtype"]
        entry = {"dtype": st_dtype, "shape": list(t.shape), "data_offsets": header[name]["data_offsets"]}
        flat = t.reshape(-1)
        if t.is_floating_point():
            as_f32 = flat.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
            entry["values"] = [jfloat(v) for v in as_f32.tolist()]
            width = {torch.float64: (torch.int64, 16), torch.float32: (torch.int32, 8),
                     torch.float16: (torch.int16, 4), torch.bfloat16: (torch.int16, 4)}[t.dtype]
            mask = (1 << (4 * width[1])) - 1
            entry["bits_hex"] = [f"{v & mask:0{width[1]}x}" for v in flat.view(width[0]).tolist()]
        elif t.dtype == torch.bool:
            entry["values"] = [bool(v) for v in flat.tolist()]
        else:
            vals = [int(v) for v in t.numpy().reshape(-1).tolist()]  # numpy: exact uint64
            entry["values"] = vals
            if st_dtype in ("I64", "U64"):
                entry["values_string"] = [str(v) for v in vals]
        return entry

    dtype_order, name_order = probe_serializer_order()
    write_json(os.path.join(out_dir, "python_written.json"), {
        "file": "python_written.safetensors",
        "writer": f"safetensors {__import__('safetensors').__version__} safetensors.torch.save_file, metadata {{'format': 'pt'}}",
        "notes": [
            "values: flat C-order; floats are exact reprs, non-finite as 'inf'/'-inf'/'nan'",
            "F16/BF16 values are the stored value converted to float32; bits_hex is the stored bit pattern",
            "float.f16/float.bf16 were made from float.f32 with torch .to() (round to nearest even)",
            "I64/U64 also carry values_string (exact decimal)",
        ],
        "header_length": n,
        "header_string": header_bytes.decode("utf-8"),
        "data_start": 8 + n,
        "file_size": len(blob),
        "data_order": order,
        "tensors": {name: describe(name, tensors[name]) for name in order},
        "serializer": {
            "rule": ("tensors sorted by dtype, descending in the serializer's Dtype enum order, then by "
                     "name ascending (byte-wise UTF-8); packed contiguously with no padding in that order; "
                     "header JSON is compact (no spaces), __metadata__ first, then tensors in data order, "
                     "non-ASCII written as raw UTF-8, then right-padded with spaces so 8 + N is a multiple of 8"),
            "dtype_order_observed": dtype_order,
            "name_order_observed_within_one_dtype": name_order,
        },
    })
    return header_bytes, order, dtype_order


# ---------------------------------------------------------------------------------------------
# d. tiny_llama/ (2 shards) and config-only tiny_qwen2/, tiny_phi/
# ---------------------------------------------------------------------------------------------

def make_tiny_models(out_dir):
    from safetensors import safe_open
    from transformers import (AutoConfig, LlamaConfig, LlamaForCausalLM, PhiConfig, Qwen2Config)

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, vocab_size=256,
                      max_position_embeddings=128, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).eval()

    llama_dir = os.path.join(out_dir, "tiny_llama")
    shutil.rmtree(llama_dir, ignore_errors=True)
    # ~427 KB of float32 weights; 250 KB shards give exactly two files. (transformers 5 always
    # writes safetensors; `safe_serialization` no longer exists.)
    model.save_pretrained(llama_dir, max_shard_size="250KB")
    files = sorted(os.listdir(llama_dir))
    assert "model-00001-of-00002.safetensors" in files and "model-00002-of-00002.safetensors" in files, files
    with open(os.path.join(llama_dir, "model.safetensors.index.json")) as f:
        index = json.load(f)

    entries = []
    for shard in sorted(set(index["weight_map"].values())):
        with safe_open(os.path.join(llama_dir, shard), framework="pt") as sf:
            for name in sf.keys():  # sorted by name
                t = sf.get_tensor(name)
                entries.append({"name": name, "file": shard, "shape": list(t.shape),
                                "dtype": str(t.dtype).replace("torch.", ""),
                                "sha256_f32": sha256_f32(t.float().numpy())})
    entries.sort(key=lambda e: e["name"])

    # A small forward-pass check for later model tests (fp32, eager, CPU).
    ids = torch.tensor([[1, 5, 17, 42, 99, 128, 200, 255]])
    with torch.no_grad():
        logits = model(ids).logits[0].float().numpy()
    write_json(os.path.join(out_dir, "tiny_llama_expected.json"), {
        "dir": "tiny_llama",
        "files": files,
        "total_size": index["metadata"]["total_size"],
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "tensors": entries,
        "logits_check": {
            "input_ids": ids[0].tolist(),
            "argmax_per_position": [int(i) for i in logits.argmax(-1)],
            "last_position_logits": [jfloat(v) for v in logits[-1]],
            "note": "fp32 CPU forward of the saved model; compare with a tolerance (~1e-5)",
        },
    })

    # Config-only fixtures: what transformers 5.24 writes for these classes.
    qwen = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=256,
                       max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                       bos_token_id=1, eos_token_id=2)
    phi = PhiConfig(vocab_size=256, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=128, layer_norm_eps=1e-5,
                    partial_rotary_factor=0.4, tie_word_embeddings=False,
                    bos_token_id=1, eos_token_id=2)
    derived = {}
    for name, c in [("tiny_qwen2", qwen), ("tiny_phi", phi)]:
        d = os.path.join(out_dir, name)
        shutil.rmtree(d, ignore_errors=True)
        c.save_pretrained(d)
        assert os.listdir(d) == ["config.json"], os.listdir(d)
    for name in ["tiny_llama", "tiny_qwen2", "tiny_phi"]:
        d = os.path.join(out_dir, name)
        with open(os.path.join(d, "config.json")) as f:
            raw = json.load(f)
        c = AutoConfig.from_pretrained(d)  # how transformers reads the file back
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        rp = dict(c.rope_parameters)
        prf = rp.get("partial_rotary_factor", 1.0)
        derived[name] = {
            "top_level_keys_written": sorted(raw),
            "has_top_level_rope_theta": "rope_theta" in raw,
            "has_top_level_partial_rotary_factor": "partial_rotary_factor" in raw,
            "rope_parameters_written": raw.get("rope_parameters"),
            "as_loaded": {
                "model_type": c.model_type,
                "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
                "num_hidden_layers": c.num_hidden_layers,
                "num_attention_heads": c.num_attention_heads,
                "num_key_value_heads": c.num_key_value_heads,
                "head_dim": head_dim, "vocab_size": c.vocab_size,
                "max_position_embeddings": c.max_position_embeddings,
                "hidden_act": c.hidden_act,
                "norm_eps": jfloat(getattr(c, "rms_norm_eps", None) or getattr(c, "layer_norm_eps")),
                "rope_theta": jfloat(rp["rope_theta"]),
                "partial_rotary_factor": jfloat(prf),
                "rotary_dim": int(head_dim * prf),  # what the attention code rotates
                "tie_word_embeddings": bool(c.tie_word_embeddings),
                "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id,
            },
        }
    # A transformers-4-style Phi config (as shipped with Phi-2): rope_theta and
    # partial_rotary_factor at the top level. Record how 5.24 normalizes it.
    legacy = {"model_type": "phi", "hidden_size": 64, "num_attention_heads": 4,
              "rope_theta": 10000.0, "partial_rotary_factor": 0.4}
    lc = PhiConfig.from_dict(legacy)
    derived["legacy_v4_phi_input"] = {"input": legacy, "rope_parameters_after_load": dict(lc.rope_parameters)}
    write_json(os.path.join(out_dir, "tiny_configs_expected.json"), derived)
    return entries, files


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf", help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)

    a = make_smollm2(args.gguf, args.out)
    print(f"a. smollm2_tensors.json: {len(a['tensors'])} tensors, {a['total_parameters']} params, "
          f"gguf sha256 {a['source']['sha256']}")
    hdr = make_gguf_types(args.out)
    print(f"b. gguf_types.gguf: {len(hdr['tensors'])} tensors, {len(hdr['kv'])} KVs, data_start {hdr['data_start']}")
    header, order, dtype_order = make_python_written(args.out)
    print(f"c. python_written.safetensors: header N={len(header)} order={order}")
    print(f"   serializer dtype order: {dtype_order}")
    entries, files = make_tiny_models(args.out)
    print(f"d. tiny_llama: {len(entries)} tensors in {files}")


if __name__ == "__main__":
    sys.exit(main())
