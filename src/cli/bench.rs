//! `detlab bench`: the benchmarks recorded in BENCHMARKS.md.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: Bench,
    /// Python with the reference tools (default: $DETLAB_PYTHON).
    #[arg(long, global = true)]
    pub python: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Bench {
    /// COCO export of N synthetic VOC files vs a single-threaded Python conversion.
    Export {
        #[arg(long, default_value_t = 100_000)]
        files: usize,
    },
    /// Labelling-app responsiveness: 10,000-image folder, 12 MP photos, 2,000 boxes.
    Gui,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let python = args
        .python
        .or_else(|| std::env::var_os("DETLAB_PYTHON").map(PathBuf::from));
    let report = match args.which {
        Bench::Export { files } => crate::bench::export::run(files, python.as_deref())?,
        Bench::Gui => crate::bench::gui::run()?,
    };
    println!("{}", report.markdown());
    Ok(())
}
