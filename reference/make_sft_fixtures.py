#!/usr/bin/env python3
"""Golden fixtures for Finch's SFT parity tests (FinchTrainingTests, issue 8): real TRL 1.16
`SFTTrainer` + PEFT 0.21.2 LoRA runs on the two tiny random models of the DPO fixtures (their tiny
byte-level BPE tokenizer with SmolLM2's special tokens and chat template), covering every dataset
shape Finch accepts — plain `text`, standard and conversational `prompt`/`completion`, `messages`,
and Alpaca-style `instruction`/`input`/`output` converted to prompt/completion — with the loss
masks, EOS handling, `max_length` truncation, BFD packing (padding-free, position_ids restart per
packed sequence), the loss normalisation over gradient accumulation, clipping, AdamW, the cosine
schedule and every logged metric; plus the two-stage pipeline SFT → DPO (TRL `DPOTrainer` on the
SFT adapter, both with the SFT adapter as a frozen "ref" copy and on the merged base).

Python is only the oracle: the Swift tests read what this script writes and never run Python.
fp32 on the CPU, eager attention, one thread, `torch.use_deterministic_algorithms(True)`, fixed
seeds and fixed data; re-running the script reproduces identical bytes (checked with `sha256sum`).

Usage (from the repo root, in the reference venv, see reference/README.md):

    nice -n 10 python reference/make_sft_fixtures.py [--out Tests/FinchTrainingTests/Fixtures/sft]

It reads the model folders `tiny_llama_dpo/`, `tiny_phi_dpo/` and `dpo_data.jsonl` of
`Tests/FinchTrainingTests/Fixtures/dpo/` (written by make_dpo_fixtures.py, whose helpers and
DPO run code it imports) and does not copy them: the JSON files name them by relative path
(`../dpo/tiny_llama_dpo`) and record their sha256. About 25 seconds, 1.1 GB peak RSS. No network.

What it writes into OUT (every key is described in OUT/README.md):

- data: `sft_prompt_completion.jsonl` (14 standard prompt/completion rows: the `prompt`/`chosen`
  strings of the DPO fixtures' dpo_data.jsonl, so their edge cases carry over — a prompt ending in
  a space whose last token merges with the completion, a completion cut by `max_length`, a prompt
  that alone fills `max_length` (dropped under completion-only loss), a completion already ending
  in the EOS string, non-ASCII text), `sft_prompt_completion_eval.jsonl` (3 rows),
  `sft_conversational_prompt_completion.jsonl` (6 rows: the DPO conversational `prompt`/`chosen`),
  `sft_messages.jsonl` (8 conversations: default and explicit system turns, a multi-turn one that
  `max_length` cuts), `sft_text.jsonl` (14 plain texts, two longer than the packing length, one
  already ending in the EOS string), `sft_alpaca.jsonl` (6 `instruction`/`input`/`output` rows,
  two with an empty input).
- `smollm2_training.jinja`: SmolLM2's ChatML template with `{% generation %}` markers around each
  assistant turn's `\\n` + content + `<|im_end|>\\n` (the span TRL's own ChatML training template
  `trl/chat_templates/qwen2_5_training.jinja` marks). It renders every conversation byte-identically
  to SmolLM2's template (asserted); it exists because TRL's `assistant_only_loss` needs generation
  markers and `get_training_chat_template` has no patched variant of SmolLM2's template (TRL raises
  "The chat template is not training-compatible ..."). Passed to TRL as `chat_template_path`.
- `sft_<run>.json` + `sft_<run>.safetensors` for each SFT run below, `dpo_<run>.json` +
  `dpo_<run>.safetensors` for the two DPO runs.

Alpaca conversion (TRL has no instruction/input/output schema; this script does it before TRL sees
the data, and Finch must do the same): the prompt is the Stanford Alpaca template
(tatsu-lab/stanford_alpaca train.py PROMPT_DICT) with a newline after "### Response:" as in
tloen/alpaca-lora templates/alpaca.json — `ALPACA_PROMPT_INPUT` when `input` is non-empty after
strip(), `ALPACA_PROMPT_NO_INPUT` otherwise — and the completion is `output` verbatim; TRL then
treats the row as a standard prompt/completion (EOS appended to the completion, completion-only
loss).

The SFT runs (TRL `SFTTrainer`, PEFT LoRA r 4, alpha 8, dropout 0, target_modules "all-linear" —
q/k/v/o/gate/up/down for Llama, q/k/v/dense/fc1/fc2 for Phi, never lm_head — fresh adapter via
`peft_config`; batch 2 × accumulation 2, lr 5e-3 cosine with 2 warmup steps, max_grad_norm set so
that some steps clip, seed 42, the default `adamw_torch_fused` with weight decay 0,
gradient_checkpointing False, logging_steps 1, fp32 on the CPU with `use_cpu=True, bf16=False`):

    llama_prompt_completion          (a) sft_prompt_completion.jsonl, completion-only loss (TRL's
                                         default for prompt/completion), max_length 48, 10 steps,
                                         eval on sft_prompt_completion_eval.jsonl every 5 steps
    phi_prompt_completion            (b) the same on tiny_phi_dpo (loaded with resid_pdrop =
                                         embd_pdrop = 0: SFTTrainer, unlike DPOTrainer, does not
                                         disable dropout)
    llama_messages                   (c) sft_messages.jsonl with TRL's defaults: loss on every
                                         token of the rendered conversation, max_length 64, 10 steps
    llama_messages_assistant_only    (c) the same with assistant_only_loss=True through
                                         smollm2_training.jinja, 10 steps
    llama_text_packed                (d) sft_text.jsonl, packing=True (strategy bfd → padding-free),
                                         max_length 64, 10 steps
    llama_prompt_completion_packed   (d) sft_prompt_completion.jsonl packed (completion-only labels
                                         survive packing), max_length 64, 4 steps
    llama_prompt_completion_all_tokens (e) (a)'s data with completion_only_loss=False, 4 steps
    llama_alpaca                     (g) sft_alpaca.jsonl converted as above, max_length 128, 4 steps
                                         (with this tiny tokenizer the with-input prompts exceed
                                         128 tokens, so TRL drops those rows as fully masked; the
                                         JSON still has their full tokenization)
    llama_conversational_prompt_completion (h) sft_conversational_prompt_completion.jsonl,
                                         max_length 64, 3 steps

The two-stage runs (TRL `DPOTrainer` through make_dpo_fixtures.run_one, i.e. exactly the settings
of the DPO fixtures' run (d): sigmoid, beta 0.1, max_length 48, batch 2 × 2, lr 5e-3 cosine warmup
2, max_grad_norm 1.0, on ../dpo/dpo_data.jsonl, 5 steps):

    llama_sft_ref_adapter            (f) the policy is `PeftModel.from_pretrained(tiny_llama_dpo,
                                         <(a)'s final adapter>, is_trainable=True)`, no peft_config:
                                         TRL adds a frozen copy "ref" and uses it as the reference
    llama_sft_merged                 (f) (a)'s adapter merged into the base (PEFT merge_and_unload,
                                         W + 2·B·A), a fresh LoRA on top via peft_config, reference
                                         = the merged base with the adapter disabled

How the fixtures are observed without changing what TRL computes (as in make_dpo_fixtures.py):
the trainer's collator is wrapped after construction and each collated example identified by its
(input_ids, labels[, seq_lengths]), unique in every prepared dataset here; accelerate prefetches,
so collations are matched to `compute_loss` calls in order and extra ones ignored; `compute_loss`
and `log` are wrapped in a subclass that only records (the micro-batch loss as returned, which TRL
already divides by the step's `num_items_in_batch`, that count, and the per-micro-batch metric
lists TRL averages at each log); the logs come from a callback's `on_log` without wall-clock keys.

Self-checks: every example is re-tokenized here independently (EOS appended as text, common-prefix
prompt split, chat template renderings, assistant spans from character offsets) and must equal the
trainer's prepared dataset; the packed rows must equal this script's own best-fit-decreasing
implementation (documented in the README); each step's logged loss must equal the sum of its
micro-batch losses, `num_items_in_batch` the step's count of label tokens (labels[:, 1:] != -100),
the logged entropy/mean_token_accuracy the plain mean of the micro-batch values, `num_tokens` the
running token total; and the micro-batches of steps 1–2 (policy = base model: B = 0 and step 1 has
lr 0) are recomputed in float64 with plain transformers, one sequence (or one packed document) at
a time, from nothing but the JSON's token ids (difference recorded; for packing this is the check
that packed documents do not attend to each other, and the JSON also records the loss a forward
*with* cross-document attention would give, so a port that leaks attention is caught).

Nothing needed a workaround except dropout (see (b)) and the chat template for
assistant_only_loss (see smollm2_training.jinja). What a port must reproduce is listed in
OUT/README.md, "TRL behaviour the fixtures pin down".
"""

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile

