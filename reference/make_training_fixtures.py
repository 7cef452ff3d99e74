#!/usr/bin/env python3
"""Generate the golden fixtures for Finch's training parity tests (FinchModelsTests, issue 5).

Python is only the oracle: the Swift tests read what this script writes and never run Python.
Everything is fp32 on the CPU, eager attention, model.eval() (so Phi's resid_pdrop and every
nn.Dropout are off; LoRA dropout, where a case wants it, is a stored mask applied by hand),
fixed seeds and fixed inputs, so re-running the script reproduces identical bytes.

The models are the tiny random folders written by reference/make_inference_fixtures.py
(`tiny_llama_gqa`: GQA 4/2 heads, tied embeddings; `tiny_phi`: partial rotary 0.4, biases
everywhere, untied lm_head with bias); run that script first if they are missing.

Usage (from the repo root, in the reference venv, see reference/README.md):

    python reference/make_training_fixtures.py [--out Tests/FinchModelsTests/Fixtures]

Batch: three sequences of 6, 11 and 9 tokens, each run separately (batch 1, no padding,
positions 0…L−1), which is what Finch's packed batch means (positions restart per sequence,
attention causal within a sequence). Labels follow transformers' causal-LM convention: `labels`
aligned with `input_ids`, the first tokens of each sequence (a "prompt") set to −100; the
per-token `targets` stored for Finch are the labels shifted left within each sequence (row t
scores token t+1; the last row of a sequence and prompt rows are −100).

Loss used for every gradient (one scalar over the whole batch):

    L = Σ_t w_t · log p_t(target_t)

with `w` a fixed N(0,1) draw per scored row (0 on masked rows). It is the general form Finch's
backward takes (dL/dlog p per token: SFT's mean CE is w = −1/N, DPO's is ∂L/∂S of each
sequence sum), and the random weights make every token's contribution distinct.

Outputs in OUT (see the README.md there, section "Training fixtures"):
  training_<model>.json          inputs, targets, weights, LoRA configs, PEFT target_modules
                                 resolutions, the SFT loss of transformers, summaries
  training_<model>.safetensors   log p per token, and per case the LoRA A/B values, the gradients
                                 of every A/B (or of every parameter for full fine-tuning), the
                                 gradient of the embedding output, and the dropout masks
"""

import argparse
import hashlib
import json
import math
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchModelsTests", "Fixtures")

LENGTHS = [6, 11, 9]
PROMPT_LENGTHS = [2, 4, 3]  # labels −100 for these first tokens of each sequence

# Per model: which scaling variant the main LoRA case uses, so both are covered.
MODELS = [
    # (folder, seed, use_rslora in the main LoRA case)
    ("tiny_llama_gqa", 11, False),
    ("tiny_phi", 12, True),
]

LORA_R = 4
LORA_ALPHA = 8.0
DROPOUT_P = 0.3
B_STD = 0.2  # B is set to seeded N(0, B_STD²) so that A's gradient is not zero

TARGET_SPECS = [
    # (label, target_modules value as PEFT takes it; None = PEFT's per-architecture default)
    ("all_linear", "all-linear"),
    ("default", None),
    ("suffix_q_v", ["q_proj", "v_proj"]),
    ("suffix_dotted", ["self_attn.k_proj", "layers.0.self_attn.v_proj"]),
    ("suffix_needs_a_dot", ["proj"]),  # "proj" is not a dotted suffix of "q_proj": no match
    ("exact_name", ["model.layers.1.self_attn.v_proj"]),
    ("regex", r"model\.layers\.1\..*(q_proj|fc1|up_proj)"),
    ("llama_only_o_proj", ["o_proj"]),
    ("phi_only_dense", ["dense"]),
]


def jfloat(x):
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x}")
    return x


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def write_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def load(folder):
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    assert m.config._attn_implementation == "eager"
    return m


def make_batch(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(0, vocab, (L,), generator=g).tolist() for L in LENGTHS]
    seqs[1][5] = 0          # the extreme ids, as targets
    seqs[2][7] = vocab - 1
    labels = [[-100] * P + ids[P:] for ids, P in zip(seqs, PROMPT_LENGTHS)]
    targets = []
    for lab in labels:
        targets += lab[1:] + [-100]  # row t scores token t+1 (transformers shifts inside its loss)
    w = torch.randn(len(targets), generator=g, dtype=torch.float64).float()
    w[torch.tensor(targets) < 0] = 0.0
    return seqs, labels, targets, w


def per_sequence_logp(logits, ids_targets):
    """logits (L, V) of one sequence, targets (L) → log p (L) with 0 on masked rows."""
    tg = torch.tensor(ids_targets)
    lp = torch.log_softmax(logits, dim=-1)
    out = torch.zeros(len(ids_targets))
    keep = tg >= 0
    gathered = lp[torch.arange(len(ids_targets))[keep], tg[keep]]
    out = out.index_put((torch.arange(len(ids_targets))[keep],), gathered)
    return out


