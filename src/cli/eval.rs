//! `detlab eval`: COCO bbox evaluation of a results file against ground truth, printed the
//! way pycocotools' `COCOeval.summarize()` prints it (or as JSON). With `--model` and
//! `--data`, the detections are predicted first.

use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::predict::{category_ids, predict_with_progress, xywh, DetectArgs};
use detlab::dataset::{load_labels, scan_images};
use detlab::eval::{
    evaluate, load_detections, retain_known_categories, CocoGroundTruth, Detection, EvalResult,
    GtAnnotation, GtCategory, GtImage, Params, STAT_NAMES,
};

/// Arguments of `detlab eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// COCO ground-truth JSON (images, annotations, categories).
    #[arg(long, value_name = "GT.json", requires = "dt", conflicts_with = "data")]
    pub gt: Option<PathBuf>,
    /// COCO results JSON: a list of {image_id, category_id, bbox, score}.
    #[arg(long, value_name = "RESULTS.json", requires = "gt")]
    pub dt: Option<PathBuf>,
    /// With --model (default: the shipped model): a labelled image folder (VOC / YOLO / CreateML labels beside the
    /// images), or a COCO ground-truth JSON whose images are under --images (default: the
    /// JSON's folder).
    #[arg(long, value_name = "DIR|COCO.json")]
    pub data: Option<PathBuf>,
    /// Root folder of the images of a --data COCO.json.
    #[arg(long, value_name = "ROOT", requires = "data")]
    pub images: Option<PathBuf>,
    /// Label folder of a --data image folder (LabelImg's "save dir"), when the labels are
    /// not beside the images.
    #[arg(long, value_name = "DIR", requires = "data")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Print {"stats": [12 numbers], "per_category": {...}} instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Also print AP, AP50 and AR100 for every category.
    #[arg(long)]
    pub per_class: bool,
    /// Drop detections whose category is not in the ground truth (as pycocotools does
    /// silently) instead of reporting them as an error.
    #[arg(long)]
    pub drop_unknown_categories: bool,
}

