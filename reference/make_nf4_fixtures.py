#!/usr/bin/env python3
"""Golden outputs of bitsandbytes 0.50.2's 4-bit quantization (NF4/FP4, double quantization on/off).

Three groups of tensors, each quantized with `bitsandbytes.functional.quantize_4bit(x,
blocksize=64, quant_type=nf4|fp4, compress_statistics=False|True)` on the CPU:

1. "stored" cases: small tensors (random normal and hand-made edge cases: zero blocks, exact
   midpoints, code values, -0, tiny and huge blocks, odd element counts, rows that are not a
   multiple of 64) written with every output in bnb4bit_cases.safetensors: the input, packed
   bytes, absmax (F32, or U8 codes + nested absmax + nested map + offset), quant_map and the
   dequantized values.
2. "generated" cases: tensors too large to store (576x1536, a 1024x2560 slice with Phi-2's row
   width), computed from an integer generator that the Swift test reproduces bit for bit; only
   SHA-256 checksums of bitsandbytes' outputs are written (bnb4bit_expected.json).
3. SmolLM2-135M-Instruct weights (--smollm2-gguf): a few projection matrices as transformers
   loads the GGUF in float32, quantized; checksums only. The Swift test loads the same tensors
   through FinchFormats' ModelSource (whose float32 values equal transformers', see
   DefaultModelTests).

Dequantized values: bitsandbytes' reference kernel (`backends/default/ops.py`
`_dequantize_4bit_compute`, run eagerly) with the absmax that `dequantize_4bit` reconstructs
(`dequantize_blockwise` + offset). The native CPU kernel that `dequantize_4bit` calls is compared
against it and every disagreement is recorded ("native_dequant" in the JSON): for row lengths
that are a multiple of 16 but not of 64 (96 and 160 here) it misreads block scales, and its scalar
path (other lengths that are not a multiple of 64: 100, 200) returns -0 for FP4 code 8.

The double-quantization offset is `absmax.mean()`, a torch CPU reduction whose summation order
depends on torch's thread count for more than 32,768 blocks; the 1024x2560 case (40,960 blocks,
seed chosen so that the two differ) records the outputs for 1 and 2 threads.

Generator ("finch-splitmix64-irwinhall4-v1"), per case with a 64-bit seed s:
  z_i = splitmix64 output i: z = s + (i + 1)*0x9E3779B97F4A7C15 (mod 2^64);
        z = (z ^ (z >> 30))*0xBF58476D1CE4E5B9; z = (z ^ (z >> 27))*0x94D049BB133111EB; z ^= z >> 31
  n_i = sum of the four 16-bit fields of z_i minus 131070   (|n_i| <= 131070, roughly normal)
  x_i = float32(n_i) * 2^-(17 + (row % 4))  * (16 if i % 997 == 0 else 1)   (all exact)

Usage (from the repo root, in the reference venv; about 30 seconds, 1.7 GB of RAM):

    /work/venv-ref/bin/python reference/make_nf4_fixtures.py \\
        --smollm2-gguf ~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf

Re-running it writes the same bytes.
"""

import argparse
import hashlib
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bitsandbytes  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchCoreTests", "Fixtures")
PINNED = {"torch": "2.15.0", "bitsandbytes": "0.50.2"}
MASK64 = (1 << 64) - 1


def check_versions():
    import transformers

    found = {"torch": torch.__version__.split("+")[0], "bitsandbytes": bitsandbytes.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} installed, the fixtures pin {want} (reference/requirements.txt)")
    if transformers.__version__ != "5.24.0":
        raise SystemExit(f"transformers {transformers.__version__} installed, the fixtures pin 5.24.0")
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        raise SystemExit("torch's CPU sum kernel differs without AVX2; regenerate on an AVX2/AVX-512 machine")


