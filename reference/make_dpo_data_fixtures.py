#!/usr/bin/env python3
"""Golden fixtures for Finch's DPO data pipeline (FinchTrainingTests, issue 7 items 1–2): the
token ids TRL 1.16's own dataset preparation gives for a small preference dataset, and the prompt
strings of the DPO article's `chatml_format`.

Python is only the oracle: the Swift tests read what this script writes and never run Python.
Re-running the script reproduces identical bytes.

Usage (from the repo root, in the reference venv, see reference/README.md):

    python reference/make_dpo_data_fixtures.py --gguf ~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        [--out Tests/FinchTrainingTests/Fixtures]

What it runs:
- TRL 1.16 `DPOTrainer._prepare_dataset` (the trainer's own path: `extract_prompt` when the first
  row has no `prompt`, the string-level EOS for non-conversational rows, `_tokenize` — the
  tokenizer's default `add_special_tokens` for strings, `apply_chat_template(tokenize=True)` for
  conversations — and the split at the common prefix of the tokenized prompt and
  prompt+completion), called on a stand-in `self` that only carries the tokenizer, with
  `max_length=None` so that nothing is filtered; then, for a few `max_length` values, the same
  pre-filter (`len(prompt_ids) < max_length`, keep_start only) and `DataCollatorForPreference`
  with keep_start and keep_end, unpadded again with the attention mask.
- Two tokenizers: SmolLM2-135M-Instruct loaded by transformers from the GGUF (ChatML template that
  injects a default system turn; EOS `<|im_end|>`; no BOS added), and the Llama-2 tokenizer.json in
  Tests/FinchTokenizersTests/Fixtures/llama2 (adds BOS `<s>`; no chat template: the script gives it
  the ChatML fallback Finch uses, `ChatTemplate.chatMLSource`).
- Intel/orca_dpo_pairs-style rows rendered three ways: `conversation` (one
  `apply_chat_template([system?, user], add_generation_prompt=True)` call) and `two_calls` (the
  article's `chatml_format`: system turn and user turn rendered by separate calls), each answer +
  "\\n"; then the same TRL preparation as standard rows.

Writes, under OUT/dpo_data/: the input datasets (standard.jsonl and the same rows as .json,
.csv, .tsv and {"train": [...]} JSON; conversational.jsonl; implicit_standard.jsonl;
implicit_conversational.jsonl; orca.jsonl; eos_bos_edge.jsonl) and OUT/dpo_data_expected.json.
"""

import argparse
import csv
import io
import json
import os
import types

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from trl import DPOConfig  # noqa: E402
from trl.trainer.dpo_trainer import DataCollatorForPreference, DPOTrainer  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchTrainingTests", "Fixtures")
LLAMA2 = os.path.join(REPO_ROOT, "Tests", "FinchTokenizersTests", "Fixtures", "llama2")

# Finch's ChatTemplate.chatMLSource: transformers' old class-level default template, which the
# article's tokenizer (Phi-2, no template of its own) used.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LONG = (
    "Direct preference optimization trains a language model on pairs of answers to the same prompt, "
    "one preferred and one rejected, without fitting a separate reward model. The policy is pushed "
    "to raise the log-probability of the preferred answer relative to a frozen reference model and "
    "to lower that of the rejected one, with a temperature beta that sets how far it may drift."
)
LONG_ANSWER = (
    "The method replaces the reward model and the reinforcement learning loop of RLHF with a single "
    "classification-style loss on preference pairs, which makes it simpler and more stable to train."
)

# Explicit prompt, strings. Row 6 carries everything CSV quoting must survive.
STANDARD = [
    {"prompt": "What is 2+2?", "chosen": " 4", "rejected": " 5"},
    {"prompt": "The capital of Fra", "chosen": "nce is Paris.", "rejected": "nce is Lyon."},
    {"prompt": "Quelle est la capitale de la France ?", "chosen": " Paris, évidemment.", "rejected": " Lyon 🇫🇷"},
    {"prompt": "日本の首都は？", "chosen": "東京です。", "rejected": "大阪です。"},
    {"prompt": "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n", "chosen": "Hi!<|im_end|>", "rejected": "Go away.</s>"},
    {"prompt": 'Write a haiku about "quotes", commas,\tand\nnewlines:', "chosen": 'Commas, "quotes" —\r\nnew lines fall like rain\n', "rejected": "no"},
    {"prompt": "Summarize: " + LONG, "chosen": " DPO learns from preference pairs.", "rejected": " It is a kind of pasta."},
    {"prompt": "Café or thé? ", "chosen": "Cafe\u0301, s'il vous plaît.", "rejected": "Thé."},
    {"prompt": "Pick one.", "chosen": " A", "rejected": " A"},
    {"prompt": "Why DPO?", "chosen": " " + LONG_ANSWER, "rejected": " Because."},
]

