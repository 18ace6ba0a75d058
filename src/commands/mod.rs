//! The command line's top level, and the commands that need no network: `export`,
//! `convert`, `demo`, `extract-frames` and `eval --gt --dt`.
//!
//! Two binaries share this definition. `detlab` (`front/`) is built without libtorch: it
//! runs these commands itself, in milliseconds, and hands every other one to
//! `detlab-torch` by `exec`. `detlab-torch` (`src/torch_main.rs`) runs them all; it parses
//! the arguments of a [`Forwarded`] command with that command's own definition.

pub mod convert;
pub mod demo;
pub mod eval;
pub mod export;
pub mod extract_frames;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// `detlab`'s command line.
#[derive(Parser, Debug)]
#[command(
    name = "detlab",
    bin_name = "detlab",
    version,
    about = "Label retail photos, export COCO, train and review EfficientDet"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands. Those that run a network (and the app) carry their arguments
/// unparsed: `detlab-torch` parses them with [`Forwarded::parse`].
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the desktop app (the default when no subcommand is given).
    Gui(Forwarded),
    /// Export a labelled folder (VOC / YOLO / CreateML) to COCO JSON.
    Export(export::ExportArgs),
    /// Convert labels between VOC, YOLO and CreateML, or import a COCO file.
    Convert(convert::ConvertArgs),
    /// Generate a synthetic retail dataset (shelf scenes, exact boxes, VOC files).
    Demo(demo::DemoArgs),
    /// Write every N-th frame (or R per second) of a video into a folder of images to label.
    ExtractFrames(extract_frames::ExtractFramesArgs),
    /// Evaluate COCO detection results against ground truth (pycocotools' 12 numbers).
    Eval(Forwarded),
    /// Show versions and the compute devices (CUDA / CPU) libtorch sees, or with
    /// `--model M` a model file's card.
    Info(Forwarded),
    /// Import PyTorch EfficientDet weights (.pth) into a detlab model file (.safetensors).
    ImportWeights(Forwarded),
    /// Detect objects in images with a detlab model file (JSON, COCO results or VOC out).
    Predict(Forwarded),
    /// Export a detlab model file to ONNX (for ONNX Runtime, Triton, TensorRT).
    ExportModel(Forwarded),
    /// Run a benchmark (results for BENCHMARKS.md).
    Bench(Forwarded),
    /// Fine-tune EfficientDet on labelled images (progress, metrics.jsonl, last/best models).
    Train(Forwarded),
}

/// The arguments of a subcommand that `detlab-torch` parses (`--help` included).
#[derive(clap::Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct Forwarded {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

impl Forwarded {
    /// Parses the arguments with `T`'s definition, as `detlab NAME`; on a bad argument or
    /// `--help` it prints what clap prints and exits as clap does.
    pub fn parse<T: clap::Args + FromArgMatches>(&self, name: &str) -> T {
        self.try_parse(name).unwrap_or_else(|e| e.exit())
    }

    /// Like [`Forwarded::parse`], returning clap's error instead of exiting.
    pub fn try_parse<T: clap::Args + FromArgMatches>(&self, name: &str) -> clap::error::Result<T> {
        let about = Cli::command()
            .find_subcommand(name)
            .and_then(|c| c.get_about().cloned());
        // The subcommand's own line, not the doc comment of its arguments' struct.
        let mut command = T::augment_args(clap::Command::new("detlab"))
            .bin_name(format!("detlab {name}"))
            .no_binary_name(true);
        if let Some(about) = about {
            command = command.about(about).long_about(None);
        }
        let mut matches = command.try_get_matches_from(&self.args)?;
        T::from_arg_matches_mut(&mut matches)
    }

    /// Whether the arguments hold `flag` (as `--flag` or `--flag=…`).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == flag || a.starts_with(&format!("{flag}="))
        })
    }
}

/// Runs a command that needs no network: export, convert, demo, extract-frames, or
/// `eval --gt --dt`.
/// Returns the command back when it needs `detlab-torch`.
pub fn run_without_network(command: Command) -> Result<anyhow::Result<()>, Box<Command>> {
    match command {
        Command::Export(args) => Ok(export::run(args)),
        Command::Convert(args) => Ok(convert::run(args)),
        Command::Demo(args) => Ok(demo::run(args)),
        Command::ExtractFrames(args) => Ok(extract_frames::run(args)),
        Command::Eval(forwarded) if !forwarded.has_flag("--data") => {
            match forwarded.try_parse::<eval::EvalFilesArgs>("eval") {
                Ok(args) => Ok(eval::run(args)),
                // `--help`, or a flag of the network half: the full definition decides.
                Err(_) => Err(Box::new(Command::Eval(forwarded))),
            }
        }
        other => Err(Box::new(other)),
    }
}

/// The environment variable `detlab` sets for `detlab-torch`, and its value: libgomp's
/// busy-wait, in spins, before an idle OpenMP thread of libtorch goes to sleep.
///
/// libgomp reads it once, when libtorch is loaded, so it is set across the `exec`. Its
/// default (300,000 spins) keeps libtorch's OpenMP threads spinning for a while after
/// every parallel operation; on a two-core machine they take the cores from the CPU
/// engine's own threads, which run in between (`predict`, Lite0, two threads, 112 photos:
/// 1.90–2.02 s with the default, 1.64–1.70 s with 30,000), while training, whose
/// operations follow each other closely, keeps its speed (9.65–9.94 s against
/// 9.77–9.81 s); `OMP_WAIT_POLICY=passive` would slow it by 37 %.
pub const OPENMP_SPIN: (&str, &str) = ("GOMP_SPINCOUNT", "30000");

/// What `detlab` adds to `detlab-torch`'s environment, given which variables the user
/// has set: [`OPENMP_SPIN`], unless the user chose libgomp's waiting
/// (`GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`).
pub fn torch_environment(is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    if is_set("GOMP_SPINCOUNT") || is_set("OMP_WAIT_POLICY") {
        Vec::new()
    } else {
        vec![OPENMP_SPIN]
    }
}

/// Prints an error (never panics) and turns the result into the exit status.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-joined, leaving out a cause whose text the message
/// already holds (errors that name their source in their own message).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

#[cfg(test)]
mod tests {
    use super::{error_text, torch_environment, OPENMP_SPIN};

    #[test]
    fn the_openmp_spin_is_set_unless_the_user_chose_one() {
        assert_eq!(torch_environment(|_| false), vec![OPENMP_SPIN]);
        assert!(torch_environment(|v| v == "GOMP_SPINCOUNT").is_empty());
        assert!(torch_environment(|v| v == "OMP_WAIT_POLICY").is_empty());
    }

    #[test]
    fn a_cause_the_message_already_names_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read x.xml: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Read { source: io }).context("exporting imgs");
        assert_eq!(
            error_text(&e),
            "exporting imgs: cannot read x.xml: No such file"
        );
    }
}
