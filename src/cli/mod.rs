//! The command-line face of detlab: clap subcommands over the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod eval;

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
    /// Evaluate COCO detection results against ground truth (pycocotools' 12 numbers).
    Eval(eval::EvalArgs),
}

/// Parses the arguments and runs the subcommand; errors are printed, never panicked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        None | Some(Command::Gui) => Ok(()),
        Some(Command::Eval(args)) => eval::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
