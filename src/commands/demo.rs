//! `detlab demo`.

use std::path::PathBuf;

use clap::Args;

use crate::demo::{generate, DemoOptions};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder (images, VOC files, predefined_classes.txt).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub images: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    #[arg(long, default_value_t = 480)]
    pub height: u32,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let options = DemoOptions {
        out_dir: args.out.clone(),
        images: args.images,
        seed: args.seed,
        width: args.width,
        height: args.height,
    };
    let s = generate(&options)?;
    println!(
        "wrote {} images with {} boxes ({} without boxes) to {}",
        s.images,
        s.boxes,
        s.negatives,
        args.out.display()
    );
    Ok(())
}
