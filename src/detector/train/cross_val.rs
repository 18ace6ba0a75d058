//! K-fold cross-validation of a recipe (`detlab train --folds K`): the training and
//! validation sets pooled, split into K stratified folds ([`Folds`]), the recipe trained K
//! times (on K − 1 folds, validated on the held-out one), and a table of the held-out
//! scores (Markdown and JSON) in which several recipes line up, one row each, on the same
//! folds.
//!
//! [`super::cross_val_run`] runs the folds ([`fold_dataset`], [`super::prepare_loaded`])
//! and the final model; this module holds the data and the table.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
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

/// Why a table cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a cross-validation table ({reason})", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{} holds recipes scored on other folds ({theirs}; this run: {ours}): they would not line up; choose another table", path.display())]
    OtherFolds {
        path: PathBuf,
        theirs: String,
        ours: String,
    },
}

/// The table: one run per recipe, all on the same folds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CvTable {
    pub runs: Vec<CvRun>,
}

fn folds_words(r: &CvRun) -> String {
    format!(
        "{} folds of {} images, fold seed {}, folds {}",
        r.folds, r.images, r.fold_seed, r.folds_id
    )
}

fn cell(s: &Scores) -> [String; 3] {
    [
        format!("{:.4}", s.ap),
        format!("{:.4}", s.ap50),
        format!("{:.4}", s.ap75),
    ]
}

impl CvTable {
    /// The JSON file beside a Markdown table: `T.md` → `T.json` (any other name gets
    /// `.json` added).
    pub fn json_path(markdown: &Path) -> PathBuf {
        if markdown.extension().is_some_and(|e| e == "md") {
            markdown.with_extension("json")
        } else {
            let mut s = markdown.as_os_str().to_owned();
            s.push(".json");
            PathBuf::from(s)
        }
    }

    /// Reads the table whose Markdown is at `markdown` (from its JSON); an empty table
    /// when there is none yet.
    pub fn read(markdown: &Path) -> Result<Self, TableError> {
        let path = Self::json_path(markdown);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TableError::Format {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TableError::Io { path, source }),
        }
    }

    /// Adds a recipe's run (replacing an earlier run of the same recipe); refuses a run
    /// on other folds than the table's.
    pub fn add(&mut self, run: CvRun, path: &Path) -> Result<(), TableError> {
        self.check_folds(&run, path)?;
        match self.runs.iter_mut().find(|r| r.recipe == run.recipe) {
            Some(r) => *r = run,
            None => self.runs.push(run),
        }
        Ok(())
    }

    /// Refuses a run on other folds than the table's (another K, seed or image set): its
    /// scores would not be comparable. `run`'s rows are not read.
    pub fn check_folds(&self, run: &CvRun, path: &Path) -> Result<(), TableError> {
        match self.runs.first() {
            Some(first)
                if (first.folds_id.as_str(), first.fold_seed)
                    != (run.folds_id.as_str(), run.fold_seed) =>
            {
                Err(TableError::OtherFolds {
                    path: path.to_path_buf(),
                    theirs: folds_words(first),
                    ours: folds_words(run),
                })
            }
            _ => Ok(()),
        }
    }

    /// The table in Markdown: the recipes side by side, then each recipe's folds.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# Cross-validation\n\n");
        let Some(first) = self.runs.first() else {
            return md;
        };
        md.push_str(&format!(
            "{}. Mean ± sample standard deviation over the folds. *Last*: the held-out fold's \
             score after the last epoch, the estimate for a model trained that many epochs. \
             *Best*: at the epoch that scored best on the held-out fold, chosen on it, so \
             optimistic.\n\n",
            folds_words(first)
        ));
        md.push_str("| # | recipe | epochs | AP (last) | AP50 (last) | AP75 (last) | AP (best) | median best epoch |\n");
        md.push_str("|---|---|---|---|---|---|---|---|\n");
        for (i, r) in self.runs.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                i + 1,
                r.recipe,
                r.epochs,
                r.last.ap,
                r.last.ap50,
                r.last.ap75,
                r.best.ap,
                r.median_best_epoch
            ));
        }
        for (i, r) in self.runs.iter().enumerate() {
            md.push_str(&format!("\n## {}. {}\n\n", i + 1, r.recipe));
            md.push_str(&fold_table(r));
        }
        md
    }

    /// Writes the Markdown and the JSON atomically, as a pair: either both new files are
    /// in place or (on a failure before the renames) both old ones.
    pub fn write(&self, markdown: &Path) -> Result<(), TableError> {
        let json_path = Self::json_path(markdown);
        let json = serde_json::to_string_pretty(self).map_err(|e| TableError::Format {
            path: json_path.clone(),
            reason: e.to_string(),
        })?;
        let md = self.to_markdown();
        let stage = |path: &Path, bytes: &[u8]| {
            crate::atomic::stage_with(path, |f| std::io::Write::write_all(f, bytes)).map_err(
                |source| TableError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            )
        };
        let staged = vec![
            stage(&json_path, json.as_bytes())?,
            stage(markdown, md.as_bytes())?,
        ];
        crate::atomic::commit_all(staged).map_err(|(k, source)| TableError::Io {
            path: if k == 0 {
                json_path
            } else {
                markdown.to_path_buf()
            },
            source,
        })
    }
}

