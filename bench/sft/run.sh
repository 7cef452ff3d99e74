#!/usr/bin/env bash
# Issue 8's SFT benchmark, side by side in one run: SmolLM2-135M-Instruct, LoRA r 16 / alpha 16 on
# all linear layers, generated `text` rows packed into 512-token rows (bfd), batch 2, accumulation
# 1; Finch's `finch sft` with an NF4 + double-quant base (gradient checkpointing off and on)
# against TRL 1.16 SFTTrainer + PEFT (bench/sft/trl_reference.py) with a bitsandbytes NF4 base and,
# as NOTES.md's baseline, fp32. STEPS optimizer steps per side (default 12); tokens/s is the median
# over the steps after the first two; peak RSS of each process.
#
#   bench/sft/run.sh           # needs the reference venv at $FINCH_REF_VENV (default /work/venv-ref)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${FINCH_REF_VENV:-/work/venv-ref}
STEPS=${STEPS:-12}
export STEPS
swift build -c release >/dev/null
MODEL=$(.build/release/finch pull smollm2-135m-instruct)
WORK=$(mktemp -d /tmp/finch-bench-sft.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 bench/sft/make_text.py "$WORK/text.jsonl" 600

finch_run() {  # $1 = label, rest = extra flags
  local label=$1; shift
  python3 - "$label" "$WORK" "$@" <<'PY'
import json, os, resource, statistics, subprocess, sys
label, work, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
out = f"{work}/{label}"
cmd = [".build/release/finch", "sft", "smollm2-135m-instruct", "--dataset", f"{work}/text.jsonl", "--quantization", "nf4",
       "--lora_r", "16", "--lora_alpha", "16", "--lora_dropout", "0", "--lora_target_modules", "all-linear",
       "--packing", "true", "--max_length", "512", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
       "--learning_rate", "2e-4", "--lr_scheduler_type", "cosine", "--max_steps", os.environ["STEPS"], "--logging_steps", "1",
       "--save_steps", "0", "--output_dir", out] + extra
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
rows = [json.loads(l) for l in open(f"{out}/metrics.jsonl") if '"loss"' in l]
print(json.dumps({"side": "finch", "label": label, "tokens_per_s": statistics.median(r["tokens_per_second"] for r in rows[2:]),
                  "peak_rss_mb": rss, "steps": len(rows), "first_loss": rows[0]["loss"]}))
PY
}

plain=$(finch_run nockpt --gradient_checkpointing false); echo "finch (nf4, no checkpointing): $plain"
ckpt=$(finch_run ckpt --gradient_checkpointing true); echo "finch (nf4, checkpointing):    $ckpt"
trl=$("$VENV/bin/python" bench/sft/trl_reference.py "$MODEL" "$WORK/text.jsonl" --nf4 --steps "$STEPS" 2>/dev/null | tail -1)
echo "trl (nf4):                     $trl"
base=$("$VENV/bin/python" bench/sft/trl_reference.py "$MODEL" "$WORK/text.jsonl" --steps "$STEPS" 2>/dev/null | tail -1)
echo "trl (fp32):                    $base"
python3 - "$plain" "$ckpt" "$trl" "$base" <<'PY'
import json, sys
plain, ckpt, trl, base = (json.loads(a) for a in sys.argv[1:])
for name, f in (("no ckpt", plain), ("ckpt", ckpt)):
    for tname, t in (("TRL nf4", trl), ("TRL fp32", base)):
        print(f"ratio finch {name} / {tname}: tokens/s {f['tokens_per_s'] / t['tokens_per_s']:.2f}x, "
              f"peak RSS {f['peak_rss_mb']:.0f} MB vs {t['peak_rss_mb']:.0f} MB")
PY
