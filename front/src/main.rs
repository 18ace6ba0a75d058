//! `detlab`, the light front. It parses the command line and runs the commands that need
//! no network (`export`, `convert`, `demo`, `eval --gt --dt`) without libtorch in its
//! link, so they start in milliseconds; the app and every other command are handed to
//! `detlab-torch` beside it by `exec`, which keeps the process id, the arguments, the
//! standard streams and the exit status. See README.md, "Architecture".

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use clap::Parser;
use detlab::commands::{finish, run_without_network, torch_environment, Cli};

/// The file name of the network half, beside `detlab`.
const TORCH_BINARY: &str = "detlab-torch";

fn main() -> ExitCode {
    let result = match Cli::parse().command.map(run_without_network) {
        Some(Ok(result)) => result,
        None | Some(Err(_)) => exec_torch_binary(),
    };
    finish(result)
}

/// Replaces this process with `detlab-torch` (same arguments, and libgomp's spin count:
/// [`torch_environment`]); returns only on failure.
fn exec_torch_binary() -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot tell where detlab runs from: {e}"))?;
    let torch = exe.with_file_name(TORCH_BINARY);
    let error = std::process::Command::new(&torch)
        .args(std::env::args_os().skip(1))
        .envs(torch_environment(|v| std::env::var_os(v).is_some()))
        .exec();
    anyhow::bail!(
        "cannot start {} ({error}); it is built beside detlab by `make build`",
        torch.display()
    )
}
