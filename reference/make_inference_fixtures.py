#!/usr/bin/env python3
"""Generate the golden fixtures for Finch's inference parity tests (FinchModelsTests).

Python is only the oracle: the Swift tests read what this script writes and never run Python.
Everything is fp32, CPU, eager attention, model.eval(), torch.no_grad(), fixed seeds and fixed
inputs, so re-running the script reproduces identical bytes (check with `sha256sum`).

Usage (from the repo root, in the reference venv, see reference/README.md):

    python reference/make_inference_fixtures.py \
        --gguf ~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        [--out Tests/FinchModelsTests/Fixtures] [--only tiny,smollm2]

Outputs in OUT (see the README.md written next to them):
  a. tiny_llama_gqa/, tiny_llama_untied/, tiny_qwen2/, tiny_phi/   random models (save_pretrained)
     <name>_expected.json        input_ids of two sequences (7 and 12 tokens), config, summaries
     <name>_logits.safetensors   logits_0 [7, V], logits_1 [12, V] (float32, all positions)
  b. smollm2_expected.json       5 prompts through the real SmolLM2-135M-Instruct Q4_1 GGUF:
                                 input_ids, top-5, greedy 64-token continuation, EOS flag
     smollm2_logits.safetensors  prompt_0..prompt_4 [V] (last position), prompt_0_all [T0, V]

The Phi-2-shaped fixtures (phi2_shaped_*) come from reference/make_phi2_shaped_fixture.py.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sys

# Never touch the network: everything is loaded from local files or built from configs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchModelsTests", "Fixtures")
DEFAULT_GGUF = os.path.expanduser("~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf")

# The two token sequences every tiny model is run on (each separately, batch 1, no padding).
# They include the extreme ids 0 and V-1 = 255 and a run of repeated tokens.
TINY_SEQUENCES = [
    [1, 5, 17, 42, 99, 128, 255],
    [0, 3, 250, 7, 7, 7, 64, 200, 13, 100, 31, 2],
]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def jfloat(x):
    """A float as JSON: a number whose repr round-trips exactly (float32 values are exact doubles)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return x


def sha256_f32(arr):
    """sha256 of the little-endian float32 C-order bytes."""
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj):
    text = json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def save_logits(path, tensors):
    """float32 numpy arrays → safetensors (keys sorted by the writer; no metadata, deterministic)."""
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, path)


def top_k(row, k=5):
    """Top-k (ids, logits) of a 1-D float32 row; ties broken by the lower id (stable sort)."""
    order = np.argsort(-row.astype(np.float64), kind="stable")[:k]
    return [int(i) for i in order], [jfloat(row[i]) for i in order]


def randomize_(model, norms=True):
    """Make every bias non-zero and every norm weight non-trivial, so that a Swift port that drops
    a bias or a norm weight fails the parity test. Draws from torch's global generator (seeded by
    the caller) in named_parameters() order:
      - Linear / projection biases: init (0) + 0.1·N(0,1)
      - LayerNorm / RMSNorm weights: init (1) + 0.1·N(0,1); LayerNorm biases: 0 + 0.1·N(0,1)
    Embedding and Linear weights keep transformers' own init (N(0, initializer_range))."""
    changed = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.add_(0.1 * torch.randn(p.shape))
                changed.append(name)
            elif norms and "norm" in name and name.endswith(".weight"):
                p.add_(0.1 * torch.randn(p.shape))
                changed.append(name)
    return changed


def config_summary(c):
    rp = dict(c.rope_parameters)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    prf = rp.get("partial_rotary_factor", 1.0)
    eps = getattr(c, "rms_norm_eps", None)
    if eps is None:
        eps = c.layer_norm_eps
    return {
        "model_type": c.model_type,
        "architectures": list(c.architectures or []),
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": head_dim,
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.max_position_embeddings,
        "hidden_act": c.hidden_act,
        "norm_eps": jfloat(eps),
        "rope_theta": jfloat(rp["rope_theta"]),
        "partial_rotary_factor": jfloat(prf),
        "rotary_dim": int(head_dim * prf),
        "tie_word_embeddings": bool(c.tie_word_embeddings),
        "attention_bias": bool(getattr(c, "attention_bias", c.model_type in ("qwen2", "phi"))),
        "mlp_bias": bool(getattr(c, "mlp_bias", c.model_type == "phi")),
        "lm_head_bias": c.model_type == "phi",
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
    }


def forward_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids], dtype=torch.long)).logits[0].float().numpy().copy()


