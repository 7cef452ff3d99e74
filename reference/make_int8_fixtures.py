#!/usr/bin/env python3
"""Golden outputs of bitsandbytes 0.50.2's LLM.int8 weight quantization (row-wise absmax int8).

For every case (a float32 matrix [out, in]) this writes, to Tests/FinchCoreTests/Fixtures:

  bnb_int8_cases.safetensors
    <case>.input          F32 [out*in]  the weight, row-major
    <case>.half.CB        I8  [out*in]  `Int8Params(weight, has_fp16_weights=False).to("cpu")`: what
    <case>.half.SCB       F32 [out]     `load_in_8bit=True` stores. `Int8Params._quantize` casts the
                                        weight to float16 first, then `int8_vectorwise_quant`.
    <case>.float.CB       I8  [out*in]  `int8_vectorwise_quant(weight)` on the float32 tensor itself
    <case>.float.SCB      F32 [out]     (the default/CPU kernel, threshold 0)
    <case>.half.dequant   F32 [out*in]  the weight bitsandbytes multiplies by on the CPU, from the
                                        half CB/SCB: `MatMul8bitFp` (the CPU path of `bnb.matmul` when
                                        the layer is in training mode) and the input gradient of both
                                        `MatMul8bitFp` and `MatMul8bitLt` use
                                        `CB.float() * (SCB.unsqueeze(1) * (1/127))`. Taken from
                                        `Linear8bitLt.forward` on an identity matrix (exact: one
                                        non-zero product per output).
  for the case "forward" only:
    forward.x [T*in], forward.y [T*out]      `Linear8bitLt` (train mode, no bias) forward
    forward.dy [T*out], forward.dx [T*in]    and its input gradient (autograd)

  bnb_int8_expected.json: versions, the cases' shapes, and per case how many elements of the
  dequantized weight `int8_vectorwise_dequant` (`(CB * SCB) * (1/127)`, another rounding order)
  gives differently (information only; Finch follows MatMul8bitFp).

What the kernel does (backends/default/ops.py, `int8_vectorwise_quant`): SCB = max|row| as
float32; codes = round(A * (127 / SCB)) with torch's round-half-to-even, where `127.0 / tensor` is
`tensor.reciprocal() * 127` (torch's `__rtruediv__`), so the scale is rounded twice; an all-zero
row gives 0 * inf = NaN, which the int8 cast turns into 0 here (x86-64; the cast of NaN is
undefined in C++, so this is the platform's behaviour, recorded by the zero-row cases).

Usage (from the repo root, in the reference venv; a few seconds):

    /work/venv-ref/bin/python reference/make_int8_fixtures.py

Re-running it writes the same bytes.
"""

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bitsandbytes  # noqa: E402
import bitsandbytes.functional as F  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "FinchCoreTests", "Fixtures")
PINNED = {"torch": "2.15.0", "bitsandbytes": "0.50.2"}


def check_versions():
    found = {"torch": torch.__version__.split("+")[0], "bitsandbytes": bitsandbytes.__version__}
    for name, want in PINNED.items():
        if found[name] != want:
            raise SystemExit(f"{name} {found[name]} installed, the fixtures pin {want} (reference/requirements.txt)")


def cases(rng):
    out = {}
    for shape in [(1, 1), (5, 1), (3, 37), (33, 64), (64, 129), (17, 255), (24, 320)]:
        scale = np.float32(rng.uniform(0.01, 2.0))
        out[f"randn_{shape[0]}x{shape[1]}"] = (rng.standard_normal(shape) * scale).astype(np.float32)
    # Zero rows: an exact zero row, and (half path only) a row whose values all underflow float16.
    z = (rng.standard_normal((7, 100)) * 0.3).astype(np.float32)
    z[2] = 0
    z[5] = (rng.standard_normal(100) * 1e-9).astype(np.float32)
    out["zero_rows_7x100"] = z
    # Ties of the rounding: with SCB = 127 the scale is exactly 1, so k + 0.5 must round to even.
    t = np.array([[127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 126.5, -126.5, 0.0, -0.0],
                  [-127.0, 64.5, -64.5, 100.5, 0.25, 0.75, -0.25, -0.75, 1.0, -1.0, 2.0, -2.0]], np.float32)
    out["ties_2x12"] = t
    # Negative row maxima, float16 subnormals, values float16 cannot hold exactly, a huge row.
    e = (rng.standard_normal((6, 40))).astype(np.float32)
    e[0] = -np.abs(e[0]) * np.float32(3)
    e[1] *= np.float32(1e-5)              # float16 subnormals
    e[2] = np.float32(1) + np.float32(2.0 ** -20) * np.arange(40, dtype=np.float32)  # rounds in float16
    e[3] = np.clip(e[3] * np.float32(15000), -65000, 65000)  # near the float16 maximum
    e[4, :] = np.float32(0.1)
    e[5] = np.linspace(-1, 1, 40, dtype=np.float32)
    out["edges_6x40"] = e
    out["reciprocal_vs_division"] = reciprocal_sensitive(rng)
    out["forward"] = (rng.standard_normal((24, 80)) * 0.2).astype(np.float32)
    return out


