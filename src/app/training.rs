//! A training run started from the app: the training engine on its own thread, its typed
//! events streamed back to the UI, a cancel handle for Stop.
//!
//! The run reads a snapshot of the data: the labels are loaded once when it starts (on the
//! run's thread), so the labeller can keep editing while it trains.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Instant;

use crate::detector::train::config::RECIPE_EMA_DECAY;
use crate::detector::train::data::DataSource;
use crate::detector::train::{
    prepare, AnchorChoice, AugmentConfig, CancelHandle, ConfigError, DeviceChoice, Init,
    PrepareError, Setting, TrainConfig, TrainError, TrainEvent, TrainRequest,
};

/// How long exiting waits for a training step in progress.
pub const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The settings the training panel edits. Its defaults are the library's
/// ([`TrainRequest::new`]: the recipe of `models/README.md`), as `detlab train`'s are.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingForm {
    /// `lite0` or `d0` … `d8`.
    pub arch: String,
    /// A detlab model file to start from; empty: the architecture's default start.
    pub weights: String,
    /// Start from a fresh network.
    pub from_scratch: bool,
    /// Number of epochs.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Square network input side.
    pub input_size: u32,
    /// Where the run computes.
    pub device: DeviceChoice,
    /// Float16 mixed precision (CUDA only).
    pub mixed_precision: bool,
    /// CPU threads for libtorch and decoding (0: libtorch's default).
    pub threads: usize,
    /// Flip, scale and colour jitter, rotation, mosaic and copy-paste.
    pub augment: AugmentConfig,
    /// Fraction of the images held out for validation.
    pub val_fraction: f64,
    /// First epochs with the backbone frozen.
    pub freeze_backbone_epochs: usize,
    /// An EMA of the weights (decay [`RECIPE_EMA_DECAY`]).
    pub ema: bool,
    /// Weight of the GIoU box term added to the loss (0: off; see `detector::train::loss`).
    pub giou_weight: f64,
    /// Fit anchor aspect ratios to the boxes (see `detector::train::anchor_fit`).
    pub fit_anchors: bool,
    /// Train on crops of `tile_size` photo pixels (tiles) instead of whole photos (see
    /// `detector::train::tile_crop`).
    pub tiles: bool,
    /// The crop side in photo pixels (the input size: native resolution).
    pub tile_size: u32,
    /// The run folder; empty: `<labels>/.detlab/runs/<arch>`.
    pub out_dir: String,
}

impl Default for TrainingForm {
    fn default() -> Self {
        // What `TrainRequest::new` starts from: the library's one set of defaults.
        let c = TrainConfig::default();
        Self {
            arch: c.arch.to_string(),
            weights: String::new(),
            from_scratch: Init::default() == Init::Scratch,
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
            input_size: c.input_size,
            device: c.device,
            mixed_precision: c.mixed_precision,
            threads: c.threads.unwrap_or(0),
            augment: c.augment,
            val_fraction: c.val_fraction,
            freeze_backbone_epochs: c.freeze_backbone_epochs,
            ema: c.ema_decay.is_some(),
            giou_weight: c.giou_weight,
            fit_anchors: AnchorChoice::default() == AnchorChoice::Fitted,
            tiles: c.tile.is_some(),
            tile_size: c.tile.unwrap_or(c.input_size),
            out_dir: String::new(),
        }
    }
}

impl TrainingForm {
    /// The library's request for these settings, on `images` (labels in `labels`, when not
    /// beside the images).
    pub fn request(
        &self,
        images: &std::path::Path,
        labels: Option<&std::path::Path>,
        resume: bool,
    ) -> Result<TrainRequest, ConfigError> {
        let data = DataSource::from_path(images, labels);
        let mut request = TrainRequest::new(data, self.run_dir(labels.unwrap_or(images)));
        let c = &mut request.config;
        c.arch = self.arch.parse()?;
        c.input_size = self.input_size;
        c.epochs = self.epochs;
        c.batch_size = self.batch_size;
        c.lr = self.lr;
        c.device = self.device;
        c.mixed_precision = self.mixed_precision && !self.device.is_cpu();
        c.threads = (self.threads > 0).then_some(self.threads);
        c.augment = self.augment.clone();
        c.val_fraction = self.val_fraction;
        c.freeze_backbone_epochs = self.freeze_backbone_epochs;
        c.ema_decay = self.ema.then_some(RECIPE_EMA_DECAY);
        c.giou_weight = self.giou_weight;
        c.tile = self.tiles.then_some(self.tile_size);
        request.init = match (self.weights.trim(), self.from_scratch) {
            (w, _) if !w.is_empty() => Init::Weights(PathBuf::from(w)),
            (_, true) => Init::Scratch,
            _ => Init::Default,
        };
        request.resume = resume;
        request.anchors = if self.fit_anchors {
            AnchorChoice::Fitted
        } else {
            AnchorChoice::Reference
        };
        Ok(request)
    }