# ---------------------------------------------------------------------------------------------
# a. Tiny random models
# ---------------------------------------------------------------------------------------------

def tiny_specs():
    from transformers import (LlamaConfig, LlamaForCausalLM, PhiConfig, PhiForCausalLM,
                              Qwen2Config, Qwen2ForCausalLM)
    # initializer_range 0.15 instead of 0.02: with hidden 64 the default makes q·k tiny, attention
    # nearly uniform and logits ~0.3, so a wrong RoPE or GQA mapping could hide below the test
    # tolerance. 0.15 gives attention scores and logits of order 1 (see "sensitivity" in the JSON).
    common = dict(vocab_size=256, max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
                  initializer_range=0.15, attn_implementation="eager", dtype="float32")
    return [
        ("tiny_llama_gqa", 1, LlamaForCausalLM, LlamaConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, intermediate_size=128, tie_word_embeddings=True, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **common)),
        ("tiny_llama_untied", 2, LlamaForCausalLM, LlamaConfig(
            hidden_size=64, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
            head_dim=8, intermediate_size=128, tie_word_embeddings=False, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, **common)),
        ("tiny_qwen2", 3, Qwen2ForCausalLM, Qwen2Config(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, tie_word_embeddings=False, rms_norm_eps=1e-6,
            use_sliding_window=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, **common)),
        ("tiny_phi", 4, PhiForCausalLM, PhiConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
            hidden_act="gelu_new", layer_norm_eps=1e-5, tie_word_embeddings=False,
            resid_pdrop=0.1, embd_pdrop=0.0, attention_dropout=0.0,  # inactive in eval()
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                             "partial_rotary_factor": 0.4}, **common)),
    ]


def build_and_save(cls, cfg, seed, folder):
    """Seeded random init + randomize_(), saved with save_pretrained (safetensors)."""
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    changed = randomize_(model)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    del model
    return changed


def reload(cls, folder):
    return cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def eager_vs_sdpa(cls, folder, sequences, eager_logits):
    sdpa = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()
    diff = max(float(np.abs(forward_logits(sdpa, ids) - ref).max())
               for ids, ref in zip(sequences, eager_logits))
    del sdpa
    return diff


def sensitivity(cls, folder, sequences, ref_logits):
    """How much the logits move under small architectural mistakes (max |Δlogit| over both
    sequences): evidence that the fixture's tolerance can catch them."""
    import copy
    from transformers import AutoConfig
    base = AutoConfig.from_pretrained(folder)
    variants = {}
    rp = dict(base.rope_parameters)
    v = copy.deepcopy(rp)
    v["rope_theta"] = rp["rope_theta"] * 2
    variants["rope_theta_x2"] = {"rope_parameters": v}
    if "partial_rotary_factor" in rp:
        v = copy.deepcopy(rp)
        v["partial_rotary_factor"] = 0.5
        variants["partial_rotary_factor_0.5"] = {"rope_parameters": v}
    eps = "rms_norm_eps" if hasattr(base, "rms_norm_eps") else "layer_norm_eps"
    variants[f"{eps}_x10"] = {eps: getattr(base, eps) * 10}
    out = {}
    for key, changes in variants.items():
        cfg = copy.deepcopy(base)
        for k, val in changes.items():
            setattr(cfg, k, val)
        m = cls.from_pretrained(folder, config=cfg, dtype=torch.float32,
                                attn_implementation="eager").eval()
        out[key] = max(float(np.abs(forward_logits(m, ids) - ref).max())
                       for ids, ref in zip(sequences, ref_logits))
        del m
    return out


def folder_files(folder):
    return {f: {"bytes": os.path.getsize(os.path.join(folder, f)),
                "sha256": sha256_file(os.path.join(folder, f))}
            for f in sorted(os.listdir(folder))}


