//! `detlab eval` with `--model`/`--data`: the detections are predicted first, then
//! evaluated as `detlab::commands::eval` evaluates a results file.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

use super::predict::{category_ids, predict_with_progress, xywh, DetectArgs, DEFAULT_MAX_DET};
use detlab::commands::eval::{report, EvalFilesArgs};
use detlab::dataset::{load_labels, scan_images};
use detlab::eval::{
    CocoGroundTruth, Detection, GtAnnotation, GtCategory, GtImage, MaxDets, COCO_MAX_DETS,
};

/// Arguments of `detlab eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub files: EvalFilesArgs,
    /// With --model (default: the shipped model): a labelled image folder (VOC / YOLO / CreateML labels beside the
    /// images), or a COCO ground-truth JSON whose images are under --images (default: the
    /// JSON's folder).
    #[arg(long, value_name = "DIR|COCO.json", conflicts_with = "gt")]
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
}

/// Runs `detlab eval`: a results file, or the model's predictions on `--data`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    match &args.data {
        Some(data) => {
            let (gt, dets, max_dets) = predict_for_eval(&args, data)?;
            report(&args.files.output, gt, dets, "the predictions", max_dets)
        }
        None => detlab::commands::eval::run(args.files),
    }
}

/// Ground truth of `--data`, the model's detections on its images, and the maxDets to
/// evaluate with: `--max-dets`, else 1,10,300 when a labelled image holds more than 100
/// boxes (and then up to 300 detections per image unless `--max-det` says otherwise),
/// else pycocotools' 1,10,100.
fn predict_for_eval(
    args: &EvalArgs,
    data: &Path,
) -> anyhow::Result<(CocoGroundTruth, Vec<Detection>, MaxDets)> {
    let mut cfg = args.detect.predict_config()?;
    let (_, det) = args.detect.load_detector()?;
    cfg.batch_size = args.detect.batch_for(&det);
    let (gt, images) = if data.is_dir() {
        if let Some(labels) = &args.labels {
            detlab::dataset::check_label_folder(labels)?;
        }
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
    let densest = gt.max_annotations_per_image();
    let max_dets = match args.files.output.max_dets {
        Some(m) => m,
        None => {
            let m = MaxDets::for_labels(densest);
            if m != COCO_MAX_DETS {
                eprintln!(
                    "note: dense labels ({densest} boxes on one image): evaluating with maxDets \
                     {m} and up to {} detections per image (--max-dets {COCO_MAX_DETS} for \
                     pycocotools' default)",
                    args.detect.max_det_or(m.last().max(DEFAULT_MAX_DET))
                );
            }
            m
        }
    };
    cfg.select.max_detections = Some(args.detect.max_det_or(max_dets.last().max(DEFAULT_MAX_DET)));
    let paths: Vec<PathBuf> = images.iter().map(|(p, _)| p.clone()).collect();
    let ids: std::collections::HashMap<&Path, i64> =
        images.iter().map(|(p, id)| (p.as_path(), *id)).collect();
    let preds = predict_with_progress(&det, &paths, &cfg)?.predicted;
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
    Ok((gt, dets, max_dets))
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
