#!/usr/bin/env bash
# Part 2 of the GPU checks (after check.sh, on the same machine): trains the Cola/Sprite
# Lite0 recipes side by side on the GPU, sized to fit $BUDGET seconds from the training
# speed that check.sh measured. Each run's best model and metrics go to $OUT.
set -u
W=/tmp/detlab-gpu
OUT=${OUT:-$W/out}
DEV=${DEV:-cuda}   # DEV=cpu EPOCHS=1 EXTRA="--max-steps 2": a dry run of the script on a machine without a GPU
BUDGET=${BUDGET:-360}
mkdir -p "$OUT"
[ -x "$W/detlab" ] || { echo "run check.sh first on this machine ($W/detlab is missing)"; exit 3; }
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB DETLAB_VENV=$W/venv
cp -r .device/b/data/train "$W/data/"
D="$W/detlab"; DATA="$W/data"
# Solo images/s of the last timing epoch; three runs share the GPU, so each is assumed to
# get half of it; an epoch adds about 3 s of validation and checkpoints.
epochs_for() {
  python3 - "$W/speed-lite0-$1-8/metrics.jsonl" "$BUDGET" <<'PY'
import json, sys
ips = [json.loads(l)["images_per_sec"] for l in open(sys.argv[1]) if '"event":"epoch"' in l][-1]
print(max(20, min(150, int(float(sys.argv[2]) / (444 / (ips / 2) + 3)))))
PY
}
E384=${EPOCHS:-$(epochs_for 384 || echo 40)}; E512=${EPOCHS:-$(epochs_for 512 || echo 30)}
echo "epochs: 384 -> $E384, 512 -> $E512 (budget $BUDGET s)"
common=(--data "$DATA/train" --labels "$DATA/annotations" --val "$DATA/val"
  --val-labels "$DATA/annotations" --model lite0 --batch 8 --lr 1e-3
  --freeze-backbone-epochs 2 --ema 0.998 --loss official --anchor-ratios auto --device $DEV --seed 0 ${EXTRA:-})
run() { name=$1; shift; timeout $((BUDGET + 100)) "$D" train "${common[@]}" --out "$W/$name" "$@" >"$W/$name.log" 2>&1; }
start=$(date +%s)
run r384 --input-size 384 --epochs "$E384" &
run r512 --input-size 512 --epochs "$E512" &
run r384j --input-size 384 --epochs "$E384" --scale-jitter 0.6,1.4 &
wait
echo "trained in $(( $(date +%s) - start )) s"
for r in r384 r512 r384j; do
  echo "== $r"; grep -E "^epoch [0-9]+:" "$W/$r.log" | tail -4; tail -8 "$W/$r.log"
  cp "$W/$r/best.safetensors" "$OUT/$r-best.safetensors" 2>/dev/null
  cp "$W/$r/metrics.jsonl" "$OUT/$r-metrics.jsonl" 2>/dev/null
done 2>&1 | tee "$OUT/train.log"
