//! `detlab train --folds K`: the recipe of the other flags cross-validated over the pooled
//! training and validation sets, the table written, then the final model trained on every
//! image with a fixed number of epochs (the recipe's), its model card carrying the
//! cross-validation.
//!
//! Run folder (`--out RUN_DIR`):
//! - `folds/fold-N/`: fold N's run (trained on the other folds, validated on fold N);
//! - `cv.md`, `cv.json`: the table (unless `--cv-table`);
//! - `final/`: the final run (every image, no validation);
//! - `model.safetensors`: the final model with the cross-validation in its metadata.
//!
//! The small-set rule is decided once, on the smallest fold training set, and the settings
//! it gives are used by every fold and by the final model: the model shipped is trained
//! with exactly the recipe that was scored.

use std::path::Path;

use anyhow::Context;

use detlab::detector::checkpoint::ModelFile;
use detlab::detector::train::cross_val::{
    describe_recipe, fold_dataset, fold_table, folds_id, folds_of, pool, CvRun, CvTable, FoldRow,
};
use detlab::detector::train::data::Dataset;
use detlab::detector::train::{prepare_loaded, small_set_rule, TrainEvent, ValMetrics};

use super::train::{prepare_error, request, train_prepared, TrainArgs};

/// The final model's file in the run folder.
pub const MODEL: &str = "model.safetensors";

/// Runs `detlab train --folds K`.
pub fn run(args: &TrainArgs, k: usize) -> anyhow::Result<()> {
    let out = &args.out;
    let finished: Vec<&str> = ["folds", "final", MODEL, "cv.md"]
        .into_iter()
        .filter(|name| out.join(name).exists())
        .collect();
    if !finished.is_empty() && !args.overwrite {
        anyhow::bail!(
            "--out: {} already holds a cross-validation ({}): pass --overwrite to replace it, or choose another --out",
            out.display(),
            finished.join(", ")
        );
    }
    let mut base = request(args)?;
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

    let mut rows = Vec::new();
    for (f, data) in fold_data.into_iter().enumerate() {
        eprintln!(
            "fold {}/{k}: {} train / {} held-out images",
            f + 1,
            data.train.len(),
            data.val.len()
        );
        let (train_images, val_images) = (data.train.len(), data.val.len());
        let mut req = base.clone();
        req.out_dir = out.join("folds").join(format!("fold-{}", f + 1));
        let prepared = prepare_loaded(&req, data)
            .map_err(prepare_error)
            .with_context(|| format!("fold {}", f + 1))?;
        let mut epochs: Vec<ValMetrics> = Vec::new();
        train_prepared(prepared, &mut |e| {
            if let TrainEvent::Epoch { val: Some(v), .. } = e {
                epochs.push(v.clone());
            }
        })
        .with_context(|| format!("fold {}", f + 1))?;
        let row = FoldRow::from_epochs(f + 1, train_images, val_images, &epochs)
            .with_context(|| format!("fold {}: no epoch was validated", f + 1))?;
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
    train_final(&base, pooled, out, &cv)
}

/// Trains the final model on every pooled image for the recipe's epochs, without
/// validation, and writes `RUN_DIR/model.safetensors` with the cross-validation in its
/// model card.
fn train_final(
    base: &detlab::detector::train::TrainRequest,
    mut pooled: Dataset,
    out: &Path,
    cv: &CvRun,
) -> anyhow::Result<()> {
    let epochs = base.config.epochs;
    eprintln!(
        "final model: {} images, {epochs} epochs (the recipe's), no validation",
        pooled.train.len()
    );
    let mut req = base.clone();
    req.out_dir = out.join("final");
    req.config.skip_validation = true;
    req.config.early_stopping = None;
    pooled.val.clear();
    pooled.skipped.clear();
    pooled.unreadable.clear();
    let prepared = prepare_loaded(&req, pooled)
        .map_err(prepare_error)
        .context("final model")?;
    let summary = train_prepared(prepared, &mut |_| {}).context("final model")?;
    let last = summary
        .last_path
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
