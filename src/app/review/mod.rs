//! Reviewing a model's predictions: the loaded model, background inference with the
//! on-disk candidate cache, live thresholds, accept / reject / fix / relabel, Tab through
//! pending predictions, disagreement mining and the evaluation page.
//!
//! Everything slow (loading the model, decoding, inference, cache and label reads,
//! writing the review log) happens on background threads; the UI thread only re-filters
//! the current image's cached candidates, which takes well under a millisecond.

mod analysis;
mod decide;
mod labelled_images;
mod model;
mod onnx_export;
mod run;
mod tta_judge;

pub(crate) use decide::shown_boxes;
pub(crate) use labelled_images::LabelledImages;
pub(crate) use model::load_model_file;
pub use model::{ImportForm, LoadedModel};
pub use onnx_export::OnnxExportForm;
pub(crate) use run::predict_image;
pub use run::{InferenceRun, RunScope};
pub use tta_judge::{TtaJudge, TtaVerdict, FIRST_VERDICT_IMAGES};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::jobs::{repaint, Job, LatestWriter};
use super::AppState;
use crate::dataset::LabelBox;
use crate::detector::maths::postprocess::{Detection, SelectConfig};
use crate::detector::maths::tiling::Tiling;
use crate::detector::maths::tta::Tta;
use crate::detector::precision::Precision;
use crate::eval::{EvalResult, MaxDets};
use crate::review::{
    CachedPrediction, DisagreementKind, ImageDisagreement, PredictionState, ReviewLog,
};

/// A prediction as shown on the current image: the model's, or a proposal of an
/// assistant (find similar), reviewed the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct ShownPrediction {
    pub detection: Detection,
    pub state: PredictionState,
    pub class_name: String,
    /// The model's own box (the review log's key); `detection.bbox` is what is shown and
    /// accepted (refined when [`Review::refine_boxes`] is on).
    pub predicted: crate::geometry::BoxXyxy,
    /// Index into the image's proposals ([`crate::app::assist::Assist::proposals`]);
    /// `None` for the model's predictions.
    pub proposal: Option<usize>,
}

/// The evaluation page's numbers.
pub struct Evaluation {
    pub result: EvalResult,
    pub class_names: Vec<String>,
    pub images: usize,
    /// The maxDets the result was computed with.
    pub max_dets: MaxDets,
    /// The most labelled boxes on one evaluated image.
    pub densest: usize,
    /// Whether `max_dets` was chosen from the labels (the page's "auto").
    pub auto_max_dets: bool,
}

/// The Review panel's test-time augmentation at start: off, with "auto" on
/// ([`TtaJudge`]). The flip helps a good model and adds false positives to a weak one:
/// with the simulated labeller, the shipped model on `cola-sprite/val` took 58 actions
/// off, 54 flip, 55 auto, and a demo model (AP 0.73) on another demo folder 191, 160 and
/// 170; four models of `cola-sprite/train` (AP 0.00–0.52) on photos 201–444 took 6–16
/// actions more with the flip on three of them, and auto stayed off on two and cost 7 and
/// 13 on the others. BENCHMARKS.md.
pub const DEFAULT_REVIEW_TTA: Tta = Tta::Off;

