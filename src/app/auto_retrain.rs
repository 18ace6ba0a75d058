//! A model that keeps up: after every N newly labelled images, the review model is
//! fine-tuned in the background on the folder's labels (the same preparation and engine
//! as the Train page); when the new weights beat the old ones on the run's labelled
//! hold-out, they become the review model (logged, and reversible with "Back to the
//! previous model"), and the unlabelled images' candidates are refreshed in the
//! background. With no review model yet (labelling from zero), the first generation
//! trains one with the Train page's settings, and it becomes the review model.
//!
//! Each generation trains in its own folder, `<labels>/.detlab/auto/gen-<k>`, with the
//! training run's crash safety (model files written atomically): a kill loses at most the
//! generation in progress, never a label or the model in use.

use std::path::PathBuf;

use super::review::RunScope;
use super::training::{RunStatus, TrainingForm, TrainingRun};
use super::AppState;
use crate::detector::train::Init;

/// Epochs of each fine-tune (from the current weights: a short schedule).
pub const AUTO_EPOCHS: usize = 6;

/// The hold-out AP a folder's first model needs before it is shown: below it, its
/// predictions cost the labeller more than they save (measured with the simulated
/// labeller on a 40-image demo folder: a first model at AP 0.12 took 4.0 actions per box
/// where the assistants alone took 2.2).
pub const MIN_FIRST_MODEL_AP: f64 = 0.2;

/// Whether the new weights replace the old: strictly better on the same hold-out.
pub fn is_better(baseline_ap: Option<f64>, best_ap: Option<f64>) -> bool {
    match (baseline_ap, best_ap) {
        (Some(old), Some(new)) => new.is_finite() && (new > old || old.is_nan()),
        _ => false,
    }
}

/// The background retraining's state.
pub struct AutoRetrain {
    /// The hold-out AP a first model needs to be shown ([`MIN_FIRST_MODEL_AP`]).
    pub min_first_ap: f64,
    /// Labelled images when the last generation started (or retraining was switched on).
    baseline_count: Option<usize>,
    /// The generation training now.
    pub run: Option<TrainingRun>,
    /// Generations started in this session.
    pub generation: usize,
    /// The model before the last swap ("Back to the previous model").
    pub previous_model: Option<PathBuf>,
    /// Refresh the unlabelled images' candidates once the new model has loaded.
    refresh_after_load: bool,
    /// One line per decision, newest last.
    pub log: Vec<String>,
}

impl Default for AutoRetrain {
    fn default() -> Self {
        Self {
            min_first_ap: MIN_FIRST_MODEL_AP,
            baseline_count: None,
            run: None,
            generation: 0,
            previous_model: None,
            refresh_after_load: false,
            log: Vec::new(),
        }
    }
}

impl AutoRetrain {
    /// Whether a generation is training.
    pub fn active(&self) -> bool {
        self.run.as_ref().is_some_and(|r| r.status.is_active())
    }

    /// Whether nothing is pending: no generation training, no swap waiting for the new
    /// model's candidates to be refreshed.
    pub fn settled(&self) -> bool {
        self.run.is_none() && !self.refresh_after_load
    }
}

impl AppState {
    /// Retrain after every `every` newly labelled images (0: off).
    pub fn set_auto_retrain(&mut self, every: usize) {
        self.settings.auto_retrain_every = every;
        self.auto_retrain.baseline_count = None;
        self.save_settings();
    }

    /// Goes back to the model the last swap replaced.
    pub fn revert_auto_model(&mut self) {
        if let Some(previous) = self.auto_retrain.previous_model.take() {
            self.auto_retrain
                .log
                .push(format!("back to {}", previous.display()));
            self.auto_retrain.refresh_after_load = true;
            self.load_model(previous);
        }
    }

    /// Starts a generation when enough new images are labelled, and acts on a finished
    /// one. Returns whether anything changed.
    pub(super) fn poll_auto_retrain(&mut self) -> bool {
        let mut changed = false;
        if self.auto_retrain.refresh_after_load
            && self.review.model_job.is_none()
            && self.review.model.is_some()
        {
            self.auto_retrain.refresh_after_load = false;
            self.run_model(RunScope::Unlabelled);
            changed = true;
        }
        if let Some(run) = &mut self.auto_retrain.run {
            changed |= run.poll();
            if !run.status.is_active() {
                let run = self.auto_retrain.run.take();
                if let Some(run) = run {
                    self.finish_generation(run);
                }
                return true;
            }
            return changed;
        }
        self.maybe_start_generation();
        changed
    }

    fn labelled_count(&self) -> usize {
        self.workspace.session.as_ref().map_or(0, |s| {
            s.images.iter().filter(|e| e.status.is_labelled()).count()
        })
    }

