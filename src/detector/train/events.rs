//! What a training run reports while it runs, and how it is stopped from outside.
//!
//! The trainer calls an event sink (`FnMut(&TrainEvent)`) on its own thread; a UI can
//! forward the events over a channel. Every event serialises to one JSON object with an
//! `"event"` tag, which is what `RUN_DIR/metrics.jsonl` holds ([`MetricsLog`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;

/// Validation metrics of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAp {
    pub name: String,
    /// AP@[.5:.95]; −1 when the class has no validation boxes.
    pub ap: f64,
    pub ap50: f64,
}

/// Validation metrics of one epoch (COCO evaluator, max 100 detections per image).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValMetrics {
    pub ap: f64,
    pub ap50: f64,
    /// AP@.75 (absent from logs of older runs: read as −1).
    #[serde(default = "missing_ap")]
    pub ap75: f64,
    pub per_class: Vec<ClassAp>,
    pub images: usize,
}

fn missing_ap() -> f64 {
    -1.0
}

/// Which file a checkpoint event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    Last,
    Best,
    Resume,
}

/// One report from a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// The model is built and the data loaded; training starts at `start_epoch` (1-based).
    Started {
        device: String,
        params: i64,
        arch: String,
        class_names: Vec<String>,
        train_images: usize,
        val_images: usize,
        steps_per_epoch: usize,
        start_epoch: usize,
        /// Where the initial weights came from.
        init: String,
        config: Box<TrainConfig>,
    },
    /// The starting weights on the validation set, before any step (with
    /// `validate_first`).
    Baseline { val: ValMetrics },
    /// A recoverable problem (e.g. a skipped non-finite step).
    Warning {
        epoch: usize,
        step: usize,
        message: String,
    },
    /// One optimisation step (1-based epoch and step within the epoch).
    Step {
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        loss: f64,
        cls: f64,
        /// The box terms: the preset's, plus the GIoU term when it is on.
        #[serde(rename = "box")]
        box_loss: f64,
        lr: f64,
        images_per_sec: f64,
    },
    /// An epoch finished (and was validated unless validation is off).
    Epoch {
        epoch: usize,
        train_loss: f64,
        val: Option<ValMetrics>,
        seconds: f64,
        images_per_sec: f64,
    },
    /// A file was written.
    Checkpoint {
        kind: CheckpointKind,
        path: PathBuf,
        epoch: usize,
    },
    /// The run ended normally (all epochs, early stop or cancel).
    Finished {
        epochs_completed: usize,
        best_epoch: Option<usize>,
        best_ap: Option<f64>,
        best_ap50: Option<f64>,
        stopped_early: bool,
        cancelled: bool,
        seconds: f64,
        best_path: Option<PathBuf>,
        last_path: Option<PathBuf>,
    },
    /// The run stopped on an error.
    Failed { reason: String },
}

/// A handle to stop a run cleanly from another thread: the trainer checks it before
/// every step and returns after the current step (the last complete epoch stays the
/// resume point).
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The shared flag itself.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// Appends events as JSON lines (flushed per line, so a killed run leaves complete lines).
#[derive(Debug)]
pub struct MetricsLog {
    file: File,
    path: PathBuf,
}

impl MetricsLog {
    /// Opens `path` for appending (a resumed run continues the same log).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event as a line.
    pub fn write(&mut self, event: &TrainEvent) -> io::Result<()> {
        let mut line = serde_json::to_string(event).map_err(io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_json() {
        let e = TrainEvent::Step {
            epoch: 1,
            step: 2,
            steps_per_epoch: 3,
            loss: 1.5,
            cls: 1.0,
            box_loss: 0.5,
            lr: 1e-3,
            images_per_sec: 4.0,
        };
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.starts_with(r#"{"event":"step""#), "{s}");
        assert!(s.contains(r#""box":0.5"#));
        assert_eq!(serde_json::from_str::<TrainEvent>(&s).unwrap(), e);
        let c = CancelHandle::new();
        let c2 = c.clone();
        c2.cancel();
        assert!(c.is_cancelled());
    }
}
