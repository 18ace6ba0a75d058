//! `detlab info`: versions and the compute devices libtorch sees; with `--model`, the
//! model card of a detlab model file (architecture, classes, input, anchors, where it came
//! from and, for a model of `detlab train --folds`, how its recipe cross-validated).

use std::path::PathBuf;

use detlab::detector::checkpoint::{ModelFile, ModelMeta};

/// Arguments of `detlab info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Show this model file's card instead of the versions and devices.
    #[arg(long, value_name = "M.safetensors")]
    pub model: Option<PathBuf>,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.model {
        let file = ModelFile::read(path)?;
        print!("{}", card(&file.meta));
        return Ok(());
    }
    println!("detlab {}", env!("CARGO_PKG_VERSION"));
    let cuda = tch::Cuda::is_available();
    println!("CUDA available: {cuda}");
    if cuda {
        println!("CUDA devices: {}", tch::Cuda::device_count());
        println!("cuDNN available: {}", tch::Cuda::cudnn_is_available());
    }
    println!("CPU threads used by libtorch: {}", tch::get_num_threads());
    Ok(())
}

/// A model's card, one fact a line.
fn card(meta: &ModelMeta) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k}: {v}\n"));
    line("architecture", meta.arch.to_string());
    line(
        "classes",
        format!(
            "{} ({})",
            meta.class_names.join(", "),
            meta.class_names.len()
        ),
    );
    line("input size", format!("{} px", meta.input_size));
    line(
        "anchor ratios",
        meta.anchors
            .ratios
            .iter()
            .map(|(x, y)| format!("{x:.3},{y:.3}"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    if let Some(t) = meta.train_tile {
        line("trained on tiles", format!("{t} px"));
    }
    if meta.partial {
        line(
            "partial",
            "yes (some weights are missing: it cannot detect)".into(),
        );
    }
    if let Some(src) = &meta.source {
        line("source", src.clone());
    }
    match &meta.cross_validation {
        Some(cv) => {
            line(
                "cross-validation",
                format!(
                    "{}-fold on {} images (fold seed {}), {} epochs per fold",
                    cv.folds, cv.images, cv.fold_seed, cv.epochs
                ),
            );
            line("  AP (last epoch)", cv.ap.to_string());
            line("  AP50 (last epoch)", cv.ap50.to_string());
            line("  AP75 (last epoch)", cv.ap75.to_string());
            line("  AP (best epoch, optimistic)", cv.best_ap.to_string());
            line("  median best epoch", cv.median_best_epoch.to_string());
            line(
                "  final model",
                format!(
                    "all {} images, {} epochs, no validation-based selection",
                    cv.images, cv.final_epochs
                ),
            );
            line("  recipe", cv.recipe.clone());
        }
        None => line("cross-validation", "none".into()),
    }
    s
}
