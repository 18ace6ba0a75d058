//! `ffmpeg` encoding raw RGB frames into a video file, written atomically.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

use image::RgbImage;

use super::{last_lines, spawn, FFMPEG};
use crate::video::VideoError;

/// A video file being encoded by `ffmpeg` from raw RGB frames. It is written to a
/// temporary file beside the destination and renamed into place by
/// [`FrameWriter::finish`], so that an interrupted run never leaves a half-written file
/// under the destination's name.
pub struct FrameWriter {
    output: PathBuf,
    partial: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    log: Option<JoinHandle<String>>,
    width: u32,
    height: u32,
    written: u64,
}

impl FrameWriter {
    /// Starts encoding `width`×`height` frames at `fps` into `output`, with the encoder
    /// FFmpeg picks for its extension (H.264 for `.mp4` where FFmpeg has libx264),
    /// in yuv420p (padded to even sides) so that common players open it.
    pub fn create(output: &Path, width: u32, height: u32, fps: f64) -> Result<Self, VideoError> {
        let name = output.display().to_string();
        let ext = output
            .extension()
            .and_then(OsStr::to_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| VideoError::Encode {
                output: name.clone(),
                frame: 0,
                reason: "the file name needs an extension that names the format (.mp4, .mkv, …)"
                    .into(),
            })?;
        let file_name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file_name
            .strip_suffix(&format!(".{ext}"))
            .unwrap_or(&file_name);
        let partial =
            output.with_file_name(format!(".{stem}.{}.partial.{ext}", std::process::id()));
        // What a killed run writing this video left: its partial file.
        let folder = output.parent().unwrap_or(Path::new(""));
        let (head, tail) = (format!(".{stem}."), format!(".partial.{ext}"));
        crate::atomic::remove_dead_writers_files(folder, |n| {
            n.strip_prefix(head.as_str())?
                .strip_suffix(tail.as_str())?
                .parse()
                .ok()
        });
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let mut command = Command::new(FFMPEG);
        command
            .args([
                "-nostdin",
                "-hide_banner",
                "-nostats",
                "-loglevel",
                "error",
                "-y",
            ])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .arg("-s")
            .arg(format!("{width}x{height}"))
            .arg("-framerate")
            .arg(format!("{fps}"))
            .args(["-i", "pipe:0"]);
        if ext != "gif" {
            command
                .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
                .args(["-pix_fmt", "yuv420p"]);
        }
        if matches!(ext.as_str(), "mp4" | "m4v" | "mov") {
            command.args(["-movflags", "+faststart"]);
        }
        let mut target = OsString::from("file:");
        target.push(partial.as_os_str());
        command
            .arg(target)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn(FFMPEG, &mut command)?;
        let stdin = child.stdin.take();
        let log = child.stderr.take().and_then(|mut stderr| {
            std::thread::Builder::new()
                .name("detlab-ffmpeg-encode-log".into())
                .spawn(move || {
                    let mut text = String::new();
                    let _ = stderr.read_to_string(&mut text);
                    text
                })
                .ok()
        });
        Ok(Self {
            output: output.to_path_buf(),
            partial,
            child,
            stdin,
            log,
            width,
            height,
            written: 0,
        })
    }

    /// Encodes one frame (of the size given to [`FrameWriter::create`]).
    pub fn write(&mut self, frame: &RgbImage) -> Result<(), VideoError> {
        if frame.dimensions() != (self.width, self.height) {
            return Err(self.error(format!(
                "the frame is {}×{}, the video {}×{}",
                frame.width(),
                frame.height(),
                self.width,
                self.height
            )));
        }
        let Some(stdin) = &mut self.stdin else {
            return Err(self.error("the encoder is closed".into()));
        };
        if let Err(e) = stdin.write_all(frame.as_raw()) {
            // ffmpeg stopped: its own message says why.
            self.stdin = None;
            let _ = self.child.wait();
            let log = self
                .log
                .take()
                .and_then(|t| t.join().ok())
                .unwrap_or_default();
            let _ = std::fs::remove_file(&self.partial);
            let reason = last_lines(&log, 3);
            return Err(self.error(if reason.is_empty() {
                format!("ffmpeg stopped reading frames ({e})")
            } else {
                reason
            }));
        }
        self.written += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.written
    }

    /// Ends the stream, waits for ffmpeg to finalise the file and moves it into place;
    /// returns the number of frames. With no frame written, nothing is created.
    pub fn finish(mut self) -> Result<u64, VideoError> {
        drop(self.stdin.take());
        if self.written == 0 {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.partial);
            return Err(self.error("no frame to write".into()));
        }
        let status = self.child.wait();
        let log = self
            .log
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        match status {
            Ok(s) if s.success() => {}
            other => {
                let _ = std::fs::remove_file(&self.partial);
                let reason = last_lines(&log, 3);
                let status = match other {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(self.error(format!("ffmpeg failed ({status}): {reason}")));
            }
        }
        std::fs::rename(&self.partial, &self.output).map_err(|source| VideoError::Io {
            path: self.output.display().to_string(),
            source,
        })?;
        Ok(self.written)
    }

    fn error(&self, reason: String) -> VideoError {
        VideoError::Encode {
            output: self.output.display().to_string(),
            frame: self.written,
            reason,
        }
    }
}

impl Drop for FrameWriter {
    /// An unfinished writer (an error elsewhere) stops ffmpeg and removes its file.
    fn drop(&mut self) {
        if self.stdin.take().is_some() || matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.partial);
        }
        if let Some(t) = self.log.take() {
            let _ = t.join();
        }
    }
}