/// Runs `detlab eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let (gt, mut dets, what) = match (&args.gt, &args.dt, &args.data) {
        (Some(gt), Some(dt), None) => {
            let (gt, dets) = rayon::join(
                || CocoGroundTruth::from_path(gt),
                || load_detections(dt),
            );
            (
                gt.context("loading ground truth")?,
                dets.context("loading detections")?,
                dt.display().to_string(),
            )
        }
        (None, None, Some(data)) => {
            let (gt, dets) = predict_for_eval(&args, data)?;
            (gt, dets, "the predictions".to_string())
        }
        _ => bail!("pass either --gt GT.json --dt RESULTS.json, or --model M.safetensors --data DIR|COCO.json"),
    };
    if args.drop_unknown_categories {
        let dropped = retain_known_categories(&gt, &mut dets);
        if dropped > 0 {
            eprintln!("note: dropped {dropped} detections of categories not in the ground truth");
        }
    }
    let result =
        evaluate(&gt, &dets, &Params::default()).with_context(|| format!("evaluating {what}"))?;

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &json_report(&result))?;
        writeln!(out)?;
    } else {
        out.write_all(result.summary_text().as_bytes())?;
        if args.per_class {
            writeln!(out)?;
            out.write_all(per_class_table(&result).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Ground truth of `--data` and the model's detections on its images.
fn predict_for_eval(
    args: &EvalArgs,
    data: &Path,
) -> anyhow::Result<(CocoGroundTruth, Vec<Detection>)> {
    let mut cfg = args.detect.predict_config()?;
    let (_, det) = args.detect.load_detector()?;
    cfg.batch_size = args.detect.batch_for(&det);
    let (gt, images) = if data.is_dir() {
        labelled_folder_gt(data, args.labels.as_deref(), det.class_names())?
    } else {
        let gt = CocoGroundTruth::from_path(data)
            .with_context(|| format!("loading ground truth {}", data.display()))?;
        let root = match &args.images {
            Some(r) => r.clone(),
            None => data.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        let images = gt
            .images()
            .iter()
            .map(|i| (root.join(&i.file_name), i.id))
            .collect();
        (gt, images)
    };
    let paths: Vec<PathBuf> = images.iter().map(|(p, _)| p.clone()).collect();
    let ids: std::collections::HashMap<&Path, i64> =
        images.iter().map(|(p, id)| (p.as_path(), *id)).collect();
    let preds = predict_with_progress(&det, &paths, &cfg)?;
    let cats = category_ids(det.class_names(), &gt);
    let mut dets = Vec::new();
    for (path, pred) in &preds {
        for d in &pred.detections {
            if let Some(category_id) = cats[d.class_id] {
                dets.push(Detection {
                    image_id: ids[path.as_path()],
                    category_id,
                    bbox: xywh(d),
                    score: f64::from(d.score),
                });
            }
        }
    }
    Ok((gt, dets))
}

/// COCO ground truth of a labelled folder, built in memory: categories are the model's
/// classes (ids 1..N) followed by any other label names; boxes are clipped to the image,
/// empty ones dropped; `difficult` boxes count as crowd (ignored), as `export
/// --difficult-as-crowd` does. Images without labels are negatives.
fn labelled_folder_gt(
    dir: &Path,
    labels_dir: Option<&Path>,
    classes: &[String],
) -> anyhow::Result<(CocoGroundTruth, Vec<(PathBuf, i64)>)> {
    let mut names = detlab::dataset::ClassList::from_names(classes.iter().cloned());
    let mut images = Vec::new();
    let mut gt_images = Vec::new();
    let mut annotations = Vec::new();
    let paths = scan_images(dir).with_context(|| format!("listing {}", dir.display()))?;
    for (i, path) in paths.into_iter().enumerate() {
        let id = i as i64 + 1;
        let labels = load_labels(&path, labels_dir)
            .with_context(|| format!("reading the labels of {}", path.display()))?;
        if let Some(l) = labels {
            let (w, h) = (
                f64::from(l.annotation.width),
                f64::from(l.annotation.height),
            );
            for b in &l.annotation.boxes {
                let c = b.bbox.normalized().clamp_to(w, h);
                if c.width() <= 0.0 || c.height() <= 0.0 {
                    continue;
                }
                annotations.push(GtAnnotation {
                    id: annotations.len() as i64 + 1,
                    image_id: id,
                    category_id: names.ensure(&b.class_name) as i64 + 1,
                    bbox: [c.x1, c.y1, c.width(), c.height()],
                    area: c.width() * c.height(),
                    iscrowd: b.difficult,
                });
            }
        }
        gt_images.push(GtImage {
            id,
            file_name: path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned(),
        });
        images.push((path, id));
    }
    if images.is_empty() {
        bail!("no images in {}", dir.display());
    }
    let categories = GtCategory::numbered(names.names());
    let gt = CocoGroundTruth::new(gt_images, categories, annotations)?;
    Ok((gt, images))
}

/// The `--json` document: stats in COCOeval order (with their names) and per-category numbers.
fn json_report(r: &EvalResult) -> serde_json::Value {
    let per_category: serde_json::Map<String, serde_json::Value> = r
        .per_category
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                serde_json::json!({"name": c.name, "ap": c.ap, "ap50": c.ap50, "ar100": c.ar100}),
            )
        })
        .collect();
    serde_json::json!({
        "stats": r.stats,
        "stat_names": STAT_NAMES,
        "per_category": per_category,
    })
}

/// A fixed-width table of per-category AP / AP50 / AR100 (`-` where undefined).
fn per_class_table(r: &EvalResult) -> String {
    let width = r
        .per_category
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let cell = |v: f64| {
        if v < 0.0 {
            format!("{:>7}", "-")
        } else {
            format!("{v:>7.3}")
        }
    };
    let mut s = format!(
        "{:>6}  {:<width$}  {:>7}{:>7}{:>7}\n",
        "id", "category", "AP", "AP50", "AR100"
    );
    for c in &r.per_category {
        s.push_str(&format!(
            "{:>6}  {:<width$}  {}{}{}\n",
            c.id,
            c.name,
            cell(c.ap),
            cell(c.ap50),
            cell(c.ar100)
        ));
    }
    s
}
