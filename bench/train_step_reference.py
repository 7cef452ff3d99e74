#!/usr/bin/env python3
"""PyTorch + PEFT side of bench/train-step.sh (issue 5): one optimizer step's forward + backward
of a LoRA SFT step on SmolLM2-135M-Instruct, the shape Finch's `TrainingBenchmarkTests.testTrainStep`
runs: LoRA r 16 / alpha 16 on q, k, v, o (dropout 0), 8 sequences of the same lengths (1,120
tokens, first quarter of each masked as prompt) as 4 micro-batches of 2, padded to the longer
sequence of each micro-batch with an attention mask (as TRL's collator does), loss = summed
token cross-entropy / scored tokens of the step (transformers' num_items_in_batch), gradients
accumulating. fp32 (transformers dequantizes the Q4_1 GGUF to fp32: PyTorch has no Q4_1 kernels),
SDPA attention, 2 threads, no gradient checkpointing. One untimed warm-up step, median of 5.

    /work/venv-ref/bin/python bench/train_step_reference.py ~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf

Prints one JSON object: tokens, step seconds (median and runs), tokens/s, peak RSS in MB.
"""

import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

LENGTHS = [132, 147, 139, 151, 128, 144, 137, 142]


def main():
    path = os.path.expanduser(sys.argv[1])
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    folder, name = os.path.split(path)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="sdpa")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM"))
    model.train()
    g = torch.Generator().manual_seed(7)
    seqs = [torch.randint(0, model.config.vocab_size, (n,), generator=g) for n in LENGTHS]
    micro = []
    for i in range(0, len(seqs), 2):
        pair = seqs[i:i + 2]
        width = max(len(s) for s in pair)
        ids = torch.zeros((2, width), dtype=torch.long)
        mask = torch.zeros((2, width), dtype=torch.long)
        labels = torch.full((2, width), -100, dtype=torch.long)
        for row, s in enumerate(pair):
            ids[row, :len(s)] = s
            mask[row, :len(s)] = 1
            labels[row, len(s) // 4:len(s)] = s[len(s) // 4:]
        micro.append((ids, mask, labels))
    scored = sum(int((lab[:, 1:] != -100).sum()) for _, _, lab in micro)

    def step():
        for ids, mask, labels in micro:
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                     ignore_index=-100, reduction="sum") / scored
            loss.backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        step()
        runs.append(time.perf_counter() - t0)
    median = statistics.median(runs)
    tokens = sum(LENGTHS)
    print(json.dumps({"engine": "torch+peft", "tokens": tokens, "step_s": median, "runs": runs,
                      "tokens_per_s": tokens / median,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