# Never touch the network; keep every cache out of the repository and out of the way.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("DISABLE_MLFLOW_INTEGRATION", "TRUE")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

torch.set_num_threads(1)

sys.dont_write_bytecode = True  # no reference/__pycache__ from the imports below
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "Tests", "FinchTrainingTests", "Fixtures")
DEFAULT_OUT = os.path.join(FIXTURES, "sft")
DPO_DIR = os.path.join(FIXTURES, "dpo")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dpo_fixtures as dpo  # noqa: E402
from make_dpo_fixtures import (  # noqa: E402
    CONVERSATIONAL_ROWS, EVAL_ROWS, SMOLLM2_CHAT_TEMPLATE, STANDARD_ROWS, LogRecorder, adapter_name, f32, plain,
    read_jsonl, write_jsonl,
)
from make_inference_fixtures import sha256_file  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

# Standard prompt/completion: the DPO fixtures' prompt + chosen. Row numbers (0-based) that matter:
#  4 non-ASCII; 5 prompt ends with a space ("brown " + "fox…": the common-prefix split moves one
#  token left); 6 prompt + completion > 48 tokens (truncated, loses its EOS); 7 prompt alone ≥ 48
#  tokens (fully masked after truncation under completion-only loss → TRL drops it; kept, truncated,
#  when the loss is on all tokens); 11 prompt ends with a newline; 12 completion already ends with
#  "<|im_end|>" (no second EOS).
PROMPT_COMPLETION_ROWS = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in STANDARD_ROWS]
PROMPT_COMPLETION_EVAL_ROWS = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in EVAL_ROWS]
CONVERSATIONAL_PROMPT_COMPLETION_ROWS = [{"prompt": r["prompt"], "completion": r["chosen"]}
                                         for r in CONVERSATIONAL_ROWS]


def _m(role, content):
    return {"role": role, "content": content}


MESSAGES_ROWS = [
    {"messages": [_m("user", "What is the capital of France?"), _m("assistant", "The capital of France is Paris.")]},
    {"messages": [_m("system", "Answer in one word."), _m("user", "How many legs does a spider have?"),
                  _m("assistant", "Eight.")]},
    {"messages": [_m("user", "Say hello."), _m("assistant", "Hello! How can I help you?")]},
    # Multi-turn: two assistant turns; longer than max_length 64, so the last turn is cut.
    {"messages": [_m("user", "What is two plus two?"), _m("assistant", "Four."),
                  _m("user", "And seven times six?"), _m("assistant", "Forty-two.")]},
    {"messages": [_m("user", "Un café, s'il vous plaît."), _m("assistant", "Voilà ☕")]},
    {"messages": [_m("user", "When does ice melt?"), _m("assistant", "Above zero degrees.")]},
    {"messages": [_m("user", "Name a primary colour of paint."), _m("assistant", "Blue.")]},
    {"messages": [_m("system", "Be brief."), _m("user", "Is water wet?"),
                  _m("assistant", "Yes, water makes things wet.")]},
]

# Plain text for packing (max_length 64): rows 9 and 13 are longer than 64 tokens (BFD truncates
# them to 64 and drops the rest, including their EOS); row 12 already ends with the EOS string.
TEXT_ROWS = [{"text": t} for t in [
    "The quick brown fox jumps over the lazy dog.",
    "The lazy dog sleeps in the sun while the fox runs into the forest.",
    "What is the capital of France? The capital of France is Paris.",
    "Water boils at one hundred degrees at sea level.",
    "Ice melts when the temperature rises above zero degrees, and water freezes when it falls below zero.",
    "A spider has eight legs and an ant has six legs.",
    "Red, yellow and blue are the primary colours of paint.",
    "Seven times six is forty-two. Two plus two is four.",
    "In Python, 2 + 2 evaluates to 4 and 7 * 6 evaluates to 42.",
    "The history of writing is long: people wrote on clay, on stone, on paper and now on screens. "
    "Books helped new ideas spread from one town to the next.",
    "Apples, pears and bananas are fruits.",
    "Un café, s'il vous plaît. Größe, naïve, São Paulo.",
    "Say hello to the user.<|im_end|>",
    "A small model learns to answer short questions with short answers. Birds have two legs and two "
    "wings. Fish have fins and no legs at all. Mixing yellow and blue gives green.",
]]

ALPACA_ROWS = [
    {"instruction": "Give the capital of France.", "input": "", "output": "The capital of France is Paris."},
    {"instruction": "Translate the word into German.", "input": "café", "output": "Kaffee"},
    {"instruction": "How many legs does a spider have?", "input": "", "output": "A spider has eight legs."},
    {"instruction": "Compute the expression.", "input": "7 * 6", "output": "42"},
    {"instruction": "Name a primary colour of paint.", "input": "   ", "output": "Blue."},
    {"instruction": "Say when water freezes.", "input": "Water freezes when it falls below zero.",
     "output": "Below zero degrees."},
]

