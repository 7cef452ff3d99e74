#!/usr/bin/env python3
"""Write a deterministic ~10 MB mixed-text file for tokenizer throughput benchmarks.

    /work/venv-ref/bin/python bench/make_tokenizer_corpus.py OUT.txt [--mb 10]

Mix (by UTF-8 bytes): ~35% English prose, ~35% code, ~10% numbers, ~20% multilingual text.
Prose and code come from files of the reference venv's pinned packages (licence texts shipped with
torch 2.15.0 / numpy 2.4.6 / transformers 5.24.0, transformers' docstrings and Python source), so
the output is byte-identical on every machine with that venv; numbers and multilingual text are
generated with a fixed-seed xorshift PRNG. The text contains no special/added token of the usual
tokenizers (`<|...|>`, `<s>`, `</s>`, `<unk>`, `<tool_call>`, SmolLM2's `<filename>` etc. are
removed), so encoding it exercises only normalizer, pre-tokenizer and BPE. Lines end with "\n".
"""

import argparse
import ast
import codecs
import hashlib
import os
import re
import sys

import transformers

PINNED_TRANSFORMERS = "5.24.0"
SITE = os.path.dirname(os.path.dirname(os.path.abspath(transformers.__file__)))

SPECIAL_RE = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|</?s>|<unk>|</?tool_call>|<pad>|<mask>|\[PAD\d*\]|"
    r"<(?:repo_name|reponame|file_sep|filename|gh_stars|issue_start|issue_comment|issue_closed|"
    r"jupyter_start|jupyter_text|jupyter_code|jupyter_output|jupyter_script|empty_output)>"
)


class Rng:
    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = (seed * 0x9E3779B97F4A7C15 + 1) & self.MASK or 1

    def next(self):
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & self.MASK
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & self.MASK

    def below(self, n):
        return (self.next() >> 11) % n

    def choice(self, seq):
        return seq[self.below(len(seq))]


def clean(text):
    return SPECIAL_RE.sub("", text.replace("\r\n", "\n"))


# chunks naming package-index hosts are skipped (rot13 here, so this file does not name them)
SKIP = tuple(codecs.decode(s, "rot13") for s in ("clcv", "clgubaubfgrq"))


def take(chunks, budget):
    """Concatenate chunks (in order) until `budget` UTF-8 bytes are reached."""
    out, size = [], 0
    for c in chunks:
        c = clean(c).strip("\n")
        if not c or any(s in c.lower() for s in SKIP):
            continue
        b = len(c.encode("utf-8")) + 1
        if size + b > budget:
            break
        out.append(c)
        size += b
    return out


def py_files(sub):
    root = os.path.join(SITE, sub)
    files = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        files += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".py")]
    return files


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def prose_chunks():
    lic = os.path.join(SITE, "torch-2.15.0.dist-info", "licenses")
    paths = []
    for dirpath, dirnames, names in os.walk(lic):
        dirnames.sort()
        paths += [os.path.join(dirpath, n) for n in sorted(names)]
    paths += [
        os.path.join(SITE, "numpy-2.4.6.dist-info", "licenses", "LICENSE.txt"),
        os.path.join(SITE, "transformers-5.24.0.dist-info", "licenses", "LICENSE"),
    ]
    for p in paths:
        for para in read(p).split("\n\n"):
            yield para
    for p in py_files("transformers"):
        try:
            tree = ast.parse(read(p))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc and len(doc) > 200:
                    yield doc


def code_chunks():
    for p in py_files("transformers/models"):
        text = read(p)
        # drop the licence header so the code share is code
        i = text.find("\nimport ")
        j = text.find("\nfrom ")
        cut = min(k for k in (i, j, len(text)) if k >= 0)
        yield text[cut:]


def number_chunks(rng):
    while True:
        kind = rng.below(6)
        if kind == 0:  # CSV table
            rows = [",".join(f"{rng.below(10 ** (1 + rng.below(9)))}" for _ in range(6)) for _ in range(8)]
            yield "id,a,b,c,d,e\n" + "\n".join(rows)
        elif kind == 1:  # decimals and scientific
            yield " ".join(f"{rng.below(100000)}.{rng.below(10000):04d}" if rng.below(2) else
                           f"{rng.below(1000)}.{rng.below(100)}e-{rng.below(30)}" for _ in range(16))
        elif kind == 2:  # dates and times
            yield " ".join(f"{1900 + rng.below(200)}-{1 + rng.below(12):02d}-{1 + rng.below(28):02d}T"
                           f"{rng.below(24):02d}:{rng.below(60):02d}:{rng.below(60):02d}Z" for _ in range(6))
        elif kind == 3:  # phone numbers, money, percentages
            yield (f"Call +{1 + rng.below(99)} ({rng.below(1000):03d}) {rng.below(1000):03d}-{rng.below(10000):04d} "
                   f"before {1 + rng.below(12)}pm; total ${rng.below(100000):,}.{rng.below(100):02d}, "
                   f"{rng.below(100)}.{rng.below(10)}% off, order #{rng.below(10 ** 9)}.")
        elif kind == 4:  # long digit runs and versions
            yield " ".join("".join(str(rng.below(10)) for _ in range(1 + rng.below(24))) for _ in range(10)) + \
                f" v{rng.below(20)}.{rng.below(50)}.{rng.below(200)}"
        else:  # arithmetic
            yield " ".join(f"{rng.below(1000)} {rng.choice('+-*/=<>')} {rng.below(1000)}" for _ in range(10))


