#!/usr/bin/env python3
"""Golden logits of a seeded 2-layer model with Phi-2's real shapes, small enough for the repository.

The weights are never stored. Both this script and the Swift test (PhiShapedParityTests.swift)
compute every tensor from its name with the integer generator below. The generator gives the same
float bit patterns in both languages and needs no transcendental functions and no float
rounding. The Swift test writes the weights as an F16 safetensors folder (Phi-2's own checkpoint
dtype), loads it with `CausalLM(source:)` and compares its logits with the ones written here.
Every generated value is exactly representable in float16 (and bfloat16), so transformers, which
runs in fp32 here, sees the same numbers that the Swift test stores.

Usage (from the repo root, in the reference venv, see reference/README.md):

    /work/venv-ref/bin/python reference/make_phi2_shaped_fixture.py [--out Tests/FinchModelsTests/Fixtures]

It takes about 30 seconds on 2 cores and peaks at 3.1 GB of RSS (the fp32 model). Re-running it
writes the same bytes.

Generator ("finch-splitmix64-int8-v1"):
  seed(name)  = FNV-1a 64 of the tensor's Hugging Face name in UTF-8
                (offset 0xcbf29ce484222325, prime 0x100000001b3, arithmetic mod 2^64)
  z_i         = splitmix64 output i (0-based, row-major element index), i.e. with
                g = 0x9E3779B97F4A7C15:  z = seed + (i + 1)·g;
                z = (z ^ (z >> 30))·0xBF58476D1CE4E5B9; z = (z ^ (z >> 27))·0x94D049BB133111EB;
                z ^= z >> 31                                   (all mod 2^64)
                (the last step leaves the top byte unchanged; it is kept so that z_i is plain
                splitmix64)
  k_i         = the top byte of z_i read as a signed int8, in -128...127
  n_i         = base + (k_i >> shift)    (arithmetic shift)
  value_i     = float32(n_i) · 2^-exp    (exact: |n_i| < 256 and the scale is a power of two)
  kinds by name (checked in this order):
    "layernorm" in name and ends in ".weight"   base 128, shift 2, exp 7   → 0.75 … 1.2421875
    ends in ".bias"                             base 0,   shift 0, exp 10  → ±0.125
    anything else (embeddings, Linear weights)  base 0,   shift 0, exp 12  → ±0.03125 (σ ≈ 0.018)

Outputs in OUT:
  phi2_shaped_config.json           the config.json the Swift test writes next to its weights
  phi2_shaped_expected.json         generator spec and per-tensor check values, input ids, config
                                    summary, argmax/top-5, sensitivity; see the README.md there
  phi2_shaped_logits.safetensors    logits [8, 51200] float32 (all positions)
"""

import argparse
import copy
import hashlib
import json
import math
import os

# Never touch the network: the model is built from a config.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchModelsTests", "Fixtures")

INPUT_IDS = [50256, 464, 3139, 286, 4881, 318, 6342, 13]  # 8 ids < 51200 (with the BOS 50256)
GENERATOR = "finch-splitmix64-int8-v1"
SHA256_TENSORS = [  # tensors whose whole F16 bytes are hashed: one of each kind
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.1.mlp.fc1.bias",
    "model.final_layernorm.weight",
]

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------

def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def kind_of(name):
    """(kind, base, shift, exp) for a tensor name."""
    if "layernorm" in name and name.endswith(".weight"):
        return "layernorm_weight", 128, 2, 7
    if name.endswith(".bias"):
        return "bias", 0, 0, 10
    return "weight", 0, 0, 12


def numerator_table(base, shift):
    """n for k = -128 … 127 (index k + 128)."""
    return np.array([base + (k >> shift) for k in range(-128, 128)], dtype=np.int64)


def scalar_values(name, count):
    """Plain-Python reference of the first `count` values (cross-checks the numpy version)."""
    _, base, shift, exp = kind_of(name)
    seed, out = fnv1a64(name), []
    for i in range(count):
        z = (seed + (i + 1) * GAMMA) & M64
        z = ((z ^ (z >> 30)) * MIX1) & M64
        z = ((z ^ (z >> 27)) * MIX2) & M64
        z ^= z >> 31
        k = (z >> 56) - 256 if (z >> 56) >= 128 else (z >> 56)
        out.append(float(np.float32(base + (k >> shift)) * np.float32(2.0 ** -exp)))
    return out