    /// The run folder for a dataset whose labels live in `labels_dir`.
    pub fn run_dir(&self, labels_dir: &std::path::Path) -> PathBuf {
        if self.out_dir.trim().is_empty() {
            labels_dir.join(".detlab").join("runs").join(&self.arch)
        } else {
            PathBuf::from(self.out_dir.trim())
        }
    }
}

/// The Train page's name for a setting, so that an error points at its field.
fn control(setting: Setting) -> &'static str {
    match setting {
        Setting::Arch => "Model",
        Setting::Device => "Device",
        Setting::InputSize => "Input size",
        Setting::Epochs => "Epochs",
        Setting::BatchSize => "Batch",
        Setting::LearningRate => "Learning rate",
        Setting::AnchorRatios => "Fit anchors to boxes",
        Setting::Validation => "Validation fraction",
        Setting::Augmentation => "Flip probability / Colour jitter / Scale jitter",
        Setting::Ema => "EMA of weights",
        Setting::GradClip => "gradient clip (not on this page)",
        Setting::Threads => "Threads",
        Setting::MixedPrecision => "mixed precision",
        Setting::Loss => "GIoU box weight",
        Setting::Optimizer => "optimizer (not on this page)",
    }
}

/// An error's message, led by the field to change when a setting is at fault.
fn with_control(setting: Option<Setting>, message: String) -> String {
    match setting {
        Some(s) => format!("{}: {message}", control(s)),
        None => message,
    }
}

/// Where a run stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    LoadingData,
    Training,
    Stopping,
    Finished { best_path: Option<PathBuf> },
    Failed(String),
}

impl RunStatus {
    pub fn is_active(&self) -> bool {
        matches!(self, Self::LoadingData | Self::Training | Self::Stopping)
    }
}

/// The curves the panel plots, as `[x, y]` points.
#[derive(Clone, Debug, Default)]
pub struct TrainingHistory {
    /// x: fractional epoch (`epoch - 1 + step / steps_per_epoch`).
    pub loss: Vec<[f64; 2]>,
    pub cls: Vec<[f64; 2]>,
    pub box_loss: Vec<[f64; 2]>,
    /// x: epoch.
    pub val_ap: Vec<[f64; 2]>,
    pub val_ap50: Vec<[f64; 2]>,
    /// The starting weights' validation AP (runs with `validate_first`).
    pub baseline_ap: Option<f64>,
    pub images_per_sec: f64,
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub device: String,
    /// Steps done in this process and when the first one was seen, for the ETA.
    steps_done: usize,
    first_step_at: Option<Instant>,
}

impl TrainingHistory {
    /// Seconds left at the pace of this process's steps so far.
    pub fn eta_seconds(&self) -> Option<f64> {
        let started = self.first_step_at?;
        if self.steps_done < 2 || self.steps_per_epoch == 0 {
            return None;
        }
        let total = self.epochs * self.steps_per_epoch;
        let done = (self.epoch.saturating_sub(1)) * self.steps_per_epoch + self.step;
        let per_step = started.elapsed().as_secs_f64() / (self.steps_done - 1) as f64;
        Some(total.saturating_sub(done) as f64 * per_step)
    }

    fn record(&mut self, e: &TrainEvent) {
        match e {
            TrainEvent::Started {
                device,
                steps_per_epoch,
                config,
                start_epoch,
                ..
            } => {
                self.device = device.clone();
                self.steps_per_epoch = *steps_per_epoch;
                self.epochs = config.epochs;
                self.epoch = *start_epoch;
            }
            TrainEvent::Step {
                epoch,
                step,
                steps_per_epoch,
                loss,
                cls,
                box_loss,
                images_per_sec,
                ..
            } => {
                let x = (*epoch as f64 - 1.0) + *step as f64 / (*steps_per_epoch).max(1) as f64;
                self.loss.push([x, *loss]);
                self.cls.push([x, *cls]);
                self.box_loss.push([x, *box_loss]);
                self.images_per_sec = *images_per_sec;
                (self.epoch, self.step) = (*epoch, *step);
                self.steps_done += 1;
                self.first_step_at.get_or_insert_with(Instant::now);
            }
            TrainEvent::Epoch {
                epoch,
                val: Some(v),
                ..
            } => {
                self.val_ap.push([*epoch as f64, v.ap]);
                self.val_ap50.push([*epoch as f64, v.ap50]);
            }
            TrainEvent::Baseline { val } => self.baseline_ap = Some(val.ap),
            _ => {}
        }
    }
}

enum RunMessage {
    Note(String),
    Event(TrainEvent),
    Ended(Result<(), String>),
}

