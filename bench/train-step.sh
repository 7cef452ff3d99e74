#!/usr/bin/env bash
# Issue 5's training-step benchmark, side by side in one run: one LoRA SFT optimizer step
# (forward + backward, r 16 on q/k/v/o, 8 sequences ≈ 140 tokens as 4 micro-batches of 2) on
# SmolLM2-135M-Instruct, Finch with the Q4_1 base kept quantized
# (FinchModelsTests/TrainingBenchmarkTests.testTrainStep) vs PyTorch + PEFT on the same shapes
# (bench/train_step_reference.py, fp32). Tokens/s from the median of 5 steps; peak RSS of each
# process (Finch's includes the XCTest runner).
#
#   bench/train-step.sh        # needs the reference venv at $FINCH_REF_VENV (default /work/venv-ref)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FINCH_REF_VENV:-/work/venv-ref}
swift build -c release --build-tests >/dev/null
MODEL=$(.build/release/finch pull smollm2-135m-instruct)
finch=$(FINCH_BENCH=1 swift test -c release --skip-build --filter TrainingBenchmarkTests.testTrainStep 2>&1 | grep '^train-step:')
echo "finch:       $finch"
ref=$("$VENV/bin/python" bench/train_step_reference.py "$MODEL" 2>/dev/null | tail -1)
echo "torch+peft:  $ref"
python3 - "$finch" "$ref" <<'PY'
import json, re, sys
f, r = sys.argv[1], json.loads(sys.argv[2])
tps = float(re.search(r"= ([0-9.]+) tokens/s", f).group(1))
hwm = int(re.search(r"VmHWM:\s*([0-9]+) kB", f).group(1)) / 1024
print(f"ratio: tokens/s {tps / r['tokens_per_s']:.2f}× PyTorch+PEFT; peak RSS {hwm:.0f} MB = {hwm / r['peak_rss_mb']:.2f}× of {r['peak_rss_mb']:.0f} MB")
PY
