#!/usr/bin/env bash
# Start-up (wall clock and max resident set, as `/usr/bin/time` reports them) of the
# commands that need no network, and `detlab eval --gt --dt` on 2,000
# images against pycocotools, as whole processes (BENCHMARKS.md, "Start-up").
# Usage: scripts/bench_startup.sh [BIN_DIR]   (default: the release build of `make bench`)
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/detlab/target}/release}"
python="${DETLAB_PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "ldd $bin/detlab, libtorch/c10/CUDA libraries: $(ldd "$bin/detlab" | grep -cE 'torch|c10|cuda' || true)"
measure() { # label, command...: median wall seconds of 11 runs, and the largest resident set
    local label="$1"; shift
    "$python" - "$label" "$@" <<'PY'
import os, statistics, subprocess, sys, tempfile, time
label, cmd = sys.argv[1], sys.argv[2:]
runs, rss = [], 0
with tempfile.NamedTemporaryFile() as kb:
    for _ in range(11):
        t = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", kb.name] + cmd, capture_output=True)
        runs.append(time.perf_counter() - t)
        if out.returncode != 0:
            sys.exit(f"{label}: {out.stderr.decode()}")
        rss = max(rss, int(open(kb.name).read().split()[-1]))
print(f"| {label} | {statistics.median(runs) * 1000:.1f} ms | {rss / 1024:.1f} MB |")
PY
}
"$bin/detlab" demo --out "$work/demo" --images 4 --seed 1 >/dev/null
echo "| command | wall (median of 11) | max resident |"
echo "| --- | ---: | ---: |"
measure "detlab --help" "$bin/detlab" --help
measure "detlab --version" "$bin/detlab" --version
measure "detlab demo --images 1" "$bin/detlab" demo --out "$work/d1" --images 1
measure "detlab export coco (4 images)" "$bin/detlab" export coco --images "$work/demo" --out "$work/coco"
measure "detlab convert --to yolo (4 images)" "$bin/detlab" convert --from voc --to yolo --images "$work/demo" --out "$work/yolo"
measure "detlab-torch --help (links libtorch)" "$bin/detlab-torch" --help

# 2,000 images, seeded: "light" 2 GT + 4 detections each (2 classes), "dense" 10 GT + 20
# detections each (10 classes).
"$python" - "$work" <<'PY'
import json, random, sys
for name, per_image, classes, seed in [("light", 2, 2, 8), ("dense", 10, 10, 7)]:
    r = random.Random(seed)
    images, anns, dets = [], [], []
    for i in range(1, 2001):
        images.append(dict(id=i, file_name=f"{i}.jpg", width=640, height=480))
        for _ in range(per_image):
            w, h = r.uniform(10, 200), r.uniform(10, 200)
            x, y, c = r.uniform(0, 640 - w), r.uniform(0, 480 - h), r.randint(1, classes)
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=c, bbox=[x, y, w, h], area=w * h, iscrowd=0))
            jitter = [x + r.gauss(0, 5), y + r.gauss(0, 5), w * r.uniform(0.9, 1.1), h * r.uniform(0.9, 1.1)]
            dets.append(dict(image_id=i, category_id=c, bbox=jitter, score=r.random()))
            stray = [r.uniform(0, 440), r.uniform(0, 280), r.uniform(10, 200), r.uniform(10, 200)]
            dets.append(dict(image_id=i, category_id=r.randint(1, classes), bbox=stray, score=r.random() * 0.6))
    cats = [dict(id=c, name=f"c{c}") for c in range(1, classes + 1)]
    json.dump(dict(images=images, annotations=anns, categories=cats), open(f"{sys.argv[1]}/{name}_gt.json", "w"))
    json.dump(dets, open(f"{sys.argv[1]}/{name}_dt.json", "w"))
PY
cat > "$work/run_pycocotools.py" <<'PY'
import contextlib, io, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2])
    e = COCOeval(gt, dt, "bbox"); e.evaluate(); e.accumulate(); e.summarize()
PY
for set in light dense; do
    measure "detlab eval --gt --dt, 2,000 images ($set)" "$bin/detlab" eval --gt "$work/${set}_gt.json" --dt "$work/${set}_dt.json"
    measure "pycocotools as a process, same files ($set)" "$python" "$work/run_pycocotools.py" "$work/${set}_gt.json" "$work/${set}_dt.json"
done