/// A run in the background.
pub struct TrainingRun {
    rx: Receiver<RunMessage>,
    cancel: CancelHandle,
    pub out_dir: PathBuf,
    pub status: RunStatus,
    pub history: TrainingHistory,
    /// Human-readable event log, newest last.
    pub log: Vec<String>,
    /// The run's thread (joined on exit, so that it never outlives libtorch).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrainingRun {
    /// Starts a run on `images` (labels in `labels`, when not beside the images) once
    /// `after` answers (the label thread's barrier: the saves asked for before are on disk).
    pub fn start(
        form: &TrainingForm,
        images: PathBuf,
        labels: Option<PathBuf>,
        resume: bool,
        after: Receiver<()>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let out_dir = form.run_dir(labels.as_deref().unwrap_or(&images));
        match form.request(&images, labels.as_deref(), resume) {
            Ok(request) => Self::start_request(request, after, ctx),
            Err(e) => Self::failed(out_dir, with_control(Some(e.setting()), e.to_string())),
        }
    }

    fn failed(out_dir: PathBuf, reason: String) -> Self {
        let (_, rx) = channel();
        Self {
            rx,
            cancel: CancelHandle::new(),
            out_dir,
            status: RunStatus::Failed(reason.clone()),
            history: TrainingHistory::default(),
            log: vec![format!("failed: {reason}")],
            thread: None,
        }
    }

    /// Starts `request` once `after` answers (see [`Self::start`]).
    pub fn start_request(
        request: TrainRequest,
        after: Receiver<()>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let (tx, rx) = channel();
        let cancel = CancelHandle::new();
        let out_dir = request.out_dir.clone();
        let job_cancel = cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("detlab-train".into())
            .spawn(move || {
                let _ = after.recv();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&request, &tx, &job_cancel, &ctx)
                }))
                .unwrap_or_else(|p| {
                    Err(format!(
                        "training stopped unexpectedly: {}",
                        crate::task::panic_message(p)
                    ))
                });
                let _ = tx.send(RunMessage::Ended(result));
                if let Some(c) = &ctx {
                    c.request_repaint();
                }
            });
        let (status, thread) = match spawned {
            Ok(t) => (RunStatus::LoadingData, Some(t)),
            Err(e) => (
                RunStatus::Failed(format!("cannot start the training thread: {e}")),
                None,
            ),
        };
        Self {
            rx,
            cancel,
            out_dir,
            status,
            history: TrainingHistory::default(),
            log: Vec::new(),
            thread,
        }
    }

    /// Stops the run and waits up to `limit` for its thread to end (on exit: a thread
    /// still running when the process ends would find libtorch torn down). Returns
    /// whether it ended.
    pub fn stop_and_join(&mut self, limit: std::time::Duration) -> bool {
        self.stop();
        let start = Instant::now();
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        true
    }

    /// Asks the run to stop after the current step (the last complete epoch can be resumed).
    pub fn stop(&mut self) {
        self.cancel.cancel();
        if self.status.is_active() {
            self.status = RunStatus::Stopping;
        }
    }

    /// Takes the events that arrived since the last frame. Returns `true` if any did.
    pub fn poll(&mut self) -> bool {
        let mut any = false;
        while let Ok(m) = self.rx.try_recv() {
            any = true;
            match m {
                RunMessage::Note(line) => self.log.push(line),
                RunMessage::Event(e) => {
                    self.history.record(&e);
                    if let Some(line) = describe(&e) {
                        self.log.push(line);
                    }
                    match e {
                        TrainEvent::Started { .. } if self.status == RunStatus::LoadingData => {
                            self.status = RunStatus::Training
                        }
                        TrainEvent::Finished { best_path, .. } => {
                            self.status = RunStatus::Finished { best_path }
                        }
                        TrainEvent::Failed { reason } => self.status = RunStatus::Failed(reason),
                        _ => {}
                    }
                }
                RunMessage::Ended(Err(reason)) => {
                    if !matches!(self.status, RunStatus::Failed(_)) {
                        self.log.push(format!("failed: {reason}"));
                    }
                    // The run's own message, led by the field to change when there is one.
                    self.status = RunStatus::Failed(reason);
                }
                RunMessage::Ended(Ok(())) => {
                    if self.status.is_active() {
                        self.status = RunStatus::Finished { best_path: None };
                    }
                }
            }
        }
        any
    }
}

impl super::AppState {
    /// Starts (or with `resume`, continues) a training run on the open folder's labels.
    /// The current image's labels are saved first so the run sees them.
    pub fn start_training(&mut self, resume: bool) {
        if self.training.as_ref().is_some_and(|r| r.status.is_active()) {
            return;
        }
        let Some(session) = &self.workspace.session else {
            self.info("open an image folder first");
            return;
        };
        let (images, labels) = (session.root.clone(), session.save_dir.clone());
        if self.workspace.needs_saving() && !self.save() {
            return;
        }
        // Training reads the label files: it starts after the pending saves.
        let after = self.workspace.labels.barrier();
        self.training = Some(TrainingRun::start(
            &self.ui.training_form,
            images,
            labels,
            resume,
            after,
            self.ctx.clone(),
        ));
    }

