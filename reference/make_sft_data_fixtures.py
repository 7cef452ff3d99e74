#!/usr/bin/env python3
"""Golden fixtures for Finch's SFT data pipeline (FinchTrainingTests, issue 8): the token ids,
labels and packed rows TRL 1.16's own `SFTTrainer` dataset preparation gives for small SFT
datasets.

Python is only the oracle: the Swift tests read what this script writes and never run Python.
Re-running the script reproduces identical bytes.

Usage (from the repo root, in the reference venv, see reference/README.md):

    python reference/make_sft_data_fixtures.py --gguf ~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        [--out Tests/FinchTrainingTests/Fixtures]

What it runs:
- TRL 1.16 `SFTTrainer._prepare_dataset` (the trainer's own path: ShareGPT `from`/`value`
  conversion, the string-level EOS for non-conversational rows, `_tokenize` — the tokenizer's
  default `add_special_tokens` for strings, `apply_chat_template(tokenize=True)` for
  conversations, with `return_assistant_tokens_mask` under `assistant_only_loss` — the completion
  mask from the common prefix of the tokenized prompt and prompt+completion, labels, `max_length`
  truncation and the filter of fully masked rows, and `pack_dataset`), called on a stand-in
  `self` that carries the tokenizer, `completion_only_loss` resolved as `SFTTrainer.__init__`
  resolves it, and `chat_template=None` (the tokenizer's template is used).
- Two tokenizers: SmolLM2-135M-Instruct loaded by transformers from the GGUF (ChatML template that
  injects a default system turn; EOS `<|im_end|>`; no BOS added), and the Llama-2 tokenizer.json in
  Tests/FinchTokenizersTests/Fixtures/llama2 (adds BOS `<s>`; no chat template: the script gives it
  the ChatML fallback Finch uses, `ChatTemplate.chatMLSource`).
- Alpaca rows are made prompt/completion rows with `alpaca_prompt` below (Finch's
  `SFTExample.alpacaPrompt`), then prepared as such; the prompts are recorded too.
- `assistant_only_loss` with ChatML plus `{% generation %}` markers (sft_data/chatml_generation.jinja,
  given to both tokenizers), on messages rows and on conversational prompt-completion rows.
- `pack_dataset` alone (bfd, bfd_split, wrapped) on 2600 synthetic sequences of seeded lengths
  1–80 whose ids are their index, with seq_length 64: it crosses datasets' 1000-row map batches
  and has many equal lengths (the order of ties) and overflowing sequences.

Writes, under OUT/sft_data/: the input datasets (text.jsonl, prompt_completion.jsonl,
conversational.jsonl, messages.jsonl, sharegpt.jsonl, alpaca.jsonl, eos_edge.jsonl,
chatml_generation.jinja) and OUT/sft_data_expected.json.
"""

import argparse
import os
import random
import types

# The DPO data script's constants and JSON writers (importing it also sets the offline environment).
from make_dpo_data_fixtures import CHATML, DEFAULT_OUT, LLAMA2, dumps, write_jsonl

import datasets  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from trl import SFTConfig  # noqa: E402
from trl.data_utils import pack_dataset  # noqa: E402
from trl.trainer.sft_trainer import SFTTrainer  # noqa: E402

# ChatML with the assistant turns (content and <|im_end|>) inside {% generation %} blocks.
CHATML_GENERATION = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LONG = (
    "Supervised fine-tuning trains a language model to continue a prompt with a reference completion, "
    "taking the cross-entropy loss on the completion tokens only, so that the model learns to answer "
    "rather than to repeat questions. Packing puts several short examples in one row of the batch."
)

TEXT = [
    {"text": "The sky is blue."},
    {"text": "Quelle est la capitale de la France ? Paris, évidemment. 🇫🇷"},
    {"text": "日本の首都は東京です。"},
    {"text": "Already terminated.<|im_end|>"},
    {"text": LONG},
    {"text": 'Tabs\tand "quotes",\r\nand newlines\n'},
    {"text": "Hi"},
]

PROMPT_COMPLETION = [
    {"prompt": "What is 2+2?", "completion": " 4"},
    {"prompt": "The capital of Fra", "completion": "nce is Paris."},
    {"prompt": "Summarize: " + LONG, "completion": " SFT learns from demonstrations."},
    {"prompt": "", "completion": "An empty prompt."},
    {"prompt": "Café or thé? ", "completion": "Cafe\u0301, s'il vous plaît."},
    {"prompt": "Translate to German: good morning", "completion": " Guten Morgen"},
]

