#!/usr/bin/env python3
"""Golden values for FinchTraining's optimizer pieces, from transformers 5.24 / torch 2.15 (CPU).

Usage (from the repo root, in the reference venv, see reference/README.md):

    /work/venv-ref/bin/python reference/make_optimizer_fixtures.py [--out Tests/FinchTrainingTests/Fixtures]

A few seconds, no network, no model download. Re-running it writes the same bytes.

Outputs in OUT:
  optimizer_expected.json
    versions       torch / transformers versions that wrote the file
    schedules      `transformers.get_scheduler` learning rates: for each case (type, N, the
                   `warmup_steps` argument as given, int or ratio, resolved by
                   `TrainingArguments.get_warmup_steps`, min_lr / min_lr_rate), `lrs[s]` =
                   `scheduler.get_last_lr()[0]` after s scheduler steps, s = 0 … N + 1
    decay          parameter names of a small module tree, whether the tensor's module is a
                   `torch.nn.LayerNorm`, and whether `Trainer.get_decay_parameter_names` keeps it
    norms          `torch.nn.utils.clip_grad_norm_` on deterministic gradients (see
                   `norm_gradient` below; the Swift test regenerates them): total norm (float32),
                   the float64 norm of the same values, and the first clipped values per tensor
    trainer_run    a real `transformers.Trainer` run (see `trainer_run`): arguments, parameter
                   names/shapes/decay flags, the example index of every micro-batch in order,
                   the micro-batch count of every optimizer step, and `state.log_history` per step
                   (loss, grad_norm, learning_rate, epoch) for optim adamw_torch_fused (the 5.24
                   default with torch >= 2.8) and adamw_torch
  optimizer_trainer_run.safetensors  (float32)
    initial/<name>                 parameters before training
    gradient/<example>/<name>      the gradient that example's loss produces (see `Toy`)
    <optim>/step<k>/<name>         parameters after optimizer step k (k = 1 …), from a callback
    <optim>/step<k>/exp_avg/<name>, <optim>/step<k>/exp_avg_sq/<name>
                                   AdamW's moments after step k (a one-ulp change in v rarely
                                   reaches the parameters within 10 steps, so they are compared too)
"""

import argparse
import json
import math
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from transformers.optimization import get_scheduler  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchTrainingTests", "Fixtures")


def training_args(**kw):
    base = dict(output_dir=tempfile.mkdtemp(), use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True)
    base.update(kw)
    return TrainingArguments(**base)


# ---------------------------------------------------------------------------------------------
# (a) learning-rate schedules


def schedules():
    cases = []
    shapes = [(10, 0), (10, 3), (1, 0), (1, 1), (5, 5), (5, 8), (4, 1), (100, 0.1), (7, 0.5), (50, 2.7), (3, 0.0), (37, 0.25)]
    types = [
        ("constant", {}),
        ("constant_with_warmup", {}),
        ("linear", {}),
        ("cosine", {}),
        ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
        ("cosine_with_min_lr", {"min_lr": 3e-5}),
    ]
    base_lr = 2e-4
    for name, kwargs in types:
        for n, warmup in shapes:
            resolved = training_args(warmup_steps=warmup).get_warmup_steps(n)
            p = nn.Parameter(torch.zeros(1))
            opt = torch.optim.AdamW([p], lr=base_lr)
            sched = get_scheduler(name, opt, num_warmup_steps=resolved, num_training_steps=n,
                                  scheduler_specific_kwargs=dict(kwargs) or None)
            lrs = []
            for _ in range(n + 2):
                lrs.append(sched.get_last_lr()[0])
                opt.step()
                sched.step()
            cases.append(dict(type=name, learning_rate=base_lr, num_training_steps=n, warmup_steps=warmup,
                              resolved_warmup_steps=resolved, scheduler_kwargs=kwargs, lrs=lrs))
    return cases


# ---------------------------------------------------------------------------------------------
# weight-decay parameter names