def generate(name, shape, chunk=1 << 20):
    """Float32 values (numpy, `shape`) and the sum of their integer numerators n. Works in place on
    reused chunk buffers (fresh 8 MB temporaries per step cost more in page faults than the math)."""
    _, base, shift, exp = kind_of(name)
    table = numerator_table(base, shift)
    values = (table.astype(np.float32) * np.float32(2.0 ** -exp)).astype(np.float32)
    assert np.array_equal(values.astype(np.float64), table * 2.0 ** -exp)  # exact in float32
    assert np.array_equal(values.astype(np.float16).astype(np.float32), values)  # and in float16
    n = math.prod(shape)
    seed = fnv1a64(name)
    out = np.empty(n, dtype=np.float32)
    counts = np.zeros(256, dtype=np.int64)
    steps = np.arange(1, chunk + 1, dtype=np.uint64) * np.uint64(GAMMA)  # (j + 1)·g
    z = np.empty(chunk, dtype=np.uint64)
    t = np.empty(chunk, dtype=np.uint64)
    index = np.empty(chunk, dtype=np.intp)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        zc, tc, ic = z[:m], t[:m], index[:m]
        np.add(steps[:m], np.uint64((seed + start * GAMMA) & M64), out=zc)  # seed + (i+1)·g
        np.right_shift(zc, np.uint64(30), out=tc)
        np.bitwise_xor(zc, tc, out=zc)
        np.multiply(zc, np.uint64(MIX1), out=zc)
        np.right_shift(zc, np.uint64(27), out=tc)
        np.bitwise_xor(zc, tc, out=zc)
        np.multiply(zc, np.uint64(MIX2), out=zc)
        np.right_shift(zc, np.uint64(31), out=tc)
        np.bitwise_xor(zc, tc, out=zc)
        np.right_shift(zc, np.uint64(56), out=tc)  # top byte b; k = b as int8, index k + 128 = b ^ 0x80
        np.bitwise_xor(tc, np.uint64(0x80), out=tc)
        ic[...] = tc
        np.take(values, ic, out=out[start:start + m])
        counts += np.bincount(ic, minlength=256)
    return out.reshape(shape), int(counts @ table)


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_f32(arr):
    """sha256 of the little-endian float32 C-order bytes."""
    return sha256_bytes(np.ascontiguousarray(np.asarray(arr, dtype="<f4")).tobytes())


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

def phi2_shaped_config(dtype):
    from transformers import PhiConfig
    return PhiConfig(
        vocab_size=51200, hidden_size=2560, intermediate_size=10240, num_hidden_layers=2,
        num_attention_heads=32, num_key_value_heads=32, hidden_act="gelu_new",
        max_position_embeddings=2048, layer_norm_eps=1e-5, tie_word_embeddings=False,
        qk_layernorm=False, resid_pdrop=0.1, embd_pdrop=0.0, attention_dropout=0.0,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "partial_rotary_factor": 0.4},
        bos_token_id=50256, eos_token_id=50256, attn_implementation="eager", dtype=dtype)


def jfloat(x):
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return x


def write_json(path, obj):
    text = json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def forward_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids], dtype=torch.long)).logits[0].float().numpy().copy()


def top_k(row, k=5):
    order = np.argsort(-row.astype(np.float64), kind="stable")[:k]
    return [int(i) for i in order], [jfloat(row[i]) for i in order]


