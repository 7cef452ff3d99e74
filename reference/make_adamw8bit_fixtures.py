#!/usr/bin/env python3
"""Golden values for FinchTraining's bitsandbytes optimizers: transformers 5.24's `optim` values
`adamw_8bit` / `adamw_bnb_8bit` / `paged_adamw_8bit` / `paged_adamw_32bit`, run by bitsandbytes
0.50.2 on the CPU (torch 2.15).

Usage (from the repo root, in the reference venv, see reference/README.md):

    /work/venv-ref/bin/python reference/make_adamw8bit_fixtures.py [--out Tests/FinchTrainingTests/Fixtures]

A few seconds, no network. Re-running it writes the same bytes on the same machine (see "machine"
below for what can change on another one).

What runs: bitsandbytes 0.50.2 has no native 8-bit optimizer kernel for the CPU. Its CPU backend
(`bitsandbytes/backends/cpu/ops.py`, `_optimizer_update_8bit_blockwise_cpu`) is torch code:
dequantize both states (native `cdequantize_blockwise_cpu_fp32`), an fp32 AdamW step in torch ops,
requantize both (native `cquantize_blockwise_cpu_fp32`), block size 256, the signed dynamic map for
`exp_avg` and the unsigned one for `exp_avg_sq`. Tensors with fewer than `min_8bit_size` (4096)
elements, and `nn.Embedding` weights (the Trainer overrides them to 32 bits), keep fp32 states and
take `_optimizer_update_32bit_cpu`, a different rounding of the same AdamW. Paged optimizers fall
back to ordinary buffers on the CPU (bitsandbytes warns once). This script records what those
produce; it does not re-implement anything.

The optimizers are the ones `transformers.Trainer.create_optimizer()` builds for each `optim` name
on a toy module tree (`PARAMETERS`: LoRA-shaped tensors of 9216 and 24576 elements, one of 5161 =
20·256 + 41 elements, one of exactly 4096, three below 4096 and an `nn.Embedding` of 4608), with
weight decay 0.1 (biases and norms get 0, by transformers' grouping). Each run takes 5 steps with
`p.grad` set to a generated gradient and the group learning rates set to `LEARNING_RATES[k]` (so no
clipping or schedule is involved). Initial values and gradients come from `generated` (SplitMix64 of
a counter, exact in float32), which the Swift test regenerates, so they are not stored.

Outputs in OUT:
  adamw8bit_expected.json
    versions        torch / transformers / bitsandbytes
    machine         torch's CPU capability and the CPU vendor: MKL, which computes torch's
                    `Tensor.sqrt()` here, picks its kernel by vendor (see BitsAndBytesAdamW.swift)
    maps            float32 bit patterns of `create_dynamic_map(signed=True)` and `(signed=False)`
    parameters      name, shape, whether transformers puts it in the weight-decay group,
                    whether it is an `nn.Embedding` weight
    learning_rates  the learning rate of each step; betas, eps, weight_decay
    optimizers      per `optim` name, what `Trainer.create_optimizer()` built: class, optim_bits,
                    is_paged, min_8bit_size, max_unorm, lr, betas, eps, the groups' weight decays
                    and parameter names, and per parameter the dtype of its state after one step
    identical       `paged_adamw_8bit` and `adamw_bnb_8bit` were bit-identical to `adamw_8bit`
                    at every step (asserted here, so their tensors are not stored)
    paged_32bit_vs_torch_fused
                    per step, how many parameter / exp_avg / exp_avg_sq elements of the
                    `paged_adamw_32bit` run differ from an `adamw_torch_fused` run on the same data,
                    the largest difference in ulps and relative to the tensor's largest value
  adamw8bit_run.safetensors
    adamw_8bit/step<k>/<name>                parameters after step k = 1 … 5
    adamw_8bit/step<k>/state1/<name>, state2  uint8 codes (8-bit tensors) or float32 moments
    adamw_8bit/step<k>/absmax1/<name>, absmax2  float32, one per 256-element block (8-bit only)
    paged_adamw_32bit/step5/<name>, …/state1/<name>, …/state2/<name>
                                              parameters and fp32 moments after the last step
    adamw_8bit+correctly_rounded_sqrt/step5/<name>, paged_adamw_32bit+correctly_rounded_sqrt/step5/<name>
                                              parameters after the last step of the same runs with
                                              torch's `Tensor.sqrt()` replaced by a correctly rounded
                                              one (the states are asserted unchanged); the JSON's
                                              `correctly_rounded_sqrt` counts the parameters that
                                              differ from the real runs per step
"""