CONVERSATIONAL = [
    {"prompt": [{"role": "user", "content": "What color is the sky?"}],
     "completion": [{"role": "assistant", "content": "It is blue."}]},
    {"prompt": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a prime."}],
     "completion": [{"role": "assistant", "content": "7"}]},
    {"prompt": [{"role": "user", "content": "Bonjour !"}, {"role": "assistant", "content": "Bonjour ! Comment puis-je aider ?"},
                {"role": "user", "content": "Traduis « chat » en anglais."}],
     "completion": [{"role": "assistant", "content": "« Cat »."}]},
    {"prompt": [{"role": "user", "content": "Summarize: " + LONG}],
     "completion": [{"role": "assistant", "content": "SFT learns from demonstrations."}]},
]

MESSAGES = [
    {"messages": [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is blue."}]},
    {"messages": [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Salut !"}, {"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4"}]},
    {"messages": [{"role": "user", "content": "日本の首都は？"}, {"role": "assistant", "content": "東京です。"}]},
    {"messages": [{"role": "user", "content": "Summarize: " + LONG}, {"role": "assistant", "content": "SFT in one line."}]},
]

SHAREGPT = [
    {"conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi! How can I help?"}]},
    {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "user", "value": "2+2?"},
                       {"from": "assistant", "value": "4"}]},
]

ALPACA = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Get enough sleep."},
    {"instruction": "Translate the sentence into French.", "input": "The cat sleeps.", "output": "Le chat dort."},
    {"instruction": "Classify the sentiment.", "input": "I love this film!", "output": "Positive"},
    {"instruction": "Name a primary color.", "output": "Red"},
]

# Rows where Finch deliberately differs from TRL 1.16: the EOS string followed by a newline already
# ends the text or completion; TRL appends another EOS.
EOS_EDGE = [
    {"prompt": "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n", "completion": "Hi!<|im_end|>\n"},
    {"prompt": "Say bye.", "completion": " Bye.</s>\n"},
]


def alpaca_prompt(instruction, input_text):
    """Finch's SFTExample.alpacaPrompt: Stanford Alpaca's PROMPT_DICT with a newline after
    "### Response:" (as the `text` column of tatsu-lab/alpaca)."""
    if input_text:
        return ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n"
                f"### Instruction:\n{instruction}\n\n### Input:\n{input_text}\n\n### Response:\n")
    return ("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
            f"### Instruction:\n{instruction}\n\n### Response:\n")


def alpaca_rows(rows):
    return [{"prompt": alpaca_prompt(r["instruction"], r.get("input") or ""), "completion": r["output"]} for r in rows]


def prepare(tokenizer, rows, max_length=None, packing=False, strategy="bfd", completion_only_loss=None,
            assistant_only_loss=False, truncation_mode="keep_start"):
    """TRL 1.16's SFTTrainer._prepare_dataset with the trainer's resolution of
    completion_only_loss."""
    args = SFTConfig(output_dir="/tmp/finch-sft-data-fixtures", max_length=max_length, packing=packing,
                     packing_strategy=strategy, completion_only_loss=completion_only_loss,
                     assistant_only_loss=assistant_only_loss, truncation_mode=truncation_mode,
                     use_cpu=True, bf16=False, report_to="none")
    sample = rows[0]
    resolved = ("prompt" in sample and "completion" in sample) if completion_only_loss is None else completion_only_loss
    stub = types.SimpleNamespace(_tokenizer=tokenizer, completion_only_loss=resolved, chat_template=None)
    prepared = SFTTrainer._prepare_dataset(stub, Dataset.from_list(rows), tokenizer, args, packing, None, "train")
    out = []
    for row in prepared:
        item = {"input_ids": list(row["input_ids"]), "labels": list(row["labels"])}
        if "seq_lengths" in row:
            item["seq_lengths"] = list(row["seq_lengths"])
        out.append(item)
    return out