def run_batch(model, seqs, targets, weights, embed):
    """Runs the sequences one by one, returns (loss tensor, logp packed, embedding-output leaves)."""
    total = 0.0
    logps, leaves = [], []
    start = 0
    for ids in seqs:
        L = len(ids)
        e = embed(torch.tensor([ids]))
        if e.requires_grad:
            e.retain_grad()  # full fine-tuning: the table's gradient must flow through e
        else:
            e = e.detach().requires_grad_(True)  # frozen table (LoRA): e is a leaf
        leaves.append(e)
        set_current_rows(start, start + L)
        logits = model(inputs_embeds=e).logits[0].float()
        lp = per_sequence_logp(logits, targets[start:start + L])
        logps.append(lp)
        total = total + (weights[start:start + L] * lp).sum()
        start += L
    return total, torch.cat(logps), leaves


_CURRENT_ROWS = [0, 0]


def set_current_rows(a, b):
    _CURRENT_ROWS[0], _CURRENT_ROWS[1] = a, b


class FixedMaskDropout(torch.nn.Module):
    """LoRA dropout with a stored keep-mask over the packed rows: x · keep / (1 − p)."""

    def __init__(self, keep, p):
        super().__init__()
        self.scaled = keep / (1.0 - p)  # float32 tensor (T_packed, in)

    def forward(self, x):
        a, b = _CURRENT_ROWS
        return x * self.scaled[a:b].unsqueeze(0)


def peft_model(base, target_modules, use_rslora, dropout=0.0):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=dropout, target_modules=target_modules,
                     use_rslora=use_rslora, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(base, cfg)


def lora_modules(pm):
    """{module name without PEFT's prefix: lora layer} in model order."""
    from peft.tuners.lora import LoraLayer
    out = {}
    for name, mod in pm.named_modules():
        if isinstance(mod, LoraLayer):
            out[name.removeprefix("base_model.model.")] = mod
    return out


def lora_case(folder, seqs, targets, weights, use_rslora, seed, dropout=0.0):
    torch.manual_seed(seed)
    pm = peft_model(load(folder), "all-linear", use_rslora, dropout)
    pm.eval()
    mods = lora_modules(pm)
    g = torch.Generator().manual_seed(seed + 1000)
    T = len(targets)
    tensors, masks = {}, {}
    with torch.no_grad():
        for name, mod in mods.items():
            B = mod.lora_B["default"].weight
            B.copy_(B_STD * torch.randn(B.shape, generator=g))
    for name, mod in mods.items():
        tensors[f"{name}.lora_A.weight"] = f32(mod.lora_A["default"].weight)
        tensors[f"{name}.lora_B.weight"] = f32(mod.lora_B["default"].weight)
        if dropout > 0:
            in_features = mod.lora_A["default"].weight.shape[1]
            keep = (torch.rand((T, in_features), generator=g) >= dropout).float()
            mod.lora_dropout["default"] = FixedMaskDropout(keep, dropout)
            masks[f"dropout_mask.{name}"] = f32(keep)
    for p in pm.parameters():
        p.grad = None
    embed = pm.get_input_embeddings()
    loss, logp, leaves = run_batch(pm, seqs, targets, weights, embed)
    loss.backward()
    grads = {}
    for name, mod in mods.items():
        grads[f"grad.{name}.lora_A.weight"] = f32(mod.lora_A["default"].weight.grad)
        grads[f"grad.{name}.lora_B.weight"] = f32(mod.lora_B["default"].weight.grad)
    grads["grad.embedding_output"] = f32(torch.cat([e.grad[0] for e in leaves]))
    scaling = mods[next(iter(mods))].scaling["default"]
    return tensors, grads, masks, list(mods.keys()), float(loss.detach()), f32(logp), scaling


def full_case(folder, seqs, targets, weights):
    model = load(folder)
    model.train(False)
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    loss, logp, leaves = run_batch(model, seqs, targets, weights, model.get_input_embeddings())
    loss.backward()
    grads = {f"grad.{n}": f32(p.grad) for n, p in model.named_parameters()}
    grads["grad.embedding_output"] = f32(torch.cat([e.grad[0] for e in leaves]))
    return grads, [n for n, _ in model.named_parameters()], float(loss.detach()), f32(logp)


def sft_loss(folder, seqs, labels):
    """transformers' own causal-LM loss on a right-padded batch (mean over unmasked tokens)."""
    model = load(folder)
    Lmax = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), Lmax), dtype=torch.long)
    att = torch.zeros((len(seqs), Lmax), dtype=torch.long)
    lab = torch.full((len(seqs), Lmax), -100, dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labels)):
        ids[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = 1
        lab[i, :len(l)] = torch.tensor(l)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=att, labels=lab)
    return float(out.loss)