SENTENCES = [
    "我们在这里测试分词器的速度。", "今天天气很好，我们去公园散步吧！", "机器学习是人工智能的一个分支。",
    "東京は日本の首都です。", "私はラーメンが大好きです。", "カタカナとひらがなと漢字を混ぜて書きます。",
    "안녕하세요, 세계!", "한국어는 한글로 씁니다.", "서울특별시는 대한민국의 수도입니다.",
    "مرحبا بالعالم", "اللغة العربية جميلة جداً.", "سلام دنیا، حال شما چطور است؟", "שלום עולם",
    "עברית נכתבת מימין לשמאל.", "नमस्ते दुनिया", "हिन्दी भारत की एक प्रमुख भाषा है।",
    "আমি বাংলায় গান গাই।", "வணக்கம் உலகம்", "สวัสดีชาวโลก", "Καλημέρα κόσμε.",
    "Привет, мир! Съешь же ещё этих мягких французских булок.", "Tiếng Việt có rất nhiều dấu thanh.",
    "Zażółć gęślą jaźń.", "Příliš žluťoučký kůň úpěl ďábelské ódy.", "Straße, Fußgänger, Größe.",
    "İstanbul'da ılık bir gün.", "Ça va très bien, merci !", "¿Dónde está la biblioteca?",
    "Fårö, Åland och Örebro.", "ሰላም ለዓለም", "გამარჯობა მსოფლიო", "Բարև աշխարհ",
    "I love 🍕 and 🍺! 👨‍👩‍👧‍👦 🇯🇵 👍🏽", "Hello мир 世界 مرحبا 🌍",
]

# (first code point, count) ranges for random "words" in several scripts
SCRIPTS = {
    "han": (0x4E00, 0x5000), "hiragana": (0x3041, 0x56), "katakana": (0x30A1, 0x5A),
    "hangul": (0xAC00, 0x2BA4), "cyrillic": (0x0430, 0x20), "greek": (0x03B1, 0x19),
    "arabic": (0x0627, 0x1A), "hebrew": (0x05D0, 0x1B), "devanagari": (0x0915, 0x25),
    "thai": (0x0E01, 0x2E), "latin_ext": (0x00E0, 0x1F),
}


def multilingual_chunks(rng):
    names = sorted(SCRIPTS)
    while True:
        if rng.below(3) == 0:
            yield " ".join(rng.choice(SENTENCES) for _ in range(3 + rng.below(6)))
        else:
            start, count = SCRIPTS[rng.choice(names)]
            words = []
            for _ in range(5 + rng.below(15)):
                words.append("".join(chr(start + rng.below(count)) for _ in range(1 + rng.below(6))))
            sep = "" if start in (0x4E00, 0x3041, 0x30A1, 0x0E01) and rng.below(2) else " "
            yield sep.join(words) + rng.choice([".", "。", "!", "?", ",", ""])


def generated(gen, budget):
    out, size = [], 0
    for c in gen:
        b = len(c.encode("utf-8")) + 1
        if size + b > budget:
            break
        out.append(c)
        size += b
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=10.0)
    args = ap.parse_args()
    if transformers.__version__ != PINNED_TRANSFORMERS:
        sys.exit(f"needs the reference venv (transformers {PINNED_TRANSFORMERS}), found {transformers.__version__}")

    total = int(args.mb * 1_000_000)
    rng = Rng(7)
    parts = {
        "prose": take(prose_chunks(), int(total * 0.35)),
        "code": take(code_chunks(), int(total * 0.35)),
        "numbers": generated(number_chunks(rng), int(total * 0.10)),
        "multilingual": generated(multilingual_chunks(rng), int(total * 0.20)),
    }
    # interleave the four kinds in blocks so every part of the file is mixed
    order = []
    cursors = {k: 0 for k in parts}
    keys = sorted(parts)
    while any(cursors[k] < len(parts[k]) for k in keys):
        k = keys[rng.below(len(keys))]
        if cursors[k] < len(parts[k]):
            n = 1 + rng.below(4)
            order += parts[k][cursors[k] : cursors[k] + n]
            cursors[k] += n
    text = "\n".join(order) + "\n"
    assert not SPECIAL_RE.search(text)
    data = text.encode("utf-8")
    with open(args.out, "wb") as f:
        f.write(data)
    sizes = {k: sum(len(c.encode("utf-8")) + 1 for c in v) for k, v in parts.items()}
    print(f"wrote {len(data)} bytes, {text.count(chr(10))} lines, sha256 {hashlib.sha256(data).hexdigest()}; "
          + ", ".join(f"{k} {v / len(data):.0%}" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
