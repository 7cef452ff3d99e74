#!/usr/bin/env bash
# Side by side on SmolLM2-135M-Instruct (Q4_1 GGUF), 2 threads, greedy: decode speed for 128 new
# tokens after a short prompt, prefill speed of a 512-token prompt (bench/prompt512.txt), and peak
# RSS. Finch (`finch generate`) vs llama.cpp (llama-cpp-python 0.3.36, built locally) and
# transformers fp32 (bench/inference_reference.py). Median of RUNS runs each.
#
#   bench/inference.sh        # needs the reference venv with llama-cpp-python at $FINCH_REF_VENV
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
VENV=${FINCH_REF_VENV:-/work/venv-ref}
swift build -c release --product finch >/dev/null
MODEL=$(.build/release/finch pull smollm2-135m-instruct)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -E "s/.*$1 ([0-9.]+) tokens\/s.*/\1/"; }

decode=(); prefill=(); rss=()
for _ in $(seq "$RUNS"); do
  line=$(.build/release/finch generate --model "$MODEL" --prompt "The capital of France is" --max-new-tokens 128 \
         --ignore-eos --threads 2 2>&1 >/dev/null | grep 'decode')
  decode+=("$(echo "$line" | sed -E 's/.*decode [0-9]+ tokens, ([0-9.]+) tokens\/s.*/\1/')")
  out=$( { /usr/bin/time -f 'RSS %M' .build/release/finch generate --model "$MODEL" --max-new-tokens 1 --threads 2 \
           < bench/prompt512.txt >/dev/null; } 2>&1 )
  prefill+=("$(echo "$out" | grep 'prefill' | sed -E 's/.*prefill ([0-9]+) tokens, ([0-9.]+) tokens\/s.*/\2/')")
  rss+=("$(echo "$out" | grep '^RSS' | awk '{print $2}')")
done
fd=$(printf '%s\n' "${decode[@]}" | median); fp=$(printf '%s\n' "${prefill[@]}" | median); fr=$(printf '%s\n' "${rss[@]}" | median)
echo "finch:        decode ${fd} tok/s (runs ${decode[*]}); prefill-512 ${fp} tok/s (runs ${prefill[*]}); peak RSS $((fr / 1024)) MB"
for engine in llamacpp transformers; do
  r=$("$VENV/bin/python" bench/inference_reference.py --engine "$engine" --gguf "$MODEL" --threads 2 --runs "$RUNS")
  d=$(echo "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decode"]["tokens_per_s"])')
  p=$(echo "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["prefill"]["tokens_per_s"])')
  m=$(echo "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mb"])')
  echo "$engine: decode ${d} tok/s; prefill-512 ${p} tok/s; peak RSS ${m} MB; finch/$engine decode $(echo "scale=2; $fd / $d" | bc)×, prefill $(echo "scale=2; $fp / $p" | bc)×"
done
