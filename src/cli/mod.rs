//! The command-line face of detlab: clap subcommands over the same library calls
//! the GUI makes.

mod bench;
mod convert;
mod demo;
mod eval;
mod export;
pub mod import_weights;
mod info;
mod predict;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use detlab::app::AppOptions;

#[derive(Parser, Debug)]
#[command(
    name = "detlab",
    version,
    about = "Label retail photos, export COCO, train and review EfficientDet"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the desktop app (the default when no subcommand is given).
    Gui(GuiArgs),
    /// Export a labelled folder (VOC / YOLO / CreateML) to COCO JSON.
    Export(export::ExportArgs),
    /// Convert labels between VOC, YOLO and CreateML, or import a COCO file.
    Convert(convert::ConvertArgs),
    /// Generate a synthetic retail dataset (shelf scenes, exact boxes, VOC files).
    Demo(demo::DemoArgs),
    /// Evaluate COCO detection results against ground truth (pycocotools' 12 numbers).
    Eval(eval::EvalArgs),
    /// Show versions and the compute devices (CUDA / CPU) libtorch sees.
    Info,
    /// Import PyTorch EfficientDet weights (.pth) into a detlab model file (.safetensors).
    ImportWeights(import_weights::ImportWeightsArgs),
    /// Detect objects in images with a detlab model file (JSON, COCO results or VOC out).
    Predict(predict::PredictArgs),
    /// Run a benchmark (results for BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Fine-tune EfficientDet on labelled images (progress, metrics.jsonl, last/best models).
    Train(Box<train::TrainArgs>),
}

#[derive(clap::Args, Debug, Default)]
pub struct GuiArgs {
    /// Image folder to open.
    pub dir: Option<PathBuf>,
    /// Save a screenshot of the first frames to this PNG and exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Model to review with (default: the shipped Cola/Sprite model, or $DETLAB_MODEL).
    #[arg(long, value_name = "M.safetensors")]
    pub model: Option<PathBuf>,
    /// Start without a model (open one from the Review panel).
    #[arg(long, conflicts_with = "model")]
    pub no_model: bool,
}

impl From<GuiArgs> for AppOptions {
    fn from(a: GuiArgs) -> Self {
        Self {
            dir: a.dir,
            screenshot: a.screenshot,
            model: a.model,
            no_model: a.no_model,
        }
    }
}

/// Parses the arguments and runs the subcommand; errors are printed, never panicked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        None => detlab::desktop::run_gui(AppOptions::default()),
        Some(Command::Gui(args)) => detlab::desktop::run_gui(args.into()),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Convert(args)) => convert::run(args),
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Info) => info::run(),
        Some(Command::ImportWeights(args)) => import_weights::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Predict(args)) => predict::run(args),
        Some(Command::Train(args)) => train::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress_bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}
