//! Automatic test-time augmentation: the mirror image pays only once a model is good
//! (it adds false positives to a weak one), so the Review panel's "auto" measures it on
//! the labeller's own work. Once 4, 8, 16, … images have been labelled since the review
//! model loaded, a background job counts the review actions
//! ([`ReviewTally::in_bulk`]) its boxes would have cost on those images with and without
//! the flip, and the panel takes the cheaper (a tie keeps what is shown). The
//! unlabelled images' candidates are then computed again in the background.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::labelled_images::LabelledImages;
use super::{LoadedModel, RunScope};
use crate::app::jobs::{repaint, Job};
use crate::app::AppState;
use crate::detector::maths::tta::Tta;
use crate::review::ReviewTally;

/// Labelled images before the first verdict; each later one waits for twice as many.
pub const FIRST_VERDICT_IMAGES: usize = 4;

/// The two settings the judge chooses between.
const CHOICES: [Tta; 2] = [Tta::Off, Tta::Flip];

/// The judge's state for the review model in use.
pub struct TtaJudge {
    /// The model being judged (a new one starts over).
    model: Option<Arc<LoadedModel>>,
    /// The folder open (another one starts over).
    folder: Option<PathBuf>,
    /// Images labelled when it loaded: they are not judged on (it may have trained on
    /// them).
    labelled_before: HashSet<PathBuf>,
    /// Newly labelled images the next verdict waits for.
    next_at: usize,
    job: Option<Job<Result<TtaVerdict, String>>>,
    /// The verdicts of this session, as the status bar showed them, newest last (kept
    /// when the judge starts over).
    pub verdicts: Vec<String>,
}

impl Default for TtaJudge {
    fn default() -> Self {
        Self {
            model: None,
            folder: None,
            labelled_before: HashSet::new(),
            next_at: FIRST_VERDICT_IMAGES,
            job: None,
            verdicts: Vec::new(),
        }
    }
}

impl TtaJudge {
    /// Whether no verdict is being computed.
    pub fn settled(&self) -> bool {
        self.job.is_none()
    }
}

/// Review actions on the judged images with each of [`CHOICES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtaVerdict {
    pub images: usize,
    pub boxes: usize,
    /// Actions without and with the flip.
    pub actions: [usize; 2],
}

impl TtaVerdict {
    /// The cheaper setting; `current` on a tie.
    pub fn choice(&self, current: Tta) -> Tta {
        match self.actions[0].cmp(&self.actions[1]) {
            std::cmp::Ordering::Less => CHOICES[0],
            std::cmp::Ordering::Greater => CHOICES[1],
            std::cmp::Ordering::Equal => current,
        }
    }
}

/// What the verdict's background job needs.
struct JudgeInput {
    model: Arc<LoadedModel>,
    on: LabelledImages,
}

impl JudgeInput {
    fn run(self) -> Result<TtaVerdict, String> {
        let mut verdict = TtaVerdict {
            images: self.on.images.len(),
            boxes: 0,
            actions: [0; 2],
        };
        for image in &self.on.images {
            let labels = self.on.labels(image)?;
            verdict.boxes += labels.len();
            for (tta, actions) in CHOICES.iter().zip(&mut verdict.actions) {
                let shown = self.on.shown(&self.model, true, image, *tta)?;
                *actions += ReviewTally::of(&labels, &shown).in_bulk();
            }
        }
        Ok(verdict)
    }
}

impl AppState {
    /// Auto TTA on or off; off keeps the setting shown.
    pub fn set_auto_tta(&mut self, on: bool) {
        self.review.auto_tta = on;
        self.review.tta_judge.model = None;
    }

