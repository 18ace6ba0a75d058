//! The command-line face of detlab: clap subcommands over the library.

pub mod import_weights;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "detlab", version, about = "Label, export, train and review retail detectors")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the desktop app (the default when no subcommand is given).
    Gui,
    /// Import PyTorch EfficientDet weights (.pth) into a detlab model file (.safetensors).
    ImportWeights(import_weights::ImportWeightsArgs),
}

/// Parses the arguments and runs the subcommand; errors are printed, never panicked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        None | Some(Command::Gui) => Ok(()),
        Some(Command::ImportWeights(args)) => import_weights::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
