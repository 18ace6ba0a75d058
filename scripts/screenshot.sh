#!/usr/bin/env bash
# Renders the real window under Xvfb on the demo dataset and saves docs/screenshot.png.
# Usage: scripts/screenshot.sh [OUT.png]   (run after `make build`; needs xvfb-run)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshot.png}"
exe="${CARGO_TARGET_DIR:-$HOME/.cache/detlab/target}/debug/detlab"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$exe" demo --out "$work/shelf" --images 12 --seed 7 >/dev/null
mkdir -p "$(dirname "$out")"
export XDG_RUNTIME_DIR="$work/xdg" DETLAB_CONFIG_DIR="$work/config"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
xvfb-run -a -s "-screen 0 1280x800x24" "$exe" gui "$work/shelf" --screenshot "$out"
echo "wrote $out"