# Stanford Alpaca's PROMPT_DICT (tatsu-lab/stanford_alpaca, train.py), with the newline after
# "### Response:" that tloen/alpaca-lora (templates/alpaca.json) and most LoRA recipes add.
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def alpaca_to_prompt_completion(row):
    """instruction/input/output → prompt/completion: the input variant when `input` is non-empty
    after strip() (the text itself is inserted unstripped), the output verbatim as the completion."""
    template = ALPACA_PROMPT_INPUT if row.get("input", "").strip() else ALPACA_PROMPT_NO_INPUT
    return {"prompt": template.format(instruction=row["instruction"], input=row.get("input", "")),
            "completion": row["output"]}


TRAINING_TEMPLATE_FILE = "smollm2_training.jinja"
# SmolLM2's template with {% generation %} around each assistant turn's "\n" + content +
# "<|im_end|>\n" (as in TRL's qwen2_5_training.jinja). Same output as SMOLLM2_CHAT_TEMPLATE.
SMOLLM2_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant' }}"
    "{% generation %}{{ '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endgeneration %}"
    "{% else %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

DATA_FILES = {
    "sft_prompt_completion.jsonl": PROMPT_COMPLETION_ROWS,
    "sft_prompt_completion_eval.jsonl": PROMPT_COMPLETION_EVAL_ROWS,
    "sft_conversational_prompt_completion.jsonl": CONVERSATIONAL_PROMPT_COMPLETION_ROWS,
    "sft_messages.jsonl": MESSAGES_ROWS,
    "sft_text.jsonl": TEXT_ROWS,
    "sft_alpaca.jsonl": ALPACA_ROWS,
}

# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

COMMON = dict(
    per_device_train_batch_size=2, per_device_eval_batch_size=2, gradient_accumulation_steps=2,
    learning_rate=5e-3, lr_scheduler_type="cosine", warmup_steps=2, max_grad_norm=1.0, max_length=48,
    num_train_epochs=1000, seed=42, gradient_checkpointing=False, logging_steps=1, report_to=[], use_cpu=True,
    bf16=False, fp16=False, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
)
LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", bias="none", task_type="CAUSAL_LM")
PHI_NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0}

SFT_RUNS = [
    {"name": "llama_prompt_completion", "case": "a", "model": "tiny_llama_dpo", "format": "prompt_completion",
     "data": "sft_prompt_completion.jsonl", "eval": "sft_prompt_completion_eval.jsonl",
     "config": {"max_steps": 10, "eval_strategy": "steps", "eval_steps": 5, "max_grad_norm": 1.5}},
    {"name": "phi_prompt_completion", "case": "b", "model": "tiny_phi_dpo", "format": "prompt_completion",
     "data": "sft_prompt_completion.jsonl", "eval": "sft_prompt_completion_eval.jsonl",
     "model_overrides": PHI_NO_DROPOUT,
     "config": {"max_steps": 10, "eval_strategy": "steps", "eval_steps": 5}},
    {"name": "llama_messages", "case": "c", "model": "tiny_llama_dpo", "format": "messages",
     "data": "sft_messages.jsonl", "config": {"max_steps": 10, "max_length": 64}},
    {"name": "llama_messages_assistant_only", "case": "c", "model": "tiny_llama_dpo", "format": "messages",
     "data": "sft_messages.jsonl", "training_template": True,
     "config": {"max_steps": 10, "max_length": 64, "assistant_only_loss": True, "max_grad_norm": 1.6}},
    {"name": "llama_text_packed", "case": "d", "model": "tiny_llama_dpo", "format": "text",
     "data": "sft_text.jsonl", "config": {"max_steps": 10, "max_length": 64, "packing": True}},
    {"name": "llama_prompt_completion_packed", "case": "d", "model": "tiny_llama_dpo", "format": "prompt_completion",
     "data": "sft_prompt_completion.jsonl", "config": {"max_steps": 4, "max_length": 64, "packing": True}},
    {"name": "llama_prompt_completion_all_tokens", "case": "e", "model": "tiny_llama_dpo",
     "format": "prompt_completion", "data": "sft_prompt_completion.jsonl",
     "config": {"max_steps": 4, "completion_only_loss": False}},
    {"name": "llama_alpaca", "case": "g", "model": "tiny_llama_dpo", "format": "alpaca",
     "data": "sft_alpaca.jsonl", "config": {"max_steps": 4, "max_length": 128, "max_grad_norm": 1.8}},
    {"name": "llama_conversational_prompt_completion", "case": "h", "model": "tiny_llama_dpo",
     "format": "conversational_prompt_completion", "data": "sft_conversational_prompt_completion.jsonl",
     "config": {"max_steps": 3, "max_length": 64, "max_grad_norm": 1.8}},
]

SFT_SOURCE_FOR_DPO = "llama_prompt_completion"
DPO_RUNS = [
    {"name": "llama_sft_ref_adapter", "case": "f", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "start_adapter_from": SFT_SOURCE_FOR_DPO, "config": {"max_steps": 5, "loss_type": ["sigmoid"]}},
    {"name": "llama_sft_merged", "case": "f", "model": "tiny_llama_sft_merged", "data": "dpo_data.jsonl",
     "config": {"max_steps": 5, "loss_type": ["sigmoid"]}},
]