    /// Starts a verdict once enough images are labelled, and acts on it. Returns `true`
    /// if anything changed.
    pub(super) fn poll_tta_judge(&mut self) -> bool {
        if !self.review.auto_tta {
            return false;
        }
        let (Some(model), Some(folder)) = (
            self.review.model.clone(),
            self.workspace.session.as_ref().map(|s| s.root.clone()),
        ) else {
            return false;
        };
        let judge = &self.review.tta_judge;
        let same = judge.model.as_ref().is_some_and(|m| Arc::ptr_eq(m, &model))
            && judge.folder.as_deref() == Some(folder.as_path());
        if !same {
            let verdicts = std::mem::take(&mut self.review.tta_judge.verdicts);
            self.review.tta_judge = TtaJudge {
                model: Some(model),
                verdicts,
                folder: Some(folder),
                labelled_before: self.labelled_images().into_iter().collect(),
                ..TtaJudge::default()
            };
            return false;
        }
        if let Some(job) = &self.review.tta_judge.job {
            let Some(outcome) = job.outcome() else {
                return false;
            };
            self.review.tta_judge.job = None;
            match outcome {
                Ok(verdict) => self.apply_tta_verdict(verdict),
                Err(e) => self.info(format!("TTA auto: no verdict ({e}); the setting stays")),
            }
            return true;
        }
        // Counted every poll while the judge waits; the list is made once, when due.
        let before = &self.review.tta_judge.labelled_before;
        if self.labelled_since(before).count() < self.review.tta_judge.next_at {
            return false;
        }
        let images: Vec<PathBuf> = self.labelled_since(before).cloned().collect();
        self.review.tta_judge.next_at = images.len() * 2;
        let input = JudgeInput {
            model,
            on: self.labelled_images_for_judging(images),
        };
        self.review.tta_judge.job = Some(Job::spawn(
            "tta verdict",
            repaint(self.ctx.clone()),
            move |_| input.run(),
        ));
        true
    }

    pub(crate) fn apply_tta_verdict(&mut self, verdict: TtaVerdict) {
        let current = self.review.tta;
        let choice = verdict.choice(current);
        let [off, flip] = verdict.actions;
        let line = format!(
            "TTA auto: on the {} images ({} boxes) labelled since the model loaded, its \
             boxes would have cost {off} review actions without the flip and {flip} with it",
            verdict.images, verdict.boxes
        );
        let line = if choice == current {
            format!("{line}: {} stays", current.describe())
        } else {
            format!("{line}: {} from now on", choice.describe())
        };
        self.review.tta_judge.verdicts.push(line.clone());
        self.info(line);
        if choice == current {
            return;
        }
        self.review.tta = choice;
        self.forget_predictions();
        self.run_model(RunScope::Unlabelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheaper_setting_wins_and_a_tie_keeps_the_one_shown() {
        let v = |off, flip| TtaVerdict {
            images: 4,
            boxes: 9,
            actions: [off, flip],
        };
        assert_eq!(v(5, 7).choice(Tta::Flip), Tta::Off);
        assert_eq!(v(7, 5).choice(Tta::Off), Tta::Flip);
        assert_eq!(v(6, 6).choice(Tta::Off), Tta::Off);
        assert_eq!(v(6, 6).choice(Tta::Flip), Tta::Flip);
    }

    #[test]
    fn a_verdict_switches_the_setting_and_a_choice_by_hand_ends_auto() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = AppState::new(
            crate::app::settings::Settings::default(),
            dir.path().join("settings.json"),
            None,
            None,
        );
        assert!(app.review.auto_tta);
        assert_eq!(app.review.tta, Tta::Off);
        let verdict = |off, flip| TtaVerdict {
            images: 4,
            boxes: 9,
            actions: [off, flip],
        };
        app.apply_tta_verdict(verdict(7, 5));
        assert_eq!(app.review.tta, Tta::Flip);
        app.apply_tta_verdict(verdict(6, 6));
        assert_eq!(app.review.tta, Tta::Flip);
        app.apply_tta_verdict(verdict(5, 7));
        assert_eq!(app.review.tta, Tta::Off);
        let log = &app.review.tta_judge.verdicts;
        assert_eq!(log.len(), 3);
        assert!(
            log[0].ends_with(
                "cost 7 review actions without the flip and 5 with it: flip from now on"
            ),
            "{log:?}"
        );
        assert!(log[1].ends_with("flip stays"), "{log:?}");
        app.apply(crate::app::Command::SetTta(Tta::Flip));
        assert!(!app.review.auto_tta);
        app.apply(crate::app::Command::SetAutoTta(true));
        assert!(app.review.auto_tta);
    }
}
