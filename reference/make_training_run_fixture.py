#!/usr/bin/env python3
"""Golden fixture for Finch's 10-step training-loop test (FinchTrainingTests, issue 5): a LoRA
SFT run of the tiny random Llama (GQA 4/2 heads, tied embeddings) with torch's fused AdamW, a
cosine schedule with 3 warmup steps, global-norm clipping that is active on some steps, and
gradient accumulation 2 — the loop of transformers' Trainer written out by hand, so every number
the Swift test replays is explicit.

Python is only the oracle: the Swift test reads what this script writes and never runs Python.
fp32 on the CPU, eager attention, model.eval() (no dropout), fixed seeds; re-running the script
reproduces identical bytes.

Usage (from the repo root, in the reference venv, see reference/README.md):

    python reference/make_training_run_fixture.py [--out Tests/FinchTrainingTests/Fixtures]

The run:
- model: Tests/FinchModelsTests/Fixtures/tiny_llama_gqa (written by make_inference_fixtures.py);
- LoRA r 4, alpha 8, dropout 0, on every linear layer (q/k/v/o/gate/up/down), PEFT's init
  (A Kaiming-uniform from torch's seeded generator, B = 0); the initial A and B are stored, so
  the Swift side starts from the same values whatever its own initializer draws;
- data: 20 micro-batches of 2 sequences (random lengths 5…12, random ids, a 2…4-token prompt
  whose labels are −100), 2 per optimizer step, 10 steps;
- loss: transformers' causal-LM loss with `num_items_in_batch`: each micro-batch's summed
  −log p over scored tokens divided by the scored-token count of the whole optimizer step, so
  the two micro-batches' gradients add up to the step's mean (CausalLMLoss.meanCrossEntropy with
  `normalizer`); the logged step loss is the sum of the two micro-batch losses;
- optimizer: torch.optim.AdamW(fused=True), lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight decay
  0.01 (on every LoRA matrix: transformers decays all but biases and norms);
- clipping: torch.nn.utils.clip_grad_norm_(max_norm=MAX_NORM) before each step; MAX_NORM sits
  between the smallest and largest pre-clip norms of the run, so some steps are clipped;
- schedule: transformers.get_scheduler("cosine", num_warmup_steps=3, num_training_steps=10);
  step k uses lr·λ(k−1), the first update λ(0) = 0.

Writes OUT/training_run.json (config, data, per-step loss / pre-clip grad norm / lr / whether
clipped) and OUT/training_run.safetensors (initial and final A/B of every adapted module).
"""

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO_ROOT, "Tests", "FinchModelsTests", "Fixtures", "tiny_llama_gqa")
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchTrainingTests", "Fixtures")

STEPS = 10
ACCUMULATION = 2
SEQUENCES_PER_MICRO_BATCH = 2
LR = 2e-3
WEIGHT_DECAY = 0.01
WARMUP = 3
MAX_NORM = 2.0
R, ALPHA = 4, 8.0
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def make_data(vocab, seed=2024):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(STEPS * ACCUMULATION):
        seqs = []
        for _ in range(SEQUENCES_PER_MICRO_BATCH):
            length = int(torch.randint(5, 13, (1,), generator=g))
            prompt = int(torch.randint(2, 5, (1,), generator=g))
            ids = torch.randint(0, vocab, (length,), generator=g).tolist()
            labels = [-100] * prompt + ids[prompt:]
            seqs.append({"input_ids": ids, "labels": labels})
        batches.append(seqs)
    return batches


def scored(labels):
    return sum(1 for x in labels[1:] if x != -100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_scheduler

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").eval()
    model = get_peft_model(base, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                                            bias="none", task_type="CAUSAL_LM"))
    model.eval()
    # Names as in PEFT's adapter files (adapter_model.safetensors): no prefix, no ".default".
    params = [(n.removeprefix("base_model.model.").replace(".default.", "."), p)
              for n, p in model.named_parameters() if p.requires_grad]
    tensors = {f"initial.{n}": f32(p) for n, p in params}

    data = make_data(base.config.vocab_size)
    optimizer = torch.optim.AdamW([p for _, p in params], lr=LR, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=WEIGHT_DECAY, fused=True)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=WARMUP, num_training_steps=STEPS)

    steps = []
    for step in range(STEPS):
        window = data[step * ACCUMULATION:(step + 1) * ACCUMULATION]
        n_items = sum(scored(s["labels"]) for mb in window for s in mb)
        loss_total = 0.0
        for mb in window:
            mb_loss = torch.zeros(())
            for s in mb:
                logits = model(input_ids=torch.tensor([s["input_ids"]])).logits[0, :-1].float()
                labels = torch.tensor(s["labels"][1:])
                mb_loss = mb_loss + torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")
            mb_loss = mb_loss / n_items
            mb_loss.backward()
            loss_total += mb_loss.item()
        norm = float(torch.nn.utils.clip_grad_norm_([p for _, p in params], MAX_NORM))
        lr_used = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        steps.append({"step": step + 1, "loss": loss_total, "grad_norm": norm, "learning_rate": lr_used,
                      "clipped": norm > MAX_NORM, "scored_tokens": n_items})
        print(f"step {step + 1}: loss {loss_total:.6f} grad_norm {norm:.6f} lr {lr_used:.6g}")

    clipped = sum(s["clipped"] for s in steps)
    assert 0 < clipped < STEPS, f"MAX_NORM {MAX_NORM} should clip some steps but not all ({clipped} of {STEPS})"
    for n, p in params:
        tensors[f"final.{n}"] = f32(p)

    import peft
    import transformers
    meta = {
        "generator": "reference/make_training_run_fixture.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "model": "Tests/FinchModelsTests/Fixtures/tiny_llama_gqa",
        "lora": {"r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0, "target_modules": TARGETS},
        "optimizer": {"name": "adamw_torch_fused", "learning_rate": LR, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                      "weight_decay": WEIGHT_DECAY},
        "lr_scheduler_type": "cosine", "warmup_steps": WARMUP, "max_steps": STEPS,
        "gradient_accumulation_steps": ACCUMULATION, "max_grad_norm": MAX_NORM,
        "parameters": [n for n, _ in params],
        "micro_batches": data,
        "steps": steps,
    }
    with open(os.path.join(args.out, "training_run.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    save_file(tensors, os.path.join(args.out, "training_run.safetensors"))
    print(f"{clipped} of {STEPS} steps clipped; wrote {args.out}/training_run.json and .safetensors")


if __name__ == "__main__":
    main()
