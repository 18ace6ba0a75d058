//! K-fold cross-validation of a recipe (`detlab train --folds K`): the training and
//! validation sets pooled, split into K stratified folds ([`Folds`]), the recipe trained K
//! times (on K − 1 folds, validated on the held-out one), and a table of the held-out
//! scores (Markdown and JSON) in which several recipes line up, one row each, on the same
//! folds.
//!
//! [`super::cross_val_run`] runs the folds ([`fold_dataset`], [`super::prepare_loaded`])
//! and the final model; [`super::cv_table`] holds the table; this module, the data.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
pub use super::cv_table::{fold_table, CvTable, TableError};
use super::data::{load_dataset, Dataset, ValSplit};
use super::events::ValMetrics;
use super::init::Init;
use super::prepare::{AnchorChoice, PrepareError, TrainRequest};
use crate::dataset::folds::{FoldError, Folds};
use crate::detector::checkpoint::{CrossValidation, MeanSd};

/// The request's training and validation sets as one pool of images (in `train`; `val`
/// empty), unreadable images set aside: the set the folds split and the final model
/// trains on. Without a separate validation set, a folder's `train/` and `val/`
/// sub-folders are pooled; a validation fraction is not held out.
pub fn pool(request: &TrainRequest) -> Result<Dataset, PrepareError> {
    let split = match &request.val {
        Some(v) => ValSplit::Source(v.clone()),
        None => ValSplit::Fraction {
            fraction: 0.0,
            seed: request.config.seed,
        },
    };
    let mut data = load_dataset(&request.data, &split)?;
    data.drop_unreadable();
    let val = std::mem::take(&mut data.val);
    data.train.extend(val);
    data.check_trainable()?;
    Ok(data)
}

/// The folds of a pool: stratified by each image's rarest class, seeded.
pub fn folds_of(pool: &Dataset, k: usize, seed: u64) -> Result<Folds, FoldError> {
    let classes: Vec<Vec<usize>> = pool.train.iter().map(|s| s.classes.clone()).collect();
    Folds::stratified(&classes, k, seed)
}

/// Fold `fold`'s data: the other folds to train on, this one held out for validation.
pub fn fold_dataset(pool: &Dataset, folds: &Folds, fold: usize) -> Dataset {
    let pick = |idx: Vec<usize>| idx.into_iter().map(|i| pool.train[i].clone()).collect();
    Dataset {
        class_names: pool.class_names.clone(),
        train: pick(folds.training(fold)),
        val: pick(folds.held_out(fold)),
        skipped: Vec::new(),
        unreadable: Vec::new(),
        // Fitted once, in the pool: each fold's run says so.
        fitted: pool.fitted.clone(),
    }
}

/// A short name of one fold assignment (K, the images' file names and their folds), so
/// that a table only lines up recipes scored on the same folds.
pub fn folds_id(pool: &Dataset, folds: &Folds) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&(folds.k() as u64).to_le_bytes());
    let mut named: Vec<(String, usize)> = pool
        .train
        .iter()
        .zip(folds.assignment())
        .map(|(s, &f)| {
            let name = s.path.file_name().map_or_else(
                || s.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            (name, f)
        })
        .collect();
    named.sort();
    for (name, f) in named {
        eat(name.as_bytes());
        eat(&[0]);
        eat(&(f as u64).to_le_bytes());
    }
    format!("{h:016x}")
}

/// The recipe in words: every setting that changes what is learnt (not the device or the
/// thread count).
pub fn describe_recipe(config: &TrainConfig, init: &Init, anchors: &AnchorChoice) -> String {
    let a = &config.augment;
    let opt = match config.optimizer {
        super::OptimizerKind::AdamW => "adamw",
        super::OptimizerKind::Sgd => "sgd",
    };
    let mut parts = vec![
        format!("{} {} px", config.arch, config.input_size),
        format!("{} epochs", config.epochs),
        format!("batch {}", config.batch_size),
        format!("{opt} lr {} wd {}", config.lr, config.weight_decay),
        format!("warm-up {}", config.warmup_epochs),
        format!("frozen backbone {} epochs", config.freeze_backbone_epochs),
        format!("ema {}", config.ema_decay.unwrap_or(0.0)),
        format!("clip {}", config.grad_clip.unwrap_or(0.0)),
        match config.giou_weight {
            w if w > 0.0 => format!("{} loss + giou {w}", config.loss.name()),
            _ => format!("{} loss", config.loss.name()),
        },
        format!(
            "flip {} scale {}-{} colour {}",
            a.hflip, a.scale_min, a.scale_max, a.color
        ),
        match anchors {
            AnchorChoice::Fitted => "fitted anchors".to_string(),
            AnchorChoice::Reference => "reference anchors".to_string(),
            AnchorChoice::Ratios(r) => format!("anchors {r:?}"),
        },
        match init {
            Init::Default => "default start".to_string(),
            Init::Scratch => "from scratch".to_string(),
            Init::Weights(p) => format!(
                "from {}",
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            ),
        },
        format!("seed {}", config.seed),
    ];
    if a.rotate_deg > 0.0 {
        parts.push(format!("rotate {}°", a.rotate_deg));
    }
    if a.mosaic > 0.0 {
        parts.push(format!("mosaic {}", a.mosaic));
    }
    if a.copy_paste > 0.0 {
        parts.push(format!(
            "copy-paste {} (≤ {})",
            a.copy_paste, a.copy_paste_max
        ));
    }
    if let Some(t) = config.tile {
        parts.push(format!("tiles {t}"));
    }
    if let Some(m) = config.max_steps_per_epoch {
        parts.push(format!("at most {m} steps/epoch"));
    }
    parts.join(", ")
}

