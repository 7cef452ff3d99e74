#!/usr/bin/env python3
"""TRL side of bench/sft/run.sh: TRL 1.16 SFTTrainer + PEFT 0.21.2 on SmolLM2-135M-Instruct, LoRA
r 16 / alpha 16 / dropout 0 on all linear layers, `text` rows packed into 512-token rows (bfd),
batch 2, accumulation 1, lr 2e-4 cosine, 2 threads, fp32 compute on the CPU.

    python bench/sft/trl_reference.py MODEL.gguf TEXT.jsonl [--nf4] [--gradient-checkpointing] [--steps 12]

Prints one JSON object: median seconds per optimizer step over the steps after the first two,
tokens/s (TRL's num_tokens), peak RSS in MB.
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dpo"))
from trl_reference import load_model, parse_arguments, step_timer, summary  # noqa: E402


def main():
    a = parse_arguments("data")
    from datasets import load_dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_model(a.model, a.nf4)
    data = load_dataset("json", data_files=a.data, split="train")
    config = SFTConfig(output_dir="/tmp/finch-bench-trl-sft", use_cpu=True, bf16=False, per_device_train_batch_size=2,
                       gradient_accumulation_steps=1, learning_rate=2e-4, lr_scheduler_type="cosine", max_steps=a.steps,
                       max_length=512, packing=True, gradient_checkpointing=a.gradient_checkpointing, logging_steps=1,
                       save_strategy="no", report_to=[], seed=42, dataloader_num_workers=0)
    peft = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    timer = step_timer()
    SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft,
               callbacks=[timer]).train()
    print(summary(a, timer))


if __name__ == "__main__":
    main()
