//! A model that keeps up: after every N newly labelled images, the review model is
//! fine-tuned in the background on the folder's labels (the same preparation and engine
//! as the Train page). New weights that beat the old ones on the run's labelled hold-out
//! go on [`trial`]: once a few more images are labelled, they become the review model
//! (logged, and reversible with "Back to the previous model") only if their predictions
//! would have cost fewer review actions on those images than what was shown; the
//! unlabelled images' candidates are then refreshed in the background. With no review
//! model yet (labelling from zero), the first generation trains one with the Train page's
//! settings and is judged the same way, against drawing every box by hand.
//!
//! Each generation trains in its own folder, `<labels>/.detlab/auto/gen-<k>`, with the
//! training run's crash safety (model files written atomically): a kill loses at most the
//! generation in progress, never a label or the model in use.

mod trial;

use std::collections::HashSet;
use std::path::PathBuf;

pub use trial::{default_trial_images, Trial, TrialOutcome};

use super::review::RunScope;
use super::training::{RunStatus, TrainingForm, TrainingRun};
use super::AppState;
use crate::detector::train::Init;

/// Epochs of each fine-tune (from the current weights: a short schedule). Chosen on
/// `cola-sprite/train` photos 201–444 with a model fine-tuned on photos 1–150: 15 epochs
/// cost the simulated labeller 553 actions there against 593 after 6 (BENCHMARKS.md).
pub const AUTO_EPOCHS: usize = 15;

