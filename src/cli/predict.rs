//! `detlab predict`: run a detlab model file on images and write the detections as JSON
//! (detlab's per-image document, or a COCO results list with `--gt`), optionally as
//! LabelImg VOC files in a separate folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use detlab::dataset::{find_label, is_image_path, scan_images, ImageAnnotation, LabelBox};
use detlab::detector::inference::{
    default_model_path, predict_files, Detector, DetectorOptions, DeviceChoice, ImagePrediction,
    PredictConfig, SHIPPED_MODEL,
};
use detlab::detector::maths::nms::DEFAULT_SOFT_NMS_SIGMA;
use detlab::detector::maths::postprocess::{Detection, NmsMethod, SelectConfig};
use detlab::detector::maths::tiling::{TileParams, Tiling, DEFAULT_TILE_OVERLAP};
use detlab::detector::maths::tta::{Tta, DEFAULT_TTA_SCALES};
use detlab::detector::precision::Precision;
use detlab::eval::CocoGroundTruth;

/// Model and post-processing options shared by `predict` and `eval --model`.
#[derive(clap::Args, Debug, Clone)]
pub struct DetectArgs {
    /// The detlab model file (default: the shipped models/cola-sprite-lite0.safetensors,
    /// or $DETLAB_MODEL).
    #[arg(long, value_name = "M.safetensors")]
    pub model: Option<PathBuf>,
    /// Keep detections with a score above this.
    #[arg(long, default_value_t = 0.05)]
    pub score: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.5)]
    pub iou: f64,
    /// NMS across classes instead of within each class.
    #[arg(long)]
    pub class_agnostic: bool,
    /// Suppression: hard (remove boxes with IoU > --iou), linear Soft-NMS (score ×
    /// (1 − IoU) above --iou) or gaussian Soft-NMS (score × exp(−IoU²/σ)).
    #[arg(long, value_enum, default_value_t = NmsChoice::Hard)]
    pub nms: NmsChoice,
    /// σ of gaussian Soft-NMS.
    #[arg(long, default_value_t = DEFAULT_SOFT_NMS_SIGMA, value_name = "SIGMA")]
    pub soft_nms_sigma: f64,
    /// At most this many detections per image (default 100; 300 when the known labels
    /// are dense: more than 100 boxes on one image).
    #[arg(long)]
    pub max_det: Option<usize>,
    /// Images per network call (default: one per CPU thread on the CPU engine, up to the
    /// pixels of eight 512² inputs; else 1).
    #[arg(long)]
    pub batch: Option<usize>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<usize>,
    /// fp32, or bf16: the 1×1 convolutions' products in bfloat16 with float32
    /// accumulation on CPUs with AVX512-BF16 (AMX when present); elsewhere fp32, with a
    /// note.
    #[arg(long, default_value = "fp32", value_name = "fp32|bf16")]
    pub precision: Precision,
    /// Detect large photos in tiles at native resolution: SIZE (tile side in original
    /// pixels, plus one whole-photo pass for large objects), off, or auto (tiles of the
    /// model's training crops for a model trained with `train --tile`, on photos more than
    /// twice that size).
    #[arg(long, default_value = "auto", value_name = "SIZE|auto|off")]
    pub tile: TileArg,
    /// Overlap of neighbouring tiles, as a fraction of the tile size (objects up to this
    /// fraction of a tile are always whole in some tile).
    #[arg(long, default_value_t = DEFAULT_TILE_OVERLAP, value_name = "F")]
    pub tile_overlap: f32,
    /// Test-time augmentation: off; flip (the photo and its mirror image, about 2× the
    /// time); flip-scales (also the photo at --tta-scales, about 5–6× the time on 4:3
    /// photos). The passes' candidates are pooled before NMS. A tiled photo gets the flip
    /// only (flip-scales with --tile SIZE is refused).
    #[arg(long, value_enum, default_value_t = TtaChoice::Off)]
    pub tta: TtaChoice,
    /// The two scales of --tta flip-scales: objects at these multiples of their usual size
    /// in the network input (below 1: a smaller letterbox, padded; above 1: overlapping
    /// windows of the photo), each in [0.5, 2] and not 1.
    #[arg(long, value_name = "S1,S2", value_delimiter = ',', requires = "tta")]
    pub tta_scales: Option<Vec<f32>>,
}

