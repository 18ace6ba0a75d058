//! `detlab extract-frames`: every N-th frame (or R per second) of a video into a folder
//! of images ready to label, decoded by FFmpeg. Needs no network.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::video::{extract_frames, ExtractOptions, FrameFormat, Sampling};

/// Arguments of `detlab extract-frames`.
#[derive(Args, Debug)]
pub struct ExtractFramesArgs {
    /// The video file (anything FFmpeg reads), or a camera such as /dev/video0.
    #[arg(long, value_name = "VIDEO")]
    pub video: PathBuf,
    /// The folder to write the images into (created when missing). Images already there
    /// under the same names are kept.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Keep every N-th frame (frames 0, N, 2N, …).
    #[arg(long, value_name = "N", conflicts_with = "per_second")]
    pub every: Option<u64>,
    /// Keep R frames per second of video (the default: 1).
    #[arg(long, value_name = "R")]
    pub per_second: Option<f64>,
    /// Image format: jpg or png.
    #[arg(long, default_value = "jpg", value_parser = ["jpg", "png"])]
    pub format: String,
    /// JPEG quality (1–100).
    #[arg(long, default_value_t = 92, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Stop after reading this many frames (for a camera).
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
}

impl ExtractFramesArgs {
    /// The sampling asked for (one frame per second by default).
    pub fn sampling(&self) -> Sampling {
        match (self.every, self.per_second) {
            (Some(n), _) => Sampling::Every(n),
            (None, Some(r)) => Sampling::PerSecond(r),
            (None, None) => Sampling::PerSecond(1.0),
        }
    }
}

/// Runs `detlab extract-frames`.
pub fn run(args: ExtractFramesArgs) -> anyhow::Result<()> {
    let mut options = ExtractOptions::new(args.video.clone(), args.out.clone(), args.sampling());
    options.format = if args.format == "png" {
        FrameFormat::Png
    } else {
        FrameFormat::Jpeg(args.quality)
    };
    options.max_frames = args.max_frames;
    let bar = super::progress_bar("extracting");
    let shown_total = AtomicU64::new(0);
    let start = Instant::now();
    let result = extract_frames(
        &options,
        &|p| {
            let total = p.frames_total.unwrap_or(0);
            if shown_total.swap(total, Ordering::Relaxed) != total {
                bar.set_length(total);
            }
            bar.set_position(p.frames_read);
        },
        &|| false,
    );
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    match result {
        Ok(summary) => {
            for w in &summary.warnings {
                eprintln!("warning: ffmpeg: {w}");
            }
            println!(
                "{} in {seconds:.1} s ({:.0} frames/s)",
                summary.report(),
                summary.frames_read as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Err(failed) => Err(failed.error).with_context(|| {
            format!(
                "extracting frames of {} (the {} images before it are written to {})",
                args.video.display(),
                failed.done.written.len(),
                args.out.display()
            )
        }),
    }
}
