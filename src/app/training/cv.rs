//! A cross-validation started from the Train page: the library's
//! [`run_cross_validation`] (the same run as `detlab train --folds K`) on the run's
//! thread, its events turned into the run's messages, and the state the page shows
//! ([`CvStatus`]: the stage, then the table's means and the final model).

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use super::form::with_control;
use super::run::RunMessage;
use crate::detector::train::cross_val::CvRun;
use crate::detector::train::{
    run_cross_validation, CancelHandle, CvError, CvEvent, CvOptions, CvOutcome, CvStage,
    TrainRequest,
};

/// The table's file in the run folder.
pub const TABLE: &str = "cv.md";

/// Where a cross-validation started from the page stands.
#[derive(Clone, Debug, PartialEq)]
pub struct CvStatus {
    /// The number of folds.
    pub k: usize,
    /// The training in progress (none before the first).
    pub stage: Option<CvStage>,
    /// The result, once every fold is scored.
    pub result: Option<CvResult>,
}

/// A finished cross-validation.
#[derive(Clone, Debug, PartialEq)]
pub struct CvResult {
    /// The folds' rows and their mean ± sd.
    pub cv: CvRun,
    /// The table (`RUN_DIR/cv.md`, with `cv.json` beside it).
    pub table: PathBuf,
    /// The final model, trained on every image.
    pub model: Option<PathBuf>,
}

/// What the run's thread reports of a cross-validation.
pub(super) enum CvMessage {
    /// A training starts.
    Stage(CvStage),
    /// Every fold is scored and the final model written.
    Finished(Box<CvResult>),
}

/// The options of a K-fold cross-validation from the page: the table in the run folder,
/// then the final model.
pub(super) fn options(k: usize, resume: bool) -> CvOptions {
    CvOptions {
        k,
        fold_seed: 0,
        table: None,
        final_model: true,
        resume,
        overwrite: false,
    }
}

/// Runs the cross-validation on the run's thread, its events sent over `tx`.
pub(super) fn run(
    request: &TrainRequest,
    options: &CvOptions,
    tx: &Sender<RunMessage>,
    cancel: &CancelHandle,
    ctx: &Option<egui::Context>,
) -> Result<(), String> {
    let note = |line: String| {
        let _ = tx.send(RunMessage::Note(line));
    };
    let mut sink = |e: &CvEvent| {
        match e {
            CvEvent::Train { event, .. } => {
                let _ = tx.send(RunMessage::Event((*event).clone()));
            }
            CvEvent::Skipped { path, why, .. } => {
                note(format!("skipped {} ({why})", path.display()))
            }
            CvEvent::SmallSet(small) => note(format!("{small} for every fold and the final model")),
            CvEvent::Planned {
                images,
                k,
                sizes,
                recipe,
                ..
            } => note(format!(
                "cross-validation: {images} images in {k} folds of {sizes:?}; recipe: {recipe}"
            )),
            CvEvent::FoldFinishedBefore { fold, k, row } => note(format!(
                "fold {fold}/{k}: finished before (held-out AP {:.3})",
                row.last.ap
            )),
            CvEvent::FoldStarted {
                fold,
                k,
                train_images,
                val_images,
                continued,
            } => {
                let _ = tx.send(RunMessage::Cv(CvMessage::Stage(CvStage::Fold {
                    fold: *fold,
                    k: *k,
                })));
                note(format!(
                    "fold {fold}/{k}: {train_images} train / {val_images} held-out images{}",
                    if *continued { ", continued" } else { "" }
                ));
            }
            CvEvent::FinalStarted {
                images,
                epochs,
                continued,
            } => {
                let _ = tx.send(RunMessage::Cv(CvMessage::Stage(CvStage::Final)));
                note(format!(
                    "final model: {images} images, {epochs} epochs, no validation{}",
                    if *continued { ", continued" } else { "" }
                ));
            }
            CvEvent::FoldFinished { row } => note(format!(
                "fold {}: held-out AP {:.3} AP50 {:.3} AP75 {:.3}",
                row.fold, row.last.ap, row.last.ap50, row.last.ap75
            )),
            CvEvent::TableWritten { path, .. } => note(format!("table: {}", path.display())),
            CvEvent::ModelWritten { path } => note(format!("model: {}", path.display())),
            CvEvent::Prepared { .. } | CvEvent::Trained { .. } => {}
        }
        if let Some(c) = ctx {
            c.request_repaint();
        }
    };
    match run_cross_validation(request, options, &mut sink, cancel).map_err(message)? {
        CvOutcome::Finished { cv, table, model } => {
            let _ = tx.send(RunMessage::Cv(CvMessage::Finished(Box::new(CvResult {
                cv: *cv,
                table,
                model,
            }))));
        }
        CvOutcome::Stopped { stage } => note(format!(
            "stopped during {stage}: Resume continues the cross-validation"
        )),
    }
    Ok(())
}

/// The library's error as the page shows it: led by the field or the button to use.
fn message(e: CvError) -> String {
    match &e {
        CvError::RunExists { .. } => format!(
            "{e}. Press Resume to continue it, or set another Run folder (or delete this one) and press Start."
        ),
        CvError::AlreadyFinished { .. } | CvError::NothingToResume { .. } => format!(
            "{e}. Set another Run folder (or delete this one) and press Start to begin again."
        ),
        CvError::Folds(_) | CvError::FoldUntrainable { .. } => {
            format!("Cross-validation folds: {e}")
        }
        CvError::Prepare { source, .. } => with_control(source.setting(), e.to_string()),
        CvError::Train { source, .. } => with_control(source.setting(), e.to_string()),
        _ => e.to_string(),
    }
}