/// `--tta`: which test-time augmentation passes run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtaChoice {
    Off,
    Flip,
    FlipScales,
}

impl TtaChoice {
    /// The passes, with the default scales.
    pub fn tta(self) -> Tta {
        match self {
            TtaChoice::Off => Tta::Off,
            TtaChoice::Flip => Tta::Flip,
            TtaChoice::FlipScales => Tta::flip_scales(),
        }
    }
}

/// `--tile`: a tile size, `auto` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileArg {
    Auto,
    Off,
    Size(u32),
}

impl std::str::FromStr for TileArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" | "none" => Ok(Self::Off),
            n => match n.parse::<u32>() {
                Ok(v) if (32..=8192).contains(&v) => Ok(Self::Size(v)),
                _ => Err(format!(
                    "{s:?}: a tile size in pixels from 32 to 8192, auto or off"
                )),
            },
        }
    }
}

/// `--nms`: hard NMS or a Soft-NMS decay.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmsChoice {
    Hard,
    Linear,
    Gaussian,
}

/// Detections kept per image by default (pycocotools' maxDets).
pub const DEFAULT_MAX_DET: usize = 100;

/// Detections kept per image by default when the labels are dense (more than
/// [`detlab::eval::DENSE_BOXES_PER_IMAGE`] boxes on one image).
pub const DENSE_MAX_DET: usize = 300;

/// Arguments of `detlab predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Image folders (searched recursively) and/or image files.
    #[arg(long, num_args = 1.., required_unless_present = "video", value_name = "DIR|FILE")]
    pub images: Vec<PathBuf>,
    /// The JSON file to write (atomically).
    #[arg(long, value_name = "OUT.json")]
    pub out: PathBuf,
    /// COCO ground truth: write a COCO results list with its image ids (matched by file
    /// name) and category ids (matched by class name) instead of detlab's document.
    #[arg(long, value_name = "COCO.json")]
    pub gt: Option<PathBuf>,
    /// Also write the predictions as LabelImg VOC files into this folder (never the
    /// images' own folder, never over existing files).
    #[arg(long, value_name = "DIR")]
    pub voc_dir: Option<PathBuf>,
    /// A video (any file FFmpeg reads) or a camera (/dev/videoN) instead of images: the
    /// JSON lists each detected frame with its index and time.
    #[arg(long, value_name = "IN.mp4|/dev/videoN", conflicts_with_all = ["images", "gt", "voc_dir"])]
    pub video: Option<PathBuf>,
    /// With --video: also write the video with boxes, classes and scores drawn.
    #[arg(long, value_name = "OUT.mp4", requires = "video")]
    pub out_video: Option<PathBuf>,
    /// With --video: detect on every N-th frame (the annotated video keeps the last
    /// detections on the frames between).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "video")]
    pub every: u64,
    /// With --video: stop after this many frames (for a camera).
    #[arg(long, value_name = "N", requires = "video")]
    pub max_frames: Option<u64>,
}

