//! `detlab train --folds K`: the recipe of the other flags cross-validated over the pooled
//! training and validation sets, the table written, then the final model trained on every
//! image with a fixed number of epochs (the recipe's), its model card carrying the
//! cross-validation.
//!
//! Run folder (`--out RUN_DIR`):
//! - `cv-plan.json`: what is cross-validated (recipe, folds), for `--resume`;
//! - `folds/fold-N/`: fold N's run (trained on the other folds, validated on fold N), and
//!   `fold.json`, its row, once it has finished;
//! - `cv.md`, `cv.json`: the table (unless `--cv-table`);
//! - `final/`: the final run (every image, no validation);
//! - `model.safetensors`: the final model with the cross-validation in its metadata.
//!
//! The small-set rule is decided once, on the smallest fold training set, and the settings
//! it gives are used by every fold and by the final model: the model shipped is trained
//! with exactly the recipe that was scored.
//!
//! A killed run continues with `--resume`: finished folds are taken from their rows, a
//! fold (or the final model) stopped after a complete epoch continues from its resume
//! point, one stopped before starts again; a resume is refused when the recipe or the
//! folds differ from the plan the run started with.

use std::path::Path;

use anyhow::Context;

use detlab::detector::checkpoint::ModelFile;
use detlab::detector::train::checkpoint::{LAST, RESUME};
use detlab::detector::train::cross_val::{
    describe_recipe, fold_dataset, fold_table, folds_id, folds_of, pool, CvRun, CvTable, FoldRow,
};
use detlab::detector::train::cv_progress::{
    clear_fold_row, fold_dir, read_fold_row, recorded_validations, write_fold_row, CvPlan, PLAN,
};
use detlab::detector::train::data::Dataset;
use detlab::detector::train::{prepare_loaded, small_set_rule};

use super::train::{prepare_error, request, train_prepared, TrainArgs};

/// The final model's file in the run folder.
pub const MODEL: &str = "model.safetensors";