/// One recipe's folds: a row per fold, then the mean ± sd.
pub fn fold_table(r: &CvRun) -> String {
    let mut md = String::from(
        "| fold | train | val | AP | AP50 | AP75 | best epoch | AP (best) | AP50 (best) | AP75 (best) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in &r.rows {
        let [a, b, c] = cell(&f.last);
        let [d, e, g] = cell(&f.best);
        md.push_str(&format!(
            "| {} | {} | {} | {a} | {b} | {c} | {} | {d} | {e} | {g} |\n",
            f.fold, f.train_images, f.val_images, f.best_epoch
        ));
    }
    md.push_str(&format!(
        "| mean ± sd | | | {} | {} | {} | {} | {} | {} | {} |\n",
        r.last.ap,
        r.last.ap50,
        r.last.ap75,
        r.median_best_epoch,
        r.best.ap,
        r.best.ap50,
        r.best.ap75
    ));
    md
}

#[cfg(test)]
mod tests {
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

    fn val(ap: f64) -> ValMetrics {
        ValMetrics {
            ap,
            ap50: ap + 0.2,
            ap75: ap - 0.1,
            per_class: Vec::new(),
            images: 3,
        }
    }

    fn run(recipe: &str, aps: &[(f64, f64)]) -> CvRun {
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

    /// The Markdown has a row per fold and a mean row; a second recipe lines up beside the
    /// first; a run on other folds is refused.
    #[test]
    fn table_lines_up_recipes_on_the_same_folds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cv.md");
        let mut t = CvTable::read(&path).unwrap();
        t.add(run("a", &[(0.2, 0.4), (0.6, 0.2)]), &path).unwrap();
        t.write(&path).unwrap();
        let mut t = CvTable::read(&path).unwrap();
        t.add(run("b", &[(0.3, 0.4), (0.5, 0.6)]), &path).unwrap();
        t.add(run("b", &[(0.3, 0.4), (0.5, 0.7)]), &path).unwrap();
        t.write(&path).unwrap();
        let t = CvTable::read(&path).unwrap();
        assert_eq!(t.runs.len(), 2);
        let md = std::fs::read_to_string(&path).unwrap();
        assert!(
            md.contains("| 1 | a | 2 |") && md.contains("| 2 | b | 2 |"),
            "{md}"
        );
        assert_eq!(md.matches("| mean ± sd |").count(), 2, "{md}");
        assert!(md.contains("| 2 | 8 | 4 | 0.7000 |"), "{md}");
        let mut other = run("c", &[(0.1, 0.1), (0.1, 0.1)]);
        other.folds_id = "def".into();
        let mut t = t;
        let err = t.add(other, &path).unwrap_err().to_string();
        assert!(err.contains("other folds"), "{err}");
        assert_eq!(
            CvTable::json_path(Path::new("x/cv.md")),
            Path::new("x/cv.json")
        );
        assert_eq!(
            CvTable::json_path(Path::new("x/cv")),
            Path::new("x/cv.json")
        );
    }
}