impl DetectArgs {
    /// Post-processing settings (with `--batch`, or 1 until [`DetectArgs::batch_for`]).
    pub fn predict_config(&self) -> anyhow::Result<PredictConfig> {
        if !(self.score.is_finite() && (0.0..1.0).contains(&self.score)) {
            bail!("--score {} must be in [0, 1)", self.score);
        }
        if !(self.iou.is_finite() && self.iou > 0.0 && self.iou <= 1.0) {
            bail!("--iou {} must be in (0, 1]", self.iou);
        }
        if !(self.soft_nms_sigma.is_finite() && self.soft_nms_sigma > 0.0) {
            bail!("--soft-nms-sigma {} must be positive", self.soft_nms_sigma);
        }
        if !(self.tile_overlap.is_finite() && (0.0..=0.75).contains(&self.tile_overlap)) {
            bail!("--tile-overlap {} must be in [0, 0.75]", self.tile_overlap);
        }
        let tta = self.tta()?;
        Ok(PredictConfig {
            select: SelectConfig {
                score_threshold: self.score,
                iou_threshold: self.iou,
                class_agnostic: self.class_agnostic,
                nms: match self.nms {
                    NmsChoice::Hard => NmsMethod::Hard,
                    NmsChoice::Linear => NmsMethod::Linear,
                    NmsChoice::Gaussian => NmsMethod::Gaussian {
                        sigma: self.soft_nms_sigma,
                    },
                },
                max_detections: Some(self.max_det.unwrap_or(DEFAULT_MAX_DET)),
            },
            candidate_floor: None,
            top_k: None,
            batch_size: self.batch.unwrap_or(1).max(1),
            tiling: match self.tile {
                TileArg::Auto => Tiling::Auto,
                TileArg::Off => Tiling::Off,
                TileArg::Size(size) => Tiling::Tiles(TileParams {
                    overlap: self.tile_overlap,
                    ..TileParams::new(size)
                }),
            },
            tta,
        })
    }

    /// `--tta` with `--tta-scales`, checked (and against `--tile SIZE`).
    pub fn tta(&self) -> anyhow::Result<Tta> {
        let scales = match self.tta_scales.as_deref() {
            None => DEFAULT_TTA_SCALES,
            Some(&[a, b]) => [a, b],
            Some(other) => bail!("--tta-scales takes two scales, got {}", other.len()),
        };
        let tta = match self.tta {
            TtaChoice::Off | TtaChoice::Flip if self.tta_scales.is_some() => {
                bail!("--tta-scales needs --tta flip-scales")
            }
            TtaChoice::Off => Tta::Off,
            TtaChoice::Flip => Tta::Flip,
            TtaChoice::FlipScales => Tta::FlipScales(scales),
        };
        tta.validate()
            .map_err(|e| anyhow::anyhow!("--tta-scales: {e}"))?;
        if let (Tta::FlipScales(_), TileArg::Size(_)) = (tta, self.tile) {
            bail!(
                "--tta flip-scales cannot be combined with --tile SIZE: tiles and their \
                 whole-photo pass already see the photo at two scales; use --tta flip \
                 (tiles of the photo and of its mirror image) or --tile off"
            );
        }
        Ok(tta)
    }

    /// `--max-det`, else `default` (e.g. [`DENSE_MAX_DET`] for dense labels).
    pub fn max_det_or(&self, default: usize) -> usize {
        self.max_det.unwrap_or(default)
    }

    /// `--batch`, or the batch size that suits `det` ([`Detector::default_batch_size`]).
    pub fn batch_for(&self, det: &Detector) -> usize {
        self.batch
            .unwrap_or_else(|| det.default_batch_size())
            .max(1)
    }

    /// Loads `--model`, else the shipped model (an error when neither exists).
    pub fn load_detector(&self) -> anyhow::Result<(PathBuf, Detector)> {
        let Some(path) = self.model.clone().or_else(default_model_path) else {
            bail!(
                "a model is needed: pass --model M.safetensors (the shipped {SHIPPED_MODEL} \
                 was not found in models/; make a model with `detlab train` or \
                 `detlab import-weights`)"
            );
        };
        let options = DetectorOptions {
            device: self.device,
            threads: self.threads,
            fold_batchnorm: true,
            nhwc_engine: true,
            precision: self.precision,
        };
        let det = Detector::load(&path, &options)
            .with_context(|| format!("loading model {}", path.display()))?;
        if let Some(note) = det.precision_note() {
            eprintln!("note: {note}");
        }
        if let (TileArg::Auto, Some(t)) = (self.tile, det.meta().train_tile) {
            eprintln!(
                "note: the model was trained on {t}-pixel crops: photos over {} pixels are \
                 detected in {t}-pixel tiles (--tile off for whole photos)",
                detlab::detector::maths::tiling::AUTO_TILE_FACTOR * t
            );
            if matches!(self.tta, TtaChoice::FlipScales) {
                eprintln!(
                    "note: --tta flip-scales: the photos detected in tiles get the flip only"
                );
            }
        }
        Ok((path, det))
    }
}

