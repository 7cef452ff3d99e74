"""Golden fixtures for GGUF export (issue 9), from the `gguf` Python package (gguf==0.19.0).

1. Tests/FinchCoreTests/Fixtures/gguf_quantize.safetensors: seeded Float32 rows with edge cases
   (an all-zero block, a block whose largest magnitude is negative, exact .5 ties, tiny and huge
   values) and their encodings by `gguf.quants.quantize` as F16, BF16, Q8_0, Q4_0 and Q4_1, which
   reproduce ggml's reference quantizers bit for bit.
2. Tests/FinchFormatsTests/Fixtures/gguf_writer_reference.gguf: a small file written by
   `gguf.GGUFWriter` with one metadata value of every type (arrays included) and three tensors;
   GGUFWriterTests writes the same content with Finch's writer and compares the bytes. The values
   are spelled out identically in the test.

    /work/venv-ref/bin/python reference/make_gguf_export_fixtures.py
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def quantize_fixture():
    rng = np.random.default_rng(2026)
    rows = [rng.standard_normal(256).astype(np.float32) * s for s in (1.0, 0.02, 40.0)]
    edge = np.zeros(256, dtype=np.float32)
    edge[32:64] = -np.arange(32, dtype=np.float32) / 4          # largest magnitude is negative
    edge[64:96] = (np.arange(32, dtype=np.float32) - 16) / 16 * 127 / 127  # exact steps (ties in Q8_0 at ±0.5/…)
    edge[96:128] = np.linspace(-1, 1, 32, dtype=np.float32)     # Q4 codes hitting .5 boundaries
    edge[128:160] = 1e-8 * (np.arange(32, dtype=np.float32) - 7)  # tiny: f16 scale underflows
    edge[160:192] = 3.0                                          # constant block (Q4_1 d = 0)
    edge[192:224] = rng.standard_normal(32).astype(np.float32) * 1.5e4  # large, near the f16 limit at 4σ
    edge[224:256] = np.array([0.5, -0.5, 1.5, -1.5] * 8, dtype=np.float32) * (127 / 1.5) / 127 * 1.5
    rows.append(edge)
    x = np.stack(rows)
    tensors = {"input": x}
    for name, qtype in [("f16", Q.F16), ("bf16", Q.BF16), ("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1)]:
        tensors[name] = np.ascontiguousarray(gguf.quants.quantize(x, qtype)).view(np.uint8).reshape(x.shape[0], -1)
    path = os.path.join(ROOT, "Tests/FinchCoreTests/Fixtures/gguf_quantize.safetensors")
    save_file(tensors, path, metadata={"generator": "reference/make_gguf_export_fixtures.py", "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0"})
    print("wrote", path)


def writer_fixture():
    path = os.path.join(ROOT, "Tests/FinchFormatsTests/Fixtures/gguf_writer_reference.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_key_value("test.uint8", 200, V.UINT8)
    w.add_key_value("test.int8", -100, V.INT8)
    w.add_key_value("test.uint16", 60000, V.UINT16)
    w.add_key_value("test.int16", -30000, V.INT16)
    w.add_key_value("test.uint32", 4000000000, V.UINT32)
    w.add_key_value("test.int32", -2000000000, V.INT32)
    w.add_key_value("test.float32", 0.1, V.FLOAT32)
    w.add_key_value("test.bool", True, V.BOOL)
    w.add_key_value("test.string", "héllo, wörld ✓", V.STRING)
    w.add_key_value("test.uint64", 2**63 + 5, V.UINT64)
    w.add_key_value("test.int64", -(2**62), V.INT64)
    w.add_key_value("test.float64", 1 / 3, V.FLOAT64)
    w.add_key_value("test.strings", ["a", "", "ĠĠ", "<|im_end|>"], V.ARRAY, sub_type=V.STRING)
    w.add_key_value("test.int32s", [1, -2, 3], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.float32s", [0.5, -1.25], V.ARRAY, sub_type=V.FLOAT32)
    # Tensors: values i * 0.25 - 3 (exact in f16 and f32); the Q8_0 one is raw bytes 0, 1, 2, … mod 251.
    a = (np.arange(3 * 40, dtype=np.float32) * 0.25 - 3).reshape(3, 40)
    w.add_tensor("blk.0.attn_norm.weight", a[0].copy())
    w.add_tensor("token_embd.weight", a.astype(np.float16))
    raw = (np.arange(2 * 2 * 34) % 251).astype(np.uint8).reshape(2, 2 * 34)
    w.add_tensor("output.weight", raw, raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", path)


if __name__ == "__main__":
    quantize_fixture()
    writer_fixture()
