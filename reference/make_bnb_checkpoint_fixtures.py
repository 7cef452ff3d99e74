#!/usr/bin/env python3
"""Pre-quantized bitsandbytes checkpoints (transformers `save_pretrained` of a model loaded with
`BitsAndBytesConfig`) of tiny random models, and their logits, for FinchModelsTests.

The float32 sources are the tiny random models of reference/make_inference_fixtures.py, already
committed (run that script first if they are missing):
  tiny_llama_gqa   Llama, hidden 64, 2 layers, 4 heads / 2 KV heads, intermediate 128, vocab 256, tied
  tiny_phi         Phi, hidden 64, 2 layers, 4 heads, intermediate 256, partial rotary 0.4, biases

Each is loaded with `AutoModelForCausalLM.from_pretrained(fp32 folder, quantization_config=...,
dtype=float32, device_map="cpu")` and saved with `save_pretrained` into Tests/FinchModelsTests/Fixtures:

  bnb_llama_nf4_dq/   load_in_4bit, nf4, double quant, compute float32
  bnb_llama_nf4/      load_in_4bit, nf4, no double quant
  bnb_llama_fp4_dq/   load_in_4bit, fp4, double quant
  bnb_llama_fp4/      load_in_4bit, fp4, no double quant
  bnb_llama_int8/     load_in_8bit (LLM.int8: int8 weight + SCB + weight_format)
  bnb_phi_nf4_dq/     load_in_4bit, nf4, double quant (lm_head stays float32, biases float32)

The saved folder is then loaded again by transformers (as Finch loads it) and run on the two
token sequences of the tiny inference fixtures, in float32 throughout:
  - 4-bit: eval mode, with bitsandbytes' CPU inference repacking turned off
    (`Linear4bit.support_avx512bf16_for_cpu = False`). On CPUs with AVX512-BF16 bitsandbytes
    otherwise repacks the weight at the first eval forward and multiplies in bfloat16 whatever
    `bnb_4bit_compute_dtype` says; with it off, `Linear4bit` dequantizes the weight to float32
    (`dequantize_4bit`) and calls `torch.nn.functional.linear`, which is what Finch computes.
  - 8-bit: training mode (the tiny Llama has no dropout), where `bnb.matmul` on a CPU takes
    `MatMul8bitFp`: x·(CB·(SCB·(1/127)))ᵀ in float32. In eval mode it takes `MatMul8bitLt` (LLM.int8:
    activations rounded to int8 per token after a float16 cast, outlier columns with |x| ≥ 6 in
    float16), which Finch does not reproduce; those logits are not stored, only their distance.

Outputs (besides the folders):
  bnb_checkpoints_logits.safetensors   <folder>.logits_0 [7, 256], <folder>.logits_1 [12, 256]
  bnb_checkpoints_expected.json        per folder: the source folder and the SHA-256 of its
      model.safetensors, the quantization config, the input ids, per quantized module the SHA-256
      of the float32 weight bitsandbytes multiplies by (4-bit: `dequantize_4bit`; 8-bit: the
      MatMul8bitFp weight, from an identity input), and, for information, the largest logit
      differences from the float32 model and from bitsandbytes' default CPU path.

Usage (from the repo root, in the reference venv; about 20 seconds):

    /work/venv-ref/bin/python reference/make_bnb_checkpoint_fixtures.py

Re-running it writes the same bytes.
"""

import argparse
import hashlib
import json
import logging
import math
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bitsandbytes  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, BitsAndBytesConfig  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchModelsTests", "Fixtures")
PINNED = {"torch": "2.15.0", "bitsandbytes": "0.50.2", "transformers": "5.24.0"}

# The sequences of the tiny inference fixtures (reference/make_inference_fixtures.py).
SEQUENCES = [
    [1, 5, 17, 42, 99, 128, 255],
    [0, 3, 250, 7, 7, 7, 64, 200, 13, 100, 31, 2],
]


def four_bit(quant_type, double):
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_use_double_quant=double,
                              bnb_4bit_compute_dtype=torch.float32)


CHECKPOINTS = [
    ("bnb_llama_nf4_dq", "tiny_llama_gqa", lambda: four_bit("nf4", True)),
    ("bnb_llama_nf4", "tiny_llama_gqa", lambda: four_bit("nf4", False)),
    ("bnb_llama_fp4_dq", "tiny_llama_gqa", lambda: four_bit("fp4", True)),
    ("bnb_llama_fp4", "tiny_llama_gqa", lambda: four_bit("fp4", False)),
    ("bnb_llama_int8", "tiny_llama_gqa", lambda: BitsAndBytesConfig(load_in_8bit=True)),
    ("bnb_phi_nf4_dq", "tiny_phi", lambda: four_bit("nf4", True)),
]


