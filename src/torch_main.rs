//! `detlab-torch`: the half of detlab linked with libtorch (and CUDA when present). It runs
//! every command, the desktop app included; users start it through `detlab` (`front/`),
//! which hands it the commands that need a network.

use clap::Parser;

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    detlab::commands::finish(cli::run(detlab::commands::Cli::parse().command))
}