/// Everything about reviewing predictions.
pub struct Review {
    pub model: Option<Arc<LoadedModel>>,
    pub model_job: Option<Job<Result<LoadedModel, String>>>,
    pub model_error: Option<String>,
    /// The "Export model…" (ONNX) run, reported in the status bar.
    pub onnx_export_job: Option<Job<Result<String, String>>>,
    /// Asked for the shipped model once (at the first folder).
    pub default_requested: bool,
    pub run: Option<InferenceRun>,
    /// Cached candidates by image path.
    pub predictions: HashMap<PathBuf, Arc<CachedPrediction>>,
    /// Each image's labels as last read or saved (the current image uses the live document).
    pub labels: HashMap<PathBuf, Vec<LabelBox>>,
    pub select: SelectConfig,
    /// Show each prediction with its box refined: the score-weighted mean of the
    /// candidates overlapping it (see [`crate::assist::click_box::fused_box`]).
    pub refine_boxes: bool,
    /// The precision runs ask the detector for (bf16 where the CPU engine can).
    pub precision: Precision,
    /// Whole photos or tiles (cached separately per setting).
    pub tiling: Tiling,
    /// Test-time augmentation of the runs (cached separately per setting).
    pub tta: Tta,
    /// Let the [`TtaJudge`] choose between off and flip from the labeller's work.
    pub auto_tta: bool,
    pub tta_judge: TtaJudge,
    pub show: bool,
    /// Index into [`AppState::shown_predictions`] of the selected prediction.
    pub selected: Option<usize>,
    pub log: ReviewLog,
    /// The folder holding `.detlab/` (the labels folder) the log belongs to.
    pub log_dir: Option<PathBuf>,
    /// The log on disk could not be read: decisions are kept in memory only, so the file
    /// is never overwritten.
    pub log_error: Option<String>,
    /// Reads the log of `log_dir` off the UI thread; decisions made meanwhile are merged
    /// into it when it arrives, and nothing is written before.
    log_job: Option<Job<Result<ReviewLog, String>>>,
    /// The log as this window last read or wrote it: the base of the merge with what
    /// another window wrote meanwhile (see [`ReviewLog::merge`]).
    pub(crate) log_base: ReviewLog,
    /// Logs written (merged with the file) by the writer thread, with the log they were
    /// made from: the app takes the other windows' decisions from them.
    pub(crate) log_merged: decide::MergedLogs,
    pub(crate) log_writer: Option<LatestWriter<decide::LogWrite>>,
    pub disagreement_job: Option<Job<Vec<(PathBuf, ImageDisagreement)>>>,
    pub disagreements: Vec<(PathBuf, ImageDisagreement)>,
    pub disagreement_kind: DisagreementKind,
    pub evaluation_job: Option<Job<Result<Evaluation, String>>>,
    pub evaluation: Option<Result<Evaluation, String>>,
    /// The Evaluate page's maxDets; `None`: from the labels ([`MaxDets::for_labels`]).
    pub eval_max_dets: Option<MaxDets>,
}

impl Default for Review {
    fn default() -> Self {
        Self {
            model: None,
            model_job: None,
            model_error: None,
            onnx_export_job: None,
            default_requested: false,
            run: None,
            predictions: HashMap::new(),
            labels: HashMap::new(),
            select: SelectConfig {
                score_threshold: 0.3,
                iou_threshold: 0.5,
                class_agnostic: true,
                nms: Default::default(),
                max_detections: Some(100),
            },
            refine_boxes: true,
            precision: Precision::Fp32,
            tiling: Tiling::Auto,
            tta: DEFAULT_REVIEW_TTA,
            auto_tta: true,
            tta_judge: TtaJudge::default(),
            show: true,
            selected: None,
            log: ReviewLog::default(),
            log_dir: None,
            log_error: None,
            log_job: None,
            log_base: ReviewLog::default(),
            log_merged: decide::MergedLogs::default(),
            log_writer: None,
            disagreement_job: None,
            disagreements: Vec::new(),
            disagreement_kind: DisagreementKind::Any,
            evaluation_job: None,
            evaluation: None,
            eval_max_dets: None,
        }
    }
}

/// The image's path relative to the image root: its key in the candidate cache and the
/// review log.
pub fn relative_path(root: &Path, image: &Path) -> PathBuf {
    image.strip_prefix(root).unwrap_or(image).to_path_buf()
}

impl AppState {
    /// The folder whose `.detlab/` holds the review sidecar: the save folder, else the
    /// image folder.
    pub fn sidecar_dir(&self) -> Option<PathBuf> {
        let s = self.workspace.session.as_ref()?;
        Some(s.save_dir.clone().unwrap_or_else(|| s.root.clone()))
    }

    /// Starts reading the review log of the open folder (once per folder).
    fn ensure_review_log(&mut self) {
        let Some(dir) = self.sidecar_dir() else {
            return;
        };
        if self.review.log_dir.as_deref() == Some(dir.as_path()) {
            return;
        }
        let from = dir.clone();
        self.review.log_job = Some(Job::spawn(
            "review-log",
            repaint(self.ctx.clone()),
            move |_| ReviewLog::load(&from).map_err(|e| e.to_string()),
        ));
        self.review.log = ReviewLog::default();
        self.review.log_base = ReviewLog::default();
        self.review.log_error = None;
        self.review.log_dir = Some(dir);
        self.review.predictions.clear();
        self.review.labels.clear();
        self.review.disagreements.clear();
        self.review.evaluation = None;
        if self.review.model.is_some() {
            self.run_model(RunScope::CachedOnly);
        }
    }

    /// Switches between whole photos and tiles: the predictions shown become those cached
    /// for the new setting (each setting has its own cache); the model runs again on demand.
    pub fn set_tiling(&mut self, tiling: Tiling) {
        if self.review.tiling != tiling {
            self.review.tiling = tiling;
            self.show_cached_for(format!("tiling {}", tiling.describe()));
        }
    }

    /// Switches test-time augmentation, like [`AppState::set_tiling`]: the labeller's
    /// choice, so "auto" goes off.
    pub fn set_tta(&mut self, tta: Tta) {
        self.review.auto_tta = false;
        if self.review.tta != tta {
            self.review.tta = tta;
            self.show_cached_for(format!("test-time augmentation {}", tta.describe()));
        }
    }

