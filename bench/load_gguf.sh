#!/usr/bin/env bash
# Side by side: load the default model's GGUF to Float32 in Hugging Face layout and SHA-256 every
# tensor — Finch (`finch inspect --checksums`) vs transformers 5.24 + gguf 0.19 (bench/load_gguf.py,
# including its import time, which is part of what a user waits for). Median of RUNS runs each.
#
#   bench/load_gguf.sh            # needs the reference venv (reference/README.md) at $FINCH_REF_VENV
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
VENV=${FINCH_REF_VENV:-/work/venv-ref}
swift build -c release --product finch >/dev/null
MODEL=$(.build/release/finch pull smollm2-135m-instruct)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
finch_times=(); python_times=()
for _ in $(seq "$RUNS"); do
  s=$(date +%s.%N); .build/release/finch inspect --checksums "$MODEL" >/dev/null; e=$(date +%s.%N)
  finch_times+=("$(echo "$e - $s" | bc)")
  python_times+=("$("$VENV/bin/python" bench/load_gguf.py "$MODEL" 2>/dev/null)")
done
f=$(printf '%s\n' "${finch_times[@]}" | median)
p=$(printf '%s\n' "${python_times[@]}" | median)
echo "load SmolLM2-135M Q4_1 GGUF → fp32 HF layout + SHA-256 per tensor, $RUNS runs, median"
echo "  finch:         ${f} s   (runs: ${finch_times[*]})"
echo "  transformers:  ${p} s   (runs: ${python_times[*]})"
echo "  speed-up:      $(echo "scale=1; $p / $f" | bc)×"
