#!/usr/bin/env python3
"""TRL side of bench/dpo/run.sh: TRL 1.16 DPOTrainer + PEFT 0.21.2 on SmolLM2-135M-Instruct with
examples/smollm2-dpo.yaml's recipe (LoRA r 16, alpha 16, dropout 0.05 [zeroed by TRL], q/k/v/o;
batch 2 × accumulation 4; lr 5e-5 cosine, warmup 5; beta 0.1; max_length 1024), on the same
generated pairs, 2 threads, fp32 on the CPU (`use_cpu`, no bf16).

    python bench/dpo/trl_reference.py MODEL.gguf PAIRS.jsonl [--nf4] [--gradient-checkpointing] [--steps 12]

--nf4 loads the base with BitsAndBytesConfig(load_in_4bit, nf4, double quant, fp32 compute), as
the recipe asks; without it the base is fp32 (NOTES.md's 0.70 pairs/s baseline). Prints one JSON
object: median seconds per optimizer step over the steps after the first two (warm-up), pairs/s,
tokens/s (TRL's num_tokens), peak RSS in MB.
"""
import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402


def hf_folder(gguf):
    """transformers trains only unquantized (or bitsandbytes) models: the GGUF is dequantized to an
    fp32 HF folder once (NOTES.md), next to Finch's bench cache."""
    out = os.path.join(os.path.expanduser(os.environ.get("FINCH_BENCH_DIR", "~/.cache/finch/bench")), "smollm2-hf-fp32")
    if os.path.exists(os.path.join(out, "config.json")):
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, name = os.path.split(gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out + ".tmp")
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out + ".tmp")
    os.replace(out + ".tmp", out)
    return out


def parse_arguments(data_name):
    """MODEL.gguf DATA [--nf4] [--gradient-checkpointing] [--steps N], and 2 torch threads (THREADS)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument(data_name)
    ap.add_argument("--nf4", action="store_true")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    return a


def load_model(gguf, nf4):
    """The fp32 HF copy of the GGUF, with a bitsandbytes NF4 + double-quant base if `nf4`; and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    folder = hf_folder(os.path.expanduser(gguf))
    kwargs = {}
    if nf4:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs), AutoTokenizer.from_pretrained(folder)


def step_timer():
    """A Trainer callback recording each optimizer step's seconds and the logged num_tokens."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        times, tokens = [], []

        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.t)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                self.tokens.append(logs["num_tokens"])

    return Timer()


def summary(a, timer, **extra):
    """Median step seconds after the first two steps, tokens/s, peak RSS, as one JSON object."""
    timed = timer.times[2:]
    step = statistics.median(timed)
    tokens = timer.tokens
    per_step_tokens = (tokens[-1] - tokens[1]) / (len(tokens) - 2) if len(tokens) > 2 else float("nan")
    out = {"side": "trl", "nf4": a.nf4, "gradient_checkpointing": a.gradient_checkpointing, "steps_timed": len(timed),
           "step_seconds": step, "runs": [round(t, 3) for t in timed], "tokens_per_s": per_step_tokens / step,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    out.update({k: v(step) if callable(v) else v for k, v in extra.items()})
    return json.dumps(out)


def main():
    a = parse_arguments("pairs")
    from datasets import load_dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = load_model(a.model, a.nf4)
    data = load_dataset("json", data_files=a.pairs, split="train")
    config = DPOConfig(output_dir="/tmp/finch-bench-trl-dpo", use_cpu=True, bf16=False, per_device_train_batch_size=2,
                       gradient_accumulation_steps=4, learning_rate=5e-5, lr_scheduler_type="cosine", warmup_steps=5,
                       max_steps=a.steps, beta=0.1, max_length=1024, gradient_checkpointing=a.gradient_checkpointing,
                       logging_steps=1, save_strategy="no", report_to=[], seed=42, dataloader_num_workers=0)
    peft = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      task_type="CAUSAL_LM")
    timer = step_timer()
    DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft,
               callbacks=[timer]).train()
    print(summary(a, timer, pairs_per_s=lambda step: 8 / step))


if __name__ == "__main__":
    main()