CONVERSATIONAL = [
    {"prompt": [{"role": "user", "content": "What color is the sky?"}],
     "chosen": [{"role": "assistant", "content": "It is blue."}],
     "rejected": [{"role": "assistant", "content": "It is green."}]},
    {"prompt": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a prime."}],
     "chosen": [{"role": "assistant", "content": "7"}],
     "rejected": [{"role": "assistant", "content": "Nine."}]},
    {"prompt": [{"role": "user", "content": "Bonjour !"}, {"role": "assistant", "content": "Bonjour ! Comment puis-je aider ?"},
                {"role": "user", "content": "Traduis « chat » en anglais."}],
     "chosen": [{"role": "assistant", "content": "« Cat »."}],
     "rejected": [{"role": "assistant", "content": "« Dog »."}]},
    {"prompt": [{"role": "user", "content": "Summarize: " + LONG}],
     "chosen": [{"role": "assistant", "content": "DPO learns from preference pairs."}],
     "rejected": [{"role": "assistant", "content": "No."}]},
    {"prompt": [{"role": "user", "content": "日本の首都は？"}],
     "chosen": [{"role": "assistant", "content": "東京です。"}],
     "rejected": [{"role": "assistant", "content": "東京です。"}]},
    {"prompt": [{"role": "user", "content": "Why DPO?"}],
     "chosen": [{"role": "assistant", "content": LONG_ANSWER}],
     "rejected": [{"role": "assistant", "content": "Because."}]},
]

# No prompt: TRL's extract_prompt. Rows 1 and 6: the space before the first difference goes to the
# completions; 2 and 4: one is a prefix of the other (the split falls at the last compared
# index); 3: the first characters differ and chosen ends with a space, so Python's index −1 puts
# all but the last character of chosen in the prompt; 5: the difference is a combining accent
# (Python compares code points, not graphemes); 7: two flags sharing their first code point.
IMPLICIT_STANDARD = [
    {"chosen": "Human: What color is the sky?\n\nAssistant: It is blue.", "rejected": "Human: What color is the sky?\n\nAssistant: It is green."},
    {"chosen": "Human: Name a fruit.\n\nAssistant: Apple", "rejected": "Human: Name a fruit.\n\nAssistant: Apple pie"},
    {"chosen": "Yes ", "rejected": "No"},
    {"chosen": "Same answer.", "rejected": "Same answer."},
    {"chosen": "Un cafe\u0301 noir", "rejected": "Un cafe\u0300 noir"},
    {"chosen": "Q: 2+2?\nA: 4", "rejected": "Q: 2+2?\nA: 5"},
    {"chosen": "Drapeau : 🇫🇷", "rejected": "Drapeau : 🇫🇮"},
]