/// Images a fine-tune's epoch sees at most (a different shuffled subset each epoch), so a
/// generation costs the same time however large the labelled folder grows: on two CPU
/// cores about 14 minutes with its trial (the whole `cola-sprite/train` from zero,
/// BENCHMARKS.md). Generations of up to 150 labelled images train on fewer anyway.
pub const AUTO_MAX_IMAGES_PER_EPOCH: usize = 150;

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
    /// Newly labelled images a trial waits for; `None`: [`default_trial_images`], 0: no
    /// trial (a generation that beats the hold-out is shown at once).
    pub trial_images: Option<usize>,
    /// Images a fine-tune's epoch sees at most ([`AUTO_MAX_IMAGES_PER_EPOCH`]).
    pub max_images_per_epoch: usize,
    /// Labelled images when the last generation started (or retraining was switched on).
    baseline_count: Option<usize>,
    /// Which images were labelled when the last generation started.
    labelled_at_start: HashSet<PathBuf>,
    /// The generation training now.
    pub run: Option<TrainingRun>,
    /// Generations started in this session.
    pub generation: usize,
    /// The last generation whose fate is settled (shown, kept out, or failed).
    pub decided: usize,
    /// A trained generation waiting for its verdict.
    pub trial: Option<Trial>,
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
            trial_images: None,
            max_images_per_epoch: AUTO_MAX_IMAGES_PER_EPOCH,
            baseline_count: None,
            labelled_at_start: HashSet::new(),
            run: None,
            generation: 0,
            decided: 0,
            trial: None,
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

    /// Whether nothing is being computed: no generation training, no trial being judged,
    /// no swap waiting for the new model's candidates to be refreshed. A trial waiting
    /// for more labelled images is settled: only labelling moves it on.
    pub fn settled(&self) -> bool {
        self.run.is_none()
            && !self.refresh_after_load
            && self.trial.as_ref().is_none_or(|t| t.job.is_none())
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
        if self.auto_retrain.trial.is_some() {
            return self.poll_trial() || changed;
        }
        self.maybe_start_generation();
        changed
    }

    /// Starts the trial's judgement once enough images are labelled, and acts on it.
    fn poll_trial(&mut self) -> bool {
        let Some(trial) = &self.auto_retrain.trial else {
            return false;
        };
        if let Some(job) = &trial.job {
            let Some(outcome) = job.outcome() else {
                return false;
            };
            if let Some(trial) = self.auto_retrain.trial.take() {
                self.finish_trial(trial, outcome);
            }
            return true;
        }
        let same_folder = self
            .workspace
            .session
            .as_ref()
            .is_some_and(|s| s.root == trial.folder);
        if !same_folder {
            let g = trial.generation;
            self.auto_retrain.trial = None;
            self.auto_retrain.decided = g;
            self.auto_retrain.log.push(format!(
                "generation {g}: not shown, another folder was opened"
            ));
            return true;
        }
        // Counted every poll while the trial waits; the list is made once, when ready.
        if self.trial_progress(trial) < trial.images_needed {
            return false;
        }
        let job = self.start_trial_job(trial, self.trial_images(trial));
        if let Some(trial) = &mut self.auto_retrain.trial {
            trial.job = Some(job);
        }
        true
    }

    fn finish_trial(&mut self, trial: Trial, outcome: Result<TrialOutcome, String>) {
        let g = trial.generation;
        self.auto_retrain.decided = g;
        let against = if self.review.model.is_some() {
            "the review model"
        } else {
            "no model (every box drawn)"
        };
        let line = match outcome {
            Ok(o) => {
                let verdict = if o.passed() {
                    self.swap_model(trial.candidate.clone());
                    format!(
                        "the review model is now {}{}",
                        trial.candidate.display(),
                        self.undo_hint()
                    )
                } else {
                    "not shown".to_string()
                };
                format!(
                    "generation {g}: {}; on the {} labelled since it started ({} boxes) its predictions would have cost {} review actions against {} with {against}: {verdict}",
                    trial.hold_out,
                    images(o.images),
                    o.boxes,
                    o.candidate,
                    o.current,
                )
            }
            Err(e) => format!("generation {g}: not shown, its trial failed: {e}"),
        };
        self.info(format!("auto-retrain: {line}"));
        self.auto_retrain.log.push(line);
    }

    /// Makes `path` the review model, the current one kept for "Back to the previous model".
    fn swap_model(&mut self, path: PathBuf) {
        let current = self.review.model.as_ref().map(|m| m.path.clone());
        self.auto_retrain.previous_model = current;
        self.auto_retrain.refresh_after_load = true;
        self.load_model(path);
    }

    fn undo_hint(&self) -> &'static str {
        if self.auto_retrain.previous_model.is_some() {
            " (\"Back to the previous model\" undoes it)"
        } else {
            ""
        }
    }

    fn labelled_count(&self) -> usize {
        self.workspace.session.as_ref().map_or(0, |s| {
            s.images.iter().filter(|e| e.status.is_labelled()).count()
        })
    }

    /// The folder's labelled images, in the list's order.
    pub(crate) fn labelled_images(&self) -> Vec<PathBuf> {
        self.workspace.session.as_ref().map_or(Vec::new(), |s| {
            s.images
                .iter()
                .filter(|e| e.status.is_labelled())
                .map(|e| e.path.clone())
                .collect()
        })
    }

    /// The labelled images not in `before`, but the one open (its labels may not be
    /// finished): what a new model (on trial, or judged for TTA) has not trained on.
    pub(crate) fn labelled_since<'a>(
        &'a self,
        before: &'a HashSet<PathBuf>,
    ) -> impl Iterator<Item = &'a PathBuf> {
        let open = self.workspace.current;
        self.workspace.session.iter().flat_map(move |s| {
            s.images
                .iter()
                .enumerate()
                .filter(move |(i, e)| {
                    e.status.is_labelled() && Some(*i) != open && !before.contains(&e.path)
                })
                .map(|(_, e)| &e.path)
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
            let batch = request.config.batch_size.max(1);
            request.config.max_steps_per_epoch =
                Some(self.auto_retrain.max_images_per_epoch.div_ceil(batch));
        }
        request.overwrite = true;
        if self.workspace.needs_saving() && !self.save() {
            return;
        }
        let after = self.workspace.labels.barrier();
        self.auto_retrain.baseline_count = Some(labelled);
        self.auto_retrain.labelled_at_start = self.labelled_images().into_iter().collect();
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
        // The run's best hold-out AP gates the trial; the weights tried are the last epoch's.
        let best_ap = run
            .history
            .val_ap
            .iter()
            .map(|p| p[1])
            .filter(|a| a.is_finite())
            .reduce(f64::max);
        let last_ap = run.history.val_ap.last().map(|p| p[1]);
        // The first model of a folder labelled from zero has nothing to beat.
        let first = self.review.model.is_none() && self.review.model_job.is_none();
        let min = self.auto_retrain.min_first_ap;
        // No hold-out score (too few images to hold any out): shown only without a bar.
        let good_enough = min <= 0.0 || best_ap.is_some_and(|a| a >= min);
        let hold_out = hold_out_summary(first, baseline, best_ap, last_ap);
        let line = match (&run.status, first || is_better(baseline, best_ap)) {
            (RunStatus::Finished { .. }, _) if first && !good_enough => format!(
                "generation {g}: {hold_out} is below {min}: not shown (a model this weak costs more actions than it saves); the next generation trains again on more images"
            ),
            // The last epoch's weights, not the best hold-out epoch's: a hold-out of 2–15
            // images picks an epoch by chance (BENCHMARKS.md); the trial judges them.
            (
                RunStatus::Finished {
                    last_path: Some(path),
                    ..
                },
                true,
            ) => {
                let every = self.settings.auto_retrain_every;
                let needed = self
                    .auto_retrain
                    .trial_images
                    .unwrap_or_else(|| default_trial_images(every));
                if needed > 0 {
                    let line = format!(
                        "generation {g}: {hold_out}; on trial over the next {} labelled: shown only if its predictions would have cost fewer review actions there",
                        images(needed)
                    );
                    self.auto_retrain.trial = Some(Trial {
                        generation: g,
                        candidate: path.clone(),
                        folder: self
                            .workspace
                            .session
                            .as_ref()
                            .map(|s| s.root.clone())
                            .unwrap_or_default(),
                        hold_out,
                        labelled_before: std::mem::take(&mut self.auto_retrain.labelled_at_start),
                        images_needed: needed,
                        job: None,
                    });
                    self.info(format!("auto-retrain: {line}"));
                    self.auto_retrain.log.push(line);
                    return;
                }
                self.swap_model(path.clone());
                format!(
                    "generation {g}: {hold_out}: the review model is now {}{}",
                    path.display(),
                    self.undo_hint()
                )
            }
            (RunStatus::Failed(reason), _) => format!("generation {g} failed: {reason}"),
            _ => format!("generation {g}: {hold_out}: the current model is kept"),
        };
        self.auto_retrain.decided = g;
        self.info(format!("auto-retrain: {line}"));
        self.auto_retrain.log.push(line);
    }
}