def target_resolutions(folder):
    out = {}
    for label, spec in TARGET_SPECS:
        try:
            pm = peft_model(load(folder), spec, False)
            out[label] = {"target_modules": spec, "modules": sorted(lora_modules(pm).keys())}
        except ValueError as err:
            out[label] = {"target_modules": spec, "error": str(err).splitlines()[0]}
    return out


def linear_module_names(folder):
    model = load(folder)
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def make(out_dir, folder_name, seed, rslora_main):
    folder = os.path.join(out_dir, folder_name)
    base = load(folder)
    vocab = base.config.vocab_size
    del base
    seqs, labels, targets, weights = make_batch(seed, vocab)

    tensors = {"weights": f32(weights)}
    lora_t, lora_g, _, lora_names, lora_loss, lora_logp, lora_scaling = lora_case(
        folder, seqs, targets, weights, rslora_main, seed)
    tensors.update({f"lora.{k}": v for k, v in lora_t.items()})
    tensors.update({f"lora.{k}": v for k, v in lora_g.items()})
    tensors["lora.logp"] = lora_logp

    drop_t, drop_g, drop_m, drop_names, drop_loss, drop_logp, drop_scaling = lora_case(
        folder, seqs, targets, weights, False, seed + 1, dropout=DROPOUT_P)
    tensors.update({f"dropout.{k}": v for k, v in drop_t.items()})
    tensors.update({f"dropout.{k}": v for k, v in drop_g.items()})
    tensors.update({f"dropout.{k}": v for k, v in drop_m.items()})
    tensors["dropout.logp"] = drop_logp

    full_g, param_names, full_loss, base_logp = full_case(folder, seqs, targets, weights)
    tensors.update({f"full.{k}": v for k, v in full_g.items()})
    tensors["base.logp"] = base_logp

    sft = sft_loss(folder, seqs, labels)
    scored = [t for t in targets if t >= 0]
    sft_check = -float(base_logp.astype(np.float64).sum()) / len(scored)

    st_name = f"training_{folder_name}.safetensors"
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              os.path.join(out_dir, st_name))
    max_grad = {case: jfloat(max(np.abs(v).max() for k, v in tensors.items() if k.startswith(case + ".grad.")))
                for case in ("lora", "dropout", "full")}
    write_json(os.path.join(out_dir, f"training_{folder_name}.json"), {
        "model_dir": folder_name,
        "model_files_sha256": {f: sha256_file(os.path.join(folder, f)) for f in sorted(os.listdir(folder))},
        "seed": seed,
        "dtype": "float32",
        "attn_implementation": "eager",
        "sequences": seqs,
        "labels": labels,
        "targets": targets,
        "loss": "sum_t weights[t] * log p_t(targets[t]) over the packed batch (weights in the safetensors)",
        "linear_modules": linear_module_names(folder),
        "parameter_names": param_names,
        "cases": {
            "lora": {"r": LORA_R, "lora_alpha": LORA_ALPHA, "use_rslora": rslora_main, "lora_dropout": 0.0,
                     "target_modules": "all-linear", "scaling": jfloat(lora_scaling), "modules": lora_names,
                     "B_init": f"N(0, {B_STD}^2) seeded, replacing PEFT's zeros", "loss_value": jfloat(lora_loss)},
            "dropout": {"r": LORA_R, "lora_alpha": LORA_ALPHA, "use_rslora": False, "lora_dropout": DROPOUT_P,
                        "target_modules": "all-linear", "scaling": jfloat(drop_scaling), "modules": drop_names,
                        "mask": "dropout_mask.<module>: keep flags (T, in_features) over the packed rows; "
                                "the adapter input is x * keep / (1 - p)",
                        "loss_value": jfloat(drop_loss)},
            "full": {"loss_value": jfloat(full_loss),
                     "note": "every parameter trainable, no adapter; tied embeddings have one tensor"},
        },
        "max_abs_gradient": max_grad,
        "sft": {"transformers_loss": jfloat(sft), "recomputed_from_logp": jfloat(sft_check),
                "note": "model(input_ids, attention_mask, labels).loss on the right-padded batch: "
                        "mean over the unmasked (shifted) labels of the whole batch"},
        "target_modules": target_resolutions(folder),
    })
    return {"lora_loss": lora_loss, "full_loss": full_loss, "sft": sft, "sft_check": sft_check,
            "max_grad": max_grad}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for folder, seed, rslora in MODELS:
        r = make(args.out, folder, seed, rslora)
        print(f"{folder}: {r}")


if __name__ == "__main__":
    main()
