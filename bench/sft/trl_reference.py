#!/usr/bin/env python3
"""TRL side of bench/sft/run.sh: TRL 1.16 SFTTrainer + PEFT 0.21.2 on SmolLM2-135M-Instruct, LoRA
r 16 / alpha 16 / dropout 0 on all linear layers, `text` rows packed into 512-token rows (bfd),
batch 2, accumulation 1, lr 2e-4 cosine, 2 threads, fp32 compute on the CPU.

    python bench/sft/trl_reference.py MODEL.gguf TEXT.jsonl [--nf4] [--gradient-checkpointing] [--steps 12]

Prints one JSON object: median seconds per optimizer step over the steps after the first two,
tokens/s (TRL's num_tokens), peak RSS in MB.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dpo"))
from trl_reference import hf_folder  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--nf4", action="store_true")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    folder = hf_folder(os.path.expanduser(a.model))
    kwargs = {}
    if a.nf4:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    data = load_dataset("json", data_files=a.data, split="train")
    config = SFTConfig(output_dir="/tmp/finch-bench-trl-sft", use_cpu=True, bf16=False, per_device_train_batch_size=2,
                       gradient_accumulation_steps=1, learning_rate=2e-4, lr_scheduler_type="cosine", max_steps=a.steps,
                       max_length=512, packing=True, gradient_checkpointing=a.gradient_checkpointing, logging_steps=1,
                       save_strategy="no", report_to=[], seed=42, dataloader_num_workers=0)
    peft = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    times, tokens = [], []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                tokens.append(logs["num_tokens"])

    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft,
                         callbacks=[Timer()])
    trainer.train()
    timed = times[2:]
    step = statistics.median(timed)
    per_step_tokens = (tokens[-1] - tokens[1]) / (len(tokens) - 2)
    print(json.dumps({"side": "trl", "nf4": a.nf4, "gradient_checkpointing": a.gradient_checkpointing, "steps_timed": len(timed),
                      "step_seconds": step, "runs": [round(t, 3) for t in timed], "tokens_per_s": per_step_tokens / step,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