/// AP@[.5:.95], AP@.5 and AP@.75 of one validation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub ap: f64,
    pub ap50: f64,
    pub ap75: f64,
}

impl From<&ValMetrics> for Scores {
    fn from(v: &ValMetrics) -> Self {
        Self {
            ap: v.ap,
            ap50: v.ap50,
            ap75: v.ap75,
        }
    }
}

/// One fold's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldRow {
    /// 1-based.
    pub fold: usize,
    pub train_images: usize,
    pub val_images: usize,
    /// The held-out scores after the last epoch.
    pub last: Scores,
    /// The epoch with the best held-out AP (the first, on a tie).
    pub best_epoch: usize,
    /// The held-out scores at that epoch.
    pub best: Scores,
}

impl FoldRow {
    /// The row of a fold from the validation of its epochs (`(epoch, scores)`, epochs
    /// ascending, the last one the fold's last); `None` when no epoch was validated.
    pub fn from_epochs(
        fold: usize,
        train_images: usize,
        val_images: usize,
        epochs: &[(usize, ValMetrics)],
    ) -> Option<Self> {
        let (_, last) = epochs.last()?;
        let (best_epoch, best) =
            epochs
                .iter()
                .fold(None::<(usize, &ValMetrics)>, |acc, (epoch, v)| match acc {
                    Some((_, b)) if b.ap >= v.ap || v.ap.is_nan() => acc,
                    _ => Some((*epoch, v)),
                })?;
        Some(Self {
            fold,
            train_images,
            val_images,
            last: last.into(),
            best_epoch,
            best: best.into(),
        })
    }
}

/// Mean ± sample standard deviation of each score over the folds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreStats {
    pub ap: MeanSd,
    pub ap50: MeanSd,
    pub ap75: MeanSd,
}

impl ScoreStats {
    fn of(scores: &[Scores]) -> Self {
        let of = |f: fn(&Scores) -> f64| MeanSd::of(&scores.iter().map(f).collect::<Vec<_>>());
        Self {
            ap: of(|s| s.ap),
            ap50: of(|s| s.ap50),
            ap75: of(|s| s.ap75),
        }
    }
}

/// One recipe's cross-validation: a row of the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvRun {
    /// The recipe in words ([`describe_recipe`]).
    pub recipe: String,
    /// K.
    pub folds: usize,
    pub fold_seed: u64,
    /// [`folds_id`].
    pub folds_id: String,
    /// The pooled images.
    pub images: usize,
    /// The epochs each fold trained.
    pub epochs: usize,
    pub rows: Vec<FoldRow>,
    /// Over the folds, after the last epoch.
    pub last: ScoreStats,
    /// Over the folds, at each fold's best epoch.
    pub best: ScoreStats,
    pub median_best_epoch: f64,
}

