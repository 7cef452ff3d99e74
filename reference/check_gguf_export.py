"""Checks `finch export --format gguf` against llama.cpp and the `gguf` reader (issue 9).

For each type (f16, q8_0 by default): exports MODEL (+ ADAPTER merged in) with the built finch,
reads the file back with the `gguf` package (metadata, tensor count and types), loads it in
llama-cpp-python and compares the greedy 32-token continuations of three prompts with
`finch generate --json` on the same file: the prompt ids and the generated ids must be equal —
for f16 with Finch's Float32 arithmetic, for quantized types with `--llama-cpp-arithmetic`
(activations rounded to 8 bits, F16 KV cache) — against llama.cpp evaluating the prompt in one batch (its default) or token by token
(n_batch 1): at near-ties llama.cpp's own continuation depends on its batch size (its batched and
one-token kernels round differently), so a prompt passes when Finch's ids equal either. Every
combination is printed.

    /work/venv-ref/bin/python reference/check_gguf_export.py [--model M] [--adapter DIR] [--types f16,q8_0]

Pinned: gguf 0.19.0, llama_cpp_python 0.3.36 (requirements.txt). Exits non-zero on a mismatch.
"""
import argparse, json, os, subprocess, sys, tempfile

import gguf
from llama_cpp import Llama

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village,"]


def finch_path():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", ".build", "release", "finch")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--adapter", default=None, help="a PEFT adapter folder to merge in")
    ap.add_argument("--types", default="f16,q8_0")
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    finch = finch_path()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for qtype in args.types.split(","):
            out = os.path.join(tmp, f"export-{qtype}.gguf")
            cmd = [finch, "export", "--type", qtype, args.model, out]
            if args.adapter:
                cmd[4:4] = ["--adapter", args.adapter]
            subprocess.run(cmd, check=True)

            reader = gguf.GGUFReader(out)
            arch = reader.fields["general.architecture"].contents()
            kinds = sorted({t.tensor_type.name for t in reader.tensors})
            print(f"[{qtype}] gguf reader: {len(reader.tensors)} tensors ({', '.join(kinds)}), {len(reader.fields)} fields, "
                  f"architecture {arch}, file_type {reader.fields['general.file_type'].contents()}, "
                  f"tokenizer {reader.fields['tokenizer.ggml.model'].contents()}/{reader.fields['tokenizer.ggml.pre'].contents()}, "
                  f"{len(reader.fields['tokenizer.ggml.tokens'].contents())} tokens, chat template "
                  f"{'yes' if 'tokenizer.chat_template' in reader.fields else 'no'}")

            # llama.cpp's own greedy ids depend on its batch size at near-ties (the batched prompt
            # path and the one-token path round differently), so both are recorded.
            runs = {}
            for n_batch in (512, 1):
                llm = Llama(model_path=out, n_ctx=512, n_batch=n_batch, n_ubatch=n_batch, n_threads=2, verbose=False, logits_all=True)
                for prompt in PROMPTS:
                    llm.reset()
                    ids = llm.tokenize(prompt.encode(), add_bos=True, special=False)
                    theirs = []
                    for t in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
                        theirs.append(t)
                        if len(theirs) == args.tokens:
                            break
                    runs[(n_batch, prompt)] = (ids, theirs, llm)
                if n_batch == 1:
                    del llm
            for prompt in PROMPTS:
                checked = "float32" if qtype in ("f16", "f32", "bf16") else "llama-cpp"
                matched = False
                for arithmetic in ("float32", "llama-cpp"):
                    cmd = [finch, "generate", "--model", out, "--prompt", prompt, "--max-new-tokens", str(args.tokens),
                           "--ignore-eos", "--json"] + (["--llama-cpp-arithmetic"] if arithmetic == "llama-cpp" else [])
                    mine = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                    for n_batch in (512, 1):
                        ids, theirs, _ = runs[(n_batch, prompt)]
                        same_prompt = mine["prompt_tokens"] == ids
                        first = next((i for i, (a, b) in enumerate(zip(theirs, mine["tokens"])) if a != b), None)
                        ok = same_prompt and theirs == mine["tokens"]
                        if arithmetic == checked:
                            matched = matched or ok
                        print(f"[{qtype}] {'OK  ' if ok else 'DIFF'} finch {arithmetic:9} vs llama.cpp n_batch {n_batch:3} {prompt!r}: "
                              f"prompt ids {'equal' if same_prompt else 'differ'}; "
                              + (f"{args.tokens} tokens equal" if ok else f"first difference at token {first}"))
                failures += not matched
                print(f"[{qtype}] => {'PASS' if matched else 'FAIL'}: finch ({checked}) equals llama.cpp at one of its batch sizes; "
                      f"llama.cpp: {Llama.detokenize(runs[(512, prompt)][2], runs[(512, prompt)][1]).decode(errors='replace')!r}")
    print("all equal" if failures == 0 else f"{failures} continuation(s) differ")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
