#!/usr/bin/env python3
"""Python side of bench/load_gguf.sh: load a GGUF the way a transformers user does
(`AutoModelForCausalLM.from_pretrained(folder, gguf_file=…, dtype=float32)`, which dequantizes with
gguf.dequantize and undoes the llama Q/K permutation) and SHA-256 every tensor of the state dict.
Prints the wall time in seconds, imports included. Run in the reference venv."""
import hashlib
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
path = sys.argv[1]
start = time.perf_counter()
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

folder, file = os.path.split(os.path.abspath(path))
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
digests = {}
for name, tensor in model.state_dict().items():
    digests[name] = hashlib.sha256(tensor.to(torch.float32).contiguous().numpy().tobytes()).hexdigest()
elapsed = time.perf_counter() - start
print(f"{elapsed:.3f}")
print(f"{len(digests)} tensors", file=sys.stderr)
