#!/usr/bin/env python3
"""Golden fixtures for Finch's DPO parity tests (FinchTrainingTests, issue 7): real TRL 1.16
`DPOTrainer` + PEFT 0.21.2 runs on two tiny random models that carry a real (tiny) tokenizer and
SmolLM2's chat template, so the whole pipeline — EOS handling, chat template, joint tokenization
and split, dropping and truncation, batching, data order, the losses, the reference pass,
accumulation, clipping, AdamW, the cosine schedule and every logged metric — can be compared.

Python is only the oracle: the Swift tests read what this script writes and never run Python.
fp32 on the CPU, eager attention, one thread, `torch.use_deterministic_algorithms(True)`, fixed
seeds and fixed data; re-running the script reproduces identical bytes (every file, including the
model folders; checked with `sha256sum`).

Usage (from the repo root, in the reference venv, see reference/README.md):

    nice -n 10 python reference/make_dpo_fixtures.py [--out Tests/FinchTrainingTests/Fixtures/dpo]

About 20 seconds, 1.1 GB peak RSS. No network.

What it writes into OUT (every key is described in OUT/README.md):

- `tokenizer_source.txt`: the fixed corpus the tokenizer was trained on.
- `tiny_llama_dpo/`, `tiny_phi_dpo/`: tiny random models saved with `save_pretrained` (fp32
  safetensors, config.json, generation_config.json) plus the tokenizer (tokenizer.json,
  tokenizer_config.json, chat_template.jinja), so `AutoTokenizer` / `AutoProcessor` and Finch's
  own loaders both read the folder like a real model.
    * tokenizer: byte-level BPE trained with the `tokenizers` library (BpeTrainer, vocab 384 =
      3 special + 256 byte symbols + 125 merges, min_frequency 2) on `tokenizer_source.txt`;
      ByteLevel pre-tokenizer (GPT-2 regex, no prefix space), ByteLevel decoder, a
      TemplateProcessing post-processor that adds nothing. Special tokens and roles exactly as
      SmolLM2-135M-Instruct has them: id 0 `<|endoftext|>` (unk), id 1 `<|im_start|>` (bos),
      id 2 `<|im_end|>` (eos and pad); no BOS is added when encoding. The chat template is
      SmolLM2's ChatML template verbatim (it injects SmolLM2's default system prompt when the
      first message is not a system message).
    * tiny_llama_dpo: LlamaForCausalLM, hidden 64, 2 layers, 4 heads (head_dim 16), 2 KV heads,
      intermediate 128, SiLU, RMSNorm eps 1e-5, RoPE theta 10000, tied embeddings.
    * tiny_phi_dpo: PhiForCausalLM, hidden 64, 2 layers, 4 heads (head_dim 16),
      partial_rotary_factor 0.5 (rotary dim 8), intermediate 128, gelu_new, LayerNorm eps 1e-5,
      untied lm_head (with bias). resid_pdrop = embd_pdrop = 0.1 on purpose: those are
      nn.Dropout modules, which TRL's `disable_dropout=True` sets to p = 0 (checked below), so
      a port must ignore them in DPO training (attention_dropout is a functional dropout that
      TRL would *not* disable, so it is 0).
    * Both: vocab 384, initializer_range 0.15 (logits of order 1, as in make_inference_fixtures),
      every bias and norm weight perturbed by 0.1·N(0,1) so a dropped bias or norm shows.
- `dpo_data.jsonl` (14 standard rows), `dpo_data_eval.jsonl` (3 standard rows),
  `dpo_data_conversational.jsonl` (6 conversational rows): the datasets, one JSON object per line.
- `dpo_<run>.json` and `dpo_<run>.safetensors` for each run below.

The runs (TRL `DPOTrainer`, PEFT LoRA r 4, alpha 8, dropout 0, target_modules "all-linear" —
resolved to q/k/v/o/gate/up/down for Llama and q/k/v/dense/fc1/fc2 for Phi; lm_head is never a
target — fresh adapter via `peft_config` unless stated; batch 2 × accumulation 2, lr 5e-3 cosine
with 2 warmup steps, max_grad_norm 1.0 unless stated (set per run so that some steps clip),
beta 0.1, max_length 48, keep_start, seed 42, the default `adamw_torch_fused` with weight decay 0,
gradient_checkpointing False, logging_steps 1, fp32 on the CPU):

    llama_sigmoid        (a) main run: sigmoid, reference = adapter disabled, 10 steps,
                             eval on dpo_data_eval.jsonl every 5 steps
    phi_sigmoid          (b) the same on tiny_phi_dpo, max_grad_norm 0.5
    llama_ipo            (c) 4 steps each, no eval
    llama_hinge
    llama_robust             (label_smoothing 0.1)
    llama_sigmoid_norm       (max_grad_norm 0.1)
    llama_sigmoid_sft        (loss_type ["sigmoid", "sft"], loss_weights [1.0, 0.5])
    llama_ref_adapter    (d) the model is a PeftModel loaded (is_trainable=True) from run (a)'s
                             final adapter, no peft_config: TRL adds a frozen copy named "ref" and
                             uses it as the reference; 5 steps
    llama_precompute     (e) run (a) with precompute_ref_log_probs=True (the reference log-probs
                             of every example are computed once at __init__, by the policy with
                             the adapter disabled, in dataset order with batch size 2)
    llama_conversational (f) dpo_data_conversational.jsonl through the chat template, 3 steps,
                             max_length 64

How the fixtures are observed without changing what TRL computes:
- the data order: the trainer's `data_collator` (TRL's own DataCollatorForPreference) is wrapped
  after construction, and each collated example is identified by its (prompt_ids, chosen_ids,
  rejected_ids), which are unique in these datasets. accelerate prefetches one micro-batch ahead,
  so collations are matched to `compute_loss` calls in order and any extra collation is ignored;
- per-micro-batch values: `compute_loss` and `log` are wrapped in a subclass that only records
  (the loss each micro-batch returned before the Trainer divides it by the accumulation count,
  and the lists TRL averages at each log);
- the logs: a TrainerCallback's `on_log`, with wall-clock keys (runtime, per-second rates)
  removed so the files are reproducible.

Self-checks: the prepared examples are re-derived with TRL's own `_prepare_dataset` (without the
length filter, to show the dropped row) and must match what the trainer holds; the logged loss of
every step must equal the sum of its micro-batch losses over the micro-batch count; the "ref"
adapter must be unchanged after run (d) and equal to run (a)'s final adapter; and for every
fresh-adapter run the logps/* and logits/* of the steps-1/2 micro-batches (policy = base model)
are recomputed in float64 with plain transformers from nothing but the JSON's tokenized examples
and data order (difference ≈ 1e-5 on log-probs of ≈ 100, recorded in the JSON).

No workaround was needed: TRL 1.16 + transformers 5.24 + PEFT 0.21.2 run every configuration
above on the CPU with `use_cpu=True, bf16=False`. What a port must reproduce (and what surprised)
is listed in OUT/README.md, "TRL behaviour the fixtures pin down".
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import types

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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchTrainingTests", "Fixtures", "dpo")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_inference_fixtures import config_summary, randomize_, sha256_file  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Tokenizer, chat template, data
# ---------------------------------------------------------------------------------------------

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2 as in SmolLM2
VOCAB_SIZE = 384

# SmolLM2-135M-Instruct's chat template, verbatim (tokenizer.chat_template of its GGUF / HF repo).
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)

CORPUS_PARAGRAPHS = [
    # The chat scaffolding ten times, so that SmolLM2's default system prompt and the role names
    # get merges of their own (as in a real chat tokenizer) and conversational prompts stay short.
    *["system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\nuser\nassistant\n"] * 10,
    "The quick brown fox jumps over the lazy dog. The lazy dog sleeps in the sun while the fox "
    "runs into the forest. A small model learns to answer short questions with short answers.",
    "What is the capital of France? The capital of France is Paris. What is the capital of "
    "Italy? The capital of Italy is Rome. What is the capital of Spain? It is Madrid.",
    "Water boils at one hundred degrees at sea level. Ice melts when the temperature rises "
    "above zero degrees, and water freezes when it falls below zero.",
    "A spider has eight legs and an ant has six legs. Birds have two legs and two wings. Fish "
    "have fins and no legs at all.",
    "Red, yellow and blue are the primary colours of paint. Mixing red and blue gives purple; "
    "mixing yellow and blue gives green.",
    "Seven times six is forty-two. Two plus two is four. Ten minus three is seven. In Python, "
    "2 + 2 evaluates to 4 and 7 * 6 evaluates to 42.",
    "The history of writing is long: people wrote on clay, on stone, on paper and now on "
    "screens. Books helped new ideas spread from one town to the next.",
    "Please answer the question in one short sentence. Say hello to the user, then explain "
    "the answer step by step.",
    "Apples, pears and bananas are fruits; carrots and potatoes are vegetables.",
    "Un café, s'il vous plaît. Ein Kaffee, bitte. Größe, naïve, São Paulo.",
]

# Standard rows (prompt/chosen/rejected strings). Edge cases (see OUT/README.md for the effect):
#  row 4: non-ASCII text in prompt and completions;
#  row 5: the prompt ends with a space, so the tokenized prompt is not a prefix of the tokenized
#         prompt+completion (" fox" merges across the boundary) and TRL's common-prefix split
#         moves the completion start one token left;
#  row 6: prompt + chosen exceeds max_length (48): the chosen sequence is truncated (loses EOS);
#  row 7: the prompt alone is ≥ 48 tokens: TRL drops the pair at preparation time;
#  row 12: chosen already ends with the EOS string, so TRL does not append another one;
#  row 11: a prompt ending in a newline.
STANDARD_ROWS = [
    {"prompt": "What is the capital of France?", "chosen": " The capital of France is Paris.",
     "rejected": " It is Rome."},
    {"prompt": "How many legs does a spider have?", "chosen": " A spider has eight legs.",
     "rejected": " Six legs, like an ant."},
    {"prompt": "Name a primary colour of paint.", "chosen": " Blue.", "rejected": " Purple."},
    {"prompt": "What is seven times six?", "chosen": " Seven times six is forty-two.",
     "rejected": " It is thirty-six."},
    {"prompt": "Traduis « café » en allemand.", "chosen": " Kaffee ☕", "rejected": " Café, naïve Größe."},
    {"prompt": "Complete the phrase: the quick brown ", "chosen": "fox jumps over the lazy dog.",
     "rejected": "cat sleeps."},
    {"prompt": "Explain in one sentence why ice melts.",
     "chosen": " Ice melts when the temperature rises above zero degrees, because the water "
               "molecules start to move and the solid turns into liquid water at sea level.",
     "rejected": " Ice is cold."},
    {"prompt": "Read the following text and then answer the question at the end. The history of "
               "writing is long: people wrote on clay, on stone, on paper and now on screens. "
               "Question: what did people write on first?",
     "chosen": " On clay.", "rejected": " On screens."},
    {"prompt": "Is water wet?", "chosen": " Yes, water makes things wet.", "rejected": " No."},
    {"prompt": "When does water freeze?", "chosen": " When it falls below zero degrees.",
     "rejected": " At one hundred degrees."},
    {"prompt": "Write a Python expression for two plus two.", "chosen": " 2 + 2",
     "rejected": " two plus two"},
    {"prompt": "List two fruits:\n", "chosen": "- apple\n- pear", "rejected": "- carrot"},
    {"prompt": "What is the capital of Italy?", "chosen": " Rome.<|im_end|>", "rejected": " Paris."},
    {"prompt": "Say hello.", "chosen": " Hello! How can I help you?", "rejected": " Goodbye."},
]

EVAL_ROWS = [
    {"prompt": "What is the capital of Spain?", "chosen": " It is Madrid.", "rejected": " It is Paris."},
    {"prompt": "How many legs does an ant have?", "chosen": " Six legs.", "rejected": " Eight legs."},
    {"prompt": "What do you get when you mix red and blue?", "chosen": " Purple.", "rejected": " Green."},
]

CONVERSATIONAL_ROWS = [
    {"prompt": [{"role": "user", "content": "What is the capital of France?"}],
     "chosen": [{"role": "assistant", "content": "Paris."}],
     "rejected": [{"role": "assistant", "content": "Rome."}]},
    {"prompt": [{"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "How many legs does a spider have?"}],
     "chosen": [{"role": "assistant", "content": "Eight."}],
     "rejected": [{"role": "assistant", "content": "Six."}]},
    {"prompt": [{"role": "user", "content": "Say hello."}],
     "chosen": [{"role": "assistant", "content": "Hello! How can I help you?"}],
     "rejected": [{"role": "assistant", "content": "Goodbye."}]},
    {"prompt": [{"role": "user", "content": "What is two plus two?"},
                {"role": "assistant", "content": "Four."},
                {"role": "user", "content": "And seven times six?"}],
     "chosen": [{"role": "assistant", "content": "Forty-two."}],
     "rejected": [{"role": "assistant", "content": "Thirty-six."}]},
    {"prompt": [{"role": "user", "content": "Un café, s'il vous plaît."}],
     "chosen": [{"role": "assistant", "content": "Voilà ☕"}],
     "rejected": [{"role": "assistant", "content": "Non."}]},
    {"prompt": [{"role": "user", "content": "When does ice melt?"}],
     "chosen": [{"role": "assistant", "content": "Above zero degrees."}],
     "rejected": [{"role": "assistant", "content": "Never."}]},
]


def corpus_text():
    """The tokenizer's training corpus: the fixed paragraphs, then every string of the datasets
    (so the tiny vocabulary covers them well). Paragraphs are separated by a blank line."""
    parts = list(CORPUS_PARAGRAPHS)
    for row in STANDARD_ROWS + EVAL_ROWS:
        parts += [row["prompt"] + row["chosen"], row["prompt"] + row["rejected"]]
    for row in CONVERSATIONAL_ROWS:
        for m in row["prompt"] + row["chosen"] + row["rejected"]:
            parts.append(m["content"])
    return "\n\n".join(p.replace("<|im_end|>", "") for p in parts) + "\n"


def build_tokenizer(corpus):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus.split("\n\n"), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B:1", special_tokens=[])
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>",
                                   model_max_length=128, clean_up_tokenization_spaces=False)
    fast.chat_template = SMOLLM2_CHAT_TEMPLATE
    return fast


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json(path, obj):
    text = json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def model_specs(vocab):
    from transformers import LlamaConfig, LlamaForCausalLM, PhiConfig, PhiForCausalLM
    common = dict(vocab_size=vocab, max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
                  pad_token_id=2, initializer_range=0.15, dtype="float32")
    return [
        ("tiny_llama_dpo", 11, LlamaForCausalLM, LlamaConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, intermediate_size=128, hidden_act="silu", tie_word_embeddings=True,
            rms_norm_eps=1e-5, attention_dropout=0.0,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **common)),
        ("tiny_phi_dpo", 12, PhiForCausalLM, PhiConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            intermediate_size=128, hidden_act="gelu_new", layer_norm_eps=1e-5, tie_word_embeddings=False,
            resid_pdrop=0.1, embd_pdrop=0.1, attention_dropout=0.0,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
            **common)),
    ]


def build_models(out, tokenizer):
    summaries = {}
    for name, seed, cls, cfg in model_specs(len(tokenizer)):
        folder = os.path.join(out, name)
        shutil.rmtree(folder, ignore_errors=True)
        torch.manual_seed(seed)
        model = cls(cfg).eval()
        changed = randomize_(model)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        reloaded = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
        summaries[name] = {
            "class": cls.__name__,
            "seed": seed,
            "config": config_summary(reloaded.config),
            "num_parameters": sum(p.numel() for p in reloaded.parameters()),
            "randomized_parameters": changed,
            "files": {f: {"bytes": os.path.getsize(os.path.join(folder, f)),
                          "sha256": sha256_file(os.path.join(folder, f))} for f in sorted(os.listdir(folder))},
        }
        del model, reloaded
    return summaries


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

MAX_LENGTH = 48
COMMON = dict(
    per_device_train_batch_size=2, per_device_eval_batch_size=2, gradient_accumulation_steps=2,
    learning_rate=5e-3, lr_scheduler_type="cosine", warmup_steps=2, max_grad_norm=1.0, beta=0.1,
    max_length=MAX_LENGTH, truncation_mode="keep_start", num_train_epochs=1000, seed=42,
    gradient_checkpointing=False, logging_steps=1, report_to=[], use_cpu=True, bf16=False, fp16=False,
    save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
)
LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", bias="none", task_type="CAUSAL_LM")

RUNS = [
    {"name": "llama_sigmoid", "case": "a", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "eval": "dpo_data_eval.jsonl", "config": {"max_steps": 10, "loss_type": ["sigmoid"],
                                               "eval_strategy": "steps", "eval_steps": 5}},
    {"name": "phi_sigmoid", "case": "b", "model": "tiny_phi_dpo", "data": "dpo_data.jsonl",
     "eval": "dpo_data_eval.jsonl", "config": {"max_steps": 10, "loss_type": ["sigmoid"], "max_grad_norm": 0.5,
                                               "eval_strategy": "steps", "eval_steps": 5}},
    {"name": "llama_ipo", "case": "c", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "config": {"max_steps": 4, "loss_type": ["ipo"]}},
    {"name": "llama_hinge", "case": "c", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "config": {"max_steps": 4, "loss_type": ["hinge"]}},
    {"name": "llama_robust", "case": "c", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "config": {"max_steps": 4, "loss_type": ["robust"], "label_smoothing": 0.1}},
    {"name": "llama_sigmoid_norm", "case": "c", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "config": {"max_steps": 4, "loss_type": ["sigmoid_norm"], "max_grad_norm": 0.1}},
    {"name": "llama_sigmoid_sft", "case": "c", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "config": {"max_steps": 4, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}},
    {"name": "llama_ref_adapter", "case": "d", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "start_adapter_from": "llama_sigmoid", "config": {"max_steps": 5, "loss_type": ["sigmoid"]}},
    {"name": "llama_precompute", "case": "e", "model": "tiny_llama_dpo", "data": "dpo_data.jsonl",
     "eval": "dpo_data_eval.jsonl", "compare_to": "llama_sigmoid",
     "config": {"max_steps": 10, "loss_type": ["sigmoid"], "eval_strategy": "steps", "eval_steps": 5,
                "precompute_ref_log_probs": True}},
    {"name": "llama_conversational", "case": "f", "model": "tiny_llama_dpo",
     "data": "dpo_data_conversational.jsonl", "config": {"max_steps": 3, "loss_type": ["sigmoid"], "max_length": 64}},
]

WALL_CLOCK_KEYS = ("runtime", "per_second")


def adapter_name(n):
    """PEFT parameter name → the name PEFT writes in adapter_model.safetensors, without the
    `base_model.model.` prefix (as in training_run.safetensors)."""
    return n.removeprefix("base_model.model.").replace(".default.", ".")


def plain(v):
    """Enums (OptimizerNames, SchedulerType, IntervalStrategy …) as their string values."""
    return getattr(v, "value", v)


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def key_of(example):
    return (tuple(example["prompt_ids"]), tuple(example["chosen_ids"]), tuple(example["rejected_ids"]))


def make_trainer_class():
    from trl import DPOTrainer

    class RecordingDPOTrainer(DPOTrainer):
        """DPOTrainer that records, without changing anything it computes."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss = out[0] if return_outputs else out
            self.recorded_losses.append({"mode": "train" if self.model.training else "eval",
                                         "global_step": self.state.global_step,
                                         "loss": float(loss.detach().item()),
                                         "rows": int(inputs["input_ids"].shape[0]),
                                         "width": int(inputs["input_ids"].shape[1])})
            return out

        def log(self, logs, start_time=None):
            mode = "train" if self.model.training else "eval"
            self.recorded_metric_lists.append({"mode": mode, "global_step": self.state.global_step,
                                               "lists": {k: [float(x) for x in v]
                                                         for k, v in self._metrics[mode].items()}})
            return super().log(logs, start_time)

    return RecordingDPOTrainer


