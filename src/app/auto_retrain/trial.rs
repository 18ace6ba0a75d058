//! A new model on trial: before a generation is shown, it is judged on the images
//! labelled since its training started, which it never saw, in the unit the labeller
//! pays in: the review actions its predictions would have cost on them
//! ([`crate::review::review_cost`]), against what the labeller faced instead (the review
//! model's predictions, or a box drawn per label without one). It is shown only if it
//! would have cost fewer. Images count once the labeller has moved on from them. The
//! hold-out AP a run reports is measured on 2–5 images that
//! also chose its best epoch, and overstates a first model by 0.06–0.19 AP (BENCHMARKS.md).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::app::jobs::{repaint, Job};
use crate::app::review::{load_model_file, LabelledImages, LoadedModel};
use crate::app::AppState;
use crate::detector::maths::tta::Tta;
use crate::review::review_actions;

/// Images a trial waits for by default: a fifth of the retraining interval, at least 3.
pub fn default_trial_images(every: usize) -> usize {
    (every / 5).max(3)
}

/// A trained generation waiting for its verdict.
pub struct Trial {
    pub generation: usize,
    /// The generation's best weights.
    pub candidate: PathBuf,
    /// The folder it trained on (the trial ends if another one is opened).
    pub folder: PathBuf,
    /// The log's account of the hold-out ("hold-out AP 0.21 → 0.37").
    pub hold_out: String,
    /// The images labelled when its training started: the trial uses the others.
    pub labelled_before: HashSet<PathBuf>,
    /// Newly labelled images the verdict waits for.
    pub images_needed: usize,
    pub job: Option<Job<Result<TrialOutcome, String>>>,
}

/// The review actions of the trial images, both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrialOutcome {
    pub images: usize,
    pub boxes: usize,
    /// With the candidate's predictions.
    pub candidate: usize,
    /// With what was shown instead.
    pub current: usize,
}

impl TrialOutcome {
    /// The candidate wins only by costing strictly fewer actions.
    pub fn passed(&self) -> bool {
        self.candidate < self.current
    }
}

/// What the trial's background job needs.
struct TrialInput {
    candidate: PathBuf,
    current: Option<Arc<LoadedModel>>,
    /// The TTA of the review (both models are judged with it).
    tta: Tta,
    on: LabelledImages,
}

impl TrialInput {
    fn run(self) -> Result<TrialOutcome, String> {
        let candidate = load_model_file(&self.candidate)?;
        let mut outcome = TrialOutcome {
            images: self.on.images.len(),
            boxes: 0,
            candidate: 0,
            current: 0,
        };
        for image in &self.on.images {
            let labels = self.on.labels(image)?;
            outcome.boxes += labels.len();
            let shown = self.on.shown(&candidate, false, image, self.tta)?;
            outcome.candidate += review_actions(&labels, &shown);
            outcome.current += match &self.current {
                Some(model) => {
                    review_actions(&labels, &self.on.shown(model, true, image, self.tta)?)
                }
                None => review_actions(&labels, &[]),
            };
        }
        Ok(outcome)
    }
}

impl AppState {
    /// The images labelled since the trial's generation started training.
    pub(super) fn trial_images(&self, trial: &Trial) -> Vec<PathBuf> {
        self.labelled_since(&trial.labelled_before)
            .cloned()
            .collect()
    }

    /// How many of the images the trial waits for are labelled.
    pub fn trial_progress(&self, trial: &Trial) -> usize {
        self.labelled_since(&trial.labelled_before).count()
    }

    /// Judges the trial's candidate in the background on `images`.
    pub(super) fn start_trial_job(
        &self,
        trial: &Trial,
        images: Vec<PathBuf>,
    ) -> Job<Result<TrialOutcome, String>> {
        let input = TrialInput {
            candidate: trial.candidate.clone(),
            current: self.review.model.clone(),
            tta: self.review.tta,
            on: self.labelled_images_for_judging(images),
        };
        Job::spawn("model trial", repaint(self.ctx.clone()), move |_| {
            input.run()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_waits_for_a_fifth_of_the_interval_and_at_least_three_images() {
        assert_eq!(default_trial_images(50), 10);
        assert_eq!(default_trial_images(10), 3);
        assert_eq!(default_trial_images(2), 3);
    }

    #[test]
    fn a_tie_keeps_what_is_shown() {
        let mut o = TrialOutcome {
            images: 3,
            boxes: 6,
            candidate: 6,
            current: 6,
        };
        assert!(!o.passed());
        o.candidate = 5;
        assert!(o.passed());
    }
}
