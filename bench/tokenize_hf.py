#!/usr/bin/env python3
"""Tokenizer throughput of the Hugging Face `tokenizers` library, single-threaded.

    /work/venv-ref/bin/python bench/tokenize_hf.py CORPUS.txt TOKENIZER_DIR [--runs 5] [--add-special-tokens]

CORPUS.txt comes from bench/make_tokenizer_corpus.py; TOKENIZER_DIR holds a tokenizer.json (e.g.
Tests/FinchTokenizersTests/Fixtures/smollm2). The file is split into lines, each keeping its "\n",
and encoded two ways: one `encode_batch(lines)` call, and a Python loop of `encode(line)`. Each run
loads a fresh `Tokenizer` (so no run inherits the BPE word cache of the previous one); only the
encoding is timed. Prints one JSON object on stdout: the median of RUNS runs per method, MB/s
(10^6 bytes of UTF-8 input per second) and tokens/s of the faster method, and the token count.
RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are forced before `tokenizers` is imported,
so `encode_batch` runs on the calling thread.
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("tokenizer_dir")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--add-special-tokens", action="store_true",
                    help="let the post-processor add BOS/EOS to every line (default: off)")
    args = ap.parse_args()

    with open(args.corpus, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    lines = text.split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    path = os.path.join(args.tokenizer_dir, "tokenizer.json")
    special = args.add_special_tokens

    def run_batch(tok):
        start = time.perf_counter()
        encs = tok.encode_batch(lines, add_special_tokens=special)
        elapsed = time.perf_counter() - start
        return elapsed, sum(len(e.ids) for e in encs)

    def run_loop(tok):
        encode = tok.encode
        start = time.perf_counter()
        encs = [encode(line, add_special_tokens=special) for line in lines]
        elapsed = time.perf_counter() - start
        return elapsed, sum(len(e.ids) for e in encs)

    times = {"encode_batch": [], "encode_loop": []}
    counts = set()
    for _ in range(args.runs):
        for name, fn in (("encode_batch", run_batch), ("encode_loop", run_loop)):
            tok = Tokenizer.from_file(path)  # fresh word cache; loading is not timed
            elapsed, n = fn(tok)
            times[name].append(round(elapsed, 4))
            counts.add(n)
            del tok
    assert len(counts) == 1, f"token counts differ between runs/methods: {counts}"
    tokens = counts.pop()
    medians = {k: statistics.median(v) for k, v in times.items()}
    best = min(medians, key=medians.get)
    secs = medians[best]
    print(json.dumps({
        "tokenizer": os.path.abspath(args.tokenizer_dir),
        "corpus": os.path.abspath(args.corpus),
        "bytes": len(data),
        "lines": len(lines),
        "tokens": tokens,
        "add_special_tokens": special,
        "runs": args.runs,
        "seconds": times,
        "median_seconds": {k: round(v, 4) for k, v in medians.items()},
        "best_method": best,
        "mb_per_s": round(len(data) / 1e6 / secs, 3),
        "tokens_per_s": round(tokens / secs),
        "tokenizers_version": tokenizers.__version__,
        "threads": 1,
    }))


if __name__ == "__main__":
    main()
