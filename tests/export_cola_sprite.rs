//! The real LabelImg dataset in ../shared: every XML reads, the COCO export loads in
//! pycocotools with GT-as-detections AP = AR = 1, and VOC → COCO → VOC keeps every box.

mod common;

use std::path::Path;
use std::process::Command;

use detlab::dataset::{ClassList, LabelFormat};
use detlab::export::{
    convert, export_coco, ConvertOptions, ExportOptions, Layout, Source, SplitMode,
};
use detlab::formats::voc;

fn dataset() -> Option<std::path::PathBuf> {
    let d = common::shared_dir()?.join("datasets/cola-sprite");
    d.join("annotations").is_dir().then_some(d)
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
    };
    export_coco(&options, &|_, _| {}).unwrap()
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
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
