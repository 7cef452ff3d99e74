#!/usr/bin/env bash
# Issue 7's DPO benchmark, side by side in one run: examples/smollm2-dpo.yaml (SmolLM2-135M, NF4 +
# double quant base, LoRA r 16 q/k/v/o, batch 2 × accumulation 4, gradient checkpointing) on
# generated short pairs (bench/dpo/make_pairs.py, ≈ 140 tokens per pair counting the prompt
# twice), Finch's `finch dpo` against TRL 1.16 DPOTrainer + PEFT (bench/dpo/trl_reference.py)
# with the same recipe (bitsandbytes NF4 base, gradient checkpointing) and, for NOTES.md's
# baseline, with an fp32 base and no checkpointing. Each side runs STEPS optimizer steps (default
# 12); pairs/s is the median over the steps after the first two; peak RSS of each process.
# Finch also runs with precompute_ref_log_probs (the reference pass done once, before the timing).
#
#   bench/dpo/run.sh           # needs the reference venv at $FINCH_REF_VENV (default /work/venv-ref)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${FINCH_REF_VENV:-/work/venv-ref}
STEPS=${STEPS:-12}
export STEPS
swift build -c release >/dev/null
MODEL=$(.build/release/finch pull smollm2-135m-instruct)
WORK=$(mktemp -d /tmp/finch-bench-dpo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 bench/dpo/make_pairs.py "$WORK/pairs.jsonl" 400

finch_run() {  # $1 = label, rest = extra flags
  local label=$1; shift
  python3 - "$label" "$WORK" "$@" <<'PY'
import json, resource, statistics, subprocess, sys
label, work, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
out = f"{work}/{label}"
cmd = [".build/release/finch", "dpo", "--config", "examples/smollm2-dpo.yaml", "--dataset", f"{work}/pairs.jsonl",
       "--max_steps", __import__("os").environ.get("STEPS", "12"), "--logging_steps", "1",
       "--save_steps", "0", "--output_dir", out] + extra
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
rows = [json.loads(l) for l in open(f"{out}/metrics.jsonl") if '"loss"' in l]
pps = statistics.median(r["pairs_per_second"] for r in rows[2:])
tps = statistics.median(r["tokens_per_second"] for r in rows[2:])
print(json.dumps({"side": "finch", "label": label, "pairs_per_s": pps, "tokens_per_s": tps, "peak_rss_mb": rss,
                  "steps": len(rows), "first_loss": rows[0]["loss"]}))
PY
}

live=$(finch_run live); echo "finch (live reference):        $live"
pre=$(finch_run precomputed --precompute_ref_log_probs true); echo "finch (precomputed reference): $pre"
trl=$("$VENV/bin/python" bench/dpo/trl_reference.py "$MODEL" "$WORK/pairs.jsonl" --nf4 --gradient-checkpointing --steps "$STEPS" 2>/dev/null | tail -1)
echo "trl (nf4, checkpointing):      $trl"
base=$("$VENV/bin/python" bench/dpo/trl_reference.py "$MODEL" "$WORK/pairs.jsonl" --steps "$STEPS" 2>/dev/null | tail -1)
echo "trl (fp32, no checkpointing):  $base"
python3 - "$live" "$pre" "$trl" "$base" <<'PY'
import json, sys
live, pre, trl, base = (json.loads(a) for a in sys.argv[1:])
for name, f in (("live", live), ("precomputed", pre)):
    for tname, t in (("TRL nf4+ckpt", trl), ("TRL fp32", base)):
        print(f"ratio finch {name} / {tname}: pairs/s {f['pairs_per_s'] / t['pairs_per_s']:.2f}x, "
              f"peak RSS {f['peak_rss_mb']:.0f} MB vs {t['peak_rss_mb']:.0f} MB")
PY