/// Runs `detlab train --folds K` (with `--resume`: continues the one in `--out`).
pub fn run(args: &TrainArgs, k: usize) -> anyhow::Result<()> {
    let out = &args.out;
    if args.resume {
        if out.join(MODEL).exists() {
            anyhow::bail!(
                "--resume: {} holds a finished cross-validation ({MODEL}): nothing to continue",
                out.display()
            );
        }
    } else {
        let finished: Vec<&str> = ["folds", "final", MODEL, "cv.md", PLAN]
            .into_iter()
            .filter(|name| out.join(name).exists())
            .collect();
        if !finished.is_empty() && !args.overwrite {
            anyhow::bail!(
                "--out: {} already holds a cross-validation ({}): pass --resume to continue it, --overwrite to replace it, or choose another --out",
                out.display(),
                finished.join(", ")
            );
        }
    }
    let mut base = request(args)?;
    base.resume = false;
    let pooled = pool(&base).map_err(prepare_error)?;
    for (path, why) in pooled.skipped.iter().take(5) {
        eprintln!("note: skipped {} ({why})", path.display());
    }
    for (path, why) in pooled.unreadable.iter().take(5) {
        eprintln!(
            "warning: skipping unreadable image {} ({why})",
            path.display()
        );
    }
    let folds = folds_of(&pooled, k, args.fold_seed).context("--folds")?;
    let fold_data: Vec<Dataset> = (0..k).map(|f| fold_dataset(&pooled, &folds, f)).collect();
    // Every fold must be able to train, before hours go into the first.
    for (f, data) in fold_data.iter().enumerate() {
        data.check_trainable().map_err(|e| {
            anyhow::anyhow!(
                "--folds {k}: fold {}'s training set (the other folds): {e} (too few images of that class for {k} folds: use fewer folds)",
                f + 1
            )
        })?;
    }
    let smallest = fold_data.iter().map(|d| d.train.len()).min().unwrap_or(0);
    if base.small_set_rule {
        if let Some(small) = small_set_rule(&mut base.config, &base.init, smallest) {
            eprintln!(
                "{small} for every fold and the final model (--no-small-set-rule keeps the recipe)"
            );
        }
        base.small_set_rule = false;
    }
    let recipe = describe_recipe(&base.config, &base.init, &base.anchors);
    let id = folds_id(&pooled, &folds);
    eprintln!(
        "cross-validation: {} images in {k} folds of {} (fold seed {}, folds {id})\nrecipe: {recipe}",
        pooled.train.len(),
        folds
            .sizes()
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.fold_seed
    );
    // The table is checked before training: a run that cannot be added is refused now.
    let table_path = args.cv_table.clone().unwrap_or_else(|| out.join("cv.md"));
    // `--overwrite` replaces the run folder's own table; a table elsewhere gains a row.
    let mut table = if args.overwrite && args.cv_table.is_none() {
        CvTable::default()
    } else {
        CvTable::read(&table_path)?
    };
    let mut planned = CvRun::new(
        recipe.clone(),
        args.fold_seed,
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
        fold_seed: args.fold_seed,
        folds_id: id.clone(),
        images: pooled.train.len(),
    };
    if args.resume {
        let saved = CvPlan::read(out)?.with_context(|| {
            format!(
                "--resume: {} holds no cross-validation to continue (no {PLAN}); start one without --resume",
                out.display()
            )
        })?;
        plan.check_continues(&saved, out).context("--resume")?;
    } else {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        plan.write(out)?;
    }

    let mut rows = Vec::new();
    for (f, data) in fold_data.into_iter().enumerate() {
        let fold = f + 1;
        let dir = fold_dir(out, fold);
        if args.resume {
            if let Some(row) = read_fold_row(&dir)? {
                eprintln!(
                    "fold {fold}/{k}: finished before (held-out AP {:.4} after its last epoch)",
                    row.last.ap
                );
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
        req.resume = args.resume && dir.join(RESUME).is_file();
        req.overwrite = args.overwrite || (args.resume && !req.resume);
        eprintln!(
            "fold {fold}/{k}: {train_images} train / {val_images} held-out images{}",
            if req.resume { ", continued" } else { "" }
        );
        let prepared = prepare_loaded(&req, data)
            .map_err(prepare_error)
            .with_context(|| format!("fold {fold}"))?;
        train_prepared(prepared, &mut |_| {}).with_context(|| format!("fold {fold}"))?;
        let epochs = recorded_validations(&dir).with_context(|| format!("fold {fold}"))?;
        let row = FoldRow::from_epochs(fold, train_images, val_images, &epochs)
            .with_context(|| format!("fold {fold}: no epoch was validated"))?;
        write_fold_row(&dir, &row)?;
        rows.push(row);
    }
    let cv = CvRun::new(
        recipe,
        args.fold_seed,
        id,
        pooled.train.len(),
        base.config.epochs,
        rows,
    );
    println!("\n{}", fold_table(&cv));
    println!(
        "{k}-fold cross-validation, last epoch: AP {}  AP50 {}  AP75 {}; best epoch (optimistic): AP {}, median best epoch {}",
        cv.last.ap, cv.last.ap50, cv.last.ap75, cv.best.ap, cv.median_best_epoch
    );
    if let Some(dir) = table_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    table.add(cv.clone(), &table_path)?;
    table.write(&table_path)?;
    println!(
        "table: {} ({} recipe(s)) and {}",
        table_path.display(),
        table.runs.len(),
        CvTable::json_path(&table_path).display()
    );
    if args.no_final {
        return Ok(());
    }
    train_final(&base, pooled, out, &cv, args.resume)
}

/// Trains the final model on every pooled image for the recipe's epochs, without
/// validation, and writes `RUN_DIR/model.safetensors` with the cross-validation in its
/// model card.
fn train_final(
    base: &detlab::detector::train::TrainRequest,
    mut pooled: Dataset,
    out: &Path,
    cv: &CvRun,
    resume: bool,
) -> anyhow::Result<()> {
    let epochs = base.config.epochs;
    eprintln!(
        "final model: {} images, {epochs} epochs (the recipe's), no validation",
        pooled.train.len()
    );
    let mut req = base.clone();
    req.out_dir = out.join("final");
    req.resume = resume && req.out_dir.join(RESUME).is_file();
    req.overwrite = base.overwrite || (resume && !req.resume);
    req.config.skip_validation = true;
    req.config.early_stopping = None;
    pooled.val.clear();
    pooled.skipped.clear();
    pooled.unreadable.clear();
    let prepared = prepare_loaded(&req, pooled)
        .map_err(prepare_error)
        .context("final model")?;
    let summary = train_prepared(prepared, &mut |_| {}).context("final model")?;
    // A run continued after its last epoch trains nothing more: its last model stands.
    let last = summary
        .last_path
        .or_else(|| (summary.epochs_completed >= epochs).then(|| req.out_dir.join(LAST)))
        .filter(|p| p.is_file())
        .context("final model: no epoch completed")?;
    let mut file = ModelFile::read(&last)?;
    file.meta.cross_validation = Some(cv.card(summary.epochs_completed));
    let model = out.join(MODEL);
    file.write(&model)?;
    println!(
        "model: {} (`detlab info --model` shows its card)",
        model.display()
    );
    Ok(())
}