/// Runs the detector on `paths` with a progress bar; unreadable images are skipped with a
/// warning. Fails when no image could be read.
pub fn predict_with_progress(
    det: &Detector,
    paths: &[PathBuf],
    cfg: &PredictConfig,
) -> anyhow::Result<Vec<(PathBuf, ImagePrediction)>> {
    let bar = detlab::commands::progress_bar("predicting");
    bar.set_length(paths.len() as u64);
    let run = predict_files(det, paths, cfg, &|n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    for f in &run.failed {
        eprintln!("warning: skipped {}: {}", f.path.display(), f.reason);
    }
    for w in &run.warnings {
        eprintln!("warning: {}: {}", w.path.display(), w.reason);
    }
    let done = run.predicted;
    if done.is_empty() {
        bail!("none of the {} images could be read", paths.len());
    }
    Ok(done)
}

/// An input image and the name it is reported under (its path below the folder given,
/// with `/` separators, or the file name of an image given directly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputImage {
    pub path: PathBuf,
    pub name: String,
}

/// Expands `--images` arguments: folders recursively (natural order), files as given.
pub fn collect_images(args: &[PathBuf]) -> anyhow::Result<Vec<InputImage>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let found =
                scan_images(arg).with_context(|| format!("listing images in {}", arg.display()))?;
            if found.is_empty() {
                eprintln!("warning: no images in {}", arg.display());
            }
            for path in found {
                let name = relative_name(&path, arg);
                out.push(InputImage { path, name });
            }
        } else if arg.is_file() {
            if !is_image_path(arg) {
                eprintln!(
                    "warning: {} has no image extension; trying it anyway",
                    arg.display()
                );
            }
            let name = arg
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(InputImage {
                path: arg.clone(),
                name,
            });
        } else {
            bail!("{}: no such image file or folder", arg.display());
        }
    }
    if out.is_empty() {
        bail!("no images to predict on");
    }
    Ok(out)
}

