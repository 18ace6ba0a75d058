//! The `detlab` binary: the command line (`cli`), the desktop app it starts, and the
//! benchmarks of BENCHMARKS.md (`bench`), over the `detlab` library.

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