def reciprocal_sensitive(rng, rows=4, cols=24):
    """Rows (absmax first) holding values x whose code differs between x * float32(127 / SCB) and
    x * (float32(1 / SCB) * 127), torch's rounding order: the fixture then shows which one runs."""
    out = np.zeros((rows, cols), np.float32)
    r = 0
    while r < rows:
        scb = np.float32(rng.uniform(0.05, 3.0))
        s_torch = (np.float32(1) / scb) * np.float32(127)
        s_division = np.float32(127) / scb
        if s_torch == s_division:
            continue
        found = []
        for k in range(1, 127):
            x = np.float32((k + 0.5) / float(s_torch))
            for _ in range(8):
                if np.round(x * s_torch) != np.round(x * s_division) and abs(x) < scb:
                    found.append(x)
                    break
                x = np.nextafter(x, np.float32(9))
        if len(found) < 2:
            continue
        row = np.resize(np.array(found, np.float32), cols)
        row[0] = scb
        row[1::2] *= -1
        out[r] = row
        r += 1
    return out


def int8_params(w):
    """What `load_in_8bit` stores: Int8Params quantized on its move to the CPU."""
    p = bitsandbytes.nn.Int8Params(torch.from_numpy(w.copy()), requires_grad=False, has_fp16_weights=False).to("cpu")
    return p.CB.numpy().copy(), p.SCB.numpy().copy()


def layer(w):
    out_f, in_f = w.shape
    m = bitsandbytes.nn.Linear8bitLt(in_f, out_f, bias=False, has_fp16_weights=False, threshold=0.0)
    m.weight = bitsandbytes.nn.Int8Params(torch.from_numpy(w.copy()), requires_grad=False, has_fp16_weights=False)
    m = m.to("cpu")
    m.train()  # bnb.matmul takes MatMul8bitFp on the CPU in training mode
    return m


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    check_versions()
    torch.set_num_threads(2)
    rng = np.random.default_rng(20261201)
    tensors, expected = {}, {"versions": {"torch": torch.__version__, "bitsandbytes": bitsandbytes.__version__},
                             "cases": []}
    for name, w in cases(rng).items():
        tensors[f"{name}.input"] = w.reshape(-1)
        cb, scb = int8_params(w)
        tensors[f"{name}.half.CB"], tensors[f"{name}.half.SCB"] = cb.reshape(-1), scb
        fcb, fscb, _ = F.int8_vectorwise_quant(torch.from_numpy(w.copy()))
        tensors[f"{name}.float.CB"], tensors[f"{name}.float.SCB"] = fcb.numpy().reshape(-1).copy(), fscb.numpy().copy()

        m = layer(w)
        with torch.no_grad():
            eye = torch.eye(w.shape[1], dtype=torch.float32)
            dequant = m(eye).t().contiguous().numpy()
        formula = (torch.from_numpy(cb).float() * (torch.from_numpy(scb).unsqueeze(1) * (1.0 / 127.0))).numpy()
        assert np.array_equal(dequant.view(np.uint32), formula.view(np.uint32)), name
        tensors[f"{name}.half.dequant"] = dequant.reshape(-1)
        other = F.int8_vectorwise_dequant(torch.from_numpy(cb), torch.from_numpy(scb)).numpy()
        entry = {"name": name, "shape": list(w.shape),
                 "int8_vectorwise_dequant_differing": int(np.count_nonzero(other.view(np.uint32) != dequant.view(np.uint32)))}

        if name == "forward":
            tokens = 9
            x = torch.from_numpy((rng.standard_normal((tokens, w.shape[1])) * 2).astype(np.float32)).requires_grad_(True)
            y = m(x)
            dy = torch.from_numpy(rng.standard_normal((tokens, w.shape[0])).astype(np.float32))
            y.backward(dy)
            tensors["forward.x"] = x.detach().numpy().reshape(-1).copy()
            tensors["forward.y"] = y.detach().numpy().reshape(-1).copy()
            tensors["forward.dy"] = dy.numpy().reshape(-1).copy()
            tensors["forward.dx"] = x.grad.numpy().reshape(-1).copy()
            entry["tokens"] = tokens
        expected["cases"].append(entry)

    save_file(tensors, os.path.join(args.out, "bnb_int8_cases.safetensors"))
    with open(os.path.join(args.out, "bnb_int8_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    size = os.path.getsize(os.path.join(args.out, "bnb_int8_cases.safetensors"))
    print(f"wrote {len(tensors)} tensors ({size / 1e3:.1f} kB) and bnb_int8_expected.json to {args.out}")


if __name__ == "__main__":
    main()
