#!/usr/bin/env python3
"""Generated preference pairs for bench/dpo/run.sh: short standard rows (prompt, chosen,
rejected strings) of plain English words, seeded, so that with SmolLM2's tokenizer a pair is
≈ 140 tokens counting the prompt twice (prompt ≈ 40, each answer ≈ 30 with its EOS), the shape
of NOTES.md's TRL baseline. Standard library only.

    python3 bench/dpo/make_pairs.py OUT.jsonl [N=400]
"""
import json
import random
import sys

WORDS = ("the a river stone light garden quiet early summer market teacher window paper bridge music "
         "careful simple number city morning answer question reason small large green blue water "
         "travel story friend winter useful clear method result always never often because while "
         "after before under over inside between people machine language problem solution").split()


def sentence(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    rng = random.Random(140)
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for _ in range(n):
            row = {"prompt": "Question: " + sentence(rng, 30) + "\nAnswer:",
                   "chosen": " " + sentence(rng, 24),
                   "rejected": " " + sentence(rng, 24)}
            f.write(json.dumps(row) + "\n")
    import os
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
