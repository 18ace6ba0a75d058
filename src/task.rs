//! One-shot background work: a [`Task`] runs a closure on a thread of its own and ends
//! [`Running`](TaskState::Running) → [`Done`](TaskState::Done) or
//! [`Failed`](TaskState::Failed). A task that panics, or whose thread never started, is
//! failed with the reason — never "still running" for ever.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

/// Why a task ended without its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailed {
    #[error("the {name} task could not start: {reason}")]
    NotStarted { name: String, reason: String },
    #[error("the {name} task failed unexpectedly: {reason}")]
    Panicked { name: String, reason: String },
}

/// What [`Task::poll`] sees.
#[derive(Debug, PartialEq, Eq)]
pub enum TaskState<T> {
    Running,
    Done(T),
    Failed(TaskFailed),
}

/// Work running on its own thread that ends with one value (or a failure).
pub struct Task<T> {
    name: String,
    rx: Receiver<Result<T, String>>,
    /// Set when the thread could not be started; taken by the first poll.
    not_started: Mutex<Option<String>>,
    /// `(done, total)` for a progress bar.
    pub progress: Arc<(AtomicUsize, AtomicUsize)>,
}

impl<T: Send + 'static> Task<T> {
    /// Runs `work` on a thread named `detlab-{name}`; it may report progress through the
    /// shared counters. `wake` is called once the result is ready (e.g. to repaint).
    pub fn spawn(
        name: &str,
        wake: impl Fn() + Send + 'static,
        work: impl FnOnce(&(AtomicUsize, AtomicUsize)) -> T + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        let progress = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let p = progress.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("detlab-{name}"))
            .spawn(move || {
                let value = catch_unwind(AssertUnwindSafe(|| work(&p))).map_err(panic_message);
                let _ = tx.send(value);
                wake();
            });
        Self {
            name: name.to_string(),
            rx,
            not_started: Mutex::new(spawned.err().map(|e| e.to_string())),
            progress,
        }
    }
}

impl<T> Task<T> {
    /// Waits up to `limit` for the work to end (its value is dropped: for leaving, when
    /// no one will read it); returns whether it ended.
    pub fn wait_end(&self, limit: std::time::Duration) -> bool {
        use std::sync::mpsc::RecvTimeoutError;
        !matches!(self.rx.recv_timeout(limit), Err(RecvTimeoutError::Timeout))
    }

    /// Running, done with the value (returned once), or failed.
    pub fn poll(&self) -> TaskState<T> {
        if let Some(reason) = self.not_started.lock().ok().and_then(|mut r| r.take()) {
            return TaskState::Failed(TaskFailed::NotStarted {
                name: self.name.clone(),
                reason,
            });
        }
        match self.rx.try_recv() {
            Ok(Ok(value)) => TaskState::Done(value),
            Ok(Err(reason)) => TaskState::Failed(TaskFailed::Panicked {
                name: self.name.clone(),
                reason,
            }),
            Err(TryRecvError::Empty) => TaskState::Running,
            Err(TryRecvError::Disconnected) => TaskState::Failed(TaskFailed::Panicked {
                name: self.name.clone(),
                reason: "it stopped without a result".into(),
            }),
        }
    }

    /// The value or the failure once the task has ended; `None` while it runs.
    pub fn result(&self) -> Option<Result<T, TaskFailed>> {
        match self.poll() {
            TaskState::Running => None,
            TaskState::Done(value) => Some(Ok(value)),
            TaskState::Failed(f) => Some(Err(f)),
        }
    }

    /// Progress reported so far, 0 to 1.
    pub fn fraction(&self) -> f32 {
        let (done, total) = (&self.progress.0, &self.progress.1);
        let total = total.load(Ordering::Relaxed);
        if total == 0 {
            0.0
        } else {
            done.load(Ordering::Relaxed) as f32 / total as f32
        }
    }
}

impl<T, E: std::fmt::Display> Task<Result<T, E>> {
    /// [`Self::result`] for work that can fail by itself: its error and a failure of the
    /// task are one message.
    pub fn outcome(&self) -> Option<Result<T, String>> {
        self.result().map(|r| {
            r.map_err(|f| f.to_string())
                .and_then(|v| v.map_err(|e| e.to_string()))
        })
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait<T>(task: &Task<T>) -> Result<T, TaskFailed> {
        let start = Instant::now();
        loop {
            if let Some(r) = task.result() {
                return r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the task never ended"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_task_ends_with_its_value() {
        let task = Task::spawn(
            "sum",
            || {},
            |p| {
                p.1.store(2, Ordering::Relaxed);
                p.0.store(2, Ordering::Relaxed);
                40 + 2
            },
        );
        assert_eq!(wait(&task), Ok(42));
        assert_eq!(task.fraction(), 1.0);
    }

    #[test]
    fn a_task_that_panics_is_failed_with_the_reason() {
        let task: Task<u32> = Task::spawn("doomed", || {}, |_| panic!("disk on fire"));
        let failed = wait(&task).unwrap_err();
        assert_eq!(
            failed,
            TaskFailed::Panicked {
                name: "doomed".into(),
                reason: "disk on fire".into()
            }
        );
        assert!(failed.to_string().contains("disk on fire"), "{failed}");
    }

    #[test]
    fn outcome_joins_the_works_error_and_the_tasks() {
        let task: Task<Result<u32, String>> = Task::spawn("e", || {}, |_| Err("no".into()));
        assert_eq!(wait(&task).unwrap(), Err("no".to_string()));
        let task: Task<Result<u32, String>> = Task::spawn("p", || {}, |_| panic!("boom"));
        let start = Instant::now();
        let outcome = loop {
            if let Some(o) = task.outcome() {
                break o;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!(
            outcome,
            Err("the p task failed unexpectedly: boom".to_string())
        );
    }
}
