//! `detlab demo`.

use std::path::PathBuf;

use clap::Args;

use crate::demo::{generate, generate_dense, DemoOptions, DENSE_HEIGHT, DENSE_WIDTH};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder (images, VOC files, predefined_classes.txt).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub images: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image width (default 640, or 3500 with --dense).
    #[arg(long)]
    pub width: Option<u32>,
    /// Image height (default 480, or 2600 with --dense).
    #[arg(long)]
    pub height: Option<u32>,
    /// Dense retail shelves: 80–250 touching, partly occluded facings of 40 similar SKUs
    /// per photo, price tags, gaps, perspective, lighting, blur and noise (default 3500×2600).
    #[arg(long)]
    pub dense: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let (width, height) = if args.dense {
        (DENSE_WIDTH, DENSE_HEIGHT)
    } else {
        (640, 480)
    };
    let options = DemoOptions {
        out_dir: args.out.clone(),
        images: args.images,
        seed: args.seed,
        width: args.width.unwrap_or(width),
        height: args.height.unwrap_or(height),
    };
    let s = if args.dense {
        generate_dense(&options)?
    } else {
        generate(&options)?
    };
    println!(
        "wrote {} images with {} boxes ({} without boxes) to {}",
        s.images,
        s.boxes,
        s.negatives,
        args.out.display()
    );
    Ok(())
}