def dumps(obj, level=0):
    """JSON like json.dumps(indent=1) (the DPO fixtures' layout), except that a list holding no
    dict or list is written on one line, so token-id lists stay compact and readable."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {dumps(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if not any(isinstance(x, (dict, list, tuple)) for x in obj):
            return json.dumps(list(obj), ensure_ascii=False, allow_nan=False)
        return "[\n" + ",\n".join(inner + dumps(x, level + 1) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def write_json(path, obj):
    assert json.loads(dumps(obj)) == json.loads(json.dumps(obj, allow_nan=False))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(obj) + "\n")


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def model_record(folder_name, overrides=None):
    folder = os.path.join(DPO_DIR, folder_name)
    return {"folder": f"../dpo/{folder_name}", "config_overrides": overrides or {},
            "files": {f: {"bytes": os.path.getsize(os.path.join(folder, f)),
                          "sha256": sha256_file(os.path.join(folder, f))} for f in sorted(os.listdir(folder))}}


# ---------------------------------------------------------------------------------------------
# Independent tokenization (what TRL must have produced)
# ---------------------------------------------------------------------------------------------

def assistant_mask_from_offsets(tok, text, messages):
    """Token mask of the assistant spans ("\\n" + content + "<|im_end|>\\n" after each
    "<|im_start|>assistant"), from character offsets — independent of transformers' generation
    marker machinery."""
    spans, pos = [], 0
    for m in messages:
        head = "<|im_start|>" + m["role"]
        body = "\n" + m["content"] + "<|im_end|>\n"
        at = text.index(head + body, pos)
        if m["role"] == "assistant":
            spans.append((at + len(head), at + len(head) + len(body)))
        pos = at + len(head) + len(body)
    enc = tok(text, return_offsets_mapping=True)
    mask = []
    for (s, e) in enc["offset_mapping"]:
        inside = [a <= s and e <= b for a, b in spans]
        straddles = [s < b and e > a and not (a <= s and e <= b) for a, b in spans]
        assert not any(straddles), ("token straddles an assistant span", text, s, e)
        mask.append(int(any(inside)))
    return enc["input_ids"], mask


def tokenize_example(row, tok, fmt, completion_only, assistant_only):
    """One raw row → the exact strings tokenized, input_ids and labels (untruncated)."""
    eos = tok.eos_token
    e = {}
    completion_mask = assistant_mask = None
    if fmt in ("prompt_completion", "alpaca"):
        if fmt == "alpaca":
            row = alpaca_to_prompt_completion(row)
            e["converted"] = row
        completion = row["completion"]
        e["eos_appended"] = not completion.endswith(eos)
        if e["eos_appended"]:
            completion = completion + eos
        e["text_prompt"] = row["prompt"]
        e["text"] = row["prompt"] + completion
        p = tok(e["text_prompt"])["input_ids"]
        ids = tok(e["text"])["input_ids"]
    elif fmt == "conversational_prompt_completion":
        e["eos_appended"] = False
        e["text_prompt"] = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        e["text"] = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        p = tok(e["text_prompt"])["input_ids"]
        ids = tok(e["text"])["input_ids"]
        assert p == tok.apply_chat_template(row["prompt"], tokenize=True, return_dict=True,
                                            add_generation_prompt=True)["input_ids"]
    elif fmt == "messages":
        e["eos_appended"] = False
        e["text"] = tok.apply_chat_template(row["messages"], tokenize=False)
        assert e["text"] == tok.apply_chat_template(row["messages"], tokenize=False,
                                                    chat_template=SMOLLM2_TRAINING_TEMPLATE)
        ids = tok(e["text"])["input_ids"]
        if assistant_only:
            ids2, assistant_mask = assistant_mask_from_offsets(tok, e["text"], row["messages"])
            assert ids2 == ids
            out = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                          return_assistant_tokens_mask=True, chat_template=SMOLLM2_TRAINING_TEMPLATE)
            assert list(out["input_ids"]) == ids and list(out["assistant_masks"]) == assistant_mask, row
            e["assistant_mask"] = assistant_mask
    elif fmt == "text":
        text = row["text"]
        e["eos_appended"] = not text.endswith(eos)
        e["text"] = text + eos if e["eos_appended"] else text
        ids = tok(e["text"])["input_ids"]
    else:
        raise ValueError(fmt)
    if "text_prompt" in e:
        k = common_prefix(p, ids)
        e["prompt_ids_alone"] = p
        e["completion_start"] = k
        e["prompt_split_moved"] = k < len(p)
        completion_mask = [0] * k + [1] * (len(ids) - k)
        e["completion_mask"] = completion_mask
    masks = []
    if completion_only and completion_mask is not None:
        masks.append(completion_mask)
    if assistant_mask is not None:
        masks.append(assistant_mask)
    labels = [t if all(m[i] for m in masks) else -100 for i, t in enumerate(ids)]
    e["input_ids"] = ids
    e["labels"] = labels
    e["length"] = len(ids)
    return e


def bfd_pack(lengths, seq_length):
    """Best-fit decreasing as TRL 1.16's `_pack_bfd` (truncate mode) does it, written plainly:
    documents (already cut to seq_length, empty ones removed) sorted by length, longest first,
    ties in dataset order (stable sort); each goes into the open bin with the smallest remaining
    space that fits it, ties to the bin that reached that remaining space first; otherwise a new
    bin. Bins keep creation order, documents insertion order. Returns lists of document indices."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins, open_bins, counter = [], [], 0  # open_bins: [space, when, bin index]
    for i in order:
        n = lengths[i]
        fits = [b for b in open_bins if b[0] >= n]
        if fits:
            best = min(fits, key=lambda b: (b[0], b[1]))
            open_bins.remove(best)
            space, b = best[0], best[2]
        else:
            space, b = seq_length, len(bins)
            bins.append([])
        bins[b].append(i)
        space -= n
        if space > 0:
            open_bins.append([space, counter, b])
            counter += 1
    return bins


# ---------------------------------------------------------------------------------------------
# The SFT runs
# ---------------------------------------------------------------------------------------------

def make_trainer_class():
    from trl import SFTTrainer

    class RecordingSFTTrainer(SFTTrainer):
        """SFTTrainer that records, without changing anything it computes."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss = out[0] if return_outputs else out
            n = num_items_in_batch
            self.recorded_losses.append({"mode": "train" if self.model.training else "eval",
                                         "global_step": self.state.global_step,
                                         "loss": float(loss.detach().item()),
                                         "num_items_in_batch": None if n is None else int(n),
                                         "shape": list(inputs["input_ids"].shape)})
            return out

        def log(self, logs, start_time=None):
            mode = "train" if self.model.training else "eval"
            self.recorded_metric_lists.append({"mode": mode, "global_step": self.state.global_step,
                                               "lists": {k: [float(x) for x in v]
                                                         for k, v in self._metrics[mode].items()}})
            return super().log(logs, start_time)

    return RecordingSFTTrainer


def example_key(e, packed):
    k = (tuple(e["input_ids"]), tuple(e["labels"]))
    return k + (tuple(e["seq_lengths"]),) if packed else k


def label_tokens(labels):
    """Σ over rows of (labels[:, 1:] != -100): the count transformers uses for num_items_in_batch."""
    return int((labels[..., 1:] != -100).sum())


def prepared_examples(raw_rows, tok, fmt, completion_only, assistant_only, max_length, packing, split):
    """Each raw row tokenized, then TRL's preparation: truncation to max_length (keep_start) and the
    drop of fully masked rows when not packing; BFD's own cut to max_length when packing."""
    out, kept = [], []
    for i, row in enumerate(raw_rows):
        e = {"row": i, "split": split, **tokenize_example(row, tok, fmt, completion_only, assistant_only)}
        ids, labels = e["input_ids"][:max_length], e["labels"][:max_length]
        e["truncated"] = len(e["input_ids"]) > max_length
        e["length_after_truncation"] = len(ids)
        e["label_tokens_after_truncation"] = sum(1 for x in labels[1:] if x != -100)
        e["dropped"] = (not packing) and all(x == -100 for x in labels)
        if not e["dropped"]:
            e["prepared_index" if not packing else "document_index"] = len(kept)
            kept.append({"input_ids": ids, "labels": labels, "row": i})
        out.append(e)
    return out, kept


