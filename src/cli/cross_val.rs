//! `detlab train --folds K`: the recipe of the other flags cross-validated over the pooled
//! training and validation sets, the table written, then the final model trained on every
//! image with a fixed number of epochs (the recipe's), its model card carrying the
//! cross-validation.
//!
//! The run is the library's [`run_cross_validation`] (the app's Train page runs the same);
//! this file makes its options from the flags, prints its progress (a progress bar per
//! fold, as `detlab train`) and names the flags in its errors. The run folder's layout and
//! `--resume` are described in [`detlab::detector::train::cross_val_run`].

use detlab::detector::train::cross_val::fold_table;
use detlab::detector::train::cv_progress::ProgressError;
use detlab::detector::train::{
    run_cross_validation, CancelHandle, CvError, CvEvent, CvOptions, CvOutcome, CvStage,
};

use super::train::{announce, prepare_error, report, request, with_flag, Progress, TrainArgs};

/// Runs `detlab train --folds K` (with `--resume`: continues the one in `--out`).
pub fn run(args: &TrainArgs, k: usize) -> anyhow::Result<()> {
    let request = request(args)?;
    let options = CvOptions {
        k,
        fold_seed: args.fold_seed,
        table: args.cv_table.clone(),
        final_model: !args.no_final,
        resume: args.resume,
        overwrite: args.overwrite,
    };
    let mut progress: Option<Progress> = None;
    let result = run_cross_validation(
        &request,
        &options,
        &mut |e| show(e, &mut progress),
        &CancelHandle::new(),
    );
    if let Some(p) = progress.take() {
        p.finish();
    }
    match result.map_err(|e| cli_error(e, k))? {
        CvOutcome::Finished { .. } => Ok(()),
        CvOutcome::Stopped { stage } => anyhow::bail!("{stage}: stopped"),
    }
}

/// Prints one event of the run; `progress` is the bar of the training in progress.
fn show(e: &CvEvent, progress: &mut Option<Progress>) {
    match e {
        CvEvent::Skipped {
            path,
            why,
            unreadable: false,
        } => eprintln!("note: skipped {} ({why})", path.display()),
        CvEvent::Skipped { path, why, .. } => eprintln!(
            "warning: skipping unreadable image {} ({why})",
            path.display()
        ),
        CvEvent::SmallSet(small) => eprintln!(
            "{small} for every fold and the final model (--no-small-set-rule keeps the recipe)"
        ),
        CvEvent::Planned {
            images,
            k,
            sizes,
            fold_seed,
            folds_id,
            recipe,
        } => eprintln!(
            "cross-validation: {images} images in {k} folds of {} (fold seed {fold_seed}, folds {folds_id})\nrecipe: {recipe}",
            sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        CvEvent::FoldFinishedBefore { fold, k, row } => eprintln!(
            "fold {fold}/{k}: finished before (held-out AP {:.4} after its last epoch)",
            row.last.ap
        ),
        CvEvent::FoldStarted {
            fold,
            k,
            train_images,
            val_images,
            continued,
        } => eprintln!(
            "fold {fold}/{k}: {train_images} train / {val_images} held-out images{}",
            if *continued { ", continued" } else { "" }
        ),
        CvEvent::FinalStarted { images, epochs, .. } => eprintln!(
            "final model: {images} images, {epochs} epochs (the recipe's), no validation"
        ),
        CvEvent::Prepared { run, .. } => {
            announce(run);
            *progress = Some(Progress::new());
        }
        CvEvent::Train { event, .. } => {
            if let Some(p) = progress {
                p.show(event);
            }
        }
        CvEvent::Trained {
            summary, out_dir, ..
        } => {
            if let Some(p) = progress.take() {
                p.finish();
            }
            report(summary, out_dir);
        }
        CvEvent::FoldFinished { .. } => {}
        CvEvent::TableWritten {
            cv,
            path,
            json,
            recipes,
        } => {
            println!("\n{}", fold_table(cv));
            println!(
                "{}-fold cross-validation, last epoch: AP {}  AP50 {}  AP75 {}; best epoch (optimistic): AP {}, median best epoch {}",
                cv.folds, cv.last.ap, cv.last.ap50, cv.last.ap75, cv.best.ap, cv.median_best_epoch
            );
            println!(
                "table: {} ({recipes} recipe(s)) and {}",
                path.display(),
                json.display()
            );
        }
        CvEvent::ModelWritten { path } => println!(
            "model: {} (`detlab info --model` shows its card)",
            path.display()
        ),
    }
}

/// What `stage` is called in errors.
fn stage_name(stage: CvStage) -> String {
    match stage {
        CvStage::Fold { fold, .. } => format!("fold {fold}"),
        CvStage::Final => "final model".into(),
    }
}

/// The library's error as the command line shows it: led by the flag to change.
fn cli_error(e: CvError, k: usize) -> anyhow::Error {
    match e {
        CvError::AlreadyFinished { .. } => anyhow::anyhow!("--resume: {e}"),
        CvError::RunExists { .. } => anyhow::anyhow!(
            "--out: {e}: pass --resume to continue it, --overwrite to replace it, or choose another --out"
        ),
        CvError::NothingToResume { run_dir } => anyhow::anyhow!(
            "--resume: {} holds no cross-validation to continue (no {}); start one without --resume",
            run_dir.display(),
            detlab::detector::train::cv_progress::PLAN
        ),
        CvError::Prepare { stage, source } => {
            let e = prepare_error(*source);
            match stage {
                Some(s) => e.context(stage_name(s)),
                None => e,
            }
        }
        CvError::Folds(e) => anyhow::Error::new(e).context("--folds"),
        CvError::FoldUntrainable { .. } => anyhow::anyhow!("--folds {k}: {e}"),
        CvError::Progress(e @ ProgressError::OtherPlan { .. }) => {
            anyhow::Error::new(e).context("--resume")
        }
        CvError::Train { stage, source } => {
            with_flag(source.setting(), *source).context(stage_name(stage))
        }
        e => anyhow::Error::new(e),
    }
}