fn relative_name(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// COCO category id for each model class: the GT category with the same name; when no
/// class name occurs in the GT at all (e.g. an imported model with `class1..`), the
/// 1-based class index. `None`: a class the GT does not have (its detections are dropped).
pub fn category_ids(class_names: &[String], gt: &CocoGroundTruth) -> Vec<Option<i64>> {
    let by_name: HashMap<&str, i64> = gt
        .categories()
        .iter()
        .map(|c| (c.name.as_str(), c.id))
        .collect();
    let named: Vec<Option<i64>> = class_names
        .iter()
        .map(|n| by_name.get(n.as_str()).copied())
        .collect();
    if named.iter().all(Option::is_none) {
        eprintln!(
            "note: no model class name is a ground-truth category name; using the 1-based class index as category_id"
        );
        (1..=class_names.len() as i64).map(Some).collect()
    } else {
        named
    }
}

/// Matches image names to GT image ids: by the whole relative name, else by the file name
/// alone when that is unique in the GT. Errors listing the names that match nothing.
pub fn match_image_ids(names: &[&str], gt: &CocoGroundTruth) -> anyhow::Result<Vec<i64>> {
    let norm = |s: &str| s.replace('\\', "/");
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let mut full: HashMap<String, i64> = HashMap::new();
    let mut by_base: HashMap<String, Option<i64>> = HashMap::new();
    for img in gt.images() {
        let f = norm(&img.file_name);
        by_base
            .entry(base(&f))
            .and_modify(|v| {
                if *v != Some(img.id) {
                    *v = None
                }
            })
            .or_insert(Some(img.id));
        full.insert(f, img.id);
    }
    let mut ids = Vec::with_capacity(names.len());
    let mut unmatched = Vec::new();
    for name in names {
        let n = norm(name);
        match full
            .get(&n)
            .copied()
            .or_else(|| by_base.get(&base(&n)).copied().flatten())
        {
            Some(id) => ids.push(id),
            None => unmatched.push(n),
        }
    }
    if !unmatched.is_empty() {
        const SHOW: usize = 20;
        let mut msg = format!(
            "{} of {} images are not in the ground truth (matched by file name):",
            unmatched.len(),
            names.len()
        );
        for n in unmatched.iter().take(SHOW) {
            msg.push_str(&format!("\n  {n}"));
        }
        if unmatched.len() > SHOW {
            msg.push_str(&format!("\n  … and {} more", unmatched.len() - SHOW));
        }
        bail!(msg);
    }
    Ok(ids)
}

/// COCO `[x, y, w, h]` of a detection.
pub fn xywh(d: &Detection) -> [f64; 4] {
    [d.bbox.x1, d.bbox.y1, d.bbox.width(), d.bbox.height()]
}

/// Runs `detlab predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    if let Some(video) = &args.video {
        return super::predict_video::run(&args, video);
    }
    let mut cfg = args.detect.predict_config()?;
    let inputs = collect_images(&args.images)?;
    let gt = match &args.gt {
        Some(p) => Some(
            CocoGroundTruth::from_path(p)
                .with_context(|| format!("loading ground truth {}", p.display()))?,
        ),
        None => None,
    };
    if let Some(gt) = &gt {
        // Fail before the (slow) network run when names do not match.
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        match_image_ids(&names, gt)?;
        let densest = gt.max_annotations_per_image();
        if args.detect.max_det.is_none() && densest > detlab::eval::DENSE_BOXES_PER_IMAGE {
            eprintln!(
                "note: dense ground truth ({densest} boxes on one image): keeping up to \
                 {DENSE_MAX_DET} detections per image (--max-det to change)"
            );
            cfg.select.max_detections = Some(DENSE_MAX_DET);
        }
    }
    let voc_targets = match &args.voc_dir {
        Some(dir) => Some(voc_targets(dir, &inputs)?),
        None => None,
    };
    let (model_path, det) = args.detect.load_detector()?;
    cfg.batch_size = args.detect.batch_for(&det);
    let paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let preds = predict_with_progress(&det, &paths, &cfg)?;
    let names: HashMap<&Path, &str> = inputs
        .iter()
        .map(|i| (i.path.as_path(), i.name.as_str()))
        .collect();
    let classes = det.class_names();
    let total: usize = preds.iter().map(|(_, p)| p.detections.len()).sum();

    let doc = match &gt {
        Some(gt) => {
            let pred_names: Vec<&str> = preds.iter().map(|(p, _)| names[p.as_path()]).collect();
            let ids = match_image_ids(&pred_names, gt)?;
            let cats = category_ids(classes, gt);
            let mut dropped = 0;
            let mut list = Vec::new();
            for ((_, pred), id) in preds.iter().zip(ids) {
                for d in &pred.detections {
                    match cats[d.class_id] {
                        Some(cat) => list.push(json!({
                            "image_id": id,
                            "category_id": cat,
                            "bbox": xywh(d),
                            "score": d.score,
                        })),
                        None => dropped += 1,
                    }
                }
            }
            if dropped > 0 {
                eprintln!(
                    "note: dropped {dropped} detections of classes the ground truth does not have"
                );
            }
            serde_json::Value::Array(list)
        }
        None => json!({
            "model": {
                "file": model_path.display().to_string(),
                "arch": det.meta().arch.name(),
                "input_size": det.input_size(),
                "classes": classes,
            },
            "images": preds.iter().map(|(path, pred)| json!({
                "file_name": names[path.as_path()],
                "width": pred.width,
                "height": pred.height,
                "detections": pred.detections.iter().map(|d| json!({
                    "bbox": xywh(d),
                    "score": d.score,
                    "category_id": d.class_id + 1,
                    "category": classes[d.class_id],
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    };
    let bytes = serde_json::to_vec_pretty(&doc)?;
    detlab::atomic::write_atomic(&args.out, &bytes)
        .with_context(|| format!("writing {}", args.out.display()))?;

    if let Some(targets) = voc_targets {
        for (path, pred) in &preds {
            let target = &targets[path.as_path()];
            write_voc(target, path, pred, classes)?;
        }
    }
    println!(
        "{} detections on {} images ({} skipped) → {}{}",
        total,
        preds.len(),
        paths.len() - preds.len(),
        args.out.display(),
        args.voc_dir
            .as_ref()
            .map(|d| format!(", VOC files in {}", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// The VOC file of each image inside `dir` (mirroring sub-folders), after checking that
/// `dir` is not an images folder and that no target file exists yet.
fn voc_targets(dir: &Path, inputs: &[InputImage]) -> anyhow::Result<HashMap<PathBuf, PathBuf>> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir_c = canon(dir);
    let mut targets = HashMap::new();
    let mut existing = Vec::new();
    for img in inputs {
        let parent = img.path.parent().unwrap_or(Path::new("."));
        if canon(parent) == dir_c {
            bail!(
                "--voc-dir {} is the folder of the images ({}), where their own labels live; \
                 choose a separate folder",
                dir.display(),
                img.path.display()
            );
        }
        let rel = Path::new(&img.name).with_extension("xml");
        let target = dir.join(rel);
        // The file we would write, or the image's labels if `dir` is its LabelImg save folder.
        if target.exists() || find_label(&img.path, Some(dir)).is_some() {
            existing.push(target.clone());
        }
        targets.insert(img.path.clone(), target);
    }
    if !existing.is_empty() {
        bail!(
            "--voc-dir {} already holds labels for {} of the images (e.g. {}); \
             predictions are never written over existing labels — choose an empty folder",
            dir.display(),
            existing.len(),
            existing[0].display()
        );
    }
    Ok(targets)
}

/// Writes one image's detections as a LabelImg VOC file.
fn write_voc(
    target: &Path,
    image: &Path,
    pred: &ImagePrediction,
    classes: &[String],
) -> anyhow::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ann = ImageAnnotation::new(name, pred.width, pred.height);
    ann.boxes = pred
        .detections
        .iter()
        .map(|d| LabelBox::new(classes[d.class_id].clone(), d.bbox))
        .collect();
    detlab::formats::voc::write(target, &ann, image)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use detlab::eval::{GtCategory, GtImage};

    fn gt() -> CocoGroundTruth {
        let img = |id, f: &str| GtImage {
            id,
            file_name: f.into(),
        };
        let cat = |id, n: &str| GtCategory { id, name: n.into() };
        CocoGroundTruth::new(
            vec![
                img(7, "train/a.jpg"),
                img(8, "b.jpg"),
                img(9, "x/c.jpg"),
                img(10, "y/c.jpg"),
            ],
            vec![cat(3, "Cola"), cat(5, "Sprite")],
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn images_match_by_path_then_unique_file_name() {
        let gt = gt();
        assert_eq!(
            match_image_ids(&["train/a.jpg", "a.jpg", "sub/b.jpg", "y/c.jpg"], &gt).unwrap(),
            vec![7, 7, 8, 10]
        );
        let err = match_image_ids(&["c.jpg", "zzz.png"], &gt)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 of 2") && err.contains("zzz.png"), "{err}");
    }

    #[test]
    fn categories_match_by_name() {
        let gt = gt();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            category_ids(&names(&["Sprite", "Fanta", "Cola"]), &gt),
            vec![Some(5), None, Some(3)]
        );
        assert_eq!(
            category_ids(&names(&["class1", "class2"]), &gt),
            vec![Some(1), Some(2)]
        );
    }
}
