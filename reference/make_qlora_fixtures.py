#!/usr/bin/env python3
"""Golden fixtures for Finch's QLoRA model-level parity tests (FinchModelsTests, issue 6).

The tiny random models of reference/make_inference_fixtures.py (`tiny_llama_gqa`, `tiny_phi`) are
loaded by transformers with a bitsandbytes 4-bit config — NF4, blocksize 64, double quantization,
fp32 compute and fp32 storage of what stays unquantized — exactly as the article's QLoRA recipe
does on a GPU (with fp16 there). Then, with the batch, the loss and the LoRA set-up of
reference/make_training_fixtures.py (r 4 on every block linear, B = seeded N(0, 0.2²)):

  qlora_<model>.safetensors
    logits.<i>        base-model logits of sequence i (L_i × vocab), bnb `Linear4bit` forward
    lora.logp         log p per packed row with the adapter (0 on masked rows)
    lora.<module>.lora_A.weight / lora_B.weight        the adapter values used
    lora.grad.<module>.lora_A.weight / lora_B.weight   PEFT's gradients of L = Σ w_t log p_t
    lora.grad.embedding_output                          dL/d(embedding output)
    weights           the w_t of the loss (same as training_<model>.safetensors)
  qlora_<model>.json  sequences, labels, quantization config, LoRA case, which modules
                      bitsandbytes replaced by Linear4bit, versions

Usage (from the repo root, in the reference venv, see reference/README.md):

    python reference/make_qlora_fixtures.py [--out Tests/FinchModelsTests/Fixtures]

Pinned: torch 2.x CPU, transformers 5.24.0, peft 0.21.2, bitsandbytes 0.50.2. Single-threaded
torch, so the double-quantization mean (a torch reduction) has the order Finch reproduces with
`torchThreads: 1` (irrelevant at these sizes anyway).
"""

import argparse
import importlib.util
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("mtf", os.path.join(HERE, "make_training_fixtures.py"))
mtf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mtf)

QUANT = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
         "bnb_4bit_compute_dtype": "float32"}


def load_quantized(folder):
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                             quantization_config=cfg, device_map="cpu").eval()
    replaced = [n for n, mod in m.named_modules() if isinstance(mod, bnb.nn.Linear4bit)]
    assert replaced, "bitsandbytes replaced no module"
    for n, mod in m.named_modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            qs = mod.weight.quant_state
            assert qs.blocksize == 64 and qs.quant_type == "nf4" and qs.nested, n
            # On a CPU with AVX512-BF16 (ours), bitsandbytes 0.50.2 runs no-grad eval forwards
            # through a bf16 kernel: it repacks the weight and rounds the (dequantized) absmax to
            # bfloat16, ignoring bnb_4bit_compute_dtype=float32 (nn/modules.py Linear4bit.forward,
            # functional.py _convert_weight_packed_for_cpu). That path is a CPU speed-up with
            # ≈ 1e-2 logit error, not the fp32 semantics of QLoRA (GPU, or any forward with
            # gradients); the fixture uses the fp32 path (dequantize, fp32 matmul).
            mod.support_avx512bf16_for_cpu = False
    return m


def make(out_dir, folder_name, seed):
    import bitsandbytes as bnb
    folder = os.path.join(out_dir, folder_name)
    base = load_quantized(folder)
    vocab = base.config.vocab_size
    seqs, labels, targets, weights = mtf.make_batch(seed, vocab)
    tensors = {"weights": mtf.f32(weights)}
    replaced = [n for n, mod in base.named_modules() if isinstance(mod, bnb.nn.Linear4bit)]
    with torch.no_grad():
        for i, ids in enumerate(seqs):
            tensors[f"logits.{i}"] = mtf.f32(base(input_ids=torch.tensor([ids])).logits[0])
    # For the record: how far bitsandbytes' bf16 CPU path is from the fp32 one on these inputs.
    bf16_gap = 0.0
    for mod in base.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = True
    with torch.no_grad():
        for i, ids in enumerate(seqs):
            fast = base(input_ids=torch.tensor([ids])).logits[0]
            bf16_gap = max(bf16_gap, float((fast - torch.from_numpy(tensors[f"logits.{i}"])).abs().max()))
    del base
    # The LoRA case of make_training_fixtures.py, on the quantized base.
    mtf.load = load_quantized
    lora_t, lora_g, _, names, loss, logp, scaling = mtf.lora_case(folder, seqs, targets, weights, False, seed)
    tensors.update({f"lora.{k}": v for k, v in lora_t.items()})
    tensors.update({f"lora.{k}": v for k, v in lora_g.items()})
    tensors["lora.logp"] = logp
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              os.path.join(out_dir, f"qlora_{folder_name}.safetensors"))
    import bitsandbytes
    import peft
    import transformers
    mtf.write_json(os.path.join(out_dir, f"qlora_{folder_name}.json"), {
        "model_dir": folder_name,
        "model_files_sha256": {f: mtf.sha256_file(os.path.join(folder, f)) for f in sorted(os.listdir(folder))},
        "seed": seed,
        "quantization": QUANT,
        "linear4bit_modules": replaced,
        "logits_path": "fp32: dequantize_4bit + fp32 matmul (support_avx512bf16_for_cpu disabled)",
        "bf16_cpu_path_max_logit_gap": mtf.jfloat(bf16_gap),
        "sequences": seqs,
        "labels": labels,
        "targets": targets,
        "loss": "sum_t weights[t] * log p_t(targets[t]) over the packed batch (weights in the safetensors)",
        "cases": {"lora": {"r": mtf.LORA_R, "lora_alpha": mtf.LORA_ALPHA, "use_rslora": False, "lora_dropout": 0.0,
                           "target_modules": "all-linear", "scaling": mtf.jfloat(scaling), "modules": names,
                           "loss_value": mtf.jfloat(loss)}},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "bitsandbytes": bitsandbytes.__version__},
    })
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=mtf.DEFAULT_OUT)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for folder, seed, _ in mtf.MODELS:
        print(folder, make(args.out, folder, seed))


if __name__ == "__main__":
    main()