def sensitivity(model, cfg, ids, ref):
    """max |Δlogit| under small architectural mistakes, changed in place and restored: evidence
    that a tolerance of 1e-4 catches them at these shapes."""
    from transformers.models.phi.modeling_phi import PhiRotaryEmbedding
    out = {}
    rotary = model.model.rotary_emb
    attns = [layer.self_attn for layer in model.model.layers]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    for key in ("rope_theta_x2", "partial_rotary_factor_0.5", "layer_norm_eps_x10"):
        c = copy.deepcopy(cfg)
        rp = dict(c.rope_parameters)
        if key == "rope_theta_x2":
            rp["rope_theta"] *= 2
        if key == "partial_rotary_factor_0.5":
            rp["partial_rotary_factor"] = 0.5
        c.rope_parameters = rp
        model.model.rotary_emb = PhiRotaryEmbedding(config=c)
        for a in attns:
            a.rotary_ndims = int(a.head_dim * rp["partial_rotary_factor"])
        for n in norms:
            n.eps = cfg.layer_norm_eps * (10 if key == "layer_norm_eps_x10" else 1)
        out[key] = float(np.abs(forward_logits(model, ids) - ref).max())
    model.model.rotary_emb = rotary
    for a in attns:
        a.rotary_ndims = int(a.head_dim * cfg.rope_parameters["partial_rotary_factor"])
    for n in norms:
        n.eps = cfg.layer_norm_eps
    assert np.array_equal(forward_logits(model, ids), ref)  # restored
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    from transformers import PhiForCausalLM

    cfg = phi2_shaped_config("float32")
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    assert head_dim == 80 and int(head_dim * 0.4) == 32
    torch.manual_seed(0)  # only the throwaway default init uses it; every parameter is overwritten
    model = PhiForCausalLM(cfg).eval()
    assert model.config._attn_implementation == "eager"

    tensors = []
    hashes = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            values, total = generate(name, tuple(p.shape))
            first = scalar_values(name, 4)
            assert values.reshape(-1)[:4].tolist() == first, (name, first)
            p.copy_(torch.from_numpy(values))
            assert np.array_equal(p.numpy(), values)
            if name in SHA256_TENSORS:
                hashes[name] = sha256_bytes(values.astype("<f2").tobytes())
            kind, base, shift, exp = kind_of(name)
            tensors.append({
                "name": name,
                "shape": list(p.shape),
                "kind": kind,
                "seed": f"{fnv1a64(name):016x}",
                "first4": first,
                "last": jfloat(values.reshape(-1)[-1]),
                "numerator_sum": total,
            })
            del values
    assert set(hashes) == set(SHA256_TENSORS)
    names = [t["name"] for t in tensors]
    assert sorted(names) == sorted(model.state_dict().keys()), "parameters and state_dict differ"
    num_parameters = sum(p.numel() for p in model.parameters())

    ids = INPUT_IDS
    logits = forward_logits(model, ids)
    assert np.array_equal(forward_logits(model, ids), logits)  # deterministic
    sens = sensitivity(model, cfg, ids, logits)
    model.set_attn_implementation("sdpa")
    sdpa_diff = float(np.abs(forward_logits(model, ids) - logits).max())

    os.makedirs(args.out, exist_ok=True)
    # The config the Swift test writes next to its F16 weights (Phi-2's own checkpoint dtype).
    phi2_shaped_config("float16").to_json_file(os.path.join(args.out, "phi2_shaped_config.json"))
    logits_file = "phi2_shaped_logits.safetensors"
    save_file({"logits": np.ascontiguousarray(logits, dtype=np.float32)}, os.path.join(args.out, logits_file))
    ids5, vals5 = top_k(logits[-1])
    write_json(os.path.join(args.out, "phi2_shaped_expected.json"), {
        "class": "PhiForCausalLM",
        "dtype": "float32",
        "attn_implementation": "eager",
        "config_file": "phi2_shaped_config.json",
        "config": {
            "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
            "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": head_dim, "rotary_dim": int(head_dim * cfg.rope_parameters["partial_rotary_factor"]),
            "partial_rotary_factor": jfloat(cfg.rope_parameters["partial_rotary_factor"]),
            "rope_theta": jfloat(cfg.rope_parameters["rope_theta"]), "norm_eps": jfloat(cfg.layer_norm_eps),
            "vocab_size": cfg.vocab_size, "hidden_act": cfg.hidden_act,
            "tie_word_embeddings": bool(cfg.tie_word_embeddings), "qk_layernorm": bool(cfg.qk_layernorm),
        },
        "num_parameters": num_parameters,
        "generator": {
            "name": GENERATOR,
            "spec": "seed = FNV-1a 64 of the UTF-8 name; z_i = splitmix64 output i (state seed + (i+1)*0x9E3779B97F4A7C15, "
                    "mix 30/0xBF58476D1CE4E5B9, 27/0x94D049BB133111EB, 31); k_i = int8(z_i >> 56); "
                    "value_i = float32(base + (k_i >> shift)) * 2^-exp, row-major i",
            "kinds": {"layernorm_weight": {"base": 128, "shift": 2, "exp": 7},
                      "bias": {"base": 0, "shift": 0, "exp": 10},
                      "weight": {"base": 0, "shift": 0, "exp": 12}},
            "checkpoint_dtype": "F16",
            "note": "Every value is exact in float16 and bfloat16. numerator_sum is the sum of the "
                    "integers base + (k >> shift) over the whole tensor; sha256_f16 hashes the "
                    "tensor's little-endian float16 bytes in row-major order.",
            "sha256_f16": hashes,
        },
        "tensors": tensors,
        "logits_file": logits_file,
        "input_ids": ids,
        "logits_key": "logits",
        "logits_shape": list(logits.shape),
        "logits_sha256_f32": sha256_f32(logits),
        "max_abs_logit": jfloat(np.abs(logits).max()),
        "argmax_per_position": [int(a) for a in logits.argmax(-1)],
        "last_position_top5_ids": ids5,
        "last_position_top5_logits": vals5,
        "sdpa_vs_eager_max_abs_diff": sdpa_diff,
        "sensitivity_max_abs_logit_change": sens,
        "note": "fp32 CPU eager, batch 1, no padding, positions 0..7; logits at every position.",
    })
    print(f"phi2_shaped: {num_parameters} parameters, max |logit| {np.abs(logits).max():.3g}, "
          f"eager vs sdpa max |Δ| {sdpa_diff:.3g}, sensitivity {sens}")


if __name__ == "__main__":
    main()