import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from transformers import Trainer  # noqa: E402

import bitsandbytes as bnb  # noqa: E402
import bitsandbytes.functional as bnbF  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_optimizer_fixtures import RMSNormLike, add_path, output_directory, training_args  # noqa: E402

# name, shape, module kind ("linear" weight, "bias", "norm", "embedding")
PARAMETERS = [
    ("model.embed_tokens.weight", (72, 64), "embedding"),                          # 4608, ≥ 4096 but an nn.Embedding: fp32
    ("model.layers.0.self_attn.q_proj.lora_B.default.weight", (576, 16), "linear"),  # 9216 = 36·256
    ("model.layers.0.self_attn.v_proj.lora_B.default.weight", (192, 16), "linear"),  # 3072 < 4096: fp32
    ("model.layers.0.mlp.down_proj.lora_A.default.weight", (16, 1536), "linear"),    # 24576 = 96·256
    ("model.layers.0.mlp.odd_proj.lora_A.default.weight", (13, 397), "linear"),      # 5161 = 20·256 + 41
    ("model.layers.0.mlp.up_proj.bias", (4096,), "bias"),                           # exactly min_8bit_size: 8-bit, no decay
    ("model.layers.0.input_layernorm.weight", (576,), "norm"),                      # fp32, no decay
]
STEPS = 5
LEARNING_RATES = [0.0, 1e-3, 2e-3, 1.5e-3, 5e-4]  # step 1 under warmup (lr 0): only the moments move
WEIGHT_DECAY = 0.1
OPTIMS = ["adamw_torch", "adamw_torch_fused", "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"]

MASK64 = (1 << 64) - 1


def splitmix64_mix(z):
    """FinchCore's `SplitMix64.mix`, on a numpy uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def generated(kind, tensor, step, count):
    """Deterministic float32 values, exact, regenerated by the Swift test (`AdamW8bitTests.generated`).

    h = mix(kind << 56 | tensor << 48 | step << 40 | i), u = (h >> 40) − 2^23 (a 24-bit signed integer),
    value = u · 2^-(23 + e):
      kind 0, initial values: e = 3 (|x| < 1/8); LoRA B tensors (name contains "lora_B") start at 0 as in PEFT.
      kind 1, gradients: e = 6 + ((i >> 8) + tensor + step) mod 5, so block scales differ by powers of 2;
        e −= 4 when h & 0xFF == 0 (outliers, 1 in 256); value 0 when (h >> 8) & 0x3F == 0 (1 in 64);
        at step 1 the whole block 3 (elements 768 … 1023) of tensor 4 is 0 (an all-zero block: absmax 0).
    """
    i = np.arange(count, dtype=np.uint64)
    key = (np.uint64(kind) << np.uint64(56)) | (np.uint64(tensor) << np.uint64(48)) | (np.uint64(step) << np.uint64(40)) | i
    h = splitmix64_mix(key)
    u = (h >> np.uint64(40)).astype(np.int64) - (1 << 23)
    if kind == 0:
        e = np.full(count, 3, dtype=np.int64)
    else:
        e = 6 + (((i >> np.uint64(8)).astype(np.int64) + tensor + step) % 5)
        e = e - 4 * ((h & np.uint64(0xFF)) == 0)
    values = u.astype(np.float64) * np.exp2(-(23 + e).astype(np.float64))
    if kind == 1:
        values[((h >> np.uint64(8)) & np.uint64(0x3F)) == 0] = 0.0
        if step == 1 and tensor == 4:
            values[768:1024] = 0.0
    out = values.astype(np.float32)
    assert np.array_equal(out.astype(np.float64), values), "generated values must be exact in float32"
    return out


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        for t, (name, shape, kind) in enumerate(PARAMETERS):
            path, _, leaf = name.rpartition(".")
            if kind == "embedding":
                module = nn.Embedding(*shape)
                add_path(self, path, module)
            elif kind == "linear":
                module = nn.Linear(shape[1], shape[0], bias=False)
                add_path(self, path, module)
            elif kind == "norm":
                add_path(self, path, RMSNormLike(shape[0]))
            else:  # a bias on a plain module
                owner = nn.Module()
                owner.register_parameter(leaf, nn.Parameter(torch.zeros(shape)))
                add_path(self, path, owner)
        with torch.no_grad():
            for t, (name, p) in enumerate(self.named_parameters()):
                assert name == PARAMETERS[t][0] and tuple(p.shape) == PARAMETERS[t][1], (name, p.shape)
                initial = np.zeros(p.numel(), np.float32) if "lora_B" in name else generated(0, t, 0, p.numel())
                p.copy_(torch.from_numpy(initial).reshape(p.shape))


def build(optim):
    """A fresh toy model and the optimizer transformers' Trainer builds for `optim` (as in a new process)."""
    bnb.optim.GlobalOptimManager.get_instance().initialize()  # its overrides are process-global
    model = Toy()
    args = training_args(optim=optim, learning_rate=LEARNING_RATES[0], weight_decay=WEIGHT_DECAY)
    trainer = Trainer(model=model, args=args)
    return model, trainer, trainer.create_optimizer()


