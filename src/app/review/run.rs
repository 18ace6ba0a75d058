//! Running the model over images in the background: cache hits are read, misses are
//! decoded, predicted and cached; each image's labels are read on the way, through the
//! label thread (so a label saved just before is seen).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use super::model::LoadedModel;
use super::relative_path;
use crate::app::label_io::LabelReader;
use crate::app::AppState;
use crate::dataset::LabelBox;
use crate::detector::inference::PredictConfig;
use crate::detector::maths::tiling::Tiling;
use crate::detector::maths::tta::Tta;
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

impl RunItem {
    /// A failure of the run itself, not of one image.
    fn failed(error: String) -> Self {
        Self {
            image: PathBuf::new(),
            prediction: None,
            labels: None,
            error: Some(error),
        }
    }
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

    /// Cancels the run and waits up to `limit` for its thread to end (the items it sends
    /// meanwhile are dropped); returns whether it ended.
    pub fn cancel_and_wait(&self, limit: std::time::Duration) -> bool {
        use std::sync::mpsc::RecvTimeoutError;
        self.cancel();
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }
}

impl AppState {
    /// Runs the model on the images of `scope` in the background (cached images are read,
    /// not recomputed). A run already going is cancelled first.
    pub fn run_model(&mut self, scope: RunScope) {
        let (Some(model), Some(session), Some(dir)) = (
            self.review.model.clone(),
            self.workspace.session.as_ref(),
            self.sidecar_dir(),
        ) else {
            return;
        };
        if let Some(old) = self.review.run.take() {
            old.cancel();
        }
        let mut images: Vec<PathBuf> = match scope {
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
        on_screen_first(&mut images, self.current_path().as_deref());
        let root = session.root.clone();
        let save_dir = session.save_dir.clone();
        let (tiling, tta) = (self.review.tiling, self.review.tta);
        let precision = self.review.precision;
        let id = model
            .id
            .with_tiling(&tiling, model.train_tile)
            .with_tta(&tta)
            .with_precision(precision);
        let cache = CandidateCache::new(&dir, &id);
        let reader = self.workspace.labels.reader();
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let total = images.len();
        let (c, d, ctx) = (cancel.clone(), done.clone(), self.ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("detlab-review".into())
            .spawn(move || {
                let send = |item: RunItem| {
                    // Sent before counted: a finished count means every item is queued.
                    let sent = tx.send(item).is_ok();
                    d.fetch_add(1, Ordering::Relaxed);
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                    sent
                };
                let work = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // Images that need the network go in batches the detector runs best
                    // (one image per CPU thread on the CPU engine); cache hits are sent at
                    // once. A failure of the network ends the run.
                    let batch = match model.detector.lock() {
                        Ok(mut det) => {
                            if let Err(e) = det.set_precision(precision) {
                                send(RunItem::failed(format!("precision {precision}: {e}")));
                                return;
                            }
                            det.default_batch_size()
                        }
                        Err(_) => 1,
                    };
                    let mut pending = Vec::with_capacity(batch);
                    let mut images = images.iter().peekable();
                    while let Some(image) = images.next() {
                        if c.load(Ordering::Relaxed) {
                            break;
                        }
                        match prepare(&cache, &reader, &root, save_dir.as_deref(), image, scope) {
                            Prepared::Done(item) => {
                                if !send(item) {
                                    break;
                                }
                            }
                            Prepared::Predict(p) => pending.push(p),
                        }
                        let last = images.peek().is_none();
                        if pending.len() >= batch || (last && !pending.is_empty()) {
                            let (items, failed) = predict_batch(
                                &model,
                                &cache,
                                (tiling, tta),
                                std::mem::take(&mut pending),
                            );
                            if !items.into_iter().all(send) || failed {
                                break;
                            }
                        }
                    }
                }));
                if let Err(p) = work {
                    let reason = crate::task::panic_message(p);
                    send(RunItem::failed(format!(
                        "the prediction thread stopped: {reason}"
                    )));
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

/// An image of a run that needs the network.
struct Pending {
    item: RunItem,
    key: PathBuf,
    stamp: ImageStamp,
    rgb: image::RgbImage,
}

/// An image of a run after its labels were read and the cache was asked.
enum Prepared {
    /// A cache hit, an error, or nothing to do.
    Done(RunItem),
    Predict(Pending),
}

/// One image of a run up to the network: its labels, the cache, the decoded pixels.
fn prepare(
    cache: &CandidateCache,
    reader: &LabelReader,
    root: &Path,
    save_dir: Option<&Path>,
    image: &Path,
    scope: RunScope,
) -> Prepared {
    let labels = reader
        .read(image, save_dir)
        .ok()
        .map(|l| l.map(|l| l.boxes).unwrap_or_default());
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
            return Prepared::Done(item);
        }
    };
    if let Ok(Some(hit)) = cache.load(&key, &stamp) {
        item.prediction = Some(Arc::new(hit));
        return Prepared::Done(item);
    }
    if scope == RunScope::CachedOnly {
        return Prepared::Done(item);
    }
    match crate::dataset::image_info::decode_upright_rgb(image) {
        Ok(rgb) => Prepared::Predict(Pending {
            item,
            key,
            stamp,
            rgb,
        }),
        Err(e) => {
            item.error = Some(e.to_string());
            Prepared::Done(item)
        }
    }
}

/// Moves the image on screen to the front of a run (the others keep their order).
fn on_screen_first(images: &mut [PathBuf], on_screen: Option<&Path>) {
    if let Some(i) = on_screen.and_then(|c| images.iter().position(|p| p == c)) {
        images[..=i].rotate_right(1);
    }
}

/// What a run keeps of the network's output, `batch` images per call.
fn candidate_config(batch: usize, (tiling, tta): (Tiling, Tta)) -> PredictConfig {
    PredictConfig {
        candidate_floor: Some(CANDIDATE_FLOOR),
        top_k: Some(CANDIDATE_TOP_K),
        batch_size: batch.max(1),
        tiling,
        tta,
        ..PredictConfig::default()
    }
}

/// `model`'s candidates on one image, as a review run keeps them (not cached): for
/// judging a model that is not the review model.
pub(crate) fn predict_image(
    model: &LoadedModel,
    image: &Path,
    view: (Tiling, Tta),
) -> Result<CachedPrediction, String> {
    let stamp = ImageStamp::of(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let rgb = crate::dataset::image_info::decode_upright_rgb(image).map_err(|e| e.to_string())?;
    let det = model
        .detector
        .lock()
        .map_err(|_| "the model is unusable after an earlier failure".to_string())?;
    let p = det
        .predict_images(&[rgb], &candidate_config(1, view))
        .map_err(|e| format!("{}: {e}", image.display()))?
        .pop()
        .ok_or("no output")?;
    Ok(CachedPrediction {
        stamp,
        letterbox: p.letterbox,
        candidates: p.candidates,
    })
}

/// Runs the network on `pending` images in one batch and caches each result; `true` with
/// them when the network failed (each item then carries the error).
fn predict_batch(
    model: &LoadedModel,
    cache: &CandidateCache,
    (tiling, tta): (Tiling, Tta),
    pending: Vec<Pending>,
) -> (Vec<RunItem>, bool) {
    let cfg = candidate_config(pending.len(), (tiling, tta));
    let (mut items, mut keys, mut rgbs) = (Vec::new(), Vec::new(), Vec::new());
    for p in pending {
        items.push(p.item);
        keys.push((p.key, p.stamp));
        rgbs.push(p.rgb);
    }
    let predicted = match model.detector.lock() {
        Ok(det) => det.predict_images(&rgbs, &cfg).map_err(|e| e.to_string()),
        Err(_) => Err("the model is unusable after an earlier failure".into()),
    };
    let predictions = match predicted {
        Ok(p) if p.len() == items.len() => p,
        other => {
            let e = other.err().unwrap_or_else(|| "no output".into());
            for item in &mut items {
                item.error = Some(format!("{}: {e}", item.image.display()));
            }
            return (items, true);
        }
    };
    for ((item, (key, stamp)), p) in items.iter_mut().zip(keys).zip(predictions) {
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
    (items, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_on_screen_runs_first_and_the_others_keep_their_order() {
        let paths = |names: &[&str]| -> Vec<PathBuf> { names.iter().map(PathBuf::from).collect() };
        let mut images = paths(&["a", "b", "c", "d"]);
        on_screen_first(&mut images, Some(Path::new("c")));
        assert_eq!(images, paths(&["c", "a", "b", "d"]));
        on_screen_first(&mut images, Some(Path::new("x")));
        assert_eq!(images, paths(&["c", "a", "b", "d"]));
        on_screen_first(&mut images, None);
        assert_eq!(images, paths(&["c", "a", "b", "d"]));
    }
}