def make_tiny(out_dir):
    results = {}
    for name, seed, cls, cfg in tiny_specs():
        folder = os.path.join(out_dir, name)
        changed = build_and_save(cls, cfg, seed, folder)
        model = reload(cls, folder)  # the fixture describes what is on disk
        assert model.config._attn_implementation == "eager"
        logits = [forward_logits(model, ids) for ids in TINY_SEQUENCES]
        # Sanity: the forward pass is deterministic.
        for ids, lg in zip(TINY_SEQUENCES, logits):
            again = forward_logits(model, ids)
            assert np.array_equal(again, lg)
        sdpa_diff = eager_vs_sdpa(cls, folder, TINY_SEQUENCES, logits)
        sens = sensitivity(cls, folder, TINY_SEQUENCES, logits)
        logits_file = f"{name}_logits.safetensors"
        save_logits(os.path.join(out_dir, logits_file),
                    {f"logits_{i}": lg for i, lg in enumerate(logits)})
        seqs = []
        for i, (ids, lg) in enumerate(zip(TINY_SEQUENCES, logits)):
            ids5, vals5 = top_k(lg[-1])
            seqs.append({
                "input_ids": ids,
                "logits_key": f"logits_{i}",
                "logits_shape": list(lg.shape),
                "logits_sha256_f32": sha256_f32(lg),
                "argmax_per_position": [int(a) for a in lg.argmax(-1)],
                "last_position_top5_ids": ids5,
                "last_position_top5_logits": vals5,
                "max_abs_logit": jfloat(np.abs(lg).max()),
            })
        write_json(os.path.join(out_dir, f"{name}_expected.json"), {
            "model_dir": name,
            "class": cls.__name__,
            "seed": seed,
            "dtype": "float32",
            "attn_implementation": "eager",
            "config": config_summary(model.config),
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "randomized_parameters": changed,
            "files": folder_files(folder),
            "logits_file": logits_file,
            "sequences": seqs,
            "sdpa_vs_eager_max_abs_diff": sdpa_diff,
            "sensitivity_max_abs_logit_change": sens,
            "note": "Each sequence is run separately (batch 1, no padding, positions 0..T-1). "
                    "Logits are fp32 CPU eager; compare with a tolerance of ~1e-4 absolute.",
        })
        results[name] = (model.config.num_hidden_layers, sdpa_diff, sens,
                         max(s["max_abs_logit"] for s in seqs))
        del model
    return results


# ---------------------------------------------------------------------------------------------
# b. The real default model (SmolLM2-135M-Instruct Q4_1 GGUF, dequantized to fp32)
# ---------------------------------------------------------------------------------------------

LONG_PROMPT = (
    "The history of the printing press begins long before Johannes Gutenberg. In China, woodblock "
    "printing was used to reproduce texts and images on paper and cloth as early as the seventh "
    "century, and movable type made of baked clay was described by the scholar Shen Kuo in the "
    "eleventh century. Korean printers later cast type in bronze, and the oldest surviving book "
    "printed with movable metal type dates from 1377. In Europe, however, the decisive step came "
    "around 1450 in the city of Mainz, where Gutenberg combined several existing technologies: a "
    "screw press adapted from wine and olive presses, an oil-based ink that adhered to metal, and a "
    "hand mould that allowed individual letters to be cast quickly and with uniform height. The "
    "result was a system in which thousands of pieces of type could be composed into pages, inked, "
    "printed, cleaned and reused. Within fifty years, presses were operating in more than two "
    "hundred European towns, and millions of books had been produced. Historians still debate how "
    "quickly this changed ordinary life, but most agree that cheaper books helped spread new ideas "
    "in science, religion and politics. In the centuries that followed,"
)

SMOLLM2_PROMPTS = [
    {"kind": "plain", "text": "The capital of France is"},
    {"kind": "chat", "messages": [{"role": "user", "content": "What is the capital of France?"}]},
    {"kind": "code", "text": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
                             "    if n < 2:\n"},
    {"kind": "long", "text": LONG_PROMPT},
    {"kind": "non_ascii", "text": "Traduis en français : « Ich möchte einen Kaffee, bitte. » "
                                  "Et en japonais : コーヒーをください。Ελληνικά: Καλημέρα! "
                                  "Emoji: ☕🙂 — São Paulo, naïve, Größe, 北京."},
]


