#!/usr/bin/env python3
"""Generated `text` rows for bench/sft/run.sh: seeded plain-English paragraphs of 60–240 words,
so that packing into 512-token rows (bfd) fills them well. Standard library only.

    python3 bench/sft/make_text.py OUT.jsonl [N=600]
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dpo"))
from make_pairs import WORDS, sentence  # noqa: E402


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    rng = random.Random(512)
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for _ in range(n):
            words = rng.randint(60, 240)
            text = " ".join(sentence(rng, rng.randint(8, 16)) for _ in range(words // 12))
            f.write(json.dumps({"text": text}) + "\n")
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
