//! What a cross-validation's run folder keeps so that a killed `detlab train --folds K`
//! continues where it stopped (`--resume`) instead of starting hours of training again:
//! the plan it started with (`RUN_DIR/cv-plan.json`), each finished fold's row
//! (`RUN_DIR/folds/fold-N/fold.json`), and the held-out scores of a fold's epochs, read back
//! from the fold's resume point (so the epochs before a kill count as well).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::{ResumeFile, RESUME};
use super::cross_val::FoldRow;
use super::events::ValMetrics;

/// The plan's file in the run folder.
pub const PLAN: &str = "cv-plan.json";
/// A finished fold's row, in its fold folder.
pub const FOLD_ROW: &str = "fold.json";

/// Why the saved progress cannot be read, written or continued.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot be read ({reason})", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{} was started with another {what} ({theirs}; now: {ours}): continue it with the flags it was started with, or start again with --overwrite", path.display())]
    OtherPlan {
        path: PathBuf,
        what: &'static str,
        theirs: String,
        ours: String,
    },
}

/// What a cross-validation trains: everything that must be the same for a continued run
/// to give the table an uninterrupted one would.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvPlan {
    /// [`super::cross_val::describe_recipe`].
    pub recipe: String,
    /// K.
    pub folds: usize,
    pub fold_seed: u64,
    /// [`super::cross_val::folds_id`].
    pub folds_id: String,
    /// The pooled images.
    pub images: usize,
}

impl CvPlan {
    /// Writes the plan into `run_dir` (atomically).
    pub fn write(&self, run_dir: &Path) -> Result<(), ProgressError> {
        write_json(&run_dir.join(PLAN), self)
    }

    /// The plan saved in `run_dir`, if there is one.
    pub fn read(run_dir: &Path) -> Result<Option<Self>, ProgressError> {
        read_json(&run_dir.join(PLAN))
    }

    /// Refuses to continue `saved` (read from `run_dir`) with this plan when they differ.
    pub fn check_continues(&self, saved: &Self, run_dir: &Path) -> Result<(), ProgressError> {
        let differs = |what, theirs: String, ours: String| {
            (theirs != ours).then(|| ProgressError::OtherPlan {
                path: run_dir.to_path_buf(),
                what,
                theirs,
                ours,
            })
        };
        let first = differs("recipe", saved.recipe.clone(), self.recipe.clone())
            .or_else(|| differs("K", saved.folds.to_string(), self.folds.to_string()))
            .or_else(|| {
                differs(
                    "fold seed",
                    saved.fold_seed.to_string(),
                    self.fold_seed.to_string(),
                )
            })
            .or_else(|| {
                differs(
                    "set of images",
                    format!("{} images, folds {}", saved.images, saved.folds_id),
                    format!("{} images, folds {}", self.images, self.folds_id),
                )
            });
        first.map_or(Ok(()), Err)
    }
}

/// Fold `fold`'s (1-based) run folder.
pub fn fold_dir(run_dir: &Path, fold: usize) -> PathBuf {
    run_dir.join("folds").join(format!("fold-{fold}"))
}

/// Records a fold as finished: its row, written atomically into its folder.
pub fn write_fold_row(fold_dir: &Path, row: &FoldRow) -> Result<(), ProgressError> {
    write_json(&fold_dir.join(FOLD_ROW), row)
}

/// The row of a finished fold; `None` when the fold did not finish.
pub fn read_fold_row(fold_dir: &Path) -> Result<Option<FoldRow>, ProgressError> {
    read_json(&fold_dir.join(FOLD_ROW))
}

/// Forgets that a fold finished (before it is trained again from the start).
pub fn clear_fold_row(fold_dir: &Path) -> Result<(), ProgressError> {
    let path = fold_dir.join(FOLD_ROW);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ProgressError::Io { path, source: e })
        }
        _ => Ok(()),
    }
}

/// The validation of each completed epoch of the run in `run_dir`, `(epoch, scores)`
/// ascending, as its resume point records them: across every process that worked on a
/// resumed run, and consistent with that point even when a kill came between the resume
/// point and the epoch's line in `metrics.jsonl`.
pub fn recorded_validations(run_dir: &Path) -> Result<Vec<(usize, ValMetrics)>, ProgressError> {
    ResumeFile::read(run_dir)
        .map(|r| r.state.validations)
        .map_err(|e| ProgressError::Format {
            path: run_dir.join(RESUME),
            reason: e.to_string(),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ProgressError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| ProgressError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    crate::atomic::write_atomic(path, &json).map_err(|source| ProgressError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, ProgressError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ProgressError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProgressError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::train::cross_val::Scores;

    #[test]
    fn fold_rows_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_fold_row(dir.path()).unwrap(), None);
        let s = Scores {
            ap: 0.5,
            ap50: 0.8,
            ap75: 0.6,
        };
        let row = FoldRow {
            fold: 2,
            train_images: 8,
            val_images: 4,
            last: s,
            best_epoch: 3,
            best: s,
        };
        write_fold_row(dir.path(), &row).unwrap();
        assert_eq!(read_fold_row(dir.path()).unwrap(), Some(row));
        clear_fold_row(dir.path()).unwrap();
        clear_fold_row(dir.path()).unwrap();
        assert_eq!(read_fold_row(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(FOLD_ROW), "{").unwrap();
        assert!(matches!(
            read_fold_row(dir.path()),
            Err(ProgressError::Format { .. })
        ));
    }

    #[test]
    fn a_plan_continues_only_the_same_plan() {
        let dir = tempfile::tempdir().unwrap();
        let plan = CvPlan {
            recipe: "lite0 384 px, 30 epochs".into(),
            folds: 5,
            fold_seed: 0,
            folds_id: "abc".into(),
            images: 472,
        };
        assert_eq!(CvPlan::read(dir.path()).unwrap(), None);
        plan.write(dir.path()).unwrap();
        let saved = CvPlan::read(dir.path()).unwrap().unwrap();
        assert!(plan.check_continues(&saved, dir.path()).is_ok());
        let other = CvPlan {
            recipe: "lite0 384 px, 40 epochs".into(),
            ..plan.clone()
        };
        let e = other.check_continues(&saved, dir.path()).unwrap_err();
        assert!(e.to_string().contains("another recipe"), "{e}");
        assert!(e.to_string().contains("40 epochs"), "{e}");
        let e = CvPlan {
            folds: 3,
            ..plan.clone()
        }
        .check_continues(&saved, dir.path())
        .unwrap_err();
        assert!(e.to_string().contains("another K (5; now: 3)"), "{e}");
        let e = CvPlan {
            images: 471,
            folds_id: "abd".into(),
            ..plan
        }
        .check_continues(&saved, dir.path())
        .unwrap_err();
        assert!(e.to_string().contains("another set of images"), "{e}");
    }
}
