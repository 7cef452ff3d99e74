#!/usr/bin/env bash
# Issue 5's training-step benchmark, side by side in one run: one LoRA SFT optimizer step
# (forward + backward, r 16 on q/k/v/o, 8 sequences ≈ 140 tokens as 4 micro-batches of 2) on
# SmolLM2-135M-Instruct, Finch with the Q4_1 base kept quantized
# (FinchModelsTests/TrainingBenchmarkTests.testTrainStep) vs PyTorch + PEFT on the same shapes
# (bench/train_step_reference.py, fp32). Tokens/s from the median of 5 steps; peak RSS of each
# process (Finch's includes the XCTest runner).
#
# Machine noise moves either side by ±10% from one process to the next, so the script runs ROUNDS
# rounds (default 3), each a Finch process then a PyTorch process, prints each round's ratio and
# reports the median of the per-round ratios.
#
# Each round also runs the floor under Finch's step (TrainingBenchmarkTests.testTrainStepProductFloor):
# the same step's frozen-base products alone, Float32 weights in memory, one single-threaded sgemm
# per worker and product. No Float32 implementation on OpenBLAS can be faster on this machine, so
# floor ÷ PyTorch is the best ratio reachable here, and Finch ÷ floor is how close Finch gets.
#
#   bench/train-step.sh [ROUNDS]   # needs the reference venv at $FINCH_REF_VENV (default /work/venv-ref);
#                                  # FINCH_SKIP_BUILD=1 uses the test build already in .build/release
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FINCH_REF_VENV:-/work/venv-ref}
ROUNDS=${1:-3}
[ "${FINCH_SKIP_BUILD:-0}" = 1 ] || swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
MODEL=$(.build/release/finch pull smollm2-135m-instruct)
results=()
for round in $(seq "$ROUNDS"); do
  finch=$(FINCH_BENCH=1 swift test -c release --skip-build --filter 'TrainingBenchmarkTests.testTrainStep$' 2>&1 | grep '^train-step:')
  echo "round $round finch:      $finch"
  floor=$(FINCH_BENCH=1 swift test -c release --skip-build --filter TrainingBenchmarkTests.testTrainStepProductFloor 2>&1 | grep '^train-step-floor:')
  echo "round $round floor:      $floor"
  ref=$("$VENV/bin/python" bench/train_step_reference.py "$MODEL" 2>/dev/null | tail -1)
  echo "round $round torch+peft: $ref"
  results+=("$finch" "$ref" "$floor")
done
python3 - "${results[@]}" <<'PY'
import json, re, statistics, sys
rows = sys.argv[1:]
ratios, memory, floors, efficiency = [], [], [], []
for i in range(0, len(rows), 3):
    f, r, fl = rows[i], json.loads(rows[i + 1]), rows[i + 2]
    tps = float(re.search(r"= ([0-9.]+) tokens/s", f).group(1))
    hwm = int(re.search(r"VmHWM:\s*([0-9]+) kB", f).group(1)) / 1024
    floor = float(re.search(r"= ([0-9.]+) tokens/s", fl).group(1))
    ratios.append(tps / r["tokens_per_s"])
    memory.append(hwm / r["peak_rss_mb"])
    floors.append(floor / r["tokens_per_s"])
    efficiency.append(tps / floor)
    print(f"round {i // 3 + 1}: Finch {tps:.1f} tokens/s, PyTorch+PEFT {r['tokens_per_s']:.1f} -> {ratios[-1]:.2f}x; "
          f"peak RSS {hwm:.0f} MB vs {r['peak_rss_mb']:.0f} MB -> {memory[-1]:.2f}x; "
          f"floor {floor:.1f} tokens/s ({floors[-1]:.2f}x PyTorch; Finch at {efficiency[-1]:.0%} of it)")
print(f"median of {len(ratios)} rounds: tokens/s {statistics.median(ratios):.2f}x PyTorch+PEFT "
      f"(range {min(ratios):.2f}-{max(ratios):.2f}), peak RSS {statistics.median(memory):.2f}x; "
      f"floor {statistics.median(floors):.2f}x PyTorch (range {min(floors):.2f}-{max(floors):.2f}), "
      f"Finch at {statistics.median(efficiency):.0%} of the floor")
PY