    /// Switches the network's precision: the predictions shown become those cached for it.
    pub fn set_precision(&mut self, precision: Precision) {
        if self.review.precision != precision {
            self.review.precision = precision;
            self.show_cached_for(format!("precision {precision}"));
        }
    }

    /// Drops the predictions in memory and what was computed from them (after a change of
    /// the model or of a setting that keys the cache).
    fn forget_predictions(&mut self) {
        self.review.predictions.clear();
        self.review.selected = None;
        self.review.disagreements.clear();
        self.review.evaluation = None;
    }

    /// After a change of the setting that keys the prediction cache (`setting`, as the
    /// user reads it): shows what is cached for the new one.
    fn show_cached_for(&mut self, setting: String) {
        self.forget_predictions();
        if self.review.model.is_some() {
            self.run_model(RunScope::CachedOnly);
            self.info(format!(
                "{setting}: showing the predictions cached for it; run the model for the others"
            ));
        }
    }

    /// Applies the review log read in the background. Returns `true` once it arrived.
    fn poll_review_log(&mut self) -> bool {
        let Some(result) = self.review.log_job.as_ref().and_then(Job::outcome) else {
            return false;
        };
        self.review.log_job = None;
        match result {
            Ok(mut log) => {
                self.review.log_base = log.clone();
                let meanwhile = std::mem::take(&mut self.review.log);
                let merged = !meanwhile.is_empty();
                for (image, decisions) in meanwhile.images() {
                    for d in decisions {
                        if let Err(e) = log.record(Path::new(image), d.clone()) {
                            self.info(format!("review decision not recorded: {e}"));
                        }
                    }
                }
                self.review.log = log;
                if merged {
                    self.save_review_log();
                }
            }
            Err(e) => {
                self.review.log_error = Some(format!(
                    "{e} — review decisions are kept in memory only and the file is left untouched"
                ));
            }
        }
        true
    }

    /// Polls the model loader and the inference run. Returns `true` if anything changed.
    pub fn poll_review(&mut self) -> bool {
        let mut changed = false;
        let errors: Vec<String> = self
            .review
            .log_writer
            .iter()
            .flat_map(LatestWriter::errors)
            .collect();
        for e in errors {
            self.info(e);
        }
        changed |= self.take_merged_logs();
        if self.workspace.session.is_some() {
            self.ensure_review_log();
            changed |= self.poll_review_log();
        }
        changed |= self.poll_onnx_export();
        if let Some(result) = self.review.model_job.as_ref().and_then(Job::outcome) {
            self.review.model_job = None;
            changed = true;
            match result {
                Ok(model) => {
                    self.info(format!(
                        "model {} ({}, {} classes) on {}",
                        model.path.display(),
                        model.arch,
                        model.class_names.len(),
                        model.device
                    ));
                    self.review.model = Some(Arc::new(model));
                    self.forget_predictions();
                    self.run_model(RunScope::CachedOnly);
                }
                Err(e) => {
                    self.info(format!("cannot load the model: {e}"));
                    self.review.model_error = Some(e);
                }
            }
        }
        changed |= self.poll_inference_run();
        changed |= self.poll_tta_judge();
        if let Some(found) = self.review.disagreement_job.as_ref().and_then(Job::result) {
            self.review.disagreement_job = None;
            match found {
                Ok(found) => self.review.disagreements = found,
                Err(failed) => self.info(failed.to_string()),
            }
            changed = true;
        }
        if let Some(result) = self.review.evaluation_job.as_ref().and_then(Job::outcome) {
            self.review.evaluation_job = None;
            self.review.evaluation = Some(result);
            changed = true;
        }
        changed
    }

    fn image_key(&self, image: &Path) -> PathBuf {
        let root = self.workspace.session.as_ref().map(|s| s.root.as_path());
        relative_path(root.unwrap_or(Path::new("")), image)
    }

    /// The labels of `image`: the live document for the current image, else the last
    /// labels read in the background.
    fn labels_of(&self, image: &Path) -> &[LabelBox] {
        match &self.workspace.doc {
            Some(d) if d.image_path == image => &d.annotation.boxes,
            _ => self.review.labels.get(image).map_or(&[], Vec::as_slice),
        }
    }

    /// Remembers the current labels for the review (pending counts of other images).
    pub fn remember_labels(&mut self) {
        if let Some(doc) = &self.workspace.doc {
            self.review
                .labels
                .insert(doc.image_path.clone(), doc.annotation.boxes.clone());
        }
    }
}
