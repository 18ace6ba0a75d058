//! Reviewing a model's predictions: the loaded model, background inference with the
//! on-disk candidate cache, live thresholds, accept / reject / fix / relabel, Tab through
//! pending predictions, disagreement mining and the evaluation page.
//!
//! Everything slow (loading the model, decoding, inference, cache and label reads,
//! writing the review log) happens on background threads; the UI thread only re-filters
//! the current image's cached candidates, which takes well under a millisecond.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::jobs::Job;
use super::state::AppState;
use crate::dataset::{load_labels, LabelBox};
use crate::detector::checkpoint::ModelArch;
use crate::detector::inference::{Detector, DetectorOptions, PredictConfig};
use crate::detector::maths::postprocess::{Detection, SelectConfig};
use crate::eval::EvalResult;
use crate::geometry::BoxXyxy;
use crate::review::{
    classify, compare, rank, CachedPrediction, CandidateCache, Decision, DisagreementKind,
    ImageDisagreement, ImageStamp, LabelledImage, MatchSettings, ModelId, PredictionState,
    ReviewLog, Verdict,
};

/// Candidates kept per image: everything above this score, at most [`CANDIDATE_TOP_K`].
const CANDIDATE_FLOOR: f32 = 0.02;
const CANDIDATE_TOP_K: usize = 5000;

/// A model ready to run.
pub struct LoadedModel {
    pub path: PathBuf,
    pub id: ModelId,
    pub arch: ModelArch,
    pub class_names: Vec<String>,
    pub input_size: u32,
    pub device: String,
    detector: Mutex<Detector>,
}

/// Which images a run covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunScope {
    Current,
    All,
    Unlabelled,
    /// Only what the cache already holds (after a restart or a model change).
    CachedOnly,
}

/// One image's result from the background run.
struct RunItem {
    image: PathBuf,
    prediction: Option<Arc<CachedPrediction>>,
    labels: Option<Vec<LabelBox>>,
    error: Option<String>,
}

/// Inference over many images in the background.
pub struct InferenceRun {
    rx: Receiver<RunItem>,
    cancel: Arc<AtomicBool>,
    pub done: Arc<AtomicUsize>,
    pub total: usize,
    pub scope: RunScope,
    pub failures: usize,
}

impl InferenceRun {
    pub fn fraction(&self) -> f32 {
        self.done.load(Ordering::Relaxed) as f32 / self.total.max(1) as f32
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// A prediction as shown on the current image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShownPrediction {
    pub detection: Detection,
    pub state: PredictionState,
}

/// The evaluation page's numbers.
pub struct Evaluation {
    pub result: EvalResult,
    pub class_names: Vec<String>,
    pub images: usize,
}

/// Everything about reviewing predictions.
pub struct Review {
    pub model: Option<Arc<LoadedModel>>,
    pub model_job: Option<Job<Result<LoadedModel, String>>>,
    pub model_error: Option<String>,
    /// Asked for the shipped model once (at the first folder).
    pub default_requested: bool,
    pub run: Option<InferenceRun>,
    /// Cached candidates by image path.
    pub predictions: HashMap<PathBuf, Arc<CachedPrediction>>,
    /// Each image's labels as last read or saved (the current image uses the live document).
    pub labels: HashMap<PathBuf, Vec<LabelBox>>,
    pub select: SelectConfig,
    pub show: bool,
    /// Index into [`AppState::shown_predictions`] of the selected prediction.
    pub selected: Option<usize>,
    pub log: ReviewLog,
    /// The folder holding `.detlab/` (the labels folder) the log belongs to.
    pub log_dir: Option<PathBuf>,
    /// The log on disk could not be read: decisions are kept in memory only, so the file
    /// is never overwritten.
    pub log_error: Option<String>,
    log_writer: Option<Sender<(PathBuf, ReviewLog)>>,
    pub disagreement_job: Option<Job<Vec<(PathBuf, ImageDisagreement)>>>,
    pub disagreements: Vec<(PathBuf, ImageDisagreement)>,
    pub disagreement_kind: DisagreementKind,
    pub evaluation_job: Option<Job<Result<Evaluation, String>>>,
    pub evaluation: Option<Result<Evaluation, String>>,
    pub import_form: Option<ImportForm>,
}

impl Default for Review {
    fn default() -> Self {
        Self {
            model: None,
            model_job: None,
            model_error: None,
            default_requested: false,
            run: None,
            predictions: HashMap::new(),
            labels: HashMap::new(),
            select: SelectConfig {
                score_threshold: 0.3,
                iou_threshold: 0.5,
                class_agnostic: false,
                max_detections: Some(100),
            },
            show: true,
            selected: None,
            log: ReviewLog::default(),
            log_dir: None,
            log_error: None,
            log_writer: None,
            disagreement_job: None,
            disagreements: Vec::new(),
            disagreement_kind: DisagreementKind::Any,
            evaluation_job: None,
            evaluation: None,
            import_form: None,
        }
    }
}

/// The "Import PyTorch weights" form.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportForm {
    pub pth: String,
    pub arch: ModelArch,
    /// One class name per line, in the checkpoint's class order.
    pub classes: String,
}

