"""Writes the dense-shelf COCO vectors in tests/pycocotools/dense/ and their pycocotools
answers: the frozen reference `tests/eval_parity.rs` checks `maxDets` other than
pycocotools' default [1, 10, 100] against, without needing a Python at test time.

    $DETLAB_PYTHON tests/pycocotools/make_dense_vectors.py

The data is generated with Python's own `random.Random` (seeded, stable across
versions), so rerunning the script rewrites the same files. Shelf photos 3500 x 2600 px
with rows of touching facings: 8 images with 120-380 ground-truth boxes each (two of
them a single class, as in SKU-110K), and up to 400 detections per image (jittered
copies of the GT, duplicates, a few missed facings, false positives on the shelf edges
and price tags; scores rounded to 3 decimals so that ties occur). Crowd regions and a
few boxes of every area bucket are included.

The answers come from tests/data/pycocotools_eval.py (the same code the live tests
run): for each parameter set the 12 stats, the recall array, the precision array's
SHA-256, per-category [AP, AR], the printed summary, and AP at the third maxDets.
"""
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dense")
EVAL = os.path.join(HERE, "..", "data", "pycocotools_eval.py")
SEED = 20261203
W, H = 3500, 2600
N_CLASSES = 6

# Each parameter set is written to COCOeval.params as given.
PARAMS = [
    {},
    {"maxDets": [1, 10, 300]},
    {"maxDets": [1, 10, 400]},
    {"maxDets": [5, 50, 250]},
    {"maxDets": [10, 100, 1000]},
    {"maxDets": [300, 1, 10]},
    {"maxDets": [1, 10, 300], "useCats": 0},
]


def r1(x):
    return round(x, 1)


def shelf(rng, image_id, single_class, target):
    """One image: rows of touching facings until about `target` boxes."""
    gt = []
    rows = rng.randint(5, 8)
    top, bottom = 120.0, H - 80.0
    row_h = (bottom - top) / rows
    while len(gt) < target:
        for r in range(rows):
            y0 = top + r * row_h + 20.0
            x = rng.uniform(20.0, 80.0)
            while x < W - 60.0 and len(gt) < target:
                cls = 1 if single_class else rng.randint(1, N_CLASSES)
                w = rng.uniform(30.0, 70.0) * (0.6 + 0.2 * (cls % 4))
                h = rng.uniform(0.55, 0.95) * (row_h - 30.0)
                if rng.random() < 0.05:
                    w, h = rng.uniform(20.0, 31.0), rng.uniform(20.0, 31.0)  # small
                w = min(w, W - 10.0 - x)
                gt.append(
                    {
                        "image_id": image_id,
                        "category_id": cls,
                        "bbox": [r1(x), r1(y0 + (row_h - 30.0 - h)), r1(w), r1(h)],
                        "iscrowd": 0,
                    }
                )
                # Facings touch or overlap slightly; now and then an empty gap.
                x += w - rng.uniform(0.0, 6.0)
                if rng.random() < 0.04:
                    x += rng.uniform(40.0, 160.0)
        rows += 1
        row_h = (bottom - top) / rows
    if rng.random() < 0.6:
        # A crowd region over one shelf end (e.g. a stack of cartons).
        gt.append(
            {
                "image_id": image_id,
                "category_id": 1,
                "bbox": [r1(W - 400.0), r1(top), 380.0, r1(row_h)],
                "iscrowd": 1,
            }
        )
    return gt


def detections(rng, image_id, gt, cap):
    dts = []
    for g in gt:
        if g["iscrowd"]:
            continue
        if rng.random() < 0.08:
            continue  # missed facing
        x, y, w, h = g["bbox"]
        j = lambda s: rng.gauss(0.0, s)
        cls = g["category_id"]
        if rng.random() < 0.07:
            cls = rng.randint(1, N_CLASSES)  # similar-looking SKU
        box = [r1(x + j(0.06 * w)), r1(y + j(0.05 * h)), r1(w * (1 + j(0.08))), r1(h * (1 + j(0.06)))]
        box[2], box[3] = max(box[2], 1.0), max(box[3], 1.0)
        dts.append({"image_id": image_id, "category_id": cls, "bbox": box,
                    "score": round(rng.uniform(0.3, 0.99), 3)})
        if rng.random() < 0.12:
            # A duplicate shifted half a facing (what NMS leaves on packed shelves).
            dts.append({"image_id": image_id, "category_id": cls,
                        "bbox": [r1(x + 0.45 * w), box[1], box[2], box[3]],
                        "score": round(rng.uniform(0.05, 0.6), 3)})
    while len(dts) < cap and rng.random() < 0.9:
        # False positives: price tags and shelf edges.
        dts.append({"image_id": image_id, "category_id": rng.randint(1, N_CLASSES),
                    "bbox": [r1(rng.uniform(0, W - 120)), r1(rng.uniform(0, H - 60)),
                             r1(rng.uniform(40, 120)), r1(rng.uniform(20, 60))],
                    "score": round(rng.uniform(0.05, 0.5), 3)})
    rng.shuffle(dts)
    dts.sort(key=lambda d: -d["score"])  # stable: ties keep the shuffled order
    return dts[:cap]


def main():
    rng = random.Random(SEED)
    images, anns, dets = [], [], []
    targets = [380, 120, 350, 260, 310, 150, 300, 200]
    for i, target in enumerate(targets):
        image_id = i + 1
        images.append({"id": image_id, "file_name": f"shelf_{image_id:02d}.jpg",
                       "width": W, "height": H})
        single = i in (0, 4)
        gt = shelf(rng, image_id, single, target)
        dets.extend(detections(rng, image_id, gt, 400))
        anns.extend(gt)
    for k, a in enumerate(anns):
        a["id"] = k + 1
        a["area"] = r1(a["bbox"][2] * a["bbox"][3])
    gt_doc = {"images": images, "annotations": anns,
              "categories": [{"id": c, "name": f"sku_{c}"} for c in range(1, N_CLASSES + 1)]}
    os.makedirs(OUT, exist_ok=True)
    gt_path = os.path.join(OUT, "dense_shelves.gt.json")
    dt_path = os.path.join(OUT, "dense_shelves.dt.json")
    with open(gt_path, "w") as f:
        json.dump(gt_doc, f, separators=(",", ":"))
    with open(dt_path, "w") as f:
        json.dump(dets, f, separators=(",", ":"))
    out = subprocess.run([sys.executable, EVAL, gt_path, dt_path, json.dumps(PARAMS)],
                         check=True, capture_output=True, text=True).stdout
    ref = json.loads(out)
    per_image = {}
    for d in dets:
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
    expected = {
        "reference": f"pycocotools {ref['pycocotools']}, numpy {ref['numpy']}",
        "generator": "tests/pycocotools/make_dense_vectors.py",
        "gt": "dense_shelves.gt.json",
        "dt": "dense_shelves.dt.json",
        "n_images": len(images),
        "n_gt": len(anns),
        "n_dt": len(dets),
        "max_dt_per_image": max(per_image.values()),
        "runs": [{"params": p, **run} for p, run in zip(PARAMS, ref["runs"])],
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"{len(images)} images, {len(anns)} GT, {len(dets)} detections "
          f"(at most {expected['max_dt_per_image']} on one image) -> {OUT}")


if __name__ == "__main__":
    main()