    fn maybe_start_generation(&mut self) {
        let every = self.settings.auto_retrain_every;
        if every == 0 || self.review.model_job.is_some() {
            return;
        }
        let Some(session) = &self.workspace.session else {
            return;
        };
        if session.scanning || self.training.as_ref().is_some_and(|r| r.status.is_active()) {
            return;
        }
        let labelled = self.labelled_count();
        let base = *self.auto_retrain.baseline_count.get_or_insert(labelled);
        if labelled < base + every {
            return;
        }
        let (images, labels) = (session.root.clone(), session.save_dir.clone());
        let labels_dir = labels.clone().unwrap_or_else(|| images.clone());
        let generation = self.auto_retrain.generation + 1;
        let out_dir = labels_dir
            .join(".detlab")
            .join("auto")
            .join(format!("gen-{generation}-{}", std::process::id()))
            .to_string_lossy()
            .into_owned();
        let model = self.review.model.clone();
        // With a model: a short fine-tune of it. Without: the Train page's own run.
        let form = match &model {
            Some(model) => TrainingForm {
                arch: model.arch.name().to_string(),
                input_size: model.input_size,
                epochs: AUTO_EPOCHS,
                freeze_backbone_epochs: 0,
                out_dir,
                ..self.ui.training_form.clone()
            },
            None => TrainingForm {
                out_dir,
                ..self.ui.training_form.clone()
            },
        };
        let mut request = match form.request(&images, labels.as_deref(), false) {
            Ok(r) => r,
            Err(e) => {
                self.auto_retrain.log.push(format!("not retrained: {e}"));
                self.settings.auto_retrain_every = 0;
                return;
            }
        };
        if let Some(model) = &model {
            request.init = Init::Weights(model.path.clone());
            request.config.validate_first = true;
        }
        request.overwrite = true;
        if self.workspace.needs_saving() && !self.save() {
            return;
        }
        let after = self.workspace.labels.barrier();
        self.auto_retrain.baseline_count = Some(labelled);
        self.auto_retrain.generation = generation;
        self.auto_retrain.log.push(match &model {
            Some(model) => format!(
                "generation {generation}: fine-tuning {} on {labelled} labelled images",
                model.path.display()
            ),
            None => format!(
                "generation {generation}: training a first {} model on {labelled} labelled images",
                form.arch
            ),
        });
        self.info(format!(
            "auto-retrain: generation {generation} started ({labelled} labelled images)"
        ));
        self.auto_retrain.run = Some(TrainingRun::start_request(request, after, self.ctx.clone()));
    }

    fn finish_generation(&mut self, run: TrainingRun) {
        let g = self.auto_retrain.generation;
        let baseline = run.history.baseline_ap;
        let best = run
            .history
            .val_ap
            .iter()
            .map(|p| p[1])
            .filter(|a| a.is_finite())
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        let fmt = |a: Option<f64>| a.map_or("–".to_string(), |a| format!("{a:.3}"));
        // The first model of a folder labelled from zero has nothing to beat.
        let first = self.review.model.is_none() && self.review.model_job.is_none();
        let min = self.auto_retrain.min_first_ap;
        // No hold-out score (too few images to hold any out): shown only without a bar.
        let good_enough = min <= 0.0 || best.is_some_and(|a| a >= min);
        if first && !good_enough && matches!(run.status, RunStatus::Finished { .. }) {
            let line = format!(
                "generation {g}: hold-out AP {} is below {min}: not shown (a model this weak costs more actions than it saves); the next generation trains again on more images",
                fmt(best)
            );
            self.info(format!("auto-retrain: {line}"));
            self.auto_retrain.log.push(line);
            return;
        }
        let line = match (&run.status, first || is_better(baseline, best)) {
            (
                RunStatus::Finished {
                    best_path: Some(path),
                },
                true,
            ) => {
                let current = self.review.model.as_ref().map(|m| m.path.clone());
                self.auto_retrain.previous_model = current;
                self.auto_retrain.refresh_after_load = true;
                self.load_model(path.clone());
                if first {
                    format!(
                        "generation {g}: hold-out AP {}: the review model is now {}",
                        fmt(best),
                        path.display()
                    )
                } else {
                    format!(
                        "generation {g}: hold-out AP {} → {}: the review model is now {} (\"Back to the previous model\" undoes it)",
                        fmt(baseline),
                        fmt(best),
                        path.display()
                    )
                }
            }
            (RunStatus::Failed(reason), _) => format!("generation {g} failed: {reason}"),
            _ => format!(
                "generation {g}: hold-out AP {} → {}: the current model is kept",
                fmt(baseline),
                fmt(best)
            ),
        };
        self.info(format!("auto-retrain: {line}"));
        self.auto_retrain.log.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::is_better;

    #[test]
    fn only_strictly_better_weights_replace_the_model() {
        assert!(is_better(Some(0.5), Some(0.51)));
        assert!(!is_better(Some(0.5), Some(0.5)));
        assert!(!is_better(Some(0.5), Some(0.4)));
        assert!(
            !is_better(None, Some(0.9)),
            "no baseline: nothing to compare"
        );
        assert!(!is_better(Some(0.5), None));
        assert!(!is_better(Some(0.5), Some(f64::NAN)));
    }
}
