#!/usr/bin/env bash
# Load on `finch serve` (default model, loopback, 2 threads): CLIENTS concurrent streaming chat
# clients (every stream checked), the server's RSS over REQUESTS sequential requests, and how soon a
# client hanging up mid-stream frees the model for the next request. Client: bench/serve/load_client.py
# (Python standard library only).
#
#   bench/serve/run.sh            # CLIENTS=32 MAX_TOKENS=32 REQUESTS=200 DISCONNECT_RUNS=5
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-32}
MAX_TOKENS=${MAX_TOKENS:-32}
REQUESTS=${REQUESTS:-200}
DISCONNECT_RUNS=${DISCONNECT_RUNS:-5}
FINCH=${FINCH:-.build/release/finch}
[ -x "$FINCH" ] || swift build -c release --product finch >/dev/null

log=$(mktemp)
"$FINCH" serve --model default --port 0 --threads 2 --max-queue "$CLIENTS" 2> "$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
port=
for _ in $(seq 600); do
  port=$(sed -nE 's|.*serving .* on http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "finch serve did not start" >&2; cat "$log" >&2; exit 1; }
echo "finch serve (pid $pid) on port $port; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== $CLIENTS concurrent streaming clients, $MAX_TOKENS tokens each (ignore_eos)"
python3 bench/serve/load_client.py concurrent --port "$port" --clients "$CLIENTS" --max-tokens "$MAX_TOKENS"
echo "== RSS over $REQUESTS sequential requests (16 tokens, every other one streamed)"
python3 bench/serve/load_client.py rss --port "$port" --pid "$pid" --requests "$REQUESTS"
echo "== a client hanging up mid-stream, another waiting behind it ($DISCONNECT_RUNS runs)"
python3 bench/serve/load_client.py disconnect --port "$port" --runs "$DISCONNECT_RUNS"
echo "== the server's own measure (time from the hang-up being noticed to the model being free):"
grep -o 'client gone; model free [0-9]* ms after it' "$log" | sed -E 's/.* ([0-9]+) ms.*/\1/' | sort -n | tr '\n' ' '; echo "(ms)"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
