//! `detlab predict`: run a detlab model file on images and write the detections as JSON
//! (detlab's per-image document, or a COCO results list with `--gt`), optionally as
//! LabelImg VOC files in a separate folder.
//!
//! This file holds the arguments and the image run; the detector options are in
//! `detect_args`, the COCO matching in `predict_coco`, the VOC output in `predict_voc`
//! and `--video` in `predict_video`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use detlab::dataset::{is_image_path, scan_images};
use detlab::detector::inference::{
    predict_files, Detector, FileFailure, FilePredictions, PredictConfig,
};
use detlab::eval::CocoGroundTruth;
use detlab::file_id::FileId;

use super::detect_args::DENSE_MAX_DET;
pub use super::detect_args::{DetectArgs, TtaChoice, DEFAULT_MAX_DET};
use super::output_checks::{check_not_an_input, check_output_file};
use super::predict_coco::match_image_ids;
pub use super::predict_coco::{category_ids, xywh};
use super::predict_voc::{voc_targets, write_voc};

/// Arguments of `detlab predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub detect: DetectArgs,
    /// Image folders (searched recursively) and/or image files.
    #[arg(long, num_args = 1.., required_unless_present = "video", value_name = "DIR|FILE")]
    pub images: Vec<PathBuf>,
    /// The JSON file to write (atomically; never over the model or an input).
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
    /// detections on the frames between; default 1).
    #[arg(long, value_name = "N", requires = "video")]
    pub every: Option<u64>,
    /// With --video: stop after this many frames (for a camera).
    #[arg(long, value_name = "N", requires = "video")]
    pub max_frames: Option<u64>,
}

/// Runs the detector on `paths` with a progress bar; unreadable images are skipped with a
/// warning (and returned with it). Fails when no image could be read.
pub fn predict_with_progress(
    det: &Detector,
    paths: &[PathBuf],
    cfg: &PredictConfig,
) -> anyhow::Result<FilePredictions> {
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
    if run.predicted.is_empty() {
        bail!("none of the {} images could be read", paths.len());
    }
    Ok(run)
}

/// `[{"file_name", "reason"}]` of `files`, for the JSON.
fn notes(files: &[FileFailure], names: &HashMap<&Path, &str>) -> serde_json::Value {
    files
        .iter()
        .map(|f| {
            json!({
                "file_name": names.get(f.path.as_path()).copied().unwrap_or_default(),
                "reason": f.reason,
            })
        })
        .collect()
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

/// Refuses two inputs reported under one name (the JSON's `file_name`, and so the VOC
/// file and the COCO image id): `a/x.jpg` and `b/x.jpg` from `--images a b`, or one image
/// given twice.
fn check_unique_names(inputs: &[InputImage]) -> anyhow::Result<()> {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for img in inputs {
        if let Some(first) = seen.insert(&img.name, &img.path) {
            if FileId::of(first).is(&FileId::of(&img.path)) {
                bail!(
                    "{} is given twice in --images (as {} and {}); give each image once",
                    img.name,
                    first.display(),
                    img.path.display()
                );
            }
            bail!(
                "{} and {} would both be reported as {:?} (the output names an image by its \
                 path below the folder given): predict them in separate runs, or pass the \
                 folder that holds both",
                first.display(),
                img.path.display(),
                img.name
            );
        }
    }
    Ok(())
}

/// Refuses the video-only options without `--video` (they would be ignored).
fn check_no_video_options(args: &PredictArgs) -> anyhow::Result<()> {
    let given: Vec<&str> = [
        ("--out-video", args.out_video.is_some()),
        ("--every", args.every.is_some()),
        ("--max-frames", args.max_frames.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect();
    if !given.is_empty() {
        bail!(
            "{} only appl{} to --video; with --images {} would be ignored",
            given.join(", "),
            if given.len() == 1 { "ies" } else { "y" },
            if given.len() == 1 { "it" } else { "they" }
        );
    }
    Ok(())
}

/// Runs `detlab predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    if let Some(video) = &args.video {
        return super::predict_video::run(&args, video);
    }
    check_no_video_options(&args)?;
    let mut cfg = args.detect.predict_config()?;
    let inputs = collect_images(&args.images)?;
    check_unique_names(&inputs)?;
    // Every output is checked before the (slow) run: a failure must not leave a replaced
    // --out behind, and no output may replace an input.
    let model = args.detect.model_path()?;
    check_output_file("--out", &args.out)?;
    check_not_an_input(
        "--out",
        &args.out,
        std::iter::once(("the model file", model.as_path()))
            .chain(args.gt.iter().map(|g| ("the ground truth", g.as_path())))
            .chain(inputs.iter().map(|i| ("the input image", i.path.as_path()))),
    )?;
    let voc_targets = match &args.voc_dir {
        Some(dir) => Some(voc_targets(dir, &inputs, &args.out)?),
        None => None,
    };
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
    let (model_path, det) = args.detect.load_detector()?;
    cfg.batch_size = args.detect.batch_for(&det);
    let paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let run = predict_with_progress(&det, &paths, &cfg)?;
    let preds = &run.predicted;
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
            "skipped": notes(&run.failed, &names),
            "warnings": notes(&run.warnings, &names),
        }),
    };
    let bytes = serde_json::to_vec_pretty(&doc)?;
    detlab::atomic::write_atomic(&args.out, &bytes)
        .with_context(|| format!("writing {}", args.out.display()))?;

    if let Some(targets) = voc_targets {
        for (path, pred) in preds {
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