class LogRecorder:
    def __init__(self):
        from transformers import TrainerCallback

        outer = self

        class CB(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                clean = {k: v for k, v in (logs or {}).items() if not any(w in k for w in WALL_CLOCK_KEYS)}
                outer.logs.append({"global_step": state.global_step, **clean})

        self.logs = []
        self.callback = CB()


def prepare_all(trainer, dataset, tokenizer):
    """TRL's own `_prepare_dataset` with max_length None: the tokenized form of every row,
    including the ones the real preparation drops."""
    args = types.SimpleNamespace(dataset_num_proc=None, max_length=None, truncation_mode="keep_start")
    prepared = trainer._prepare_dataset(dataset, tokenizer, args, "all")
    return [{"prompt_ids": list(e["prompt_ids"]), "chosen_ids": list(e["chosen_ids"]),
             "rejected_ids": list(e["rejected_ids"])} for e in prepared]


def tokenized_examples(trainer, raw_rows, tokenizer, max_length, prepared_dataset, split):
    """Every raw row, tokenized as TRL prepares it, with its fate (kept → prepared index, or
    dropped) and what the collator's truncation does to it."""
    from datasets import Dataset
    from trl.data_utils import is_conversational

    all_tok = prepare_all(trainer, Dataset.from_list(raw_rows), tokenizer)
    kept = [key_of(e) for e in prepared_dataset]
    out, k = [], 0
    for i, (row, e) in enumerate(zip(raw_rows, all_tok)):
        p, c, r = e["prompt_ids"], e["chosen_ids"], e["rejected_ids"]
        dropped = len(p) >= max_length
        rec = {"row": i, "split": split, "conversational": bool(is_conversational(row)),
               "prompt_ids": p, "chosen_ids": c, "rejected_ids": r,
               "prompt_len": len(p), "chosen_len": len(c), "rejected_len": len(r),
               "dropped": dropped}
        if not dropped:
            assert kept[k] == key_of(e), (i, k)
            rec["prepared_index"] = k
            k += 1
            rec["chosen_truncated"] = len(p) + len(c) > max_length
            rec["rejected_truncated"] = len(p) + len(r) > max_length
            rec["chosen_len_after_truncation"] = max(0, min(len(p) + len(c), max_length) - len(p))
            rec["rejected_len_after_truncation"] = max(0, min(len(p) + len(r), max_length) - len(p))
        # The exact strings TRL tokenized (standard rows: EOS text appended to each completion
        # unless it already ends with it; conversational rows: the chat template's renderings).
        if is_conversational(row):
            render = lambda msgs, gen: tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
            texts = [render(row["prompt"], True), render(row["prompt"] + row["chosen"], False),
                     render(row["prompt"] + row["rejected"], False)]
        else:
            eos = tokenizer.eos_token
            texts = [row["prompt"], row["prompt"] + row["chosen"] + ("" if row["chosen"].endswith(eos) else eos),
                     row["prompt"] + row["rejected"] + ("" if row["rejected"].endswith(eos) else eos)]
        rec["text_prompt"], rec["text_prompt_chosen"], rec["text_prompt_rejected"] = texts
        assert tokenizer(texts[1], add_special_tokens=not is_conversational(row))["input_ids"] == p + c, i
        assert tokenizer(texts[2], add_special_tokens=not is_conversational(row))["input_ids"] == p + r, i
        # How the split came out: the plain-prefix split of §1.2 vs TRL 1.16's common-prefix one.
        p_alone = tokenizer(texts[0], add_special_tokens=not is_conversational(row))["input_ids"]
        rec["prompt_ids_alone"] = list(p_alone)
        rec["prompt_split_moved"] = len(p_alone) != len(p)
        out.append(rec)
    assert k == len(kept), (k, len(kept))
    return out


def run_one(spec, out, tmp, results, final_tensors):
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

    name = spec["name"]
    folder = os.path.join(out, spec["model"])
    cfg = dict(COMMON)
    cfg.update(spec["config"])
    cfg["output_dir"] = os.path.join(tmp, f"out_{name}")
    args = DPOConfig(**cfg)

    raw_rows = read_jsonl(os.path.join(out, spec["data"]))
    train_ds = Dataset.from_list(raw_rows)
    eval_rows = read_jsonl(os.path.join(out, spec["eval"])) if spec.get("eval") else None
    eval_ds = Dataset.from_list(eval_rows) if eval_rows else None

    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    if spec.get("start_adapter_from"):
        adapter_dir = os.path.join(tmp, f"adapter_{spec['start_adapter_from']}")
        model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=True)
        peft_config = None
    else:
        model = base
        peft_config = LoraConfig(**LORA)

    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(folder)

    trainer_cls = make_trainer_class()
    recorder = LogRecorder()
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          processing_class=tokenizer, peft_config=peft_config, callbacks=[recorder.callback])
    trainer.recorded_losses = []
    trainer.recorded_metric_lists = []

    # Every nn.Dropout must be off (TRL's disable_dropout), so the run is deterministic and portable.
    dropouts = [(n, m.p) for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert all(p == 0 for _, p in dropouts), dropouts

    # Wrap the collator to see the data order.
    train_keys = {key_of(e): i for i, e in enumerate(trainer.train_dataset)}
    assert len(train_keys) == len(trainer.train_dataset), "prepared train examples must be unique"
    eval_keys = {key_of(e): i for i, e in enumerate(trainer.eval_dataset)} if eval_ds is not None else {}
    collations = {"train": [], "eval": []}
    inner = trainer.data_collator

    def recording_collator(examples):
        keys = [key_of(e) for e in examples]
        batch = inner(examples)
        rec = {"attention_tokens": int(batch["attention_mask"].sum()),
               "completion_tokens": int(batch["completion_mask"].sum())}
        if all(k in train_keys for k in keys):
            collations["train"].append(([train_keys[k] for k in keys], rec))
        elif all(k in eval_keys for k in keys):
            collations["eval"].append(([eval_keys[k] for k in keys], rec))
        else:
            raise AssertionError("collated examples not found in the prepared datasets")
        return batch

    trainer.data_collator = recording_collator

    # The adapter before training.
    peft_model = trainer.model
    trainable = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    all_lora = [(n, p) for n, p in peft_model.named_parameters() if "lora_" in n]
    tensors = {}
    for n, p in all_lora:
        if ".default." in n:
            tensors[f"initial.{adapter_name(n)}"] = f32(p)
    ref_initial = {n: p.detach().clone() for n, p in all_lora if ".ref." in n}
    if spec.get("start_adapter_from"):
        source = final_tensors[spec["start_adapter_from"]]
        assert {k.removeprefix("initial."): v for k, v in tensors.items()}.keys() == source.keys()
        for k, v in source.items():
            assert np.array_equal(tensors[f"initial.{k}"], v), k
    for n, p in all_lora:
        if ".ref." in n:
            twin = n.replace(".ref.", ".default.")
            assert torch.equal(p, peft_model.get_parameter(twin)), n

    precomputed = None
    if cfg.get("precompute_ref_log_probs"):
        precomputed = {"train": {"ref_chosen_logps": [float(x) for x in trainer.train_dataset["ref_chosen_logps"]],
                                 "ref_rejected_logps": [float(x) for x in trainer.train_dataset["ref_rejected_logps"]]}}
        if eval_ds is not None:
            precomputed["eval"] = {"ref_chosen_logps": [float(x) for x in trainer.eval_dataset["ref_chosen_logps"]],
                                   "ref_rejected_logps": [float(x) for x in trainer.eval_dataset["ref_rejected_logps"]]}

    train_result = trainer.train()

    # The adapter after training.
    for n, p in all_lora:
        if ".default." in n:
            tensors[f"final.{adapter_name(n)}"] = f32(p)
    for n, p in all_lora:
        if ".ref." in n:
            assert torch.equal(p.detach(), ref_initial[n]), f"the ref adapter moved: {n}"
    final_tensors[name] = {k.removeprefix("final."): v for k, v in tensors.items() if k.startswith("final.")}
    if spec["case"] == "a":
        trainer.model.save_pretrained(os.path.join(tmp, f"adapter_{name}"))

    # Pair collations with compute_loss calls (accelerate prefetches one batch ahead).
    train_losses = [r for r in trainer.recorded_losses if r["mode"] == "train"]
    eval_losses = [r for r in trainer.recorded_losses if r["mode"] == "eval"]
    assert len(collations["train"]) >= len(train_losses)
    assert len(collations["eval"]) == len(eval_losses)
    prepared_to_row = {}
    examples = tokenized_examples(trainer, raw_rows, tokenizer, args.max_length, trainer.train_dataset, "train")
    for e in examples:
        if not e["dropped"]:
            prepared_to_row[e["prepared_index"]] = e["row"]
    eval_examples, eval_to_row = [], {}
    if eval_ds is not None:
        eval_examples = tokenized_examples(trainer, eval_rows, tokenizer, args.max_length, trainer.eval_dataset, "eval")
        eval_to_row = {e["prepared_index"]: e["row"] for e in eval_examples if not e["dropped"]}

    # Steps: which micro-batches (and with how many micro-batches the Trainer divides each loss).
    micro = []
    per_step = {}
    for i, ((idx, tokens), rec) in enumerate(zip(collations["train"], train_losses)):
        step = rec["global_step"] + 1
        per_step.setdefault(step, []).append(i)
        micro.append({"index": i, "step": step, "prepared_indices": idx,
                      "rows": [prepared_to_row[j] for j in idx], "loss": rec["loss"], "padded_width": rec["width"],
                      **tokens})
    for m in micro:
        m["micro_batches_in_step"] = len(per_step[m["step"]])
    eval_micro = []
    for i, ((idx, tokens), rec) in enumerate(zip(collations["eval"], eval_losses)):
        eval_micro.append({"index": i, "after_step": rec["global_step"], "prepared_indices": idx,
                           "rows": [eval_to_row[j] for j in idx], "loss": rec["loss"], "padded_width": rec["width"],
                           **tokens})
    # TRL's per-micro-batch metric values (the lists it averages at each log), folded into the
    # micro-batches they came from. num_tokens is not a list (TRL stores the running total).
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

    # Logs by kind.
    step_logs, eval_logs, summary = [], [], None
    for entry in recorder.logs:
        if "train_loss" in entry:
            summary = entry
        elif any(k.startswith("eval_") for k in entry):
            eval_logs.append(entry)
        else:
            step_logs.append(entry)
    assert [s["global_step"] for s in step_logs] == list(range(1, args.max_steps + 1))
    for s in step_logs:
        s["clipped"] = s["grad_norm"] > args.max_grad_norm
        # The logged loss is the sum of the step's micro-batch losses, each divided by the number
        # of micro-batches in the step (fewer than the accumulation count at an epoch's end).
        group = [m for m in micro if m["step"] == s["global_step"]]
        expected = sum(m["loss"] / len(group) for m in group)
        assert abs(expected - s["loss"]) <= 1e-6 * max(1.0, abs(expected)), (s["global_step"], expected, s["loss"])

    resolved = {
        "optim": plain(args.optim), "optimizer_class": type(trainer.optimizer.optimizer
                                                          if hasattr(trainer.optimizer, "optimizer")
                                                          else trainer.optimizer).__name__,
        "weight_decay": args.weight_decay, "adam_beta1": args.adam_beta1, "adam_beta2": args.adam_beta2,
        "adam_epsilon": args.adam_epsilon, "seed": args.seed, "data_seed": args.data_seed,
        "max_length": args.max_length, "truncation_mode": args.truncation_mode, "beta": args.beta,
        "loss_type": list(args.loss_type), "loss_weights": args.loss_weights,
        "label_smoothing": args.label_smoothing, "f_divergence_type": plain(args.f_divergence_type),
        "precompute_ref_log_probs": args.precompute_ref_log_probs,
        "precompute_ref_batch_size": args.precompute_ref_batch_size, "disable_dropout": args.disable_dropout,
        "padding_free": args.padding_free, "pad_to_multiple_of": args.pad_to_multiple_of,
        "ld_alpha": args.ld_alpha, "use_weighting": args.use_weighting,
        "learning_rate": args.learning_rate, "lr_scheduler_type": plain(args.lr_scheduler_type),
        "warmup_steps": args.warmup_steps, "max_grad_norm": args.max_grad_norm, "max_steps": args.max_steps,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "per_device_eval_batch_size": args.per_device_eval_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "gradient_checkpointing": args.gradient_checkpointing, "logging_steps": args.logging_steps,
        "eval_strategy": plain(args.eval_strategy), "eval_steps": args.eval_steps,
        "pad_token_id": tokenizer.pad_token_id, "eos_token": tokenizer.eos_token,
        "steps_per_epoch": math.ceil(math.ceil(len(trainer.train_dataset) / args.per_device_train_batch_size)
                                     / args.gradient_accumulation_steps),
        "micro_batches_per_epoch": math.ceil(len(trainer.train_dataset) / args.per_device_train_batch_size),
    }
    adapter_cfg = peft_model.peft_config["default"]
    lora = {
        "r": adapter_cfg.r, "lora_alpha": adapter_cfg.lora_alpha, "lora_dropout": adapter_cfg.lora_dropout,
        "scaling": adapter_cfg.lora_alpha / adapter_cfg.r,
        "target_modules_requested": LORA["target_modules"] if not spec.get("start_adapter_from") else
        "(from the loaded adapter)",
        "target_modules_resolved": sorted(adapter_cfg.target_modules),
        "bias": adapter_cfg.bias, "use_rslora": adapter_cfg.use_rslora, "init_lora_weights": adapter_cfg.init_lora_weights,
        "adapters": sorted(peft_model.peft_config.keys()),
        "trainable_parameters": [adapter_name(n) for n, _ in trainable],
    }

    record = {
        "generator": "reference/make_dpo_fixtures.py",
        "run": name, "case": spec["case"], "model": spec["model"], "data": spec["data"],
        "eval_data": spec.get("eval"),
        "reference": ("precomputed (policy with the adapter disabled, at __init__)"
                      if cfg.get("precompute_ref_log_probs") else
                      "the frozen 'ref' adapter (a copy of the loaded adapter)" if spec.get("start_adapter_from")
                      else "the policy with the adapter disabled"),
        "start_adapter_from": spec.get("start_adapter_from"),
        "dpo_config_passed": {k: v for k, v in sorted(cfg.items()) if k not in ("output_dir",)},
        "resolved": resolved,
        "lora": lora,
        "tensors_file": f"dpo_{name}.safetensors",
        "examples": examples,
        "eval_examples": eval_examples,
        "num_examples_prepared": len(trainer.train_dataset),
        "dropped_rows": [e["row"] for e in examples if e["dropped"]],
        "micro_batches": micro,
        "eval_micro_batches": eval_micro,
        "steps": step_logs,
        "eval_logs": eval_logs,
        "train_summary": summary,
        "precomputed_ref_logps": precomputed,
        "dropout_modules_zeroed": [n for n, _ in dropouts],
    }
    results[name] = record
    save_file(tensors, os.path.join(out, f"dpo_{name}.safetensors"))
    return record


def independent_check(record, folder):
    """Recompute, with plain transformers (no TRL, no PEFT), the micro-batch metrics of steps 1
    and 2 — where the policy is still the base model (B = 0, and step 1's update has lr 0) — from
    nothing but this record's tokenized examples and data order, using the collator semantics
    described in the README (per-sequence keep_start truncation, chosen rows then rejected rows,
    right padding with the pad id, sums over shifted completion positions). Returns the largest
    absolute difference per metric; the caller asserts they are at float32 rounding level."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    examples = {e["prepared_index"]: e for e in record["examples"] if not e["dropped"]}
    max_length, pad = record["resolved"]["max_length"], record["resolved"]["pad_token_id"]
    worst = {}
    for mb in record["micro_batches"]:
        if mb["step"] > 2:
            continue
        seqs, masks = [], []
        for half in ("chosen_ids", "rejected_ids"):
            for j in mb["prepared_indices"]:
                e = examples[j]
                seqs.append((e["prompt_ids"] + e[half])[:max_length])
                masks.append(([0] * len(e["prompt_ids"]) + [1] * len(e[half]))[:max_length])
        width = max(map(len, seqs))
        assert width == mb["padded_width"]
        ids = torch.tensor([x + [pad] * (width - len(x)) for x in seqs])
        attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in seqs])
        shift_mask = torch.tensor([m + [0] * (width - len(m)) for m in masks])[:, 1:].double()
        assert int(attention.sum()) == mb["attention_tokens"]
        with torch.no_grad():
            z = model(input_ids=ids, attention_mask=attention).logits[:, :-1].double()
        logp = torch.log_softmax(z, -1).gather(-1, ids[:, 1:, None])[..., 0]
        seq = (logp * shift_mask).sum(1)
        mean_logit = z.mean(-1)
        b = len(mb["prepared_indices"])
        mine = {"logps/chosen": float(seq[:b].mean()), "logps/rejected": float(seq[b:].mean()),
                "logits/chosen": float((mean_logit[:b] * shift_mask[:b]).sum() / shift_mask[:b].sum()),
                "logits/rejected": float((mean_logit[b:] * shift_mask[b:]).sum() / shift_mask[b:].sum())}
        for k, v in mine.items():
            worst[k] = max(worst.get(k, 0.0), abs(v - mb["metrics"][k]))
    return worst


LOGGED_KEYS = ("loss", "grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
               "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "entropy",
               "mean_token_accuracy", "num_tokens", "epoch")


def compare(a, b):
    """Per logged key, the largest absolute difference between two runs' step logs and the largest
    relative one (over the values whose magnitude is at least 1e-3; near-zero values such as the
    step-1/2 rewards only have an absolute difference)."""
    out = {}
    for k in LOGGED_KEYS:
        worst_abs, worst_rel = 0.0, 0.0
        for sa, sb in zip(a["steps"], b["steps"], strict=True):
            x, y = sa[k], sb[k]
            worst_abs = max(worst_abs, abs(x - y))
            if max(abs(x), abs(y)) >= 1e-3:
                worst_rel = max(worst_rel, abs(x - y) / max(abs(x), abs(y)))
        out[k] = {"max_abs": worst_abs, "max_rel": worst_rel}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)

    import datasets
    datasets.disable_caching()
    datasets.utils.logging.disable_progress_bar()

    corpus = corpus_text()
    with open(os.path.join(out, "tokenizer_source.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(corpus)
    tokenizer = build_tokenizer(corpus)
    write_jsonl(os.path.join(out, "dpo_data.jsonl"), STANDARD_ROWS)
    write_jsonl(os.path.join(out, "dpo_data_eval.jsonl"), EVAL_ROWS)
    write_jsonl(os.path.join(out, "dpo_data_conversational.jsonl"), CONVERSATIONAL_ROWS)
    models = build_models(out, tokenizer)

    import accelerate
    import peft
    import tokenizers
    import transformers
    import trl
    import safetensors
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "trl": trl.__version__, "peft": peft.__version__, "tokenizers": tokenizers.__version__,
                "datasets": datasets.__version__, "accelerate": accelerate.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__}

    results, final_tensors = {}, {}
    with tempfile.TemporaryDirectory(prefix="finch-dpo-") as tmp:
        for spec in RUNS:
            rec = run_one(spec, out, tmp, results, final_tensors)
            if spec.get("compare_to"):
                rec["compare_to"] = spec["compare_to"]
                rec["difference_per_key"] = compare(results[spec["compare_to"]], rec)
            if not spec.get("start_adapter_from"):
                check = independent_check(rec, os.path.join(out, spec["model"]))
                assert check["logps/chosen"] < 1e-3 and check["logps/rejected"] < 1e-3, check
                assert check["logits/chosen"] < 1e-6 and check["logits/rejected"] < 1e-6, check
                rec["independent_check_steps_1_2_max_abs_difference"] = check
            rec["versions"] = versions
            rec["models"] = {spec["model"]: models[spec["model"]]}
            write_json(os.path.join(out, f"dpo_{spec['name']}.json"), rec)
            s1 = rec["steps"][0]
            clipped = sum(s["clipped"] for s in rec["steps"])
            print(f"{spec['name']}: step 1 loss {s1['loss']!r}, grad_norm {s1['grad_norm']:.6g}; "
                  f"last loss {rec['steps'][-1]['loss']:.6g}; {clipped}/{len(rec['steps'])} clipped; "
                  f"dropped rows {rec['dropped_rows']}", flush=True)


if __name__ == "__main__":
    main()