def record(tokenizer, rows):
    """Unlimited preparation (per row), then truncation and packing variants."""
    entry = {"rows": prepare(tokenizer, rows)}
    longest = max(len(r["input_ids"]) for r in entry["rows"])
    shortest = min(len(r["input_ids"]) for r in entry["rows"])
    # A max_length that cuts the long rows (and may leave some with no label: TRL drops them).
    cut = max(shortest + 1, longest // 3)
    entry["truncation"] = []
    for mode in ("keep_start", "keep_end"):
        prepared = prepare(tokenizer, rows, max_length=cut, truncation_mode=mode)
        entry["truncation"].append({"max_length": cut, "mode": mode, "rows": prepared})
    entry["completion_only_loss_off"] = prepare(tokenizer, rows, completion_only_loss=False)
    entry["packing"] = []
    for strategy in ("bfd", "bfd_split", "wrapped"):
        for seq_length in (cut, longest + 8):
            prepared = prepare(tokenizer, rows, max_length=seq_length, packing=True, strategy=strategy)
            entry["packing"].append({"strategy": strategy, "max_length": seq_length, "rows": prepared})
    return entry


def synthetic_packing():
    """pack_dataset alone on index-valued sequences: each bin as its pieces, flat: [index, length, …]."""
    rng = random.Random(8)
    lengths = [rng.randint(1, 80) for _ in range(2600)]
    ids = [[i] * n for i, n in enumerate(lengths)]
    dataset = Dataset.from_dict({"input_ids": ids, "labels": ids})
    result = {"lengths": lengths, "max_length": 64, "strategies": {}}
    for strategy in ("bfd", "bfd_split", "wrapped"):
        packed = pack_dataset(dataset, 64, strategy)
        bins = []
        for row in packed:
            values = list(row["input_ids"])
            assert values == list(row["labels"])
            if "seq_lengths" in row:
                pieces, start = [], 0
                for n in row["seq_lengths"]:
                    chunk = values[start:start + n]
                    assert len(set(chunk)) == 1
                    pieces.append([chunk[0], n])
                    start += n
            else:
                pieces = []
                for v in values:
                    if pieces and pieces[-1][0] == v:
                        pieces[-1][1] += 1
                    else:
                        pieces.append([v, 1])
            bins.append([x for piece in pieces for x in piece])  # flat: index, length, index, length, …
        result["strategies"][strategy] = bins
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, help="SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()

    data_dir = os.path.join(args.out, "sft_data")
    os.makedirs(data_dir, exist_ok=True)
    files = {"text": TEXT, "prompt_completion": PROMPT_COMPLETION, "conversational": CONVERSATIONAL,
             "messages": MESSAGES, "sharegpt": SHAREGPT, "alpaca": ALPACA, "eos_edge": EOS_EDGE}
    for name, rows in files.items():
        write_jsonl(os.path.join(data_dir, name + ".jsonl"), rows)
    with open(os.path.join(data_dir, "chatml_generation.jinja"), "w", encoding="utf-8", newline="\n") as f:
        f.write(CHATML_GENERATION)

    smollm2_dir, smollm2_file = os.path.split(os.path.abspath(os.path.expanduser(args.gguf)))
    smollm2 = AutoTokenizer.from_pretrained(smollm2_dir, gguf_file=smollm2_file)
    llama2 = AutoTokenizer.from_pretrained(LLAMA2)
    llama2.chat_template = CHATML

    expected = {
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "datasets": datasets.__version__},
        "alpaca_prompts": [alpaca_prompt(r["instruction"], r.get("input") or "") for r in ALPACA],
        "synthetic_packing": synthetic_packing(),
        "tokenizers": {},
    }
    for tokenizer_name, tokenizer in (("smollm2", smollm2), ("llama2", llama2)):
        entry = {"bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token, "datasets": {}}
        for name, rows in files.items():
            source = alpaca_rows(rows) if name == "alpaca" else rows
            if name == "eos_edge":
                entry["datasets"][name] = {"rows": prepare(tokenizer, source)}
            else:
                entry["datasets"][name] = record(tokenizer, source)
        # assistant_only_loss with a template that has {% generation %} markers.
        original = tokenizer.chat_template
        tokenizer.chat_template = CHATML_GENERATION
        entry["assistant_only"] = {
            "messages": prepare(tokenizer, MESSAGES, assistant_only_loss=True),
            "conversational": prepare(tokenizer, CONVERSATIONAL, assistant_only_loss=True),
            "conversational_full_loss": prepare(tokenizer, CONVERSATIONAL, assistant_only_loss=True, completion_only_loss=False),
        }
        tokenizer.chat_template = original
        expected["tokenizers"][tokenizer_name] = entry

    with open(os.path.join(args.out, "sft_data_expected.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(expected) + "\n")


if __name__ == "__main__":
    main()
