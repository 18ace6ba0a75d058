"""pycocotools' COCOeval ("bbox") on a ground-truth file and a results file: the
reference that the tests compare detlab's evaluator with, computed live from the
project venv ($DETLAB_PYTHON), so that no expected number is frozen without its source.

    python pycocotools_eval.py GT.json RESULTS.json ['[{"useCats": 0}, ...]']

The optional third argument is JSON text: a list of parameter sets, each a dict of COCOeval.params
fields to override: useCats (0/1), maxDets, iouThrs, areaRng with areaRngLbl, imgIds,
catIds. Without it, one run with the default parameters. Prints one JSON document on
stdout: {"pycocotools": version, "numpy": version, "runs": [...]}, one entry per
parameter set with the 12 `stats`, the `recall` array (flat, C order) and its shape,
the SHA-256 of the `precision` array (little-endian float64, C order), per-category
[AP, AR@100] the way detlab reports them, the printed `summary` text, and
`ap_at_third_max_dets`: pycocotools' own `_summarize(1, maxDets=maxDets[2])`, i.e. AP
over all IoU thresholds at the third maxDets (stats[0] itself uses a literal 100 and is
-1 when maxDets lacks 100; detlab reports this value there). COCO's own progress output
goes to stderr.
"""
import contextlib
import hashlib
import io
import json
import sys
from importlib.metadata import version

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def per_category(e):
    """Per category, [AP, AR] as detlab reports them: the mean of the defined (> -1)
    precision (resp. recall) cells over all IoU thresholds, at the first area range and
    the largest maxDets (pycocotools itself has no per-category summary)."""
    p = e.params
    out = {}
    if not p.useCats:
        return out
    for k, cat in enumerate(p.catIds):
        pr = e.eval["precision"][:, :, k, 0, -1]
        rc = e.eval["recall"][:, k, 0, -1]
        pr, rc = pr[pr > -1], rc[rc > -1]
        out[str(cat)] = [
            float(np.mean(pr)) if pr.size else -1.0,
            float(np.mean(rc)) if rc.size else -1.0,
        ]
    return out


def run(gt, dt, overrides):
    e = COCOeval(gt, dt, "bbox")
    p = e.params
    for key, value in overrides.items():
        if key == "iouThrs":
            value = np.array(value, dtype=np.float64)
        elif key not in ("useCats", "maxDets", "areaRng", "areaRngLbl", "imgIds", "catIds"):
            raise SystemExit(f"unknown parameter {key!r}")
        setattr(p, key, value)
    e.evaluate()
    e.accumulate()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        e.summarize()
    recall = np.ascontiguousarray(e.eval["recall"], dtype="<f8")
    precision = np.ascontiguousarray(e.eval["precision"], dtype="<f8")
    return {
        "stats": [float(s) for s in e.stats],
        "recall_shape": list(recall.shape),
        "recall": [float(x) for x in recall.ravel()],
        "precision_sha256": hashlib.sha256(precision.tobytes()).hexdigest(),
        "per_category": per_category(e),
        "summary": text.getvalue(),
        "ap_at_third_max_dets": ap_at_third_max_dets(e),
    }


def ap_at_third_max_dets(e):
    """AP@[.5:.95], area "all", at maxDets[2] (None with fewer than three maxDets): the
    number pycocotools' summarize computes for AP50 and friends, taken over all IoU
    thresholds, with the same slicing and np.mean as its _summarize."""
    p = e.params
    if len(p.maxDets) < 3:
        return None
    aind = [i for i, a in enumerate(p.areaRngLbl) if a == "all"]
    mind = [i for i, m in enumerate(p.maxDets) if m == p.maxDets[2]]
    s = e.eval["precision"][:, :, :, aind, mind]
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    gt_path, dt_path = sys.argv[1], sys.argv[2]
    params = [{}]
    if len(sys.argv) == 4:
        params = json.loads(sys.argv[3])
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        runs = [run(gt, dt, o) for o in params]
    json.dump(
        {"pycocotools": version("pycocotools"), "numpy": np.__version__, "runs": runs},
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
