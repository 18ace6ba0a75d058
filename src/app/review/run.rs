//! Running the model over images in the background: cache hits are read, misses are
//! decoded, predicted and cached; each image's labels are read on the way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use super::model::LoadedModel;
use super::relative_path;
use crate::app::state::AppState;
use crate::dataset::{load_labels, LabelBox};
use crate::detector::inference::PredictConfig;
use crate::review::{CachedPrediction, CandidateCache, ImageStamp};

/// Candidates kept per image: everything above this score, at most [`CANDIDATE_TOP_K`].
const CANDIDATE_FLOOR: f32 = 0.02;

const CANDIDATE_TOP_K: usize = 5000;

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

impl AppState {
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

    /// Takes the run's new results; ends the run when every image is done. Returns `true`
    /// if anything arrived.
    pub(super) fn poll_inference_run(&mut self) -> bool {
        let mut changed = false;
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
        changed
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
