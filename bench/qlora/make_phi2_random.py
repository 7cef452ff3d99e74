#!/usr/bin/env python3
"""Write a random-weight model with Phi-2's exact config (2.78B parameters) as an F16 safetensors
folder, for bench/qlora/run.sh part (b). Weights N(0, 0.02²) (Phi-2's initializer_range), norm
weights 1, biases 0, seeded; 5.6 GB on disk. Needs numpy and safetensors (the reference venv).

    python bench/qlora/make_phi2_random.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

CONFIG = {
    "architectures": ["PhiForCausalLM"], "model_type": "phi", "dtype": "float16",
    "vocab_size": 51200, "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "hidden_act": "gelu_new",
    "max_position_embeddings": 2048, "layer_norm_eps": 1e-05, "initializer_range": 0.02,
    "rope_parameters": {"partial_rotary_factor": 0.4, "rope_theta": 10000.0, "rope_type": "default"},
    "qk_layernorm": False, "tie_word_embeddings": False, "bos_token_id": 50256, "eos_token_id": 50256,
    "attention_dropout": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.1,
}


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2560)
    H, I, V, layers = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"], CONFIG["num_hidden_layers"]
    t = {}

    def w(name, *shape):
        t[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    def ones(name, n):
        t[name] = np.ones(n, dtype=np.float16)

    def zeros(name, n):
        t[name] = np.zeros(n, dtype=np.float16)

    w("model.embed_tokens.weight", V, H)
    for i in range(layers):
        p = f"model.layers.{i}."
        ones(p + "input_layernorm.weight", H)
        zeros(p + "input_layernorm.bias", H)
        for m in ("q_proj", "k_proj", "v_proj", "dense"):
            w(p + f"self_attn.{m}.weight", H, H)
            zeros(p + f"self_attn.{m}.bias", H)
        w(p + "mlp.fc1.weight", I, H)
        zeros(p + "mlp.fc1.bias", I)
        w(p + "mlp.fc2.weight", H, I)
        zeros(p + "mlp.fc2.bias", H)
    ones("model.final_layernorm.weight", H)
    zeros("model.final_layernorm.bias", H)
    w("lm_head.weight", V, H)
    zeros("lm_head.bias", V)
    count = sum(a.size for a in t.values())
    save_file(t, os.path.join(out, "model.safetensors.tmp"), metadata={"format": "pt"})
    os.replace(os.path.join(out, "model.safetensors.tmp"), os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)
    print(f"{count} parameters written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