fn load_model(path: &Path) -> Result<LoadedModel, String> {
    let id = ModelId::of_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let detector = Detector::load(path, &DetectorOptions::default())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = detector.meta().clone();
    Ok(LoadedModel {
        path: path.to_path_buf(),
        id,
        arch: meta.arch,
        class_names: meta.class_names.clone(),
        input_size: meta.input_size,
        device: format!("{:?}", detector.device()),
        detector: Mutex::new(detector),
    })
}

fn import_model(form: &ImportForm, out: &Path) -> Result<LoadedModel, String> {
    use crate::detector::checkpoint::import::import_checkpoint;
    use crate::detector::checkpoint::{ImportOptions, ModelMeta};
    let pth = PathBuf::from(form.pth.trim());
    let names: Vec<String> = form
        .classes
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err("list the checkpoint's class names, one per line".into());
    }
    let expected = crate::detector::inference::expected_keys(form.arch, names.len())
        .map_err(|e| e.to_string())?;
    let mut meta = ModelMeta::for_arch(form.arch, names);
    meta.source = pth.file_name().map(|n| n.to_string_lossy().into_owned());
    let (model, _) = import_checkpoint(&pth, &expected, meta, ImportOptions { partial: false })
        .map_err(|e| e.to_string())?;
    model
        .write(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    load_model(out)
}

/// The image's path relative to the image root: its key in the candidate cache and the
/// review log.
pub fn relative_path(root: &Path, image: &Path) -> PathBuf {
    image.strip_prefix(root).unwrap_or(image).to_path_buf()
}

/// Writes the review log on its own thread, the newest version only.
fn spawn_log_writer() -> Option<Sender<(PathBuf, ReviewLog)>> {
    let (tx, rx) = channel::<(PathBuf, ReviewLog)>();
    std::thread::Builder::new()
        .name("detlab-review-log".into())
        .spawn(move || {
            while let Ok(mut next) = rx.recv() {
                while let Ok(newer) = rx.try_recv() {
                    next = newer;
                }
                if let Err(e) = next.1.save(&next.0) {
                    eprintln!("cannot save the review log: {e}");
                }
            }
        })
        .ok()?;
    Some(tx)
}

impl AppState {
    /// The folder whose `.detlab/` holds the review sidecar: the save folder, else the
    /// image folder.
    pub fn sidecar_dir(&self) -> Option<PathBuf> {
        let s = self.session.as_ref()?;
        Some(s.save_dir.clone().unwrap_or_else(|| s.root.clone()))
    }

    /// Loads a model file in the background; the review view switches to it when ready.
    pub fn load_model(&mut self, path: PathBuf) {
        // A model chosen explicitly wins over the shipped default.
        self.review.default_requested = true;
        self.review.model_error = None;
        self.review.model_job = Some(Job::spawn("model", self.ctx.clone(), move |_| {
            load_model(&path)
        }));
    }

    /// Loads the shipped model once, when a folder is first opened and no model is set.
    pub fn load_default_model(&mut self) {
        if self.review.default_requested || self.review.model.is_some() {
            return;
        }
        self.review.default_requested = true;
        if let Some(path) = crate::detector::inference::default_model_path() {
            self.load_model(path);
        }
    }

    /// Imports a PyTorch checkpoint beside it as `<name>.safetensors` and loads it.
    pub fn import_model(&mut self, form: ImportForm) {
        let out = PathBuf::from(form.pth.trim()).with_extension("safetensors");
        self.review.default_requested = true;
        self.review.model_error = None;
        self.review.model_job = Some(Job::spawn("import", self.ctx.clone(), move |_| {
            import_model(&form, &out)
        }));
    }

