//! The real LabelImg dataset in ../shared: every XML reads, the COCO export of `train/`
//! equals the original converter's output (`reference/instances_train2017.json`) box for
//! box up to documented differences, it loads in pycocotools with GT-as-detections
//! AP = AR = 1, and VOC → COCO → VOC keeps every box.
//!
//! Without `../shared` (or the venv, for pycocotools) these tests skip with a message;
//! under `CI=true` they fail.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use detlab::dataset::{ClassList, LabelFormat};
use detlab::export::{
    convert, export_coco, ConvertOptions, ExportOptions, Layout, Source, SplitMode,
};
use detlab::formats::voc;

/// `../shared/datasets/cola-sprite`, or `None` after reporting what is missing.
fn dataset() -> Option<std::path::PathBuf> {
    let d = common::shared_dir()?.join("datasets/cola-sprite");
    if d.join("annotations").is_dir() {
        Some(d)
    } else {
        common::missing(format!(
            "{} has no annotations/ folder (the cola-sprite dataset of ../shared)",
            d.display()
        ));
        None
    }
}

#[test]
fn all_472_labelimg_xmls_read() {
    let Some(d) = dataset() else { return };
    let mut n = 0;
    let mut boxes = 0;
    for entry in std::fs::read_dir(d.join("annotations")).unwrap() {
        let path = entry.unwrap().path();
        let ann = voc::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((ann.width, ann.height), (640, 480), "{}", path.display());
        n += 1;
        boxes += ann.boxes.len();
    }
    assert_eq!(n, 472);
    assert!(boxes > 800, "{boxes} boxes");
}

fn export(d: &Path, out: &Path) -> detlab::export::ExportSummary {
    let options = ExportOptions {
        images_dir: d.to_path_buf(),
        labels_dir: Some(d.join("annotations")),
        out_dir: out.to_path_buf(),
        classes: ClassList::from_names(["Sprite", "Cola"]),
        split: SplitMode::ByFolder,
        layout: Layout::Plain,
        difficult_as_crowd: false,
        strict: false,
    };
    export_coco(&options, &|_, _| {}).unwrap()
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The field names of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Annotations grouped by their image's file name, each image's in file order.
fn per_image<'a>(
    anns: &'a [Value],
    files: &BTreeMap<i64, &'a str>,
) -> BTreeMap<&'a str, Vec<&'a Value>> {
    let mut per: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for a in anns {
        let id = a["image_id"].as_i64().unwrap();
        let name = files
            .get(&id)
            .unwrap_or_else(|| panic!("annotation {} on unknown image {id}", a["id"]));
        per.entry(name).or_default().push(a);
    }
    per
}