IMPLICIT_CONVERSATIONAL = [
    {"chosen": [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is blue."}],
     "rejected": [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is green."}]},
    {"chosen": [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Salut !"}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
     "rejected": [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Salut !"}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "Five"}]},
    {"chosen": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}],
     "rejected": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"},
                  {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye!"}]},
]

ORCA = [
    {"system": "You are an AI assistant. Provide a detailed answer so user don’t need to search outside to understand the answer.",
     "question": "What is the boiling point of water at sea level?",
     "chosen": "At sea level, water boils at 100 °C (212 °F).", "rejected": "It boils at 90 degrees."},
    {"system": "", "question": "Translate to German: good morning",
     "chosen": "Guten Morgen", "rejected": "Gute Nacht"},
    {"system": "Vous êtes un assistant serviable.", "question": "Quelle est la racine carrée de 81 ?",
     "chosen": "La racine carrée de 81 est 9.", "rejected": "C’est 8,5."},
    {"system": "You are a summarizer.", "question": "Summarize: " + LONG,
     "chosen": "DPO learns from preference pairs.", "rejected": "No."},
]

# Rows where Finch deliberately differs from TRL 1.16 (reference/trl-dpo.md §1.4, issue 7: never a
# doubled BOS or EOS). 1: the prompt text already starts with the BOS string; a tokenizer that
# adds BOS gives two. 2: completions that end with the EOS string followed by a newline (the
# DPO-on-Mistral article's `chatml_format` writes answer + "<|im_end|>\n"); TRL appends another.
EOS_BOS_EDGE = [
    {"prompt": "<s>[INST] Say hi [/INST]", "chosen": " Hi!", "rejected": " No."},
    {"prompt": "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n", "chosen": "Hi!<|im_end|>\n", "rejected": "No.</s>\n"},
]


def write_jsonl(path, rows, blank_after=None):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            if blank_after is not None and i == blank_after:
                f.write("\n")


def write_delimited(path, rows, delimiter):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(["prompt", "chosen", "rejected"])
    for row in rows:
        writer.writerow([row["prompt"], row["chosen"], row["rejected"]])
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())


def chatml_format(tokenizer, example):
    """The article's `chatml_format` ("Optimizing Small Language Models on a Free T4 GPU", the Phi-2
    DPO recipe, after Labonne's NeuralHermes notebook): system and user turns rendered by two
    separate apply_chat_template calls, each answer + "\\n"."""
    if len(example["system"]) > 0:
        message = {"role": "system", "content": example["system"]}
        system = tokenizer.apply_chat_template([message], tokenize=False)
    else:
        system = ""
    message = {"role": "user", "content": example["question"]}
    prompt = tokenizer.apply_chat_template([message], tokenize=False, add_generation_prompt=True)
    return {"prompt": system + prompt, "chosen": example["chosen"] + "\n", "rejected": example["rejected"] + "\n"}


def conversation_format(tokenizer, example):
    """The one-call rendering: [system (if non-empty), user] with the generation prompt."""
    messages = [{"role": "system", "content": example["system"]}] if example["system"] else []
    messages.append({"role": "user", "content": example["question"]})
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return {"prompt": prompt, "chosen": example["chosen"] + "\n", "rejected": example["rejected"] + "\n"}


def prepare(tokenizer, rows):
    """TRL 1.16's DPOTrainer._prepare_dataset with nothing filtered (max_length=None)."""
    stub = types.SimpleNamespace(_tokenizer=tokenizer)
    args = DPOConfig(output_dir="/tmp/finch-dpo-data-fixtures", max_length=None, use_cpu=True, bf16=False,
                     report_to="none")
    prepared = DPOTrainer._prepare_dataset(stub, Dataset.from_list(rows), tokenizer, args, "train")
    return [dict(row) for row in prepared]


def truncations(prepared, pad_id, max_lengths):
    """For each max_length: TRL's keep_start pre-filter, and DataCollatorForPreference's per-sequence
    truncation with keep_start (on the kept rows) and keep_end (on all rows), unpadded."""
    out = []
    for max_length in max_lengths:
        kept = [i for i, row in enumerate(prepared) if len(row["prompt_ids"]) < max_length]
        entry = {"max_length": max_length, "kept": kept}
        for mode, indices in (("keep_start", kept), ("keep_end", list(range(len(prepared))))):
            collator = DataCollatorForPreference(pad_token_id=pad_id, max_length=max_length, truncation_mode=mode)
            examples = [{k: prepared[i][k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for i in indices]
            batch = collator(examples) if examples else None
            sequences = []
            for j in range(len(indices)):
                item = {}
                for side, row in (("chosen", j), ("rejected", j + len(indices))):
                    mask = batch["attention_mask"][row].tolist()
                    n = sum(mask)
                    assert mask == [1] * n + [0] * (len(mask) - n)
                    item[side + "_input_ids"] = batch["input_ids"][row].tolist()[:n]
                    item[side + "_completion_mask"] = batch["completion_mask"][row].tolist()[:n]
                sequences.append(item)
            entry[mode] = sequences
        out.append(entry)
    return out


def pick_max_lengths(prepared):
    """Two values that matter for this data: one that drops the pairs with the longest prompts
    (and cuts completions of others), one just above every prompt (cuts completions only)."""
    prompts = sorted(len(r["prompt_ids"]) for r in prepared)
    longest = prompts[-1]
    second = max(p for p in prompts if p < longest) if any(p < longest for p in prompts) else longest
    return [second + 2, longest + 3]


def record(tokenizer, rows, lines, pad_id):
    prepared = prepare(tokenizer, rows)
    return {
        "rows": [
            {"line": line, "prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
             "prompt_ids": r["prompt_ids"], "chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]}
            for line, r in zip(lines, prepared)
        ],
        "truncation": truncations(prepared, pad_id, pick_max_lengths(prepared)),
    }


def dumps(value, indent=""):
    """JSON with one key per line but each list of numbers on one line (diffs stay readable)."""
    inner = indent + " "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(value[k], inner)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"
    if isinstance(value, list) and value and not all(isinstance(x, int) for x in value):
        return "[\n" + ",\n".join(inner + dumps(x, inner) for x in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, help="SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()

    data_dir = os.path.join(args.out, "dpo_data")
    os.makedirs(data_dir, exist_ok=True)
    # standard.jsonl has a blank line after its 4th row (readers skip it; line numbers count it).
    write_jsonl(os.path.join(data_dir, "standard.jsonl"), STANDARD, blank_after=3)
    standard_lines = [i + 1 if i <= 3 else i + 2 for i in range(len(STANDARD))]
    with open(os.path.join(data_dir, "standard.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(STANDARD, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(os.path.join(data_dir, "standard_split.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump({"version": 1, "train": STANDARD}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    write_delimited(os.path.join(data_dir, "standard.csv"), STANDARD, ",")
    write_delimited(os.path.join(data_dir, "standard.tsv"), STANDARD, "\t")
    datasets_files = {
        "standard": (STANDARD, standard_lines),
        "conversational": (CONVERSATIONAL, None),
        "implicit_standard": (IMPLICIT_STANDARD, None),
        "implicit_conversational": (IMPLICIT_CONVERSATIONAL, None),
        "eos_bos_edge": (EOS_BOS_EDGE, None),
    }
    for name, (rows, _) in datasets_files.items():
        if name != "standard":
            write_jsonl(os.path.join(data_dir, name + ".jsonl"), rows)
    write_jsonl(os.path.join(data_dir, "orca.jsonl"), ORCA)

    smollm2_dir, smollm2_file = os.path.split(os.path.abspath(os.path.expanduser(args.gguf)))
    smollm2 = AutoTokenizer.from_pretrained(smollm2_dir, gguf_file=smollm2_file)
    llama2 = AutoTokenizer.from_pretrained(LLAMA2)
    llama2.chat_template = CHATML
    # The article's chatml_format with the ChatML fallback, for the byte-identity test.
    chatml = AutoTokenizer.from_pretrained(LLAMA2)
    chatml.chat_template = CHATML

    expected = {
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "datasets": datasets.__version__},
        "article_chatml_format": [chatml_format(chatml, row) for row in ORCA],
        "tokenizers": {},
    }
    for tokenizer_name, tokenizer in (("smollm2", smollm2), ("llama2", llama2)):
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        entry = {"bos_token": tokenizer.bos_token, "eos_token": tokenizer.eos_token, "datasets": {}}
        for name, (rows, lines) in datasets_files.items():
            lines = lines or list(range(1, len(rows) + 1))
            entry["datasets"][name] = record(tokenizer, rows, lines, pad_id)
        orca_lines = list(range(1, len(ORCA) + 1))
        entry["datasets"]["orca_conversation"] = record(tokenizer, [conversation_format(tokenizer, r) for r in ORCA], orca_lines, pad_id)
        entry["datasets"]["orca_two_calls"] = record(tokenizer, [chatml_format(tokenizer, r) for r in ORCA], orca_lines, pad_id)
        expected["tokenizers"][tokenizer_name] = entry

    with open(os.path.join(args.out, "dpo_data_expected.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(expected) + "\n")


if __name__ == "__main__":
    main()
