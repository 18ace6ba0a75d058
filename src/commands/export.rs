//! `detlab export coco`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};

use crate::dataset::ClassList;
use crate::export::{export_coco, ExportOptions, Layout, SplitMode};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub target: ExportTarget,
}

#[derive(Subcommand, Debug)]
pub enum ExportTarget {
    /// Export a labelled image folder to COCO JSON.
    Coco(CocoExportArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutArg {
    /// OUT/instances_train.json (+ instances_val.json) and labels.txt.
    Plain,
    /// The folder layout and projects/NAME.yml of Zylo117's EfficientDet trainer.
    Zylo117,
}

#[derive(Args, Debug)]
pub struct CocoExportArgs {
    /// Folder of images (scanned recursively).
    #[arg(long)]
    pub images: PathBuf,
    /// Folder of the label files (default: beside the images).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Class order for category ids 1..N (one name per line).
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Fraction of images for the val split (stratified by class).
    #[arg(long, conflicts_with = "split_by_folder")]
    pub val_fraction: Option<f64>,
    /// Seed of the split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Split by the first folder below --images (train/, val/, ...).
    #[arg(long)]
    pub split_by_folder: bool,
    #[arg(long, value_enum, default_value_t = LayoutArg::Plain)]
    pub layout: LayoutArg,
    /// Project name for --layout zylo117.
    #[arg(long, default_value = "detlab")]
    pub project: String,
    /// Export difficult boxes as iscrowd 1 (ignored by COCO evaluation).
    #[arg(long)]
    pub difficult_as_crowd: bool,
    /// Write nothing and exit non-zero when any file would be skipped.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let ExportTarget::Coco(args) = args.target;
    let classes = match &args.classes {
        Some(path) => {
            let (list, notes) = ClassList::read_noting(path)?;
            for note in notes {
                eprintln!("warning: {note}");
            }
            list
        }
        None => ClassList::new(),
    };
    let split = match (args.val_fraction, args.split_by_folder) {
        (Some(f), _) if !(0.0..=1.0).contains(&f) => {
            bail!("--val-fraction must be between 0 and 1, not {f}")
        }
        (Some(val_fraction), _) => SplitMode::Fraction {
            val_fraction,
            seed: args.seed,
        },
        (None, true) => SplitMode::ByFolder,
        (None, false) => SplitMode::None,
    };
    let layout = match args.layout {
        LayoutArg::Plain => Layout::Plain,
        LayoutArg::Zylo117 => Layout::Zylo117 {
            project: args.project.clone(),
        },
    };
    let options = ExportOptions {
        images_dir: args.images.clone(),
        labels_dir: args.labels.clone(),
        out_dir: args.out.clone(),
        classes,
        split,
        layout,
        difficult_as_crowd: args.difficult_as_crowd,
        strict: args.strict,
    };
    let bar = super::progress_bar("reading labels");
    let summary = export_coco(&options, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("exporting {}", args.images.display()))?;
    bar.finish_and_clear();
    print!("{}", summary.report());
    Ok(())
}