def run_sft(spec, out, tmp, versions):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    name = spec["name"]
    folder = os.path.join(DPO_DIR, spec["model"])
    cfg = dict(COMMON)
    cfg.update(spec["config"])
    passed = dict(cfg)
    if spec.get("training_template"):
        cfg["chat_template_path"] = os.path.join(out, TRAINING_TEMPLATE_FILE)
        passed["chat_template_path"] = TRAINING_TEMPLATE_FILE
    cfg["output_dir"] = os.path.join(tmp, f"out_{name}")
    args = SFTConfig(**cfg)
    packing = bool(args.packing)
    fmt = spec["format"]

    raw_rows = read_jsonl(os.path.join(out, spec["data"]))
    train_rows = [alpaca_to_prompt_completion(r) for r in raw_rows] if fmt == "alpaca" else raw_rows
    eval_rows = read_jsonl(os.path.join(out, spec["eval"])) if spec.get("eval") else None

    overrides = spec.get("model_overrides", {})
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager", **overrides)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ref_tok = AutoTokenizer.from_pretrained(folder)  # untouched copy for the independent tokenization
    assert ref_tok.chat_template == SMOLLM2_CHAT_TEMPLATE

    refusal = None
    if spec.get("training_template"):
        # With SmolLM2's own template (no generation markers) TRL refuses assistant_only_loss.
        stock_args = SFTConfig(**{k: v for k, v in cfg.items() if k != "chat_template_path"})
        try:
            make_trainer_class()(model=AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                                            attn_implementation="eager"),
                                 args=stock_args, train_dataset=Dataset.from_list(train_rows),
                                 processing_class=AutoTokenizer.from_pretrained(folder),
                                 peft_config=LoraConfig(**LORA))
        except ValueError as err:
            refusal = f"ValueError: {err}"
        assert refusal and "not training-compatible" in refusal, refusal

    recorder = LogRecorder()
    trainer = make_trainer_class()(
        model=base, args=args, train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None, processing_class=tokenizer,
        peft_config=LoraConfig(**LORA), callbacks=[recorder.callback])
    trainer.recorded_losses = []
    trainer.recorded_metric_lists = []

    # SFTTrainer keeps the model's dropout; every nn.Dropout must be 0 for a portable run.
    dropouts = [(n, m.p) for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert all(p == 0 for _, p in dropouts), dropouts

    # Independent tokenization and preparation; must equal what the trainer holds.
    completion_only = trainer.completion_only_loss
    assistant_only = bool(args.assistant_only_loss)
    examples, kept = prepared_examples(raw_rows, ref_tok, fmt, completion_only, assistant_only,
                                       args.max_length, packing, "train")
    eval_examples, eval_kept = [], []
    if eval_rows:
        eval_packing = packing if args.eval_packing is None else args.eval_packing
        assert not eval_packing
        eval_examples, eval_kept = prepared_examples(eval_rows, ref_tok, fmt, completion_only, assistant_only,
                                                     args.max_length, False, "eval")
    train_ds = trainer.train_dataset
    packed_rows = None
    if not packing:
        held = [{"input_ids": list(x["input_ids"]), "labels": list(x["labels"])} for x in train_ds]
        assert held == [{"input_ids": k["input_ids"], "labels": k["labels"]} for k in kept], name
    else:
        assert args.packing_strategy == "bfd" and trainer.padding_free
        docs = [k for k in kept if len(k["input_ids"]) > 0]
        bins = bfd_pack([len(d["input_ids"]) for d in docs], args.max_length)
        packed_rows = []
        for j, (b, x) in enumerate(zip(bins, train_ds, strict=True)):
            ids = [t for i in b for t in docs[i]["input_ids"]]
            labels = [t for i in b for t in docs[i]["labels"]]
            lens = [len(docs[i]["input_ids"]) for i in b]
            assert list(x["input_ids"]) == ids and list(x["labels"]) == labels and list(x["seq_lengths"]) == lens, j
            offsets = np.cumsum([0] + lens[:-1]).tolist()
            packed_rows.append({"index": j, "rows": [docs[i]["row"] for i in b], "seq_lengths": lens,
                                "offsets": offsets, "length": len(ids), "input_ids": ids, "labels": labels})
        row_to_packed = {r: (p["index"], off) for p in packed_rows for r, off in zip(p["rows"], p["offsets"])}
        for e in examples:
            e["packed_row"], e["packed_offset"] = row_to_packed[e["row"]]
    if eval_rows:
        held = [{"input_ids": list(x["input_ids"]), "labels": list(x["labels"])} for x in trainer.eval_dataset]
        assert held == [{"input_ids": k["input_ids"], "labels": k["labels"]} for k in eval_kept]

    # Wrap the collator to see the data order and the exact batches.
    train_keys = {example_key(x, packing): i for i, x in enumerate(train_ds)}
    assert len(train_keys) == len(train_ds), "prepared train examples must be unique"
    eval_keys = {example_key(x, False): i for i, x in enumerate(trainer.eval_dataset)} if eval_rows else {}
    collations = {"train": [], "eval": []}
    inner = trainer.data_collator

    def recording_collator(batch_examples):
        keys = [example_key(x, packing and "seq_lengths" in x) for x in batch_examples]
        batch = inner(batch_examples)
        rec = {"label_tokens": label_tokens(batch["labels"]), "width": int(batch["input_ids"].shape[1]),
               "rows_in_tensor": int(batch["input_ids"].shape[0])}
        if "attention_mask" in batch:
            rec["attention_tokens"] = int(batch["attention_mask"].sum())
        if "position_ids" in batch:
            rec["input_ids"] = batch["input_ids"][0].tolist()
            rec["position_ids"] = batch["position_ids"][0].tolist()
            rec["labels"] = batch["labels"][0].tolist()
            rec["cu_seq_lens"] = batch["cu_seq_lens_q"].tolist()
            rec["max_length_q"] = int(batch["max_length_q"])
            assert "attention_mask" not in batch
        if all(k in train_keys for k in keys):
            collations["train"].append(([train_keys[k] for k in keys], rec))
        elif all(k in eval_keys for k in keys):
            collations["eval"].append(([eval_keys[k] for k in keys], rec))
        else:
            raise AssertionError("collated examples not found in the prepared datasets")
        return batch

    trainer.data_collator = recording_collator

    peft_model = trainer.model
    trainable = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    all_lora = [(n, p) for n, p in peft_model.named_parameters() if "lora_" in n]
    assert [n for n, _ in trainable] == [n for n, _ in all_lora]
    tensors = {f"initial.{adapter_name(n)}": f32(p) for n, p in all_lora}

    trainer.train()

    tensors.update({f"final.{adapter_name(n)}": f32(p) for n, p in all_lora})
    final = {adapter_name(n): f32(p) for n, p in all_lora}

    # Pair collations with compute_loss calls (accelerate prefetches one batch ahead).
    train_losses = [r for r in trainer.recorded_losses if r["mode"] == "train"]
    eval_losses = [r for r in trainer.recorded_losses if r["mode"] == "eval"]
    assert len(collations["train"]) >= len(train_losses)
    assert len(collations["eval"]) == len(eval_losses)
    index_to_row = {k: kk["row"] for k, kk in enumerate(kept)} if not packing else None

    micro, per_step = [], {}
    for i, ((idx, rec), loss) in enumerate(zip(collations["train"], train_losses)):
        step = loss["global_step"] + 1
        per_step.setdefault(step, []).append(i)
        m = {"index": i, "step": step}
        if packing:
            m["packed_indices"] = idx
            m["rows"] = [r for j in idx for r in packed_rows[j]["rows"]]
        else:
            m["prepared_indices"] = idx
            m["rows"] = [index_to_row[j] for j in idx]
        m.update({"loss": loss["loss"], "num_items_in_batch": loss["num_items_in_batch"],
                  "tensor_shape": loss["shape"], **rec})
        micro.append(m)
    for m in micro:
        m["micro_batches_in_step"] = len(per_step[m["step"]])
    eval_index_to_row = {k: kk["row"] for k, kk in enumerate(eval_kept)}
    eval_micro = []
    for i, ((idx, rec), loss) in enumerate(zip(collations["eval"], eval_losses)):
        eval_micro.append({"index": i, "after_step": loss["global_step"], "prepared_indices": idx,
                           "rows": [eval_index_to_row[j] for j in idx], "loss": loss["loss"],
                           "num_items_in_batch": loss["num_items_in_batch"], "tensor_shape": loss["shape"], **rec})
    for snap in trainer.recorded_metric_lists:
        if not snap["lists"]:
            continue
        if snap["mode"] == "train":
            group = [m for m in micro if m["step"] == snap["global_step"]]
        else:
            group = [m for m in eval_micro if m["after_step"] == snap["global_step"]]
        for key, values in snap["lists"].items():
            if key == "num_tokens":
                continue
            assert len(values) == len(group), (snap["mode"], snap["global_step"], key, len(values), len(group))
            for m, v in zip(group, values):
                m.setdefault("metrics", {})[key] = v

    step_logs, eval_logs, summary = [], [], None
    for entry in recorder.logs:
        if "train_loss" in entry:
            summary = entry
        elif any(k.startswith("eval_") for k in entry):
            eval_logs.append(entry)
        else:
            step_logs.append(entry)
    assert [s["global_step"] for s in step_logs] == list(range(1, args.max_steps + 1))
    running_tokens = 0
    for s in step_logs:
        group = [m for m in micro if m["step"] == s["global_step"]]
        n_items = sum(m["label_tokens"] for m in group)
        assert all(m["num_items_in_batch"] == n_items for m in group), (s["global_step"], n_items)
        s["num_items_in_batch"] = n_items
        s["micro_batches_in_step"] = len(group)
        s["clipped"] = s["grad_norm"] > args.max_grad_norm
        expected = sum(m["loss"] for m in group)
        assert abs(expected - s["loss"]) <= 1e-6 * max(1.0, abs(expected)), (s["global_step"], expected, s["loss"])
        for key in ("entropy", "mean_token_accuracy"):
            mean = sum(m["metrics"][key] for m in group) / len(group)
            assert abs(mean - s[key]) <= 1e-6 * max(1.0, abs(mean)), (key, s["global_step"], mean, s[key])
        running_tokens += sum(m["width"] if packing else m["attention_tokens"] for m in group)
        assert s["num_tokens"] == running_tokens, (s["global_step"], s["num_tokens"], running_tokens)
    eval_loss_rule = None
    for ev in eval_logs:
        group = [m for m in eval_micro if m["after_step"] == ev["global_step"]]
        sizes = [len(m["prepared_indices"]) for m in group]
        weighted = sum(n * m["loss"] for n, m in zip(sizes, group)) / sum(sizes)
        plain_mean = sum(m["loss"] for m in group) / len(group)
        if abs(weighted - ev["eval_loss"]) <= 1e-6 * abs(weighted):
            rule = "sample-weighted mean of the per-batch losses"
        elif abs(plain_mean - ev["eval_loss"]) <= 1e-6 * abs(plain_mean):
            rule = "plain mean of the per-batch losses"
        else:
            raise AssertionError(("eval_loss", ev, weighted, plain_mean))
        assert eval_loss_rule in (None, rule)
        eval_loss_rule = rule

    resolved = {
        "format_seen_by_trl": "prompt_completion" if fmt == "alpaca" else fmt,
        "completion_only_loss": trainer.completion_only_loss,
        "completion_only_loss_passed": args.completion_only_loss,
        "assistant_only_loss": args.assistant_only_loss,
        "packing": args.packing, "packing_strategy": args.packing_strategy,
        "padding_free": trainer.padding_free, "padding_free_passed": args.padding_free,
        "eval_packing": args.eval_packing, "shuffle_dataset": args.shuffle_dataset,
        "max_length": args.max_length, "truncation_mode": args.truncation_mode,
        "dataset_text_field": args.dataset_text_field, "pad_to_multiple_of": args.pad_to_multiple_of,
        "loss_type": args.loss_type, "label_smoothing_factor": args.label_smoothing_factor,
        "eos_token": tokenizer.eos_token, "eos_token_id": tokenizer.eos_token_id,
        "pad_token": tokenizer.pad_token, "pad_token_id": tokenizer.pad_token_id,
        "bos_token_added": False,
        "chat_template": ("smollm2_training.jinja (SmolLM2's template + generation markers)"
                          if spec.get("training_template") else "SmolLM2's template (tokenizer default)"),
        "model_accepts_loss_kwargs": trainer.model_accepts_loss_kwargs,
        "average_tokens_across_devices": args.average_tokens_across_devices,
        "optim": plain(args.optim),
        "optimizer_class": type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer")
                                else trainer.optimizer).__name__,
        "weight_decay": args.weight_decay, "adam_beta1": args.adam_beta1, "adam_beta2": args.adam_beta2,
        "adam_epsilon": args.adam_epsilon, "seed": args.seed, "data_seed": args.data_seed,
        "learning_rate": args.learning_rate, "lr_scheduler_type": plain(args.lr_scheduler_type),
        "warmup_steps": args.warmup_steps, "max_grad_norm": args.max_grad_norm, "max_steps": args.max_steps,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "per_device_eval_batch_size": args.per_device_eval_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "gradient_checkpointing": args.gradient_checkpointing, "logging_steps": args.logging_steps,
        "eval_strategy": plain(args.eval_strategy), "eval_steps": args.eval_steps,
        "num_examples_prepared": len(train_ds),
        "micro_batches_per_epoch": math.ceil(len(train_ds) / args.per_device_train_batch_size),
        "steps_per_epoch": math.ceil(math.ceil(len(train_ds) / args.per_device_train_batch_size)
                                     / args.gradient_accumulation_steps),
        "eval_loss_rule": eval_loss_rule,
    }
    adapter_cfg = peft_model.peft_config["default"]
    lora = {
        "r": adapter_cfg.r, "lora_alpha": adapter_cfg.lora_alpha, "lora_dropout": adapter_cfg.lora_dropout,
        "scaling": adapter_cfg.lora_alpha / adapter_cfg.r, "target_modules_requested": LORA["target_modules"],
        "target_modules_resolved": sorted(adapter_cfg.target_modules), "bias": adapter_cfg.bias,
        "use_rslora": adapter_cfg.use_rslora, "init_lora_weights": adapter_cfg.init_lora_weights,
        "trainable_parameters": [adapter_name(n) for n, _ in trainable],
    }
    record = {
        "generator": "reference/make_sft_fixtures.py",
        "run": name, "case": spec["case"], "model": spec["model"], "model_folder": f"../dpo/{spec['model']}",
        "model_config_overrides": overrides, "format": fmt, "data": spec["data"], "eval_data": spec.get("eval"),
        "sft_config_passed": {k: v for k, v in sorted(passed.items())},
        "resolved": resolved,
        "lora": lora,
        "tensors_file": f"sft_{name}.safetensors",
        "examples": examples,
        "eval_examples": eval_examples,
        "num_examples_prepared": len(train_ds),
        "dropped_rows": [e["row"] for e in examples if e["dropped"]],
        "packed_rows": packed_rows,
        "micro_batches": micro,
        "eval_micro_batches": eval_micro,
        "steps": step_logs,
        "eval_logs": eval_logs,
        "train_summary": summary,
        "dropout_modules": [n for n, _ in dropouts],
    }
    if refusal:
        record["stock_template_refusal"] = refusal
    if fmt == "alpaca":
        record["alpaca_conversion"] = {"prompt_input": ALPACA_PROMPT_INPUT, "prompt_no_input": ALPACA_PROMPT_NO_INPUT,
                                       "rule": "prompt_input if input.strip() != '' else prompt_no_input; "
                                               "completion = output",
                                       "converted_rows": train_rows}
    check = independent_check(record, folder, overrides, packing)
    record.update(check)
    record["versions"] = versions
    record["models"] = {spec["model"]: model_record(spec["model"], overrides)}
    save_file(tensors, os.path.join(out, record["tensors_file"]))
    if name == SFT_SOURCE_FOR_DPO:
        trainer.model.save_pretrained(os.path.join(tmp, f"adapter_{name}"))
    return record, final