def make_smollm2(out_dir, gguf_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, file = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    assert model.config._attn_implementation == "eager"
    eos = model.generation_config.eos_token_id
    eos_ids = eos if isinstance(eos, list) else [eos]
    gen_cfg = model.generation_config.to_diff_dict()

    tensors, records = {}, []
    sdpa_inputs = []
    for i, p in enumerate(SMOLLM2_PROMPTS):
        if p["kind"] == "chat":
            text = tok.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True)
        else:
            text = p["text"]
        ids = tok.encode(text, add_special_tokens=False)
        # SmolLM2 adds no BOS: encoding with or without special tokens must agree.
        assert ids == tok.encode(text), (ids, tok.encode(text))
        if p["kind"] == "long":
            assert len(ids) >= 200, len(ids)
        all_logits = forward_logits(model, ids)
        last = all_logits[-1]
        tensors[f"prompt_{i}"] = last
        if i == 0:
            tensors["prompt_0_all"] = all_logits
        sdpa_inputs.append((ids, all_logits))
        ids5, vals5 = top_k(last)

        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 do_sample=False, max_new_tokens=64, repetition_penalty=1.0,
                                 pad_token_id=eos_ids[0], return_dict_in_generate=True,
                                 output_logits=True)
        new = out.sequences[0, len(ids):].tolist()
        step_logits = [s[0].float().numpy() for s in out.logits]
        assert [int(s.argmax()) for s in step_logits] == new
        gaps = []
        for s in step_logits:
            top2 = np.sort(s)[-2:]
            gaps.append(float(top2[1] - top2[0]))
        # The first generated token must be the argmax of the full-forward logits.
        assert new[0] == int(last.argmax()), (new[0], int(last.argmax()))
        records.append({
            "kind": p["kind"],
            "chat": p["kind"] == "chat",  # text is a rendered chat template (has special tokens)
            "text": text,
            **({"messages": p["messages"]} if "messages" in p else {}),
            "input_ids": ids,
            "num_tokens": len(ids),
            "logits_key": f"prompt_{i}",
            "last_logits_sha256_f32": sha256_f32(last),
            "top5_ids": ids5,
            "top5_logits": vals5,
            "greedy_new_ids": new,
            "greedy_num_new": len(new),
            "greedy_stopped_at_eos": bool(new and new[-1] in eos_ids),
            "greedy_text": tok.decode(new, skip_special_tokens=False),
            "greedy_min_top1_top2_gap": jfloat(min(gaps)),
            "greedy_min_gap_step": int(np.argmin(gaps)),
        })
        print(f"  prompt {i} ({p['kind']}): {len(ids)} tokens, top1 {ids5[0]} ({vals5[0]:.4f}), "
              f"{len(new)} new, eos={records[-1]['greedy_stopped_at_eos']}, "
              f"min gap {min(gaps):.4f}", flush=True)
    del model

    sdpa = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32,
                                                attn_implementation="sdpa").eval()
    sdpa_diff = max(float(np.abs(forward_logits(sdpa, ids) - ref).max()) for ids, ref in sdpa_inputs)
    del sdpa

    save_logits(os.path.join(out_dir, "smollm2_logits.safetensors"), tensors)
    write_json(os.path.join(out_dir, "smollm2_expected.json"), {
        "gguf_file": file,
        "gguf_bytes": os.path.getsize(gguf_path),
        "gguf_sha256": sha256_file(gguf_path),
        "loader": "AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=torch.float32, "
                  "attn_implementation='eager'); tokenizer: AutoTokenizer.from_pretrained(dir, gguf_file=name)",
        "dtype": "float32",
        "attn_implementation": "eager",
        "generation": {"do_sample": False, "max_new_tokens": 64, "repetition_penalty": 1.0,
                       "eos_token_ids": eos_ids, "stops_at_eos": True,
                       "generation_config_diff": gen_cfg,
                       "note": "model.generate (KV cache) greedy; greedy_new_ids include the EOS "
                               "token when generation stopped on it. greedy_min_top1_top2_gap is "
                               "the smallest top-1/top-2 logit gap over the generated steps: below "
                               "~1e-3 a port may legitimately diverge there."},
        "logits_file": "smollm2_logits.safetensors",
        "logits_keys": {**{f"prompt_{i}": [model_vocab(tensors)] for i in range(len(SMOLLM2_PROMPTS))},
                        "prompt_0_all": list(tensors["prompt_0_all"].shape)},
        "sdpa_vs_eager_max_abs_diff": sdpa_diff,
        "prompts": records,
    })
    return records, sdpa_diff


def model_vocab(tensors):
    return int(tensors["prompt_0"].shape[0])


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=DEFAULT_GGUF)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default="tiny,smollm2",
                    help="comma-separated subset of: tiny, smollm2")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    unknown = parts - {"tiny", "smollm2"}
    if unknown:
        sys.exit(f"unknown parts: {sorted(unknown)}")
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    if "tiny" in parts:
        for name, (layers, diff, sens, mx) in make_tiny(args.out).items():
            print(f"a. {name}: {layers} layers, max |logit| {mx:.3g}, eager vs sdpa max |Δ| "
                  f"{diff:.3g}, sensitivity {sens}")
    if "smollm2" in parts:
        _, diff = make_smollm2(args.out, args.gguf)
        print(f"b. smollm2: eager vs sdpa max |Δ| {diff:.3g}")


if __name__ == "__main__":
    main()
