#!/usr/bin/env bash
# Side by side: encoding throughput of the SmolLM2 tokenizer on ~10 MB of mixed text (prose, code,
# numbers, multilingual; bench/make_tokenizer_corpus.py), single-threaded, line by line (each line
# keeps its newline), load time excluded. Finch: `finch tokenize --count --lines`; HF `tokenizers`
# 0.23.3: bench/tokenize_hf.py (faster of encode_batch and an encode loop). Median of RUNS runs.
#
#   bench/tokenize.sh [TOKENIZER_DIR]    # needs the reference venv (reference/README.md) at $FINCH_REF_VENV
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
VENV=${FINCH_REF_VENV:-/work/venv-ref}
DIR=${1:-Tests/FinchTokenizersTests/Fixtures/smollm2}
CORPUS=${CORPUS:-/tmp/finch-tokenizer-corpus.txt}
swift build -c release --product finch >/dev/null
[ -f "$CORPUS" ] || "$VENV/bin/python" bench/make_tokenizer_corpus.py "$CORPUS" >/dev/null

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
speeds=(); tokens=""
for _ in $(seq "$RUNS"); do
  out=$(.build/release/finch tokenize "$DIR" --file "$CORPUS" --count --lines --no-special-tokens)
  speeds+=("$(echo "$out" | sed -E 's/.*"mb_per_s": ([0-9.e+-]+).*/\1/')")
  tokens=$(echo "$out" | sed -E 's/.*"tokens": ([0-9]+).*/\1/')
done
finch=$(printf '%s\n' "${speeds[@]}" | median)
hf=$("$VENV/bin/python" bench/tokenize_hf.py "$CORPUS" "$DIR" --runs "$RUNS")
hf_speed=$(echo "$hf" | sed -E 's/.*"mb_per_s": ([0-9.e+-]+).*/\1/')
hf_tokens=$(echo "$hf" | sed -E 's/.*"tokens": ([0-9]+).*/\1/')
echo "tokenizer $DIR, corpus $(wc -c < "$CORPUS") bytes, single thread, median of $RUNS"
echo "  finch:                ${finch} MB/s  (${tokens} tokens; runs: ${speeds[*]})"
echo "  HF tokenizers 0.23.3: ${hf_speed} MB/s  (${hf_tokens} tokens)"
echo "  ratio:                $(echo "scale=2; $finch / $hf_speed" | bc)×"
[ "$tokens" = "$hf_tokens" ] || echo "  WARNING: token counts differ"
