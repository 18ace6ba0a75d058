//! COCO export of many LabelImg VOC files, against a straightforward single-threaded
//! Python VOC→COCO conversion of the same files (ElementTree + json), in one run.

use std::path::Path;
use std::process::Command;

use rayon::prelude::*;

use super::{time, Report};
use detlab::dataset::{ClassList, ImageAnnotation, LabelBox};
use detlab::export::{export_coco, ExportOptions, Layout, SplitMode};
use detlab::geometry::BoxXyxy;

/// The Python reference: what a plain VOC→COCO script does, one file at a time.
const PYTHON_REFERENCE: &str = r#"
import json, os, sys, time
import xml.etree.ElementTree as ET
root, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
files = sorted(f for f in os.listdir(root) if f.endswith(".xml"))
images, annotations, categories = [], [], {}
for image_id, name in enumerate(files, 1):
    r = ET.parse(os.path.join(root, name)).getroot()
    size = r.find("size")
    w, h = int(size.find("width").text), int(size.find("height").text)
    images.append({"id": image_id, "file_name": r.find("filename").text, "width": w, "height": h})
    for obj in r.iter("object"):
        cid = categories.setdefault(obj.find("name").text, len(categories) + 1)
        b = obj.find("bndbox")
        x1, y1, x2, y2 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cid,
            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
            "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]]})
cats = [{"id": i, "name": n, "supercategory": "none"} for n, i in categories.items()]
with open(out, "w") as f:
    json.dump({"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": cats}, f)
print(time.perf_counter() - t0)
"#;

/// Writes `n` synthetic VOC files (1–4 boxes, 3 classes) and empty placeholder images
/// into `dir`; the export reads sizes from the XML, so the images are never decoded.
pub fn write_synthetic_voc(dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    (0..n).into_par_iter().try_for_each(|i| {
        let name = format!("img_{i:06}.jpg");
        let mut ann = ImageAnnotation::new(name.clone(), 1920, 1080);
        for k in 0..(1 + i % 4) {
            let x = ((i * 37 + k * 211) % 1700) as f64;
            let y = ((i * 53 + k * 97) % 900) as f64;
            ann.boxes.push(LabelBox::new(
                ["Cola", "Sprite", "Fanta"][(i + k) % 3],
                BoxXyxy::new(x + 1.0, y + 1.0, x + 120.0, y + 170.0),
            ));
        }
        let image = dir.join(&name);
        std::fs::write(&image, b"")?;
        detlab::formats::voc::write(&image.with_extension("xml"), &ann, &image)
            .map_err(std::io::Error::other)
    })
}

/// Runs the benchmark on `n` files; `python` is the interpreter for the reference.
pub fn run(n: usize, python: Option<&Path>) -> anyhow::Result<Report> {
    let work = tempfile_dir()?;
    let data = work.join("voc");
    let (written, gen_s) = time(|| write_synthetic_voc(&data, n));
    written?;
    let mut report = Report {
        title: format!("COCO export of {n} LabelImg VOC files"),
        ..Default::default()
    };
    report.notes.push(format!(
        "Generating the files took {gen_s:.1} s (not part of either time)."
    ));
    let options = ExportOptions {
        images_dir: data.clone(),
        labels_dir: None,
        out_dir: work.join("out"),
        classes: ClassList::new(),
        split: SplitMode::None,
        layout: Layout::Plain,
        difficult_as_crowd: false,
        strict: false,
    };
    let (summary, ours) = time(|| export_coco(&options, &|_, _| {}));
    let summary = summary?;
    anyhow::ensure!(
        summary.total_images() == n && summary.skipped.is_empty(),
        "export incomplete: {}",
        summary.report()
    );
    report.row("detlab export coco", ours, "s");
    report.row("detlab files per second", n as f64 / ours, "files/s");
    if let Some(py) = python {
        let out = Command::new(py)
            .arg("-c")
            .arg(PYTHON_REFERENCE)
            .arg(&data)
            .arg(work.join("py.json"))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "python reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
        report.row("Python ElementTree + json (single thread)", reference, "s");
        report.row(
            "speed-up (Python time / detlab time)",
            reference / ours,
            "×",
        );
    } else {
        report
            .notes
            .push("No Python given: the reference was not run.".into());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(report)
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("detlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