def generated(seed, rows, cols):
    """The finch-splitmix64-irwinhall4-v1 tensor (see the module docstring)."""
    n = rows * cols
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (i + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    fields = sum(((z >> np.uint64(16 * k)) & np.uint64(0xFFFF)).astype(np.int64) for k in range(4))
    v = (fields - 131070).astype(np.float32)
    row = (np.arange(n) // cols) % 4
    v = v * np.exp2(-(17 + row)).astype(np.float32)
    v[np.arange(n) % 997 == 0] *= np.float32(16)
    return v.reshape(rows, cols)


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def bits(x):
    return int(np.float32(x).view(np.uint32))


def quantize(x, quant_type, double):
    """bitsandbytes' outputs for one tensor, as numpy arrays."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    q, st = F.quantize_4bit(t, blocksize=64, quant_type=quant_type, compress_statistics=double)
    out = {"packed": q.numpy().reshape(-1).copy(), "quant_map": st.code.numpy().astype(np.float32)}
    if double:
        out["absmax_codes"] = st.absmax.numpy().copy()
        out["nested_absmax"] = st.state2.absmax.numpy().copy()
        out["nested_map"] = st.state2.code.numpy().astype(np.float32)
        out["offset"] = np.array([st.offset.item()], dtype=np.float32)
        absmax = F.dequantize_blockwise(st.absmax, st.state2)
        absmax += st.offset
    else:
        out["absmax"] = st.absmax.numpy().copy()
        absmax = st.absmax
    ref = _dequantize_4bit_compute.__wrapped__(q.reshape(-1), absmax, st.code, 64, st.shape, torch.float32)
    out["dequant"] = ref.numpy().reshape(-1).copy()
    native = F.dequantize_4bit(q, st).numpy().reshape(-1)
    differ = np.nonzero(native.view(np.uint32) != out["dequant"].view(np.uint32))[0]
    out["native"] = {
        "differing": int(differ.size),
        "differing_beyond_zero_sign": int(np.count_nonzero(native[differ] != out["dequant"][differ])),
    }
    return out


def edge_cases(rng):
    """Hand-made tensors for the corner cases of the algorithm."""
    nf4 = F.get_4bit_type("nf4", device="cpu").numpy().astype(np.float32)
    mid = ((nf4[:-1] + nf4[1:]) / np.float32(2)).astype(np.float32)
    cases = {}
    # Every NF4 midpoint and code value in blocks whose absmax is 1: scaled values land exactly on
    # them (ties go to the lower code); also -0, +0, and values just around the midpoints.
    v = np.concatenate([mid, nf4, -mid, np.nextafter(mid, np.float32(2)), np.nextafter(mid, np.float32(-2)),
                        np.array([-0.0, 0.0, 1.0, -1.0], np.float32)]).astype(np.float32)
    v = np.resize(v, 4 * 64)
    v[::64] = 1.0
    cases["ties_nf4"] = v.reshape(4, 64)
    # FP4: its midpoints (via torch's sorted order) and tiny positives (code 8, "negative zero").
    fp4 = F.get_4bit_type("fp4", device="cpu").numpy().astype(np.float32)
    s = np.sort(fp4)
    fmid = ((s[:-1] + s[1:]) / np.float32(2)).astype(np.float32)
    w = np.concatenate([fmid, fp4, -fmid, np.array([1e-7, -1e-7, 0.0026, -0.0026, 0.0, -0.0], np.float32)])
    w = np.resize(w.astype(np.float32), 2 * 64)
    w[::64] = 1.0
    cases["ties_fp4"] = w.reshape(2, 64)
    # Zero blocks: a full one (stored absmax 0) and a zero tail (stored absmax 1e-38), odd count.
    z = rng.standard_normal(3 * 64 + 33).astype(np.float32)
    z[64:128] = 0
    z[192:] = 0
    cases["zero_blocks_odd"] = z.reshape(1, -1)
    # Huge, tiny and subnormal block scales.
    h = rng.standard_normal(4 * 64).astype(np.float32)
    h[:64] *= np.float32(1e30)
    h[64:128] *= np.float32(1e-30)
    h[128:192] *= np.float32(1e-41)
    cases["extreme_scales"] = h.reshape(4, 64)
    # Every block's absmax 1 exactly: the mean is exactly 1, so all nested values are 0.
    e = (rng.uniform(-0.9, 0.9, 6 * 64)).astype(np.float32)
    e[::64] = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    cases["equal_absmax"] = e.reshape(6, 64)
    # Values whose code differs between x / absmax and x * (1 / absmax): bitsandbytes multiplies by
    # the reciprocal in full blocks and divides in the short last block.
    for name, (first, last) in {"reciprocal_vs_division": (0.7391, 1.3), "division_vs_reciprocal": (1.3, 0.7391)}.items():
        head = np.resize(np.concatenate([[first], reciprocal_sensitive(first, mid)]), 64).astype(np.float32)
        tail = np.concatenate([[last], reciprocal_sensitive(last, mid)]).astype(np.float32)
        cases[name] = np.concatenate([head, tail]).reshape(1, -1)
    return cases


def reciprocal_sensitive(absmax, midpoints):
    """Values x (|x| < absmax) near absmax * midpoint whose NF4 code differs between
    float32(x / absmax) and float32(x * float32(1 / absmax))."""
    a = np.float32(absmax)
    r = np.float32(1) / a
    found = []
    for m in midpoints:
        x0 = np.float32(m * a)
        for d in range(-3, 4):
            x = x0
            for _ in range(abs(d)):
                x = np.nextafter(x, np.float32(9) if d > 0 else np.float32(-9))
            if abs(x) < a and np.count_nonzero(midpoints < np.float32(x / a)) != np.count_nonzero(midpoints < np.float32(x * r)):
                found.append(x)
    assert found, absmax
    return np.array(found, np.float32)


def blockwise8_cases(rng):
    """Inputs for bitsandbytes' CPU `quantize_blockwise` (dynamic map, blocksize 256): random values,
    a zero block, a short last block, and values at the edges of its 65,536-entry lookup table and at
    the midpoints of the map, where the table and a nearest-value search can disagree."""
    code = F.create_dynamic_map().numpy().astype(np.float32)
    mid = ((code[:-1] + code[1:]) * np.float32(0.5)).astype(np.float32)
    edges = []
    for k in range(1, 65536, 97):
        t = np.float32((k - 0.5) / 65535.0)
        edges += [np.float32(2) * t - np.float32(1), np.float32(2) * np.nextafter(t, np.float32(2)) - np.float32(1)]
    special = np.concatenate([mid, np.nextafter(mid, np.float32(2)), np.nextafter(mid, np.float32(-2)), code,
                              np.array(edges, np.float32)]).astype(np.float32)
    special = np.resize(special, (special.size + 254) // 255 * 255).reshape(-1, 255)
    special = np.concatenate([np.ones((special.shape[0], 1), np.float32), special], axis=1).reshape(-1)
    normal = (rng.standard_normal(3 * 256 + 100) * 0.3).astype(np.float32)
    normal[256:512] = 0
    return {"special": special, "normal": normal}


def stored_cases(rng):
    cases = {}
    for shape in [(1, 1), (1, 63), (2, 64), (3, 100), (7, 96), (5, 160), (4, 37), (13, 37), (9, 200), (33, 64), (48, 576),
                  (300, 192)]:
        scale = np.float32(rng.uniform(0.01, 2.0))
        cases[f"randn_{shape[0]}x{shape[1]}"] = (rng.standard_normal(shape) * scale).astype(np.float32)
    cases.update(edge_cases(rng))
    return cases


def smollm2_tensors(path, names):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                 dtype=torch.float32)
    state = model.state_dict()
    return {name: state[name].numpy().copy() for name in names}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--smollm2-gguf", required=True)
    args = parser.parse_args()
    check_versions()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    rng = np.random.default_rng(20261129)
    kinds = [(qt, dq) for qt in ("nf4", "fp4") for dq in (False, True)]

    tensors = {}
    expected = {
        "versions": {"torch": torch.__version__, "bitsandbytes": bitsandbytes.__version__,
                     "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "blocksize": 64, "nested_blocksize": 256,
        "stored": [], "generated": [], "smollm2": [],
    }

    for name, x in stored_cases(rng).items():
        tensors[f"{name}.input"] = x.reshape(-1)
        entry = {"name": name, "shape": list(x.shape), "kinds": []}
        for qt, dq in kinds:
            key = f"{name}.{qt}.{'dq' if dq else 'plain'}"
            out = quantize(x, qt, dq)
            for field, value in out.items():
                if field != "native":
                    tensors[f"{key}.{field}"] = value
            entry["kinds"].append({"quant_type": qt, "double_quant": dq, "prefix": key, "native_dequant": out["native"]})
        expected["stored"].append(entry)

    expected["blockwise8"] = []
    for name, x in blockwise8_cases(rng).items():
        q, st = F.quantize_blockwise(torch.from_numpy(x), blocksize=256)
        tensors[f"blockwise8.{name}.input"] = x
        tensors[f"blockwise8.{name}.codes"] = q.numpy().copy()
        tensors[f"blockwise8.{name}.absmax"] = st.absmax.numpy().copy()
        tensors[f"blockwise8.{name}.dequant"] = F.dequantize_blockwise(q, st).numpy().copy()
        nearest = np.abs(x[:, None] / np.repeat(np.maximum(st.absmax.numpy(), 1e-38), 256)[: x.size, None] - st.code.numpy()[None, :]).argmin(1)
        expected["blockwise8"].append({"name": name, "count": int(x.size), "map_sha256": sha(st.code.numpy().astype(np.float32)),
                                       "codes_differing_from_nearest_value": int(np.count_nonzero(nearest != q.numpy()))})

    generator = {"name": "finch-splitmix64-irwinhall4-v1"}
    for name, seed, rows, cols in [("gen_576x1536", 0x5EED_0576, 576, 1536), ("gen_1024x2560", 0x5EED_2561, 1024, 2560)]:
        x = generated(seed, rows, cols)
        entry = {"name": name, "seed": seed, "shape": [rows, cols], "sha256_input": sha(x), "kinds": []}
        for qt, dq in kinds:
            per = {}
            for threads in ([1, 2] if dq and rows * cols > 64 * 32768 else [2]):
                torch.set_num_threads(threads)
                out = quantize(x, qt, dq)
                per[threads] = out
            torch.set_num_threads(2)
            out = per[2]
            kind = {"quant_type": qt, "double_quant": dq, "native_dequant": out["native"],
                    "sha256": {k: sha(v) for k, v in out.items() if k != "native"}}
            if dq:
                kind["offset_bits_by_torch_threads"] = {str(t): bits(o["offset"][0]) for t, o in per.items()}
                if 1 in per:
                    kind["sha256_torch_threads_1"] = {k: sha(v) for k, v in per[1].items() if k != "native"}
            entry["kinds"].append(kind)
        expected["generated"].append(entry)
    expected["generator"] = generator

    names = [f"model.layers.{i}.{p}.weight" for i in (0, 29)
             for p in ("self_attn.q_proj", "self_attn.k_proj", "mlp.gate_proj", "mlp.down_proj")]
    for name, x in smollm2_tensors(os.path.expanduser(args.smollm2_gguf), names).items():
        entry = {"name": name, "shape": list(x.shape), "sha256_input": sha(x), "kinds": []}
        for qt, dq in kinds:
            out = quantize(x, qt, dq)
            entry["kinds"].append({"quant_type": qt, "double_quant": dq, "native_dequant": out["native"],
                                   "sha256": {k: sha(v) for k, v in out.items() if k != "native"}})
        expected["smollm2"].append(entry)

    save_file(tensors, os.path.join(args.out, "bnb4bit_cases.safetensors"))
    with open(os.path.join(args.out, "bnb4bit_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    size = os.path.getsize(os.path.join(args.out, "bnb4bit_cases.safetensors"))
    print(f"wrote {len(tensors)} tensors ({size / 1e6:.2f} MB) and bnb4bit_expected.json to {args.out}")


if __name__ == "__main__":
    main()