/// The log's account of a run's hold-out: the starting weights' AP (not for a `first`
/// model, which has none), the best epoch's (what gates the trial) and, when it differs,
/// the last epoch's (the weights tried).
fn hold_out_summary(
    first: bool,
    baseline: Option<f64>,
    best: Option<f64>,
    last: Option<f64>,
) -> String {
    let fmt = |a: Option<f64>| a.map_or("–".to_string(), |a| format!("{a:.3}"));
    let mut line = if first {
        format!("hold-out AP {}", fmt(best))
    } else {
        format!("hold-out AP {} → {}", fmt(baseline), fmt(best))
    };
    if fmt(last) != fmt(best) {
        line += &format!(" (best epoch; the last epoch's, tried, {})", fmt(last));
    }
    line
}

/// "1 image", "3 images".
fn images(n: usize) -> String {
    if n == 1 {
        "1 image".into()
    } else {
        format!("{n} images")
    }
}

#[cfg(test)]
mod tests {
    use super::{hold_out_summary, is_better};

    #[test]
    fn the_hold_out_line_names_the_last_epoch_when_it_is_not_the_best() {
        assert_eq!(
            hold_out_summary(false, Some(0.4), Some(0.489), Some(0.4712)),
            "hold-out AP 0.400 → 0.489 (best epoch; the last epoch's, tried, 0.471)"
        );
        assert_eq!(
            hold_out_summary(false, None, Some(0.3), Some(0.3)),
            "hold-out AP – → 0.300"
        );
        assert_eq!(
            hold_out_summary(true, None, Some(0.256), Some(0.2561)),
            "hold-out AP 0.256"
        );
        assert_eq!(hold_out_summary(true, None, None, None), "hold-out AP –");
    }

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
