//! Running a k-fold cross-validation ([`run_cross_validation`]): the recipe of a
//! [`TrainRequest`] trained on each fold of the pooled training and validation sets, the
//! table written, then the final model trained on every image with the recipe's epochs,
//! its model card carrying the cross-validation. `detlab train --folds K` and the app's
//! Train page both run it.
//!
//! Run folder (the request's `out_dir`):
//! - `cv-plan.json`: what is cross-validated (recipe, folds), for a resume;
//! - `folds/fold-N/`: fold N's run (trained on the other folds, validated on fold N), and
//!   `fold.json`, its row, once it has finished;
//! - `cv.md`, `cv.json`: the table (unless [`CvOptions::table`] names another);
//! - `final/`: the final run (every image, no validation);
//! - `model.safetensors`: the final model with the cross-validation in its metadata.
//!
//! The small-set rule is decided once, on the smallest fold training set, and the settings
//! it gives are used by every fold and by the final model: the model shipped is trained
//! with exactly the recipe that was scored.
//!
//! A stopped run continues with [`CvOptions::resume`]: finished folds are taken from their
//! rows, a fold (or the final model) stopped after a complete epoch continues from its
//! resume point, one stopped before starts again; a resume is refused when the recipe or
//! the folds differ from the plan the run started with.

use std::path::{Path, PathBuf};

use super::checkpoint::{LAST, RESUME};
use super::cross_val::{describe_recipe, fold_dataset, folds_id, folds_of, pool, CvRun, CvTable};
use super::cross_val::{FoldRow, TableError};
use super::cv_progress::{
    clear_fold_row, fold_dir, read_fold_row, recorded_validations, write_fold_row, CvPlan,
    ProgressError, PLAN,
};
use super::data::{DataError, Dataset};
use super::events::{CancelHandle, TrainEvent};
use super::prepare::{
    prepare_loaded, small_set_rule, PrepareError, PreparedRun, SmallSetSettings, TrainRequest,
};
use super::trainer::{TrainError, TrainSummary};
use crate::dataset::folds::FoldError;
use crate::detector::checkpoint::{ModelFile, ModelFileError};

/// The final model's file in the run folder.
pub const MODEL: &str = "model.safetensors";

/// How a cross-validation runs (the recipe and the run folder are the request's).
#[derive(Clone, Debug, PartialEq)]
pub struct CvOptions {
    /// The number of folds, K (at least 2).
    pub k: usize,
    /// The seed of the split into folds.
    pub fold_seed: u64,
    /// The table to add the run to; `None`: the run folder's `cv.md` (replaced by an
    /// overwrite, where a table elsewhere keeps its other recipes).
    pub table: Option<PathBuf>,
    /// Train the final model on every image once the folds are scored.
    pub final_model: bool,
    /// Continue the cross-validation in the run folder.
    pub resume: bool,
    /// Replace a cross-validation already in the run folder.
    pub overwrite: bool,
}

/// Which training a cross-validation is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CvStage {
    /// Fold `fold` (1-based) of `k`.
    Fold { fold: usize, k: usize },
    /// The final model on every image.
    Final,
}

impl std::fmt::Display for CvStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fold { fold, k } => write!(f, "fold {fold}/{k}"),
            Self::Final => f.write_str("final model"),
        }
    }
}