/// The export of `train/` against `reference/instances_train2017.json`, the output of the
/// dataset's original VOC → COCO converter (2COCO.py), an implementation independent of
/// detlab: every image entry and every box must agree. The intended differences, each
/// checked rather than skipped:
///
/// * ids: the reference numbers images and annotations from 0, detlab from 1 (an id of 0
///   is "no match" inside pycocotools' matching, see the `gt_id_zero` vector), in the same
///   order: detlab's id = the reference's + 1, for images, annotations and `image_id`;
/// * `area`: the reference writes none (pycocotools' `loadRes` would make it `w·h`);
///   detlab writes `w·h` of the box;
/// * `segmentation`: absent from the reference; detlab writes the box's 4-corner polygon;
/// * categories: the same ids and names (Sprite = 1, Cola = 2); detlab adds
///   `supercategory: "none"`;
/// * top level: detlab adds `info` and `licenses` (pycocotools' `COCO.info()` reads `info`).
///
/// Everything else is equal: `file_name`, `width`, `height`, `category_id`, `iscrowd`, and
/// `bbox` exactly (`[xmin, ymin, xmax - xmin, ymax - ymin]` of the XML's integers, so
/// 001.jpg → `[317, 51, 215, 428]`), per image in the XML's object order.
#[test]
fn train_export_matches_the_original_converter() {
    let Some(d) = dataset() else { return };
    let reference_path = d.join("reference/instances_train2017.json");
    if !reference_path.is_file() {
        common::missing(format!("{} is absent", reference_path.display()));
        return;
    }
    let reference = read_json(&reference_path);
    let out = tempfile::tempdir().unwrap();
    export(&d, out.path());
    let ours = read_json(&out.path().join("instances_train.json"));

    let mut want_keys = keys(&reference);
    want_keys.extend(["info", "licenses"]);
    want_keys.sort_unstable();
    assert_eq!(keys(&ours), want_keys, "top-level fields");

    // Categories: same ids and names, in the same order; detlab adds a supercategory.
    let (ref_cats, our_cats) = (
        reference["categories"].as_array().unwrap(),
        ours["categories"].as_array().unwrap(),
    );
    assert_eq!(our_cats.len(), ref_cats.len(), "categories");
    for (r, o) in ref_cats.iter().zip(our_cats) {
        assert_eq!((&o["id"], &o["name"]), (&r["id"], &r["name"]), "category");
        assert_eq!(o["supercategory"], "none");
        let mut k = keys(r);
        k.push("supercategory");
        k.sort_unstable();
        assert_eq!(keys(o), k, "category fields");
    }

    // Images: one entry per reference image, matched by file name; id = reference id + 1.
    let (ref_images, our_images) = (
        reference["images"].as_array().unwrap(),
        ours["images"].as_array().unwrap(),
    );
    assert_eq!(ref_images.len(), 444, "the reference covers train/");
    assert_eq!(our_images.len(), ref_images.len(), "image count");
    let ours_by_name: BTreeMap<&str, &Value> = our_images
        .iter()
        .map(|i| (i["file_name"].as_str().unwrap(), i))
        .collect();
    let mut file_of_ref_id: BTreeMap<i64, &str> = BTreeMap::new();
    let mut file_of_our_id: BTreeMap<i64, &str> = BTreeMap::new();
    for r in ref_images {
        let name = r["file_name"].as_str().unwrap();
        let o = ours_by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in detlab's export"));
        assert_eq!(keys(o), keys(r), "{name}: image fields");
        assert_eq!(
            (&o["width"], &o["height"]),
            (&r["width"], &r["height"]),
            "{name}: size"
        );
        let (rid, oid) = (r["id"].as_i64().unwrap(), o["id"].as_i64().unwrap());
        assert_eq!(oid, rid + 1, "{name}: image id (detlab counts from 1)");
        file_of_ref_id.insert(rid, name);
        file_of_our_id.insert(oid, name);
    }

    // Annotations, per image in order.
    let (ref_anns, our_anns) = (
        reference["annotations"].as_array().unwrap(),
        ours["annotations"].as_array().unwrap(),
    );
    assert_eq!(our_anns.len(), ref_anns.len(), "box count");
    let ref_per = per_image(ref_anns, &file_of_ref_id);
    let our_per = per_image(our_anns, &file_of_our_id);
    assert_eq!(
        our_per.keys().collect::<Vec<_>>(),
        ref_per.keys().collect::<Vec<_>>(),
        "images with boxes"
    );
    let mut compared = 0;
    for (name, refs) in &ref_per {
        let mine = &our_per[name];
        assert_eq!(mine.len(), refs.len(), "{name}: box count");
        for (r, o) in refs.iter().zip(mine) {
            let mut k = keys(r);
            k.extend(["area", "segmentation"]);
            k.sort_unstable();
            assert_eq!(keys(o), k, "{name}: annotation fields");
            assert_eq!(
                o["id"].as_i64().unwrap(),
                r["id"].as_i64().unwrap() + 1,
                "{name}: annotation id (detlab counts from 1)"
            );
            assert_eq!(o["category_id"], r["category_id"], "{name}: category");
            assert_eq!(o["iscrowd"], r["iscrowd"], "{name}: iscrowd");
            let bbox = |v: &Value| -> Vec<f64> {
                v["bbox"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            };
            let (rb, ob) = (bbox(r), bbox(o));
            assert_eq!(ob, rb, "{name}: bbox (reference annotation {})", r["id"]);
            let [x, y, w, h] = [ob[0], ob[1], ob[2], ob[3]];
            assert_eq!(o["area"].as_f64(), Some(w * h), "{name}: area = w·h");
            assert_eq!(
                o["segmentation"],
                serde_json::json!([[x, y, x + w, y, x + w, y + h, x, y + h]]),
                "{name}: segmentation = the box's corners"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 818);
    // The example the issue quotes, so that a reader can check it by eye.
    let first = &our_per["001.jpg"][0];
    assert_eq!(
        first["bbox"],
        serde_json::json!([317.0, 51.0, 215.0, 428.0])
    );
}

#[test]
fn export_scores_ap_1_in_pycocotools() {
    let Some(d) = dataset() else { return };
    let Some(python) = common::venv_python() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let summary = export(&d, out.path());
    assert_eq!(summary.images.get("train"), Some(&444));
    assert_eq!(summary.images.get("val"), Some(&28));
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    let script = r#"
import json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
for split in ("train", "val"):
    gt = COCO(f"{sys.argv[1]}/instances_{split}.json")
    dets = [dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0) for a in gt.dataset["annotations"]]
    E = COCOeval(gt, gt.loadRes(dets), "bbox"); E.evaluate(); E.accumulate(); E.summarize()
    print("STATS", split, json.dumps(list(E.stats)))
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("No module named 'pycocotools'") {
        common::missing("the venv's Python has no pycocotools (the project venv installs it)");
        return;
    }
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let mut seen = 0;
    for line in stdout.lines().filter(|l| l.starts_with("STATS")) {
        let stats: Vec<f64> = serde_json::from_str(line.splitn(3, ' ').nth(2).unwrap()).unwrap();
        // AP@[.5:.95] and AR@100 (the precision of a lone perfect detection is 1/(1+eps)).
        assert!((stats[0] - 1.0).abs() < 1e-9, "{line}");
        assert!((stats[8] - 1.0).abs() < 1e-9, "{line}");
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn voc_to_coco_to_voc_keeps_every_box() {
    let Some(d) = dataset() else { return };
    let out = tempfile::tempdir().unwrap();
    export(&d, out.path());
    let back = tempfile::tempdir().unwrap();
    for split in ["train", "val"] {
        let options = ConvertOptions {
            source: Source::Coco(out.path().join(format!("instances_{split}.json"))),
            to: LabelFormat::Voc,
            images_dir: d.join(split),
            out_dir: back.path().to_path_buf(),
            classes: ClassList::new(),
        };
        convert(&options).unwrap();
    }
    let mut compared = 0;
    for entry in std::fs::read_dir(d.join("annotations")).unwrap() {
        let path = entry.unwrap().path();
        let original = voc::read(&path).unwrap();
        let again = voc::read(&back.path().join(path.file_name().unwrap())).unwrap();
        let key = |a: &detlab::dataset::ImageAnnotation| {
            let mut v: Vec<(String, [i64; 4])> = a
                .boxes
                .iter()
                .map(|b| (b.class_name.clone(), voc::labelimg_int_box(&b.bbox)))
                .collect();
            v.sort();
            v
        };
        assert_eq!(key(&original), key(&again), "{}", path.display());
        compared += original.boxes.len();
    }
    assert!(compared > 800);
}
