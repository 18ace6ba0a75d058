//! The network half of the command line (`detlab-torch`): the app, `train`, `predict`,
//! `eval --model`, `import-weights`, `info` and `bench`. The top level and the commands
//! that need no network are the library's (`detlab::commands`).

mod bench;
mod cross_val;
mod detect_args;
mod eval;
mod export_model;
pub mod import_weights;
mod info;
mod output_checks;
mod predict;
mod predict_coco;
mod predict_video;
mod predict_voc;
mod train;
mod train_args;
mod train_request;

use std::path::PathBuf;

use detlab::app::AppOptions;
use detlab::commands::{run_without_network, Command};

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

/// Runs a parsed command line, the app when there is no subcommand.
pub fn run(command: Option<Command>) -> anyhow::Result<()> {
    let Some(command) = command else {
        return detlab::desktop::run_gui(AppOptions::default());
    };
    let command = match run_without_network(command) {
        Ok(result) => return result,
        Err(command) => command,
    };
    match *command {
        Command::Gui(f) => detlab::desktop::run_gui(f.parse::<GuiArgs>("gui").into()),
        Command::Eval(f) => eval::run(f.parse("eval")),
        Command::Info(f) => info::run(f.parse("info")),
        Command::ImportWeights(f) => import_weights::run(f.parse("import-weights")),
        Command::Bench(f) => bench::run(f.parse("bench")),
        Command::Predict(f) => predict::run(f.parse("predict")),
        Command::ExportModel(f) => export_model::run(f.parse("export-model")),
        Command::Train(f) => train::run(f.parse("train")),
        Command::Export(_) | Command::Convert(_) | Command::Demo(_) | Command::ExtractFrames(_) => {
            unreachable!("run_without_network runs these")
        }
    }
}