class RMSNormLike(nn.Module):
    """A custom norm class: only its name can exclude it, as for LlamaRMSNorm."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))


def module_at(root, dotted):
    """The module at a dotted path below root, created (as an empty nn.Module) where missing."""
    node = root
    for part in dotted.split("."):
        if not hasattr(node, part):
            node.add_module(part, nn.Module())
        node = getattr(node, part)
    return node


def add_path(root, dotted, module):
    parent, _, leaf = dotted.rpartition(".")
    (module_at(root, parent) if parent else root).add_module(leaf, module)


def decay_names():
    root = nn.Module()
    layernorm_modules = set()
    for path, module in [
        ("model.embed_tokens", nn.Embedding(4, 2)),
        ("model.layers.0.self_attn.q_proj", nn.Linear(2, 2, bias=True)),
        ("model.layers.0.self_attn.q_proj.lora_A.default", nn.Linear(2, 1, bias=False)),
        ("model.layers.0.self_attn.q_proj.lora_B.default", nn.Linear(1, 2, bias=False)),
        ("model.layers.0.self_attn.q_norm", RMSNormLike(2)),
        ("model.layers.0.input_layernorm", RMSNormLike(2)),
        ("model.layers.0.post_attention_layernorm", RMSNormLike(2)),
        ("model.layers.0.attention_norm", RMSNormLike(2)),
        ("model.layers.0.mlp.up_proj", nn.Linear(2, 2, bias=False)),
        ("model.layers.0.normalizer", nn.Linear(2, 2, bias=False)),
        ("model.layers.0.norm_proj", nn.Linear(2, 2, bias=False)),
        ("model.layers.0.rms_norm_x", nn.Linear(2, 2, bias=False)),
        ("model.layers.0.dense.RMSNorm", RMSNormLike(2)),
        ("model.norm", RMSNormLike(2)),
        ("model.final_layernorm", nn.LayerNorm(2)),
        ("transformer.h.0.ln_1", nn.LayerNorm(2)),
        ("transformer.h.0.ln_1.inner", nn.Linear(2, 2, bias=False)),
        ("encoder.LayerNorm", nn.LayerNorm(2)),
        ("lm_head", nn.Linear(2, 4, bias=False)),
    ]:
        add_path(root, path, module)
        if isinstance(module, nn.LayerNorm):
            layernorm_modules.add(path)
    root.register_parameter("logit_Bias", nn.Parameter(torch.zeros(1)))
    root.register_parameter("norm", nn.Parameter(torch.zeros(1)))
    decayed = set(Trainer.get_decay_parameter_names(None, root))
    rows = []
    for name, _ in root.named_parameters():
        module = name.rsplit(".", 1)[0] if "." in name else ""
        # transformers' type rule excludes every parameter below a LayerNorm module, at any depth.
        in_layernorm = any(module == m or module.startswith(m + ".") for m in layernorm_modules)
        rows.append(dict(name=name, in_torch_layernorm=in_layernorm, decays=name in decayed))
    return rows


# ---------------------------------------------------------------------------------------------
# global-norm clipping


def norm_gradient(count, tensor_index, scale):
    """value_i = (((i·7919 + 13·t) mod 2001) − 1000) · 2^-10 · scale, exact in float32 for scale = 2^k."""
    i = np.arange(count, dtype=np.int64)
    ints = ((i * 7919 + 13 * tensor_index) % 2001) - 1000
    return torch.from_numpy((ints.astype(np.float64) * 2.0**-10 * scale).astype(np.float32))


def norms():
    cases = []
    for sizes, scale, max_norm in [
        ([1_000_003, 1000, 7], 2.0**-8, 1.0),      # clipped, ≈1.1 M elements
        ([1_000_003, 1000, 7], 2.0**-8, 1000.0),   # not clipped
        ([9216] * 4 + [3072] * 4, 2.0**-8, 1.0),  # LoRA r=16 shapes of SmolLM2 q/v projections
        ([64, 5], 2.0**-2, 2.0),
        ([3], 2.0**-20, 1.0),
    ]:
        params = []
        for t, n in enumerate(sizes):
            p = nn.Parameter(torch.zeros(n))
            p.grad = norm_gradient(n, t, scale)
            params.append(p)
        exact = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        cases.append(dict(sizes=sizes, scale=scale, max_norm=max_norm, total_norm=float(total), float64_norm=exact,
                          clipped_head=[[float(x) for x in p.grad[:5]] for p in params]))
    return cases


# ---------------------------------------------------------------------------------------------
# (b) a real Trainer run: fused AdamW, clipping, accumulation, cosine with warmup

PARAMETERS = [  # name, shape: element counts 148 = 18·8 + 4, 29 = 3·8 + 5, 16, 3 exercise the fused kernel's 8-wide body and tail
    ("layers.0.q_proj.lora_A.weight", (4, 37)),
    ("layers.0.q_proj.bias", (29,)),
    ("layers.0.input_layernorm.weight", (16,)),
    ("layers.0.q_proj.lora_B.weight", (3, 1)),
]
EXAMPLES = 7


class Toy(nn.Module):
    """loss(example e) = Σ_tensors Σ p ⊙ G[e], so the gradient of one micro-batch is G[e]/GA exactly."""

    def __init__(self, gradients):
        super().__init__()
        for name, shape in PARAMETERS:
            path, _, leaf = name.rpartition(".")
            module_at(self, path).register_parameter(leaf, nn.Parameter(torch.randn(shape)))
        self.gradients = gradients
        self.seen = []

    def forward(self, idx):
        assert idx.numel() == 1
        e = int(idx[0])
        self.seen.append(e)
        loss = torch.zeros(())
        for name, p in self.named_parameters():
            loss = loss + (p * self.gradients[e][name]).sum()
        return {"loss": loss}


def trainer_run(tensors):
    torch.manual_seed(1234)
    # Small and large examples, so that some accumulated windows exceed max_grad_norm and some do not.
    scales = [0.04, 0.5, 0.03, 0.05, 0.6, 0.02, 0.45]
    gradients = [{name: torch.randn(shape) * scales[e] for name, shape in PARAMETERS} for e in range(EXAMPLES)]
    torch.manual_seed(99)
    initial = Toy(gradients).state_dict()
    for name, _ in PARAMETERS:
        tensors[f"initial/{name}"] = initial[name].clone()
        for e in range(EXAMPLES):
            tensors[f"gradient/{e}/{name}"] = gradients[e][name].clone()

    settings = dict(per_device_train_batch_size=1, gradient_accumulation_steps=2, max_steps=10, learning_rate=1e-2,
                    weight_decay=0.1, lr_scheduler_type="cosine", warmup_steps=3, max_grad_norm=1.0, seed=42,
                    logging_steps=1)
    runs = {}
    for optim in ["adamw_torch_fused", "adamw_torch"]:
        model = Toy(gradients)
        model.load_state_dict(initial)
        boundaries = []

        class Record(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, optimizer=None, **kw):
                boundaries.append(len(model.seen))
                for name, p in model.named_parameters():
                    tensors[f"{optim}/step{state.global_step}/{name}"] = p.detach().clone()
                    moments = optimizer.state[p]
                    tensors[f"{optim}/step{state.global_step}/exp_avg/{name}"] = moments["exp_avg"].clone()
                    tensors[f"{optim}/step{state.global_step}/exp_avg_sq/{name}"] = moments["exp_avg_sq"].clone()

        args = training_args(optim=optim, remove_unused_columns=False, **settings)
        trainer = Trainer(model=model, args=args, train_dataset=[{"idx": e} for e in range(EXAMPLES)],
                          data_collator=lambda rows: {"idx": torch.tensor([r["idx"] for r in rows])},
                          callbacks=[Record()])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        logs = [h for h in trainer.state.log_history if "grad_norm" in h]
        assert [h["step"] for h in logs] == list(range(1, settings["max_steps"] + 1))
        counts = [b - a for a, b in zip([0] + boundaries[:-1], boundaries)]
        runs[optim] = dict(
            micro_batches=model.seen,
            micro_batches_per_step=counts,
            logs=[{k: h[k] for k in ("step", "loss", "grad_norm", "learning_rate", "epoch")} for h in logs],
            decay_parameter_names=trainer.get_decay_parameter_names(model),
        )
    fused, plain = runs["adamw_torch_fused"], runs["adamw_torch"]
    assert fused["micro_batches"] == plain["micro_batches"], "both runs must see the same data order"
    norms_logged = [h["grad_norm"] for h in fused["logs"]]
    assert sum(n > 1.0 for n in norms_logged) >= 3 and sum(n < 1.0 for n in norms_logged) >= 3, norms_logged
    return dict(settings=settings, examples=EXAMPLES, dataset_batches=EXAMPLES,
                parameters=[dict(name=n, shape=list(s)) for n, s in PARAMETERS], runs=runs)


def output_directory(doc):
    """The `--out` argument of a fixture script whose docstring is `doc` (default: the
    FinchTrainingTests Fixtures folder), created; torch made deterministic."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    return out


def main():
    out = output_directory(__doc__)
    tensors = {}
    expected = dict(
        versions=dict(torch=torch.__version__, transformers=transformers.__version__),
        schedules=schedules(),
        decay=decay_names(),
        norms=norms(),
        trainer_run=trainer_run(tensors),
    )
    with open(os.path.join(out, "optimizer_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())},
              os.path.join(out, "optimizer_trainer_run.safetensors"), metadata={"generator": "make_optimizer_fixtures.py"})
    print(f"wrote {len(expected['schedules'])} schedule cases, {len(expected['decay'])} decay names, "
          f"{len(expected['norms'])} norm cases and a {expected['trainer_run']['settings']['max_steps']}-step Trainer run "
          f"({len(tensors)} tensors) to {out}")


if __name__ == "__main__":
    main()