    pub fn stop_training(&mut self) {
        if let Some(run) = &mut self.training {
            run.stop();
        }
    }

    /// On exit: stops the Train page's run and the retraining, and waits for them (the
    /// step in progress; at most [`EXIT_WAIT`] each). The last complete epoch can be
    /// resumed.
    pub fn stop_background_training(&mut self) {
        for run in [self.training.as_mut(), self.auto_retrain.run.as_mut()]
            .into_iter()
            .flatten()
        {
            if !run.stop_and_join(EXIT_WAIT) {
                eprintln!("warning: a training run did not stop within {EXIT_WAIT:?}");
            }
        }
    }

    /// Takes the run's new events. Returns `true` if any arrived.
    pub fn poll_training(&mut self) -> bool {
        self.training.as_mut().is_some_and(TrainingRun::poll)
    }
}

/// Prepares the run with the library (the same preparation as `detlab train`) and trains.
fn run(
    request: &TrainRequest,
    tx: &Sender<RunMessage>,
    cancel: &CancelHandle,
    ctx: &Option<egui::Context>,
) -> Result<(), String> {
    let prepared = prepare(request).map_err(|e: PrepareError| match &e {
        // The page's controls for a run folder that cannot be used as asked.
        PrepareError::RunExists { .. } => format!(
            "{e}. Press Resume to continue it, or set another Run folder (or delete this one) and press Start."
        ),
        PrepareError::NothingToResume { .. } => format!(
            "{e}. Set another Run folder (or delete this one) and press Start to begin again."
        ),
        _ => with_control(e.setting(), e.to_string()),
    })?;
    let data = &prepared.job.data;
    let _ = tx.send(RunMessage::Note(format!(
        "data: {} train / {} val images, {} classes{}{}",
        data.train.len(),
        data.val.len(),
        data.class_names.len(),
        if data.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} images skipped", data.skipped.len())
        },
        if data.unreadable.is_empty() {
            String::new()
        } else {
            format!(
                ", {} unreadable images skipped (e.g. {})",
                data.unreadable.len(),
                data.unreadable[0].0.display()
            )
        }
    )));
    if let Some(small) = &prepared.small_set {
        let _ = tx.send(RunMessage::Note(small.to_string()));
    }
    if let Some(hint) = &prepared.tile_hint {
        let _ = tx.send(RunMessage::Note(hint.to_string()));
    }
    prepared
        .run(
            &mut |e| {
                let _ = tx.send(RunMessage::Event(e.clone()));
                if let Some(c) = ctx {
                    c.request_repaint();
                }
            },
            cancel,
        )
        .map(|_| ())
        .map_err(|e: TrainError| with_control(e.setting(), e.to_string()))
}

/// One log line per event worth a line (steps are plotted, not logged).
fn describe(e: &TrainEvent) -> Option<String> {
    Some(match e {
        TrainEvent::Started {
            device,
            arch,
            params,
            init,
            start_epoch,
            ..
        } => format!(
            "started {arch} ({params} parameters) on {device} at epoch {start_epoch}; from {init}"
        ),
        TrainEvent::Warning {
            epoch,
            step,
            message,
        } => {
            format!("warning (epoch {epoch}, step {step}): {message}")
        }
        TrainEvent::Step { .. } => return None,
        TrainEvent::Baseline { val } => format!(
            "starting weights: val AP {:.3} AP50 {:.3}",
            val.ap, val.ap50
        ),
        TrainEvent::Epoch {
            epoch,
            train_loss,
            val,
            seconds,
            images_per_sec,
        } => {
            let mut s = format!(
                "epoch {epoch}: loss {train_loss:.4}, {images_per_sec:.1} img/s, {seconds:.0} s"
            );
            if let Some(v) = val {
                s += &format!(", val AP {:.3} AP50 {:.3}", v.ap, v.ap50);
            }
            s
        }
        TrainEvent::Checkpoint { kind, path, .. } => {
            format!("wrote {kind:?} {}", path.display())
        }
        TrainEvent::Finished {
            epochs_completed,
            best_ap,
            cancelled,
            seconds,
            ..
        } => format!(
            "{} after {epochs_completed} epoch(s), {seconds:.0} s; best AP {}",
            if *cancelled { "stopped" } else { "finished" },
            best_ap.map_or("–".into(), |a| format!("{a:.3}"))
        ),
        TrainEvent::Failed { reason } => format!("failed: {reason}"),
    })
}
