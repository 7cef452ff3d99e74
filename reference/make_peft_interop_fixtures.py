#!/usr/bin/env python3
"""PEFT interoperability fixtures (FinchModelsTests/PEFTInteropTests, issue 9 item 1).

Two directions, for the tiny Llama and Phi of the DPO fixtures
(Tests/FinchTrainingTests/Fixtures/dpo/tiny_{llama,phi}_dpo):

1. **Finch → PEFT.** `peft/finch_<model>/` holds an adapter that `finch dpo` wrote (3 steps, r 4,
   alpha 8, rsLoRA, all-linear; the command is in the README next to the files). This script loads
   it with `PeftModel.from_pretrained` onto the fp32 base and records the logits of fixed token
   ids: if PEFT misread a key name, a shape, `lora_alpha`, `use_rslora` or `target_modules`, those
   logits would not be Finch's.
   With `--check-merged DIR MODEL` the script instead loads a folder `finch merge` wrote with
   transformers and prints its logits' distance to PEFT's `merge_and_unload` of the same adapter.
2. **PEFT → Finch.** A PEFT LoRA (r 4, alpha 8, all-linear, B set to seeded N(0, 0.05²) so it acts)
   saved with `save_pretrained` into `peft/peft_<model>/`, with its logits.

Outputs: `peft/interop.json` (token ids, versions) and `peft/interop_logits.safetensors`
(`finch_<model>` and `peft_<model>`: (T, vocab) logits). fp32, eager attention, seeded, one
thread; a rerun writes identical bytes.

    /work/venv-ref/bin/python reference/make_peft_interop_fixtures.py
"""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "Tests", "FinchTrainingTests", "Fixtures", "dpo")
OUT = os.path.join(ROOT, "Tests", "FinchModelsTests", "Fixtures", "peft")
TOKENS = [1, 312, 276, 270, 327, 296, 307, 290, 365, 33, 2, 1, 67, 80]


def base(name):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(os.path.join(MODELS, f"tiny_{name}_dpo"), dtype=torch.float32,
                                                attn_implementation="eager").eval()


def logits(model):
    with torch.no_grad():
        return np.ascontiguousarray(model(input_ids=torch.tensor([TOKENS])).logits[0].float().numpy())


def main():
    import peft
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tensors = {}
    for name in ("llama", "phi"):
        finch_dir = os.path.join(OUT, f"finch_{name}")
        model = PeftModel.from_pretrained(base(name), finch_dir).eval()
        tensors[f"finch_{name}"] = logits(model)
        tensors[f"base_{name}"] = logits(base(name))
        # PEFT's merge_and_unload of the Finch adapter: what `finch merge` must write.
        tensors[f"merged_{name}"] = logits(PeftModel.from_pretrained(base(name), finch_dir).merge_and_unload().eval())
        pm = get_peft_model(base(name), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0,
                                                   task_type="CAUSAL_LM"))
        g = torch.Generator().manual_seed(7 if name == "llama" else 8)
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_B" in n:
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
        pm.eval()
        peft_dir = os.path.join(OUT, f"peft_{name}")
        pm.save_pretrained(peft_dir)
        readme = os.path.join(peft_dir, "README.md")
        if os.path.exists(readme):
            os.remove(readme)  # PEFT's model-card template carries its own version and date
        tensors[f"peft_{name}"] = logits(pm)
    save_file(tensors, os.path.join(OUT, "interop_logits.safetensors"))
    with open(os.path.join(OUT, "interop.json"), "w") as f:
        json.dump({"generator": "reference/make_peft_interop_fixtures.py", "tokens": TOKENS,
                   "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}},
                  f, indent=1)
        f.write("\n")


def check_merged(folder, name):
    """A folder `finch merge` wrote: transformers loads it, and its logits against PEFT's merge."""
    from transformers import AutoModelForCausalLM
    from safetensors.numpy import load_file
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    want = load_file(os.path.join(OUT, "interop_logits.safetensors"))[f"merged_{name}"]
    print(json.dumps({"folder": folder, "max_abs_diff_vs_peft_merge": float(np.abs(logits(model) - want).max())}))


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 4 and sys.argv[1] == "--check-merged":
        check_merged(sys.argv[2], sys.argv[3])
    else:
        main()
