#!/usr/bin/env python3
"""Python side of Finch's inference benchmark: llama.cpp (llama-cpp-python 0.3.36, the GGUF as is)
or transformers 5.24 (the GGUF dequantized to fp32) on SmolLM2-135M-Instruct, 2 threads, CPU.

    /work/venv-ref/bin/python bench/inference_reference.py --engine llamacpp \
        ~/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --runs 5
    /work/venv-ref/bin/python bench/inference_reference.py --engine transformers MODEL.gguf ...
    /work/venv-ref/bin/python bench/inference_reference.py --write-prompt bench/prompt512.txt MODEL.gguf

Measures, after one untimed warm-up of each phase, `--runs` times (medians reported):
  decode   128 new greedy tokens after a short prompt ("The capital of France is", 5 tokens;
           --prompt/--chat to change). The prompt's prefill is timed
           separately ("short_prefill_s"); decode time covers 128 single-token forward passes
           (feeding the first 128 generated tokens, as llama-bench's tg128 does), each followed by
           an argmax; EOS is ignored so every run decodes exactly 128 tokens.
  prefill  one forward pass over the 512 tokens of prompt512_text() (bench/prompt512.txt), from
           an empty cache, LM head on the last position only. llama.cpp: Llama.eval() with
           n_batch 512; transformers: model(ids, logits_to_keep=1) under torch.no_grad(), and
           also the plain model(ids) with all 512 positions' logits ("all_logits_*").
  memory   peak RSS of the whole process (resource.getrusage ru_maxrss), model load included.
Prints one JSON object on stdout.
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT_FILE = os.path.join(HERE, "prompt512.txt")
DECODE_TOKENS = 128
SHORT_PROMPT = "The capital of France is"  # plain text, no chat template (as bench/inference.sh)

# ---------------------------------------------------------------------------------------------
# The 512-token prompt. Deterministic, no randomness and no tokenizer needed to produce it: the
# first PROMPT512_WORDS words of a fixed word stream. With SmolLM2's tokenizer (GGUF, no BOS) it
# is exactly 512 tokens; `--write-prompt` checks that and writes bench/prompt512.txt.
# ---------------------------------------------------------------------------------------------

_SENTENCES = [
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk.",
    "He carried a small brass lamp, a notebook, and a flask of strong black tea.",
    "From the top he could see the harbour, the fishing boats, and the distant hills.",
    "Ships relied on the beam to avoid the rocks that lay hidden beneath the waves.",
    "In winter the storms were fierce, and the glass rattled in its iron frame.",
    "He wrote down the wind speed, the temperature, and the height of the tide.",
    "Over forty years he filled more than three hundred notebooks with careful entries.",
    "Scientists later used his records to study how the climate of the coast had changed.",
    "They found that the average sea level had risen by almost twenty centimetres.",
    "The keeper himself never thought of his work as science; it was simply his duty.",
    "When the lighthouse was automated, he moved to a cottage near the village square.",
    "Children visited him to hear stories about shipwrecks, smugglers, and strange lights.",
]


def _word_stream():
    part = 0
    while True:
        for i, sentence in enumerate(_SENTENCES):
            if i % 4 == 0:
                part += 1
                yield f"Part {part}."
            yield from sentence.split(" ")


PROMPT512_WORDS = 423  # found by --write-prompt (the only count in 300..479 giving 512)


def prompt_text(n_words):
    """The first n_words words of the stream, joined by single spaces (no trailing newline)."""
    words = []
    for w in _word_stream():
        if len(words) == n_words:
            break
        words.append(w)
    return " ".join(words)


def prompt512_text():
    return prompt_text(PROMPT512_WORDS)


# ---------------------------------------------------------------------------------------------

def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def median(xs):
    return statistics.median(xs)


class LlamaCppEngine:
    def __init__(self, path, threads):
        import llama_cpp
        import numpy as np
        self.np = np
        self.llama_cpp = llama_cpp
        self.version = llama_cpp.__version__
        self.llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads,
                                   n_threads_batch=threads, n_batch=512, verbose=False)
        self.n_vocab = self.llm.n_vocab()

    def tokenize(self, text):
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def chat_prompt(self, text):
        # The GGUF's ChatML template as transformers renders it for one user turn (checked: the
        # same ids in both engines for the default system turn).
        return ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                "Hugging Face<|im_end|>\n<|im_start|>user\n" + text + "<|im_end|>\n"
                "<|im_start|>assistant\n")

    def _last_logits(self):
        # 0.3.36's Llama.eval no longer copies logits into Llama.scores unless logits_all=True;
        # read the last batch position's logits straight from the context (no copy).
        ptr = self.llm._ctx.get_logits_ith(-1)
        return self.np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _perf(self):
        d = self.llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        return d.t_p_eval_ms, d.n_p_eval, d.t_eval_ms, d.n_eval

    def prefill(self, ids):
        self.llm.reset()  # n_tokens = 0; eval() then drops the stale KV cells
        self.llama_cpp.llama_perf_context_reset(self.llm._ctx.ctx)
        t0 = time.perf_counter()
        self.llm.eval(ids)
        first = int(self.np.argmax(self._last_logits()))  # reading logits synchronizes
        t = time.perf_counter() - t0
        tp, np_, _, _ = self._perf()  # llama.cpp's own timer (accumulated at synchronize)
        self.internal = {"ms": tp, "tokens": np_}
        return t, first

    def decode(self, first, n):
        tok, out = first, []
        self.llama_cpp.llama_perf_context_reset(self.llm._ctx.ctx)
        t0 = time.perf_counter()
        for _ in range(n):
            self.llm.eval([tok])
            out.append(tok)
            tok = int(self.np.argmax(self._last_logits()))
        t = time.perf_counter() - t0
        _, _, te, ne = self._perf()
        self.internal = {"ms": te, "tokens": ne}
        return t, out


class TransformersEngine:
    def __init__(self, path, threads, attn):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        torch.set_num_threads(threads)
        self.torch = torch
        self.version = transformers.__version__
        folder, file = os.path.split(os.path.abspath(path))
        self.tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
        self.model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=file, dtype=torch.float32, attn_implementation=attn).eval()
        self.cache = None

    def tokenize(self, text):
        return self.tok.encode(text, add_special_tokens=False)

    def chat_prompt(self, text):
        return self.tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                            add_generation_prompt=True)

    def prefill(self, ids, all_logits=False):
        # logits_to_keep=1 computes the LM head for the last position only, as llama.cpp's eval
        # and transformers' own generate() do; all_logits=True is the plain model(ids) call.
        torch = self.torch
        x = torch.tensor([ids], dtype=torch.long)
        keep = 0 if all_logits else 1
        with torch.no_grad():
            t0 = time.perf_counter()
            out = self.model(input_ids=x, use_cache=True, logits_to_keep=keep)
            first = int(out.logits[0, -1].argmax())
            t = time.perf_counter() - t0
        self.cache = out.cache  # transformers 5.24 renamed past_key_values to cache
        return t, first

    def decode(self, first, n):
        torch = self.torch
        tok, out = first, []
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(n):
                o = self.model(input_ids=torch.tensor([[tok]], dtype=torch.long),
                               cache=self.cache, use_cache=True)
                self.cache = o.cache
                out.append(tok)
                tok = int(o.logits[0, -1].argmax())
            t = time.perf_counter() - t0
        return t, out


def write_prompt(path, gguf_path):
    """Find PROMPT512_WORDS for the SmolLM2 GGUF tokenizer (transformers), write the text."""
    from transformers import AutoTokenizer
    folder, file = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    count = lambda n: len(tok.encode(prompt_text(n), add_special_tokens=False))  # noqa: E731
    hits = [n for n in range(300, 480) if count(n) == 512]
    if PROMPT512_WORDS not in hits:
        sys.exit(f"PROMPT512_WORDS={PROMPT512_WORDS} gives {count(PROMPT512_WORDS)} tokens; "
                 f"word counts giving exactly 512: {hits}")
    text = prompt512_text()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(json.dumps({"file": path, "words": PROMPT512_WORDS, "chars": len(text),
                      "tokens": count(PROMPT512_WORDS), "bytes": len(text.encode("utf-8"))}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf", nargs="?", help="the GGUF (or pass --gguf)")
    ap.add_argument("--gguf", dest="gguf_opt", metavar="PATH")
    ap.add_argument("--prompt", default=SHORT_PROMPT, help="decode prompt (default %(default)r)")
    ap.add_argument("--chat", action="store_true", help="wrap --prompt in the chat template")
    ap.add_argument("--engine", choices=["llamacpp", "transformers"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-tokens", type=int, default=DECODE_TOKENS)
    ap.add_argument("--attn", default="sdpa", help="transformers attn_implementation (default sdpa)")
    ap.add_argument("--write-prompt", metavar="PATH", help="write the 512-token prompt and exit")
    args = ap.parse_args()
    args.gguf = args.gguf_opt or args.gguf
    if not args.gguf:
        ap.error("the GGUF path is required")
    if args.write_prompt:
        write_prompt(args.write_prompt, args.gguf)
        return
    if not args.engine:
        ap.error("--engine is required")

    t0 = time.perf_counter()
    if args.engine == "llamacpp":
        eng = LlamaCppEngine(args.gguf, args.threads)
    else:
        eng = TransformersEngine(args.gguf, args.threads, args.attn)
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_mb()

    with open(PROMPT_FILE, encoding="utf-8") as f:
        long_text = f.read()
    assert long_text == prompt512_text(), "bench/prompt512.txt is stale; run --write-prompt"
    long_ids = eng.tokenize(long_text)
    assert len(long_ids) == 512, len(long_ids)
    short_ids = eng.tokenize(eng.chat_prompt(args.prompt) if args.chat else args.prompt)

    # Decode: warm-up + runs. Each run re-prefills the short prompt from an empty cache.
    decode_s, short_prefill_s, generated = [], [], None
    internal_decode, internal_prefill = [], []  # llama.cpp's own perf counters
    for run in range(args.runs + 1):
        tp, first = eng.prefill(short_ids)
        td, out = eng.decode(first, args.decode_tokens)
        if hasattr(eng, "internal") and run:
            internal_decode.append(eng.internal)
        if run == 0:
            generated = out
            continue
        assert out == generated, "greedy decode is not reproducible across runs"
        decode_s.append(td)
        short_prefill_s.append(tp)

    prefill_s = []
    for run in range(args.runs + 1):
        tp, _ = eng.prefill(long_ids)
        if run:
            prefill_s.append(tp)
            if hasattr(eng, "internal"):
                internal_prefill.append(eng.internal)
    extra, extra_decode = {}, {}
    if internal_decode:
        def rate(xs):
            return round(median([x["tokens"] / (x["ms"] / 1000) for x in xs]), 2)
        extra_decode = {"llama_internal_tokens_per_s": rate(internal_decode),
                        "llama_internal_n_eval": internal_decode[0]["tokens"]}
        extra = {"llama_internal_tokens_per_s": rate(internal_prefill),
                 "llama_internal_n_p_eval": internal_prefill[0]["tokens"]}
    if args.engine == "transformers":
        full_s = []
        for run in range(args.runs + 1):
            tp, _ = eng.prefill(long_ids, all_logits=True)
            if run:
                full_s.append(tp)
        extra = {"all_logits_tokens_per_s": round(len(long_ids) / median(full_s), 1),
                 "all_logits_median_s": round(median(full_s), 4),
                 "all_logits_all_s": [round(x, 4) for x in full_s]}

    n = args.decode_tokens
    result = {
        "engine": args.engine,
        "engine_version": eng.version,
        "model": os.path.basename(args.gguf),
        "weights": "Q4_1 GGUF as is" if args.engine == "llamacpp" else "GGUF dequantized to fp32",
        **({"attn_implementation": args.attn} if args.engine == "transformers" else {}),
        "threads": args.threads,
        "runs": args.runs,
        "load_s": round(load_s, 3),
        "decode": {
            "prompt": args.prompt,
            "chat_template": args.chat,
            "prompt_tokens": len(short_ids),
            "new_tokens": n,
            "tokens_per_s": round(n / median(decode_s), 2),
            "best_tokens_per_s": round(n / min(decode_s), 2),
            "median_s": round(median(decode_s), 4),
            "all_s": [round(x, 4) for x in decode_s],
            "short_prefill_median_s": round(median(short_prefill_s), 4),
            "short_prefill_tokens_per_s": round(len(short_ids) / median(short_prefill_s), 1),
            "first_generated_ids": generated[:16],
            **extra_decode,
        },
        "prefill": {
            "prompt_tokens": len(long_ids),
            "tokens_per_s": round(len(long_ids) / median(prefill_s), 1),
            "best_tokens_per_s": round(len(long_ids) / min(prefill_s), 1),
            "median_s": round(median(prefill_s), 4),
            "all_s": [round(x, 4) for x in prefill_s],
            "lm_head": "last position only",
            **extra,
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_after_load_mb": round(rss_after_load, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