    /// Reads the review log of the open folder (once per folder).
    fn ensure_review_log(&mut self) {
        let Some(dir) = self.sidecar_dir() else {
            return;
        };
        if self.review.log_dir.as_deref() == Some(dir.as_path()) {
            return;
        }
        match ReviewLog::load(&dir) {
            Ok(log) => {
                self.review.log = log;
                self.review.log_error = None;
            }
            Err(e) => {
                self.review.log = ReviewLog::default();
                self.review.log_error = Some(format!(
                    "{e} — review decisions are kept in memory only and the file is left untouched"
                ));
            }
        }
        self.review.log_dir = Some(dir);
        self.review.predictions.clear();
        self.review.labels.clear();
        self.review.disagreements.clear();
        self.review.evaluation = None;
        if self.review.model.is_some() {
            self.run_model(RunScope::CachedOnly);
        }
    }

    /// Polls the model loader and the inference run. Returns `true` if anything changed.
    pub fn poll_review(&mut self) -> bool {
        let mut changed = false;
        if self.session.is_some() {
            self.ensure_review_log();
        }
        if let Some(result) = self.review.model_job.as_ref().and_then(Job::poll) {
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
                    self.review.predictions.clear();
                    self.review.selected = None;
                    self.review.disagreements.clear();
                    self.review.evaluation = None;
                    self.run_model(RunScope::CachedOnly);
                }
                Err(e) => {
                    self.info(format!("cannot load the model: {e}"));
                    self.review.model_error = Some(e);
                }
            }
        }
        let mut finished = false;
        if let Some(run) = &mut self.review.run {
            while let Ok(item) = run.rx.try_recv() {
                changed = true;
                if let Some(labels) = item.labels {
                    self.review.labels.insert(item.image.clone(), labels);
                }
                if let Some(p) = item.prediction {
                    self.review.predictions.insert(item.image.clone(), p);
                }
                if let Some(e) = item.error {
                    run.failures += 1;
                    self.messages.push(format!("prediction failed: {e}"));
                }
            }
            finished = run.done.load(Ordering::Relaxed) >= run.total;
        }
        if finished {
            if let Some(run) = self.review.run.take() {
                if run.scope != RunScope::CachedOnly {
                    self.info(format!(
                        "predicted {} images{}",
                        run.total - run.failures,
                        if run.failures > 0 {
                            format!(", {} failed", run.failures)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
        if let Some(found) = self.review.disagreement_job.as_ref().and_then(Job::poll) {
            self.review.disagreement_job = None;
            self.review.disagreements = found;
            changed = true;
        }
        if let Some(result) = self.review.evaluation_job.as_ref().and_then(Job::poll) {
            self.review.evaluation_job = None;
            self.review.evaluation = Some(result);
            changed = true;
        }
        changed
    }

    /// Runs the model on the images of `scope` in the background (cached images are read,
    /// not recomputed). A run already going is cancelled first.
    pub fn run_model(&mut self, scope: RunScope) {
        let (Some(model), Some(session), Some(dir)) = (
            self.review.model.clone(),
            self.session.as_ref(),
            self.sidecar_dir(),
        ) else {
            return;
        };
        if let Some(old) = self.review.run.take() {
            old.cancel();
        }
        let images: Vec<PathBuf> = match scope {
            RunScope::Current => self.current_path().into_iter().collect(),
            RunScope::All | RunScope::CachedOnly => {
                session.images.iter().map(|e| e.path.clone()).collect()
            }
            RunScope::Unlabelled => session
                .images
                .iter()
                .filter(|e| !e.status.is_labelled())
                .map(|e| e.path.clone())
                .collect(),
        };
        let root = session.root.clone();
        let save_dir = session.save_dir.clone();
        let cache = CandidateCache::new(&dir, &model.id);
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let total = images.len();
        let (c, d, ctx) = (cancel.clone(), done.clone(), self.ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("detlab-review".into())
            .spawn(move || {
                for image in images {
                    if c.load(Ordering::Relaxed) {
                        break;
                    }
                    let item =
                        predict_one(&model, &cache, &root, save_dir.as_deref(), &image, scope);
                    // Sent before counted: a finished count means every item is queued.
                    if tx.send(item).is_err() {
                        break;
                    }
                    d.fetch_add(1, Ordering::Relaxed);
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                }
                d.store(total, Ordering::Relaxed);
                if let Some(ctx) = &ctx {
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            self.info(format!("cannot start the prediction thread: {e}"));
            return;
        }
        self.review.run = Some(InferenceRun {
            rx,
            cancel,
            done,
            total,
            scope,
            failures: 0,
        });
    }

    fn image_key(&self, image: &Path) -> PathBuf {
        let root = self.session.as_ref().map(|s| s.root.as_path());
        relative_path(root.unwrap_or(Path::new("")), image)
    }

    /// The labels of `image`: the live document for the current image, else the last
    /// labels read in the background.
    fn labels_of(&self, image: &Path) -> Vec<LabelBox> {
        match &self.doc {
            Some(d) if d.image_path == image => d.annotation.boxes.clone(),
            _ => self.review.labels.get(image).cloned().unwrap_or_default(),
        }
    }

    /// The predictions of `image` at the current thresholds, with their review state;
    /// rejected ones are left out.
    pub fn predictions_of(&self, image: &Path) -> Vec<ShownPrediction> {
        let (Some(model), Some(pred)) = (&self.review.model, self.review.predictions.get(image))
        else {
            return Vec::new();
        };
        let dets = pred.reselect(&self.review.select);
        let labels = self.labels_of(image);
        let key = self.image_key(image);
        let states = classify(&dets, &model.class_names, &labels, |d| {
            let name = model.class_names.get(d.class_id)?;
            let decision = self.review.log.find(&key, &model.id.0, name, &d.bbox)?;
            // An accepted prediction whose label was since deleted or undone is pending again.
            let label_gone = decision.verdict != Verdict::Rejected
                && !labels.iter().any(|l| {
                    self.review
                        .log
                        .provenance(&key, l)
                        .is_some_and(|p| p == decision)
                });
            (!label_gone).then_some(decision.verdict)
        });
        dets.into_iter()
            .zip(states)
            .filter(|(_, s)| *s != PredictionState::Rejected)
            .map(|(detection, state)| ShownPrediction { detection, state })
            .collect()
    }

    /// The current image's predictions (see [`Self::predictions_of`]).
    pub fn shown_predictions(&self) -> Vec<ShownPrediction> {
        if !self.review.show {
            return Vec::new();
        }
        self.current_path()
            .map(|p| self.predictions_of(&p))
            .unwrap_or_default()
    }

    /// Pending predictions of `image`.
    pub fn pending_count(&self, image: &Path) -> usize {
        self.predictions_of(image)
            .iter()
            .filter(|p| p.state == PredictionState::Pending)
            .count()
    }

    fn record_decision(
        &mut self,
        shown: &ShownPrediction,
        verdict: Verdict,
        label: Option<&LabelBox>,
    ) {
        let (Some(model), Some(image)) = (self.review.model.clone(), self.current_path()) else {
            return;
        };
        let d = &shown.detection;
        let key = self.image_key(&image);
        let recorded = self.review.log.record(
            &key,
            Decision {
                model: model.id.0.clone(),
                class_name: model
                    .class_names
                    .get(d.class_id)
                    .cloned()
                    .unwrap_or_default(),
                predicted: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
                score: d.score,
                verdict,
                label: label.map(|l| [l.bbox.x1, l.bbox.y1, l.bbox.x2, l.bbox.y2]),
                label_class: label.map(|l| l.class_name.clone()),
            },
        );
        match recorded {
            Ok(()) => self.save_review_log(),
            Err(e) => self.info(format!("review decision not recorded: {e}")),
        }
    }

    fn save_review_log(&mut self) {
        if self.review.log_error.is_some() {
            return;
        }
        let Some(dir) = self.review.log_dir.clone() else {
            return;
        };
        if self.review.log_writer.is_none() {
            self.review.log_writer = spawn_log_writer();
        }
        if let Some(w) = &self.review.log_writer {
            let _ = w.send((dir, self.review.log.clone()));
        }
    }

    /// Turns prediction `index` of the current image into a label (named `class` and with
    /// `bbox` if given: relabel / fix) and saves the labels. Existing labels are never
    /// touched.
    pub fn accept_prediction(
        &mut self,
        index: usize,
        class: Option<String>,
        bbox: Option<BoxXyxy>,
    ) {
        let shown = self.shown_predictions();
        let Some(p) = shown.get(index).copied() else {
            return;
        };
        if matches!(p.state, PredictionState::Accepted | PredictionState::Fixed) {
            return;
        }
        let Some(model) = self.review.model.clone() else {
            return;
        };
        let predicted = model.class_names.get(p.detection.class_id).cloned();
        let Some(name) = class.clone().or(predicted.clone()) else {
            return;
        };
        let b = bbox.unwrap_or(p.detection.bbox);
        let b = BoxXyxy::new(b.x1.round(), b.y1.round(), b.x2.round(), b.y2.round());
        if b.width() < 1.0 || b.height() < 1.0 {
            return;
        }
        let label = LabelBox::new(name.clone(), b);
        let Some(doc) = self.editable() else {
            return;
        };
        let added = label.clone();
        doc.edit(|a| a.boxes.push(added));
        self.classes.ensure(&name);
        let fixed = (class.is_some() && class != predicted) || bbox.is_some();
        let verdict = if fixed {
            Verdict::Fixed
        } else {
            Verdict::Accepted
        };
        self.record_decision(&p, verdict, Some(&label));
        self.save();
        self.review.selected = self.next_pending_index(index);
    }

    /// Hides prediction `index` of the current image for good.
    pub fn reject_prediction(&mut self, index: usize) {
        let shown = self.shown_predictions();
        let Some(p) = shown.get(index).copied() else {
            return;
        };
        if p.state != PredictionState::Pending && p.state != PredictionState::MatchesLabel {
            return;
        }
        self.record_decision(&p, Verdict::Rejected, None);
        // Indices shift by one after the rejected prediction disappears.
        let next = self
            .shown_predictions()
            .iter()
            .enumerate()
            .skip(index)
            .find(|(_, s)| s.state == PredictionState::Pending)
            .map(|(i, _)| i);
        self.review.selected = next;
    }

    /// Accepts every pending prediction shown on the current image.
    pub fn accept_all_shown(&mut self) {
        loop {
            let shown = self.shown_predictions();
            let Some(i) = shown
                .iter()
                .position(|p| p.state == PredictionState::Pending)
            else {
                break;
            };
            let before = shown.len();
            self.accept_prediction(i, None, None);
            let after = self.shown_predictions();
            if after.get(i).map(|p| p.state) == Some(PredictionState::Pending)
                && after.len() == before
            {
                break; // not editable: stop instead of looping
            }
        }
        self.review.selected = None;
    }

    fn next_pending_index(&self, after: usize) -> Option<usize> {
        self.shown_predictions()
            .iter()
            .enumerate()
            .skip(after)
            .find(|(_, p)| p.state == PredictionState::Pending)
            .map(|(i, _)| i)
    }

    /// Selects the next pending prediction: on this image after the selected one, else on
    /// the next image that has one (wrapping around).
    pub fn next_pending(&mut self) {
        let start = self.review.selected.map_or(0, |i| i + 1);
        if let Some(i) = self.next_pending_index(start) {
            self.review.selected = Some(i);
            return;
        }
        let (Some(session), Some(current)) = (&self.session, self.current) else {
            return;
        };
        let n = session.images.len();
        let target = (1..=n)
            .map(|k| (current + k) % n)
            .find(|&i| self.pending_count(&session.images[i].path) > 0);
        match target {
            Some(i) if i != current => {
                self.go_to(i);
                if self.current == Some(i) {
                    self.review.selected = self.next_pending_index(0);
                }
            }
            Some(_) => self.review.selected = self.next_pending_index(0),
            None => self.info("no pending predictions"),
        }
    }

    /// Remembers the current labels for the review (pending counts of other images).
    pub fn remember_labels(&mut self) {
        if let Some(doc) = &self.doc {
            self.review
                .labels
                .insert(doc.image_path.clone(), doc.annotation.boxes.clone());
        }
    }

    /// Ranks labelled images by how much the model disagrees with their labels.
    pub fn find_disagreements(&mut self) {
        let Some(model) = self.review.model.clone() else {
            return;
        };
        self.remember_labels();
        let select = SelectConfig {
            score_threshold: 0.05,
            ..self.review.select
        };
        let items: Vec<(PathBuf, Arc<CachedPrediction>, Vec<LabelBox>)> = self
            .review
            .predictions
            .iter()
            .filter_map(|(p, c)| {
                let labels = self.review.labels.get(p)?;
                (!labels.is_empty()).then(|| (p.clone(), c.clone(), labels.clone()))
            })
            .collect();
        self.review.disagreement_job =
            Some(Job::spawn("disagreements", self.ctx.clone(), move |_| {
                let settings = MatchSettings::default();
                let mut out: Vec<(PathBuf, ImageDisagreement)> = items
                    .into_iter()
                    .map(|(path, pred, labels)| {
                        let gt: Vec<(BoxXyxy, usize)> = labels
                            .iter()
                            .filter_map(|l| {
                                let c =
                                    model.class_names.iter().position(|n| *n == l.class_name)?;
                                Some((l.bbox, c))
                            })
                            .collect();
                        let found = compare(&gt, &pred.reselect(&select), &settings);
                        (path, found)
                    })
                    .collect();
                out.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
                out
            }));
    }

    /// The disagreement list under the chosen filter, most serious first.
    pub fn disagreement_list(&self) -> Vec<(PathBuf, ImageDisagreement)> {
        let d = &self.review.disagreements;
        rank(d, self.review.disagreement_kind)
            .into_iter()
            .map(|i| d[i].clone())
            .collect()
    }

    /// Goes to `image` (from the disagreement list).
    pub fn go_to_path(&mut self, image: &Path) {
        let index = self
            .session
            .as_ref()
            .and_then(|s| s.images.iter().position(|e| e.path == image));
        if let Some(i) = index {
            self.go_to(i);
        }
    }

    /// Scores the model's cached predictions against the labels (COCO AP) in the background.
    pub fn evaluate_model(&mut self) {
        let Some(model) = self.review.model.clone() else {
            return;
        };
        self.remember_labels();
        let select = SelectConfig {
            score_threshold: 0.05,
            iou_threshold: self.review.select.iou_threshold,
            class_agnostic: self.review.select.class_agnostic,
            max_detections: Some(100),
        };
        let items: Vec<(Arc<CachedPrediction>, Vec<LabelBox>)> = self
            .review
            .predictions
            .iter()
            .filter_map(|(p, c)| Some((c.clone(), self.review.labels.get(p)?.clone())))
            .collect();
        self.review.evaluation_job = Some(Job::spawn("evaluate", self.ctx.clone(), move |_| {
            if items.is_empty() {
                return Err("no image has both labels and predictions yet: run the model on all images first".into());
            }
            let images: Vec<LabelledImage> = items
                .iter()
                .map(|(pred, labels)| {
                    let gt = labels
                        .iter()
                        .filter_map(|l| {
                            let c = model.class_names.iter().position(|n| *n == l.class_name)?;
                            Some((l.bbox, c))
                        })
                        .collect();
                    (gt, pred.reselect(&select))
                })
                .collect();
            let result = crate::review::evaluate_images(&images, &model.class_names)
                .map_err(|e| e.to_string())?;
            Ok(Evaluation {
                result,
                class_names: model.class_names.clone(),
                images: images.len(),
            })
        }));
    }
}

/// One image of a run: cache hit, or decode + inference + cache write; plus its labels.
fn predict_one(
    model: &LoadedModel,
    cache: &CandidateCache,
    root: &Path,
    save_dir: Option<&Path>,
    image: &Path,
    scope: RunScope,
) -> RunItem {
    let labels = load_labels(image, save_dir)
        .ok()
        .map(|l| l.map(|l| l.annotation.boxes).unwrap_or_default());
    let mut item = RunItem {
        image: image.to_path_buf(),
        prediction: None,
        labels,
        error: None,
    };
    let key = relative_path(root, image);
    let stamp = match ImageStamp::of(image) {
        Ok(s) => s,
        Err(e) => {
            if scope != RunScope::CachedOnly {
                item.error = Some(format!("{}: {e}", image.display()));
            }
            return item;
        }
    };
    if let Ok(Some(hit)) = cache.load(&key, &stamp) {
        item.prediction = Some(Arc::new(hit));
        return item;
    }
    if scope == RunScope::CachedOnly {
        return item;
    }
    let rgb = match crate::dataset::image_info::decode_upright_rgb(image) {
        Ok(rgb) => rgb,
        Err(e) => {
            item.error = Some(e.to_string());
            return item;
        }
    };
    let cfg = PredictConfig {
        candidate_floor: Some(CANDIDATE_FLOOR),
        top_k: Some(CANDIDATE_TOP_K),
        ..PredictConfig::default()
    };
    let predicted = match model.detector.lock() {
        Ok(det) => det.predict_images(&[rgb], &cfg),
        Err(_) => {
            item.error = Some("the model is unusable after an earlier failure".into());
            return item;
        }
    };
    match predicted.map(|mut v| v.pop()) {
        Ok(Some(p)) => {
            let cached = CachedPrediction {
                stamp,
                letterbox: p.letterbox,
                candidates: p.candidates,
            };
            if let Err(e) = cache.store(&key, &cached) {
                item.error = Some(format!("prediction kept in memory only: {e}"));
            }
            item.prediction = Some(Arc::new(cached));
        }
        Ok(None) => item.error = Some(format!("{}: no output", image.display())),
        Err(e) => item.error = Some(format!("{}: {e}", image.display())),
    }
    item
}