def independent_check(record, folder, overrides, packing):
    """float64 recomputation, with plain transformers (no TRL, no PEFT), of the loss, entropy and
    mean_token_accuracy of every micro-batch of steps 1–2 (the policy is the base model there: B = 0
    and step 1 has lr 0), one sequence / one packed document at a time, from this record's token ids;
    for packing also the loss the first micro-batch would have *with* attention across documents."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                                 **overrides).double().eval()

    def per_sequence(ids, labels, position_ids=None, attention_mask=None):
        with torch.no_grad():
            kw = {}
            if position_ids is not None:
                kw["position_ids"] = torch.tensor([position_ids])
            if attention_mask is not None:
                kw["attention_mask"] = torch.tensor([attention_mask])
            z = model(input_ids=torch.tensor([ids]), **kw).logits[0, :-1]
        t = torch.tensor(labels[1:])
        valid = t != -100
        logp = torch.log_softmax(z, -1)
        tgt = logp.gather(-1, t.clamp(min=0)[:, None])[:, 0]
        ent = -(logp.exp() * logp).sum(-1)
        top1 = z.argmax(-1) == t
        return (float(-(tgt * valid).sum()), float((ent * valid).sum()), int((top1 & valid).sum()), int(valid.sum()))

    if packing:
        rows = record["packed_rows"]
        docs_of = lambda m: [(r["input_ids"][o:o + n], r["labels"][o:o + n]) for j in m["packed_indices"]
                             for r in [rows[j]] for o, n in zip(r["offsets"], r["seq_lengths"])]
    else:
        kept = {e["prepared_index"]: e for e in record["examples"] if not e["dropped"]}
        L = record["resolved"]["max_length"]
        docs_of = lambda m: [(kept[j]["input_ids"][:L], kept[j]["labels"][:L]) for j in m["prepared_indices"]]
    worst = {"loss_rel": 0.0, "entropy_abs": 0.0, "mean_token_accuracy_abs": 0.0}
    checked = 0
    for m in record["micro_batches"]:
        if m["step"] > 2:
            continue
        nll = ent = correct = valid = 0
        for ids, labels in docs_of(m):
            a, b, c, d = per_sequence(ids, labels)
            nll, ent, correct, valid = nll + a, ent + b, correct + c, valid + d
        assert valid == m["label_tokens"]
        loss = nll / m["num_items_in_batch"]
        worst["loss_rel"] = max(worst["loss_rel"], abs(loss - m["loss"]) / abs(loss))
        worst["entropy_abs"] = max(worst["entropy_abs"], abs(ent / valid - m["metrics"]["entropy"]))
        worst["mean_token_accuracy_abs"] = max(worst["mean_token_accuracy_abs"],
                                               abs(correct / valid - m["metrics"]["mean_token_accuracy"]))
        checked += 1
    assert worst["loss_rel"] < 1e-5 and worst["entropy_abs"] < 1e-4 and worst["mean_token_accuracy_abs"] < 1e-6, worst
    result = {"independent_check_steps_1_2": {"micro_batches_checked": checked, **worst}}
    if packing:
        m = record["micro_batches"][0]
        isolated = sum(per_sequence(ids, labels)[0] for ids, labels in docs_of(m)) / m["num_items_in_batch"]
        leaked = per_sequence(m["input_ids"], m["labels"], position_ids=m["position_ids"],
                              attention_mask=[1] * len(m["input_ids"]))[0] / m["num_items_in_batch"]
        assert abs(isolated - m["loss"]) / isolated < 1e-5
        assert abs(leaked - m["loss"]) / leaked > 1e-3, "cross-document attention should change the loss"
        result["cross_document_attention_control"] = {
            "micro_batch": 0, "loss_trl": m["loss"], "loss_documents_isolated_float64": isolated,
            "loss_with_cross_document_attention_float64": leaked}
    return result


# ---------------------------------------------------------------------------------------------
# The two-stage runs (DPO on the SFT adapter), through make_dpo_fixtures.run_one
# ---------------------------------------------------------------------------------------------

def run_two_stage(out, tmp, sft_final, versions):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stage = os.path.join(tmp, "dpo_stage")
    os.makedirs(stage, exist_ok=True)
    os.symlink(os.path.join(DPO_DIR, "tiny_llama_dpo"), os.path.join(stage, "tiny_llama_dpo"))
    os.symlink(os.path.join(DPO_DIR, "dpo_data.jsonl"), os.path.join(stage, "dpo_data.jsonl"))
    adapter_dir = os.path.join(tmp, f"adapter_{SFT_SOURCE_FOR_DPO}")

    # The merged base: tiny_llama_dpo with (a)'s adapter merged in (W + scaling · B @ A).
    merged_name = "tiny_llama_sft_merged"
    merged_folder = os.path.join(stage, merged_name)
    base = AutoModelForCausalLM.from_pretrained(os.path.join(DPO_DIR, "tiny_llama_dpo"), dtype=torch.float32,
                                                attn_implementation="eager")
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(merged_folder)
    AutoTokenizer.from_pretrained(os.path.join(DPO_DIR, "tiny_llama_dpo")).save_pretrained(merged_folder)
    merge_gap, merged_modules = 0.0, []
    for key, a in sft_final.items():
        if ".lora_A." not in key:
            continue
        b = sft_final[key.replace(".lora_A.", ".lora_B.")]
        wkey = key.replace(".lora_A.weight", ".weight")
        expect = base_sd[wkey].double() + 2.0 * (torch.from_numpy(b).double() @ torch.from_numpy(a).double())
        merge_gap = max(merge_gap, float((merged.state_dict()[wkey].double() - expect).abs().max()))
        merged_modules.append(wkey)
    assert merge_gap < 1e-6, merge_gap
    merge_info = {"formula": "W_merged = W + (lora_alpha / r) * B @ A = W + 2 * B @ A (float32, PEFT merge_and_unload)",
                  "merged_weights": sorted(merged_modules), "max_abs_gap_to_float64_merge": merge_gap,
                  "merged_folder_committed": False}
    del base, merged

    results = {}
    final_tensors = {SFT_SOURCE_FOR_DPO: sft_final}
    records = []
    for spec in DPO_RUNS:
        rec = dpo.run_one(spec, stage, tmp, results, final_tensors)
        shutil.copyfile(os.path.join(stage, rec["tensors_file"]), os.path.join(out, rec["tensors_file"]))
        rec["generator"] = "reference/make_sft_fixtures.py (DPO via make_dpo_fixtures.run_one)"
        rec["data"] = "../dpo/dpo_data.jsonl"
        rec["two_stage"] = {"sft_run": f"sft_{SFT_SOURCE_FOR_DPO}.json",
                            "sft_adapter": f"final.* of sft_{SFT_SOURCE_FOR_DPO}.safetensors"}
        if spec.get("start_adapter_from"):
            rec["reference"] = "the frozen 'ref' adapter (a copy of the loaded SFT adapter)"
            rec["two_stage"]["variant"] = ("policy = PeftModel.from_pretrained(base, SFT adapter, is_trainable=True); "
                                           "TRL copies it to a frozen adapter 'ref' used as the reference")
            rec["models"] = {"tiny_llama_dpo": model_record("tiny_llama_dpo")}
        else:
            check = dpo.independent_check(rec, merged_folder)
            assert check["logps/chosen"] < 1e-3 and check["logps/rejected"] < 1e-3, check
            rec["independent_check_steps_1_2_max_abs_difference"] = check
            rec["two_stage"]["variant"] = ("SFT adapter merged into the base, fresh LoRA (peft_config) on the merged "
                                           "model; reference = merged base (adapter disabled)")
            rec["two_stage"]["merge"] = merge_info
            rec["model_folder"] = "(not committed: ../dpo/tiny_llama_dpo with the SFT adapter merged, see two_stage.merge)"
            rec["models"] = {"tiny_llama_dpo": model_record("tiny_llama_dpo")}
        rec["versions"] = versions
        write_json(os.path.join(out, f"dpo_{spec['name']}.json"), rec)
        records.append(rec)
    return records


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", help="run only these SFT runs (debugging; skips the DPO runs)")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)

    import datasets
    datasets.disable_caching()
    datasets.utils.logging.disable_progress_bar()

    for fname, rows in DATA_FILES.items():
        write_jsonl(os.path.join(out, fname), rows)
    with open(os.path.join(out, TRAINING_TEMPLATE_FILE), "w", encoding="utf-8", newline="\n") as f:
        f.write(SMOLLM2_TRAINING_TEMPLATE)

    import accelerate
    import peft
    import safetensors
    import tokenizers
    import transformers
    import trl
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "trl": trl.__version__, "peft": peft.__version__, "tokenizers": tokenizers.__version__,
                "datasets": datasets.__version__, "accelerate": accelerate.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__}

    with tempfile.TemporaryDirectory(prefix="finch-sft-") as tmp:
        sft_final = None
        for spec in SFT_RUNS:
            if args.only and spec["name"] not in args.only:
                continue
            rec, final = run_sft(spec, out, tmp, versions)
            if spec["name"] == SFT_SOURCE_FOR_DPO:
                sft_final = final
            write_json(os.path.join(out, f"sft_{spec['name']}.json"), rec)
            s1 = rec["steps"][0]
            clipped = [s["global_step"] for s in rec["steps"] if s["clipped"]]
            print(f"sft {spec['name']}: step 1 loss {s1['loss']!r} grad_norm {s1['grad_norm']!r} "
                  f"acc {s1['mean_token_accuracy']:.4g} num_tokens {s1['num_tokens']}; last loss "
                  f"{rec['steps'][-1]['loss']:.6g}; grad_norms {[round(s['grad_norm'], 3) for s in rec['steps']]}; "
                  f"clipped {clipped}; dropped {rec['dropped_rows']}; prepared {rec['num_examples_prepared']}",
                  flush=True)
        if not args.only:
            for rec in run_two_stage(out, tmp, sft_final, versions):
                s1 = rec["steps"][0]
                clipped = [s["global_step"] for s in rec["steps"] if s["clipped"]]
                print(f"dpo {rec['run']}: step 1 loss {s1['loss']!r} grad_norm {s1['grad_norm']!r}; last loss "
                      f"{rec['steps'][-1]['loss']:.6g}; clipped {clipped}", flush=True)


if __name__ == "__main__":
    main()
