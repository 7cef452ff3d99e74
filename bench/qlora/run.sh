#!/usr/bin/env bash
# Issue 6's QLoRA benchmark.
#  (a) The training-core step (bench/train-step.sh's shape: LoRA r 16 on q/k/v/o, 8 sequences of
#      ≈ 140 tokens as 4 micro-batches of 2, forward + backward) on SmolLM2-135M-Instruct with the
#      base in Float32 (every weight dequantized from the Q4_1 GGUF) and in NF4 + double
#      quantization, each in its own process, alternating, RUNS times (default 3). Reports the
#      medians of tokens/s and of peak RSS and their ratios (target: NF4 ≥ 0.8× F32 tokens/s,
#      ≤ 60% of its peak RSS).
#  (b) A random-weight model with Phi-2's exact config (2.78B parameters; written once by
#      make_phi2_random.py, 5.6 GB, into $FINCH_BENCH_DIR) in NF4 + double quant with 16-bit
#      embedding and lm_head: resident weight bytes, and one DPO-shaped LoRA step with gradient
#      checkpointing on a 256 + 128 + 128-token triple (target: peak RSS ≤ 4 GB).
#
#   bench/qlora/run.sh [a|b]     # both by default; (b) needs numpy + safetensors ($FINCH_REF_VENV)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${FINCH_REF_VENV:-/work/venv-ref}
RUNS=${RUNS:-3}
PART=${1:-ab}
swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
.build/release/finch pull smollm2-135m-instruct >/dev/null

if [[ $PART == *a* ]]; then
  lines=()
  for ((i = 0; i < RUNS; i++)); do
    for base in f32 nf4; do
      line=$(FINCH_BENCH=1 FINCH_BENCH_BASE=$base swift test -c release --skip-build \
             --filter TrainingBenchmarkTests.testTrainStep 2>&1 | grep '^train-step:')
      echo "$line"
      lines+=("$line")
    done
  done
  python3 - "${lines[@]}" <<'PY'
import re, statistics, sys
by = {}
for line in sys.argv[1:]:
    base = re.search(r"base (\w+)", line).group(1)
    tps = float(re.search(r"= ([0-9.]+) tokens/s", line).group(1))
    hwm = int(re.search(r"VmHWM:\s*([0-9]+) kB", line).group(1)) / 1024
    by.setdefault(base, []).append((tps, hwm))
m = {b: (statistics.median(t for t, _ in v), statistics.median(h for _, h in v)) for b, v in by.items()}
for b, (t, h) in m.items():
    print(f"(a) base {b}: median {t:.1f} tokens/s, peak RSS {h:.0f} MB over {len(by[b])} runs")
print(f"(a) NF4 / F32: tokens/s {m['nf4'][0] / m['f32'][0]:.2f}x, peak RSS {m['nf4'][1] / m['f32'][1]:.2f}x")
PY
fi

if [[ $PART == *b* ]]; then
  DIR=${FINCH_BENCH_DIR:-$HOME/.cache/finch/bench}/phi2-random
  [[ -f $DIR/model.safetensors ]] || "$VENV/bin/python" bench/qlora/make_phi2_random.py "$DIR"
  FINCH_BENCH=1 FINCH_PHI2_RANDOM=$DIR swift test -c release --skip-build \
    --filter QLoRABenchmarkTests.testPhi2ShapedNF4Step 2>&1 | grep '^qlora-phi2:' | sed 's/^/(b) /'
fi
