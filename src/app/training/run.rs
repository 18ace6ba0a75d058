//! A run in the background ([`TrainingRun`]): the library's preparation and training on
//! their own thread, the events streamed back, the [`RunStatus`], the log and Stop.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Instant;

use super::cv::{self, CvMessage, CvStatus};
use super::form::{with_control, TrainingForm};
use super::history::TrainingHistory;
use crate::detector::train::{
    prepare, CancelHandle, CvOptions, PrepareError, TrainError, TrainEvent, TrainRequest,
};

/// Where a run stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    LoadingData,
    Training,
    Stopping,
    /// `best_path`: the weights of the best hold-out epoch; `last_path`: those of the
    /// last epoch (the auto-retrain's choice, see [`crate::app::auto_retrain`]).
    Finished {
        best_path: Option<PathBuf>,
        last_path: Option<PathBuf>,
    },
    Failed(String),
}

impl RunStatus {
    pub fn is_active(&self) -> bool {
        matches!(self, Self::LoadingData | Self::Training | Self::Stopping)
    }
}

/// What the run's thread sends the page.
pub(super) enum RunMessage {
    Note(String),
    Event(TrainEvent),
    Cv(CvMessage),
    Ended(Result<(), String>),
}

/// The work of a run's thread.
type Job = Box<
    dyn FnOnce(&Sender<RunMessage>, &CancelHandle, &Option<egui::Context>) -> Result<(), String>
        + Send,
>;

/// A run in the background.
pub struct TrainingRun {
    rx: Receiver<RunMessage>,
    cancel: CancelHandle,
    pub out_dir: PathBuf,
    pub status: RunStatus,
    pub history: TrainingHistory,
    /// Human-readable event log, newest last.
    pub log: Vec<String>,
    /// A cross-validation's stage and result (`None`: a plain run).
    pub cv: Option<CvStatus>,
    /// The run's thread (joined on exit, so that it never outlives libtorch).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrainingRun {
    /// Starts a run on `images` (labels in `labels`, when not beside the images) once
    /// `after` answers (the label thread's barrier: the saves asked for before are on disk):
    /// a cross-validation when the form has folds, a plain run otherwise.
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
            Ok(request) => match form.cross_validation() {
                Some(k) => {
                    Self::start_cross_validation(request, cv::options(k, resume), after, ctx)
                }
                None => Self::start_request(request, after, ctx),
            },
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
            cv: None,
            thread: None,
        }
    }

    /// Starts `request` once `after` answers (see [`Self::start`]).
    pub fn start_request(
        request: TrainRequest,
        after: Receiver<()>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let out_dir = request.out_dir.clone();
        let job: Job = Box::new(move |tx, cancel, ctx| run(&request, tx, cancel, ctx));
        Self::spawn(out_dir, job, None, after, ctx)
    }

    /// Starts the library's k-fold cross-validation of `request` (the table in its run
    /// folder, then the final model) once `after` answers (see [`Self::start`]).
    pub fn start_cross_validation(
        request: TrainRequest,
        options: CvOptions,
        after: Receiver<()>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let out_dir = request.out_dir.clone();
        let status = CvStatus {
            k: options.k,
            stage: None,
            result: None,
        };
        let job: Job =
            Box::new(move |tx, cancel, ctx| cv::run(&request, &options, tx, cancel, ctx));
        Self::spawn(out_dir, job, Some(status), after, ctx)
    }

    /// Runs `job` on the run's thread once `after` answers.
    fn spawn(
        out_dir: PathBuf,
        job: Job,
        cv: Option<CvStatus>,
        after: Receiver<()>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let (tx, rx) = channel();
        let cancel = CancelHandle::new();
        let job_cancel = cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("detlab-train".into())
            .spawn(move || {
                let _ = after.recv();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    job(&tx, &job_cancel, &ctx)
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
            cv,
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
                        // A cross-validation finishes after its final model, not with a fold.
                        TrainEvent::Finished {
                            best_path,
                            last_path,
                            ..
                        } if self.cv.is_none() => {
                            self.status = RunStatus::Finished {
                                best_path,
                                last_path,
                            }
                        }
                        TrainEvent::Failed { reason } => self.status = RunStatus::Failed(reason),
                        _ => {}
                    }
                }
                RunMessage::Cv(m) => self.cv_message(m),
                RunMessage::Ended(Err(reason)) => {
                    if !matches!(self.status, RunStatus::Failed(_)) {
                        self.log.push(format!("failed: {reason}"));
                    }
                    // The run's own message, led by the field to change when there is one.
                    self.status = RunStatus::Failed(reason);
                }
                RunMessage::Ended(Ok(())) => {
                    if self.status.is_active() {
                        self.status = RunStatus::Finished {
                            best_path: None,
                            last_path: None,
                        };
                    }
                }
            }
        }
        any
    }
}

impl TrainingRun {
    fn cv_message(&mut self, m: CvMessage) {
        let Some(cv) = &mut self.cv else {
            return;
        };
        match m {
            CvMessage::Stage(stage) => {
                cv.stage = Some(stage);
                // Each training plots its own curves.
                self.history = TrainingHistory::default();
            }
            CvMessage::Finished(result) => {
                self.status = RunStatus::Finished {
                    best_path: result.model.clone(),
                    last_path: None,
                };
                cv.result = Some(*result);
            }
        }
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