def describe(model, trainer, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}
    is_bnb = isinstance(optimizer, bnb.optim.optimizer.Optimizer8bit)
    d = dict(
        cls=f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        lr=optimizer.defaults["lr"],
        betas=list(optimizer.defaults["betas"]),
        eps=optimizer.defaults["eps"],
        groups=[dict(weight_decay=g["weight_decay"], names=[names[id(p)] for p in g["params"]]) for g in optimizer.param_groups],
        decay_parameter_names=trainer.get_decay_parameter_names(model),
    )
    if is_bnb:
        d.update(optim_bits=optimizer.args.optim_bits, is_paged=optimizer.is_paged,
                 min_8bit_size=optimizer.args.min_8bit_size, max_unorm=optimizer.args.max_unorm)
    else:
        d.update(fused=bool(optimizer.defaults.get("fused")))
    return d


def run(optim, tensors, record):
    model, trainer, optimizer = build(optim)
    params = list(model.named_parameters())
    history = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(1, STEPS + 1):
            for group in optimizer.param_groups:
                group["lr"] = LEARNING_RATES[k - 1]
            for t, (name, p) in enumerate(params):
                p.grad = torch.from_numpy(generated(1, t, k, p.numel())).reshape(p.shape)
            optimizer.step()
            snapshot = {}
            for name, p in params:
                snapshot[f"step{k}/{name}"] = p.detach().clone()
                state = optimizer.state[p]
                for key in ("state1", "state2", "absmax1", "absmax2", "exp_avg", "exp_avg_sq"):
                    if key in state:
                        snapshot[f"step{k}/{key}/{name}"] = state[key].clone()
            history.append(snapshot)
    state_dtypes = None
    if isinstance(optimizer, bnb.optim.optimizer.Optimizer8bit):
        state_dtypes = {name: str(optimizer.state[p]["state1"].dtype).replace("torch.", "") for name, p in params}
    for k, snapshot in enumerate(history, start=1):
        if record == "all" or (record == "last" and k == STEPS):
            for key, value in snapshot.items():
                tensors[f"{optim}/{key}"] = value
    notices = sorted({str(w.message) for w in caught})
    return describe(model, trainer, optimizer), state_dtypes, history, notices


