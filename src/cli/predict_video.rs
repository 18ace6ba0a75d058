//! `detlab predict --video`: detections on a video's frames (or a camera's), each with its
//! frame index and timestamp, written atomically as JSON; optionally an annotated copy of
//! the video. Decoding and encoding are FFmpeg's (`detlab::video`). A video that breaks
//! off is an error naming the frame, after the JSON of the frames before it (and the
//! annotated video up to there) is written.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use detlab::video::detect::{detect_video, VideoDetectOptions, VideoProgress, VideoRun};

use detlab::file_id::FileId;

use super::output_checks::{check_not_an_input, check_output_file};
use super::predict::{xywh, PredictArgs};

/// Runs `detlab predict --video VIDEO`.
pub fn run(args: &PredictArgs, video: &Path) -> anyhow::Result<()> {
    if args.gt.is_some() || args.voc_dir.is_some() {
        bail!(
            "--gt and --voc-dir are for images; with --video the output is --out (and --out-video)"
        );
    }
    let mut config = args.detect.predict_config()?;
    check_outputs(args, video)?;
    // A missing FFmpeg or an unreadable video fails before the model loads.
    detlab::video::probe(video).with_context(|| format!("reading {}", video.display()))?;
    let (model_path, det) = args.detect.load_detector()?;
    config.batch_size = args.detect.batch_for(&det);
    let options = VideoDetectOptions {
        input: video.to_path_buf(),
        out_video: args.out_video.clone(),
        every: args.every.unwrap_or(1),
        max_frames: args.max_frames,
        config,
    };
    let bar = detlab::commands::progress_bar("detecting");
    let mut shown_total = None;
    let mut on_progress = |p: VideoProgress| {
        if p.frames_total != shown_total {
            shown_total = p.frames_total;
            bar.set_length(p.frames_total.unwrap_or(0));
        }
        bar.set_position(p.frames_read);
        bar.set_message(format!(
            "detecting, {:.1} fps",
            fps(p.frames_read, p.elapsed)
        ));
    };
    let run = detect_video(&det, &options, &mut on_progress)
        .with_context(|| format!("reading {}", video.display()))?;
    bar.finish_and_clear();

    let classes = det.class_names();
    let doc = json!({
        "model": {
            "file": model_path.display().to_string(),
            "arch": det.meta().arch.name(),
            "input_size": det.input_size(),
            "classes": classes,
        },
        "video": {
            "file": video.display().to_string(),
            "width": run.info.width,
            "height": run.info.height,
            "fps": run.info.fps,
            "frames": run.info.expected_frames(),
            "codec": run.info.codec,
        },
        "every": options.every,
        "frames_read": run.frames_read,
        "complete": run.error.is_none(),
        "error": run.error.as_ref().map(|e| e.to_string()),
        "warnings": run.warnings,
        "frames": run.frames.iter().map(|f| json!({
            "frame": f.index,
            "time": f.time,
            "detections": f.detections.iter().map(|d| json!({
                "bbox": xywh(d),
                "score": d.score,
                "category_id": d.class_id + 1,
                "category": classes.get(d.class_id).map_or("?", String::as_str),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&doc)?;
    detlab::atomic::write_atomic(&args.out, &bytes)
        .with_context(|| format!("writing {}", args.out.display()))?;
    report(&run, args);
    match run.error {
        None => Ok(()),
        Some(e) => Err(anyhow::Error::new(e).context(format!(
            "{} stopped early; the {} frames detected before it are in {}{}",
            video.display(),
            run.frames.len(),
            args.out.display(),
            match (&args.out_video, run.frames_encoded) {
                (Some(v), Some(n)) => format!(" and the {n} frames before it in {}", v.display()),
                _ => String::new(),
            }
        ))),
    }
}

/// Checks `--out` and `--out-video` before any work: each can be written (its folder
/// exists, it is not a folder), neither is the model or the video, and they differ.
fn check_outputs(args: &PredictArgs, video: &Path) -> anyhow::Result<()> {
    let model = args.detect.model_path()?;
    let inputs = [
        ("the model file", model.as_path()),
        ("the input video", video),
    ];
    check_output_file("--out", &args.out)?;
    check_not_an_input("--out", &args.out, inputs)?;
    if let Some(out_video) = &args.out_video {
        check_output_file("--out-video", out_video)?;
        check_not_an_input("--out-video", out_video, inputs)?;
        if FileId::of(out_video).is(&FileId::of(&args.out)) {
            bail!(
                "--out and --out-video are the same file ({}): the JSON would replace the \
                 video; give two different names (nothing was written)",
                args.out.display()
            );
        }
    }
    Ok(())
}

/// Frames per second over `elapsed`.
fn fps(frames: u64, elapsed: Duration) -> f64 {
    frames as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The warnings and the one-line summary.
fn report(run: &VideoRun, args: &PredictArgs) {
    for w in &run.warnings {
        eprintln!("warning: ffmpeg: {w}");
    }
    let total: usize = run.frames.iter().map(|f| f.detections.len()).sum();
    println!(
        "{total} detections on {} of {} frames in {:.1} s ({:.1} frames/s) → {}{}",
        run.frames.len(),
        run.frames_read,
        run.elapsed.as_secs_f64(),
        fps(run.frames_read, run.elapsed),
        args.out.display(),
        match (&args.out_video, run.frames_encoded) {
            (Some(v), Some(_)) => format!(", {}", v.display()),
            _ => String::new(),
        }
    );
}