def check_versions():
    found = {"torch": torch.__version__.split("+")[0], "bitsandbytes": bitsandbytes.__version__,
             "transformers": transformers.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} installed, the fixtures pin {want} (reference/requirements.txt)")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sha256_f32(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def jfloat(x):
    x = float(x)
    assert math.isfinite(x)
    return x


def load(folder, **kwargs):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, device_map="cpu",
                                                attn_implementation="eager", **kwargs)


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids], dtype=torch.long)).logits[0].float().numpy().copy()


def dequantized_weights(model):
    """Module name → the float32 weight bitsandbytes multiplies by."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, bitsandbytes.nn.Linear4bit):
            out[name] = F.dequantize_4bit(m.weight.data, m.weight.quant_state).numpy().copy()
        elif isinstance(m, bitsandbytes.nn.Linear8bitLt):
            was_training = m.training
            m.train()
            with torch.no_grad():
                eye = torch.eye(m.in_features, dtype=torch.float32)
                w = m(eye)
                if m.bias is not None:
                    w = w - m.bias
            m.train(was_training)
            out[name] = w.t().contiguous().numpy().copy()
    return out


def make(out_dir):
    tensors = {}
    expected = {"versions": {"torch": torch.__version__, "bitsandbytes": bitsandbytes.__version__,
                             "transformers": transformers.__version__,
                             "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
                "checkpoints": []}
    for name, source, make_config in CHECKPOINTS:
        source_folder = os.path.join(out_dir, source)
        if not os.path.isfile(os.path.join(source_folder, "model.safetensors")):
            raise SystemExit(f"{source_folder} is missing: run reference/make_inference_fixtures.py first")
        folder = os.path.join(out_dir, name)
        shutil.rmtree(folder, ignore_errors=True)
        quantized = load(source_folder, quantization_config=make_config())
        quantized.save_pretrained(folder)
        del quantized

        model = load(folder).eval()
        eight_bit = any(isinstance(m, bitsandbytes.nn.Linear8bitLt) for m in model.modules())
        for m in model.modules():
            if isinstance(m, bitsandbytes.nn.Linear4bit):
                m.support_avx512bf16_for_cpu = False
        weights = dequantized_weights(model)
        if eight_bit:
            model.train()
        reference = load(source_folder).eval()
        entry = {"name": name, "source": source,
                 "source_sha256": sha256_file(os.path.join(source_folder, "model.safetensors")),
                 "quantization_config": json.load(open(os.path.join(folder, "config.json")))["quantization_config"],
                 "dequantized_sha256": {k: sha256_f32(v) for k, v in sorted(weights.items())},
                 "sequences": []}
        default = load(folder).eval()  # bitsandbytes' default CPU inference path
        for i, ids in enumerate(SEQUENCES):
            key = f"{name}.logits_{i}"
            got = logits(model, ids)
            tensors[key] = got
            entry["sequences"].append({
                "input_ids": ids, "logits_key": key,
                "max_abs_diff_from_float32_model": jfloat(np.abs(got - logits(reference, ids)).max()),
                "max_abs_diff_from_default_cpu_path": jfloat(np.abs(got - logits(default, ids)).max()),
            })
        entry["default_cpu_path"] = ("MatMul8bitLt (LLM.int8, threshold 6.0)" if eight_bit else
                                     "bfloat16 gemv_4bit" if bitsandbytes.functional.has_avx512bf16() else
                                     "float32 dequantize_4bit + linear")
        expected["checkpoints"].append(entry)
        files = sorted(os.listdir(folder))
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        print(f"{name}: {files}, {size / 1e3:.1f} kB; max |logit diff| vs float32 model "
              f"{max(s['max_abs_diff_from_float32_model'] for s in entry['sequences']):.4f}")

    save_file(tensors, os.path.join(out_dir, "bnb_checkpoints_logits.safetensors"))
    with open(os.path.join(out_dir, "bnb_checkpoints_expected.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(expected, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")


def main():
    # MatMul8bitLt warns at every call that it casts activations to float16 (the default path is
    # only measured here); the loading progress bars are noise too.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    transformers.utils.logging.disable_progress_bar()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    check_versions()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    make(args.out)


if __name__ == "__main__":
    main()