impl CvRun {
    /// The statistics of the folds' rows.
    pub fn new(
        recipe: String,
        fold_seed: u64,
        folds_id: String,
        images: usize,
        epochs: usize,
        rows: Vec<FoldRow>,
    ) -> Self {
        let last: Vec<Scores> = rows.iter().map(|r| r.last).collect();
        let best: Vec<Scores> = rows.iter().map(|r| r.best).collect();
        let mut best_epochs: Vec<usize> = rows.iter().map(|r| r.best_epoch).collect();
        best_epochs.sort_unstable();
        let n = best_epochs.len();
        let median_best_epoch = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => best_epochs[n / 2] as f64,
            _ => (best_epochs[n / 2 - 1] + best_epochs[n / 2]) as f64 / 2.0,
        };
        Self {
            recipe,
            folds: rows.len(),
            fold_seed,
            folds_id,
            images,
            epochs,
            last: ScoreStats::of(&last),
            best: ScoreStats::of(&best),
            median_best_epoch,
            rows,
        }
    }

    /// The model card's summary, for a final model trained `final_epochs` epochs.
    pub fn card(&self, final_epochs: usize) -> CrossValidation {
        CrossValidation {
            folds: self.folds,
            fold_seed: self.fold_seed,
            images: self.images,
            recipe: self.recipe.clone(),
            epochs: self.epochs,
            final_epochs,
            ap: self.last.ap,
            ap50: self.last.ap50,
            ap75: self.last.ap75,
            best_ap: self.best.ap,
            median_best_epoch: self.median_best_epoch,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The recipe (and so the model card) names the GIoU term when it is on.
    #[test]
    fn recipe_names_the_giou_term() {
        let mut c = TrainConfig::default();
        let words = |c: &TrainConfig| describe_recipe(c, &Init::Default, &AnchorChoice::Fitted);
        assert!(words(&c).contains(", official loss, "), "{}", words(&c));
        assert!(!words(&c).contains("giou"));
        c.giou_weight = 1.0;
        assert!(
            words(&c).contains(", official loss + giou 1, "),
            "{}",
            words(&c)
        );
    }

    pub(crate) fn val(ap: f64) -> ValMetrics {
        ValMetrics {
            ap,
            ap50: ap + 0.2,
            ap75: ap - 0.1,
            per_class: Vec::new(),
            images: 3,
        }
    }

    pub(crate) fn run(recipe: &str, aps: &[(f64, f64)]) -> CvRun {
        let rows = aps
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| {
                FoldRow::from_epochs(i + 1, 8, 4, &[(1, val(a)), (2, val(b))]).unwrap()
            })
            .collect();
        CvRun::new(recipe.into(), 0, "abc".into(), 12, 2, rows)
    }

    /// A fold's best epoch is its first best; the stats are mean ± sample sd.
    #[test]
    fn rows_and_statistics() {
        let epochs: Vec<(usize, ValMetrics)> = [0.3, 0.5, 0.5, 0.4]
            .into_iter()
            .enumerate()
            .map(|(i, ap)| (i + 1, val(ap)))
            .collect();
        let r = FoldRow::from_epochs(1, 8, 4, &epochs).unwrap();
        assert_eq!((r.best_epoch, r.best.ap, r.last.ap), (2, 0.5, 0.4));
        // An epoch missing from the log (a kill between its resume point and its line)
        // is no candidate; the others keep their numbers.
        let r = FoldRow::from_epochs(1, 8, 4, &[(1, val(0.3)), (3, val(0.5))]).unwrap();
        assert_eq!(r.best_epoch, 3);
        assert!(FoldRow::from_epochs(1, 8, 4, &[]).is_none());
        let cv = run("a", &[(0.2, 0.4), (0.6, 0.2), (0.1, 0.3)]);
        assert!((cv.last.ap.mean - 0.3).abs() < 1e-12);
        assert!((cv.last.ap.sd - 0.1).abs() < 1e-12);
        assert!((cv.last.ap50.mean - 0.5).abs() < 1e-12);
        assert_eq!(cv.median_best_epoch, 2.0);
        let card = cv.card(2);
        assert_eq!((card.folds, card.images, card.final_epochs), (3, 12, 2));
    }

    /// The card travels in the model file's metadata and back; a file without one reads
    /// as `None`.
    #[test]
    fn the_card_round_trips_through_a_model_file() {
        use crate::detector::checkpoint::{ModelArch, ModelFile, ModelMeta};
        let mut meta = ModelMeta::for_arch(ModelArch::D0, vec!["a".into(), "b".into()]);
        let plain = ModelFile {
            meta: meta.clone(),
            tensors: Vec::new(),
        };
        let back = ModelFile::from_bytes(&plain.to_bytes().unwrap()).unwrap();
        assert_eq!(back.meta.cross_validation, None);
        meta.cross_validation = Some(run("a", &[(0.2, 0.4), (0.6, 0.2)]).card(2));
        let file = ModelFile {
            meta: meta.clone(),
            tensors: Vec::new(),
        };
        let back = ModelFile::from_bytes(&file.to_bytes().unwrap()).unwrap();
        assert_eq!(back.meta, meta);
        let cv = back.meta.cross_validation.unwrap();
        assert_eq!((cv.folds, cv.final_epochs), (2, 2));
        assert!(
            cv.to_string()
                .starts_with("2-fold cross-validation on 12 images"),
            "{cv}"
        );
    }
}