def cpu_vendor():
    """`vendor_id` of /proc/cpuinfo: MKL, which computes torch's `Tensor.sqrt()`, picks its kernel by vendor."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "unknown")
    except OSError:
        return "unknown"


def float_bits(t):
    return [f"{int(x):08x}" for x in t.numpy().view(np.uint32)]


def ulp_distance(a, b):
    def ordered(x):
        bits = x.numpy().view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(1 << 31) - bits, bits)
    return np.abs(ordered(a) - ordered(b))


def main():
    out = output_directory(__doc__)
    tensors = {}
    optimizers, histories = {}, {}
    for optim in OPTIMS:
        record = {"adamw_8bit": "all", "paged_adamw_32bit": "last"}.get(optim, "none")
        description, dtypes, history, notices = run(optim, tensors, record)
        description["state_dtypes"] = dtypes
        description["warnings"] = notices
        optimizers[optim] = description
        histories[optim] = history

    # The same runs with torch's `Tensor.sqrt()` (MKL `vsSqrt`, not correctly rounded) replaced by a
    # correctly rounded float32 square root (numpy's): everything else is unchanged, so this isolates
    # the one step the Swift code cannot reproduce portably. The states must not change (√v only
    # feeds the parameter update); the parameters after the last step are stored.
    mkl_sqrt = torch.Tensor.sqrt

    def correctly_rounded_sqrt(self):
        assert self.dtype == torch.float32 and not self.requires_grad
        return torch.from_numpy(np.sqrt(self.contiguous().numpy())).reshape(self.shape)

    sqrt_effect = {}
    torch.Tensor.sqrt = correctly_rounded_sqrt
    try:
        for optim in ["adamw_8bit", "paged_adamw_32bit"]:
            _, _, history, _ = run(optim, {}, "none")
            rows = []
            for k, (a, b) in enumerate(zip(histories[optim], history), start=1):
                assert a.keys() == b.keys()
                for key in a:
                    if "/state" in key or "/absmax" in key:
                        assert torch.equal(a[key], b[key]), f"{optim}: {key} depends on the square root"
                params = [key for key in a if key.count("/") == 1]
                d = np.concatenate([ulp_distance(a[key].flatten(), b[key].flatten()) for key in params])
                rows.append(dict(step=k, differing=int((d != 0).sum()), of=int(d.size)))
            for key, value in history[-1].items():
                if key.count("/") == 1:
                    tensors[f"{optim}+correctly_rounded_sqrt/{key}"] = value
            sqrt_effect[optim] = rows
    finally:
        torch.Tensor.sqrt = mkl_sqrt

    identical = {}
    for optim in ["adamw_bnb_8bit", "paged_adamw_8bit"]:
        for a, b in zip(histories["adamw_8bit"], histories[optim]):
            assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), f"{optim} differs from adamw_8bit"
        identical[optim] = "adamw_8bit"

    comparison = []
    for k, (paged, fused) in enumerate(zip(histories["paged_adamw_32bit"], histories["adamw_torch_fused"]), start=1):
        row = dict(step=k)
        for ours, theirs, label in [("", "", "parameters"), ("state1/", "exp_avg/", "exp_avg"), ("state2/", "exp_avg_sq/", "exp_avg_sq")]:
            pairs = [(paged[f"step{k}/{ours}{n}"].flatten(), fused[f"step{k}/{theirs}{n}"].flatten()) for n, _, _ in PARAMETERS]
            d = np.concatenate([ulp_distance(a, b) for a, b in pairs])
            relative = max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-30)) for a, b in pairs)
            row[label] = dict(differing=int((d != 0).sum()), max_ulps=int(d.max()), max_relative_to_tensor_max=relative)
        comparison.append(row)

    decay = set(optimizers["adamw_8bit"]["decay_parameter_names"])
    expected = dict(
        versions=dict(torch=torch.__version__, transformers=transformers.__version__, bitsandbytes=bnb.__version__),
        machine=dict(torch_cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu_vendor=cpu_vendor()),
        maps=dict(signed=float_bits(bnbF.create_dynamic_map(signed=True)), unsigned=float_bits(bnbF.create_dynamic_map(signed=False))),
        parameters=[dict(name=n, shape=list(s), decays=n in decay, embedding=kind == "embedding") for n, s, kind in PARAMETERS],
        steps=STEPS,
        learning_rates=LEARNING_RATES,
        weight_decay=WEIGHT_DECAY,
        optimizers=optimizers,
        identical=identical,
        paged_32bit_vs_torch_fused=comparison,
        correctly_rounded_sqrt=sqrt_effect,
    )
    with open(os.path.join(out, "adamw8bit_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, os.path.join(out, "adamw8bit_run.safetensors"),
              metadata={"generator": "make_adamw8bit_fixtures.py"})
    print(f"wrote {len(optimizers)} optimizer descriptions and {len(tensors)} tensors to {out}")
    for row in comparison:
        print("paged_adamw_32bit vs adamw_torch_fused", row)


if __name__ == "__main__":
    main()
