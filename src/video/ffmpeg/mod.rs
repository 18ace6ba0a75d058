//! The `ffprobe` and `ffmpeg` programs as pipes: [`probe`] reads a video's size, frame
//! rate and frame count (ffprobe's JSON); [`FrameReader`] decodes it into raw RGB frames
//! on ffmpeg's standard output, each with its index and presentation time; and
//! [`FrameWriter`] encodes raw RGB frames written to ffmpeg's standard input into a
//! video file. No codec is written here: FFmpeg, the maintained program, does all of it.
//!
//! Timestamps come from ffmpeg itself: the decoder runs the `showinfo` filter, whose one
//! line per frame on standard error carries the frame's `pts_time`, so that variable
//! frame-rate footage (phones) gets true times, not `index / fps`.

mod probe;
mod reader;
mod writer;

pub use probe::{probe, VideoInfo};
pub use reader::{Frame, FrameReader};
pub use writer::FrameWriter;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command};

use super::VideoError;

/// The decoding program.
pub const FFMPEG: &str = "ffmpeg";
/// The probing program.
pub const FFPROBE: &str = "ffprobe";

/// Whether `input` names a V4L2 capture device (`/dev/videoN`), read with `-f v4l2`.
pub fn is_capture_device(input: &Path) -> bool {
    input.to_string_lossy().starts_with("/dev/video")
}

/// The input arguments for `input`: `-f v4l2` for a capture device, and a `file:` prefix
/// for an existing file so that a `:` in its name is not taken for a protocol.
fn input_args(input: &Path) -> Vec<OsString> {
    let mut args = Vec::new();
    if is_capture_device(input) {
        args.push("-f".into());
        args.push("v4l2".into());
        args.push("-i".into());
        args.push(input.as_os_str().to_owned());
    } else {
        args.push("-i".into());
        if input.is_file() {
            let mut s = OsString::from("file:");
            s.push(input.as_os_str());
            args.push(s);
        } else {
            args.push(input.as_os_str().to_owned());
        }
    }
    args
}

/// Starts `program`; a program that is not installed is [`VideoError::Missing`].
fn spawn(program: &'static str, command: &mut Command) -> Result<Child, VideoError> {
    command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            VideoError::Missing { program }
        } else {
            VideoError::Spawn { program, source }
        }
    })
}

/// The last `n` non-empty lines of `text`, joined with "; ".
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}