/// What a cross-validation reports as it goes.
#[derive(Debug)]
pub enum CvEvent<'a> {
    /// A pooled image was set aside (`unreadable`: it could not be decoded).
    Skipped {
        path: &'a Path,
        why: &'a str,
        unreadable: bool,
    },
    /// The small-set rule changed the recipe, for every fold and the final model.
    SmallSet(&'a SmallSetSettings),
    /// The folds are made and checked.
    Planned {
        images: usize,
        k: usize,
        sizes: Vec<usize>,
        fold_seed: u64,
        folds_id: &'a str,
        recipe: &'a str,
    },
    /// A fold had finished before the run was resumed: its row is taken as it is.
    FoldFinishedBefore {
        fold: usize,
        k: usize,
        row: &'a FoldRow,
    },
    /// A fold starts (`continued`: from its resume point).
    FoldStarted {
        fold: usize,
        k: usize,
        train_images: usize,
        val_images: usize,
        continued: bool,
    },
    /// The final model starts (`continued`: from its resume point).
    FinalStarted {
        images: usize,
        epochs: usize,
        continued: bool,
    },
    /// A training of `stage` is prepared and about to run.
    Prepared {
        stage: CvStage,
        run: &'a PreparedRun,
    },
    /// An event of the training of `stage`.
    Train {
        stage: CvStage,
        event: &'a TrainEvent,
    },
    /// The training of `stage` ended.
    Trained {
        stage: CvStage,
        summary: &'a TrainSummary,
        out_dir: &'a Path,
    },
    /// A fold's row.
    FoldFinished { row: &'a FoldRow },
    /// The table is written (`recipes`: its runs, this one included).
    TableWritten {
        cv: &'a CvRun,
        path: &'a Path,
        json: &'a Path,
        recipes: usize,
    },
    /// The final model is written.
    ModelWritten { path: &'a Path },
}

/// How a cross-validation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum CvOutcome {
    /// Every fold scored and the table written; `model`: the final model, when asked for.
    Finished {
        cv: Box<CvRun>,
        table: PathBuf,
        model: Option<PathBuf>,
    },
    /// Cancelled during `stage` (a resume continues it).
    Stopped { stage: CvStage },
}

/// Why a cross-validation cannot run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CvError {
    /// A resume of a cross-validation that has its final model.
    #[error("{} holds a finished cross-validation ({MODEL}): nothing to continue", run_dir.display())]
    AlreadyFinished { run_dir: PathBuf },
    /// A new cross-validation in a folder that holds one (neither resume nor overwrite).
    #[error("{} already holds a cross-validation ({})", run_dir.display(), found.join(", "))]
    RunExists {
        run_dir: PathBuf,
        found: Vec<String>,
    },
    /// A resume in a folder without a plan.
    #[error("{} holds no cross-validation to continue (no {PLAN}); start one without resuming", run_dir.display())]
    NothingToResume { run_dir: PathBuf },
    /// The data cannot be loaded or a training cannot be prepared.
    #[error("{}{source}", stage.map_or(String::new(), |s| format!("{s}: ")))]
    Prepare {
        stage: Option<CvStage>,
        source: Box<PrepareError>,
    },
    /// The pool cannot be split into K folds.
    #[error(transparent)]
    Folds(#[from] FoldError),
    /// A fold's training set cannot train.
    #[error("fold {fold}'s training set (the other folds): {source} (too few images of that class for {k} folds: use fewer folds)")]
    FoldUntrainable {
        fold: usize,
        k: usize,
        source: DataError,
    },
    /// The table cannot be read, added to or written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The saved progress cannot be read, written or continued.
    #[error(transparent)]
    Progress(#[from] ProgressError),
    /// A folder cannot be created.
    #[error("creating {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A training failed.
    #[error("{stage}: {source}")]
    Train {
        stage: CvStage,
        source: Box<TrainError>,
    },
    /// A fold ended without a validated epoch.
    #[error("{stage}: no epoch was validated")]
    NotValidated { stage: CvStage },
    /// The final model completed no epoch.
    #[error("final model: no epoch completed")]
    NoFinalEpoch,
    /// The final model cannot be read or written.
    #[error("final model: {0}")]
    Model(#[from] ModelFileError),
}

fn create_dir(path: &Path) -> Result<(), CvError> {
    std::fs::create_dir_all(path).map_err(|source| CvError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Cross-validates `request`'s recipe over its pooled training and validation sets in its
/// run folder (see the module), reporting to `sink`; `cancel` stops the training in
/// progress after its step, and the run with it ([`CvOutcome::Stopped`]).
pub fn run_cross_validation(
    request: &TrainRequest,
    options: &CvOptions,
    sink: &mut dyn FnMut(&CvEvent),
    cancel: &CancelHandle,
) -> Result<CvOutcome, CvError> {
    let out = request.out_dir.as_path();
    let k = options.k;
    if options.resume {
        if out.join(MODEL).exists() {
            return Err(CvError::AlreadyFinished {
                run_dir: out.to_path_buf(),
            });
        }
    } else {
        let found: Vec<String> = ["folds", "final", MODEL, "cv.md", PLAN]
            .into_iter()
            .filter(|name| out.join(name).exists())
            .map(String::from)
            .collect();
        if !found.is_empty() && !options.overwrite {
            return Err(CvError::RunExists {
                run_dir: out.to_path_buf(),
                found,
            });
        }
    }
    let mut base = request.clone();
    base.resume = false;
    let pooled = pool(&base).map_err(|source| CvError::Prepare {
        stage: None,
        source: Box::new(source),
    })?;
    for (path, why) in pooled.skipped.iter().take(5) {
        let (path, why, unreadable) = (path.as_path(), why.as_str(), false);
        sink(&CvEvent::Skipped {
            path,
            why,
            unreadable,
        });
    }
    for (path, why) in pooled.unreadable.iter().take(5) {
        let (path, why, unreadable) = (path.as_path(), why.as_str(), true);
        sink(&CvEvent::Skipped {
            path,
            why,
            unreadable,
        });
    }
    let folds = folds_of(&pooled, k, options.fold_seed)?;
    let fold_data: Vec<Dataset> = (0..k).map(|f| fold_dataset(&pooled, &folds, f)).collect();
    // Every fold must be able to train, before hours go into the first.
    for (f, data) in fold_data.iter().enumerate() {
        data.check_trainable()
            .map_err(|source| CvError::FoldUntrainable {
                fold: f + 1,
                k,
                source,
            })?;
    }
    let smallest = fold_data.iter().map(|d| d.train.len()).min().unwrap_or(0);
    if base.small_set_rule {
        if let Some(small) = small_set_rule(&mut base.config, &base.init, smallest) {
            sink(&CvEvent::SmallSet(&small));
        }
        base.small_set_rule = false;
    }
    let recipe = describe_recipe(&base.config, &base.init, &base.anchors);
    let id = folds_id(&pooled, &folds);
    sink(&CvEvent::Planned {
        images: pooled.train.len(),
        k,
        sizes: folds.sizes(),
        fold_seed: options.fold_seed,
        folds_id: &id,
        recipe: &recipe,
    });
    // The table is checked before training: a run that cannot be added is refused now.
    let table_path = options.table.clone().unwrap_or_else(|| out.join("cv.md"));
    // An overwrite replaces the run folder's own table; a table elsewhere gains a row.
    let mut table = if options.overwrite && options.table.is_none() {
        CvTable::default()
    } else {
        CvTable::read(&table_path)?
    };
    let mut planned = CvRun::new(
        recipe.clone(),
        options.fold_seed,
        id.clone(),
        pooled.train.len(),
        base.config.epochs,
        Vec::new(),
    );
    planned.folds = k;
    table.check_folds(&planned, &table_path)?;
    let plan = CvPlan {
        recipe: recipe.clone(),
        folds: k,
        fold_seed: options.fold_seed,
        folds_id: id.clone(),
        images: pooled.train.len(),
    };
    if options.resume {
        let saved = CvPlan::read(out)?.ok_or_else(|| CvError::NothingToResume {
            run_dir: out.to_path_buf(),
        })?;
        plan.check_continues(&saved, out)?;
    } else {
        create_dir(out)?;
        plan.write(out)?;
    }

    let mut rows = Vec::new();
    for (f, data) in fold_data.into_iter().enumerate() {
        let fold = f + 1;
        let stage = CvStage::Fold { fold, k };
        let dir = fold_dir(out, fold);
        if options.resume {
            if let Some(row) = read_fold_row(&dir)? {
                sink(&CvEvent::FoldFinishedBefore { fold, k, row: &row });
                rows.push(row);
                continue;
            }
        } else {
            clear_fold_row(&dir)?;
        }
        let (train_images, val_images) = (data.train.len(), data.val.len());
        let mut req = base.clone();
        req.out_dir = dir.clone();
        // A fold stopped after a complete epoch continues from it; one stopped before its
        // first starts again.
        req.resume = options.resume && dir.join(RESUME).is_file();
        req.overwrite = options.overwrite || (options.resume && !req.resume);
        sink(&CvEvent::FoldStarted {
            fold,
            k,
            train_images,
            val_images,
            continued: req.resume,
        });
        let prepared = prepare_loaded(&req, data).map_err(|source| CvError::Prepare {
            stage: Some(stage),
            source: Box::new(source),
        })?;
        let summary = train(stage, prepared, &dir, sink, cancel)?;
        if summary.cancelled || cancel.is_cancelled() {
            return Ok(CvOutcome::Stopped { stage });
        }
        let epochs = recorded_validations(&dir)?;
        let row = FoldRow::from_epochs(fold, train_images, val_images, &epochs)
            .ok_or(CvError::NotValidated { stage })?;
        write_fold_row(&dir, &row)?;
        sink(&CvEvent::FoldFinished { row: &row });
        rows.push(row);
    }
    let cv = CvRun::new(
        recipe,
        options.fold_seed,
        id,
        pooled.train.len(),
        base.config.epochs,
        rows,
    );
    if let Some(dir) = table_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    table.add(cv.clone(), &table_path)?;
    table.write(&table_path)?;
    sink(&CvEvent::TableWritten {
        cv: &cv,
        path: &table_path,
        json: &CvTable::json_path(&table_path),
        recipes: table.runs.len(),
    });
    if !options.final_model {
        return Ok(CvOutcome::Finished {
            cv: Box::new(cv),
            table: table_path,
            model: None,
        });
    }
    match train_final(&base, pooled, &cv, options, sink, cancel)? {
        Some(model) => Ok(CvOutcome::Finished {
            cv: Box::new(cv),
            table: table_path,
            model: Some(model),
        }),
        None => Ok(CvOutcome::Stopped {
            stage: CvStage::Final,
        }),
    }
}

/// Runs a prepared training of `stage`, its events wrapped for `sink`.
fn train(
    stage: CvStage,
    prepared: PreparedRun,
    out_dir: &Path,
    sink: &mut dyn FnMut(&CvEvent),
    cancel: &CancelHandle,
) -> Result<TrainSummary, CvError> {
    sink(&CvEvent::Prepared {
        stage,
        run: &prepared,
    });
    let summary = prepared
        .run(&mut |event| sink(&CvEvent::Train { stage, event }), cancel)
        .map_err(|source| CvError::Train {
            stage,
            source: Box::new(source),
        })?;
    sink(&CvEvent::Trained {
        stage,
        summary: &summary,
        out_dir,
    });
    Ok(summary)
}

/// Trains the final model on every pooled image for the recipe's epochs, without
/// validation, and writes `RUN_DIR/model.safetensors` with the cross-validation in its
/// model card. `None`: cancelled.
fn train_final(
    base: &TrainRequest,
    mut pooled: Dataset,
    cv: &CvRun,
    options: &CvOptions,
    sink: &mut dyn FnMut(&CvEvent),
    cancel: &CancelHandle,
) -> Result<Option<PathBuf>, CvError> {
    let out = base.out_dir.as_path();
    let epochs = base.config.epochs;
    let mut req = base.clone();
    req.out_dir = out.join("final");
    req.resume = options.resume && req.out_dir.join(RESUME).is_file();
    req.overwrite = options.overwrite || (options.resume && !req.resume);
    req.config.skip_validation = true;
    req.config.early_stopping = None;
    sink(&CvEvent::FinalStarted {
        images: pooled.train.len(),
        epochs,
        continued: req.resume,
    });
    pooled.val.clear();
    pooled.skipped.clear();
    pooled.unreadable.clear();
    let prepared = prepare_loaded(&req, pooled).map_err(|source| CvError::Prepare {
        stage: Some(CvStage::Final),
        source: Box::new(source),
    })?;
    let summary = train(CvStage::Final, prepared, &req.out_dir, sink, cancel)?;
    if summary.cancelled || cancel.is_cancelled() {
        return Ok(None);
    }
    // A run continued after its last epoch trains nothing more: its last model stands.
    let last = summary
        .last_path
        .clone()
        .or_else(|| (summary.epochs_completed >= epochs).then(|| req.out_dir.join(LAST)))
        .filter(|p| p.is_file())
        .ok_or(CvError::NoFinalEpoch)?;
    let mut file = ModelFile::read(&last)?;
    file.meta.cross_validation = Some(cv.card(summary.epochs_completed));
    let model = out.join(MODEL);
    file.write(&model)?;
    sink(&CvEvent::ModelWritten { path: &model });
    Ok(Some(model))
}
