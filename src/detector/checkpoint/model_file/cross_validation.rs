//! The cross-validation part of a model card: how a model's recipe scored in k-fold
//! cross-validation ([`CrossValidation`]), with a mean ± sd per metric ([`MeanSd`]).

use serde::{Deserialize, Serialize};

/// A mean over cross-validation folds and the sample standard deviation around it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    /// The sample standard deviation (n − 1); 0 for a single value.
    pub sd: f64,
}

impl MeanSd {
    /// The mean and sample standard deviation of `values` (NaN for none).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, sd }
    }
}

impl std::fmt::Display for MeanSd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.sd)
    }
}

/// How the recipe of a model scored in k-fold cross-validation (`detlab train --folds`):
/// part of the model card. The model itself was trained on all `images` afterwards, for
/// `final_epochs` epochs, without validation-based selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// K.
    pub folds: usize,
    /// The seed of the fold assignment.
    pub fold_seed: u64,
    /// The pooled images (training and validation sets) the folds split.
    pub images: usize,
    /// The recipe, in words (the settings every fold and the final model trained with).
    pub recipe: String,
    /// The epochs each fold trained.
    pub epochs: usize,
    /// The epochs the final model trained.
    pub final_epochs: usize,
    /// AP@[.5:.95] on the held-out fold after the last epoch (the honest estimate).
    pub ap: MeanSd,
    /// AP@.5 after the last epoch.
    pub ap50: MeanSd,
    /// AP@.75 after the last epoch.
    pub ap75: MeanSd,
    /// AP@[.5:.95] at each fold's best epoch (chosen on the held-out fold itself, so
    /// optimistic).
    pub best_ap: MeanSd,
    /// The median of the folds' best epochs.
    pub median_best_epoch: f64,
}

impl std::fmt::Display for CrossValidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-fold cross-validation on {} images (fold seed {}), {} epochs per fold: AP {}, AP50 {}, AP75 {} (mean ± sd over folds, last epoch); best-epoch AP {} (optimistic), median best epoch {}; final model trained on all images for {} epochs; recipe: {}",
            self.folds,
            self.images,
            self.fold_seed,
            self.epochs,
            self.ap,
            self.ap50,
            self.ap75,
            self.best_ap,
            self.median_best_epoch,
            self.final_epochs,
            self.recipe
        )
    }
}
