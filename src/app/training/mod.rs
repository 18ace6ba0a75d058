//! A training run started from the app: the training engine on its own thread, its typed
//! events streamed back to the UI, a cancel handle for Stop.
//!
//! The run reads a snapshot of the data: the labels are loaded once when it starts (on the
//! run's thread), so the labeller can keep editing while it trains.
//!
//! The parts: `form` (the Train page's settings and the library request they make),
//! `run` (the run's thread, its status and event log), `cv` (a k-fold cross-validation
//! on that thread) and `history` (the curves it plots). The app's start/stop/poll of the
//! Train page's run are here.

mod cv;
mod form;
mod history;
mod run;

pub use cv::{CvResult, CvStatus, TABLE as CV_TABLE};
pub use form::{TrainingForm, MAX_FOLDS};
pub use history::TrainingHistory;
pub use run::{RunStatus, TrainingRun};

/// How long exiting waits for a training step in progress.
pub const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

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
