//! `ffmpeg` decoding a video into raw RGB frames, each with its index and presentation
//! time (from the `showinfo` filter's log).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use image::RgbImage;

use super::{input_args, spawn, VideoInfo, FFMPEG};
use crate::video::VideoError;

/// Frames decoded ahead of the caller (so that ffmpeg keeps decoding while a frame is
/// being detected on or encoded).
const FRAMES_AHEAD: usize = 4;
/// At most this many of ffmpeg's warning and error lines are kept.
const MAX_MESSAGES: usize = 50;

/// One decoded frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// 0-based position in the stream.
    pub index: u64,
    /// Presentation time in seconds (from the stream's timestamps; `index / fps` when
    /// the stream has none).
    pub time: f64,
    pub image: RgbImage,
}

/// A line ffmpeg wrote on standard error that matters here.
#[derive(Debug)]
enum LogEvent {
    /// `showinfo`'s line for frame `n`, with its time when the frame has one.
    Shown { n: u64, time: Option<f64> },
    /// A warning or an error (the message, its level ≥ error).
    Message { text: String, is_error: bool },
}

/// Parses one line of `ffmpeg -loglevel level+info` output.
fn parse_log_line(line: &str) -> Option<LogEvent> {
    if line.contains("Parsed_showinfo") {
        let rest = &line[line.find("] n:")? + 4..];
        let n = rest.split_whitespace().next()?.parse().ok()?;
        let time = rest
            .split("pts_time:")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite());
        return Some(LogEvent::Shown { n, time });
    }
    let levels = [
        ("[panic]", true),
        ("[fatal]", true),
        ("[error]", true),
        ("[warning]", false),
    ];
    let (tag, is_error) = levels.iter().find(|(tag, _)| line.contains(tag))?;
    let at = line.find(tag)?;
    // "[h264 @ 0x55…] [error] text" → "h264: text".
    let source = line[..at]
        .trim()
        .trim_start_matches('[')
        .split(" @ ")
        .next()
        .unwrap_or("")
        .trim_end_matches(']')
        .trim();
    let message = line[at + tag.len()..].trim();
    if message.is_empty() {
        return None;
    }
    // "NULL" is a parser's context without a name.
    let text = if source.is_empty() || source == "NULL" {
        message.to_string()
    } else {
        format!("{source}: {message}")
    };
    Some(LogEvent::Message {
        text,
        is_error: *is_error,
    })
}

/// Reads ffmpeg's standard error line by line into events, on a thread.
fn spawn_log_reader(
    stderr: impl Read + Send + 'static,
) -> Result<(Receiver<LogEvent>, JoinHandle<()>), std::io::Error> {
    let (tx, rx) = channel();
    let handle = std::thread::Builder::new()
        .name("detlab-ffmpeg-log".into())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Some(event) = parse_log_line(&String::from_utf8_lossy(&line)) {
                            if tx.send(event).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        })?;
    Ok((rx, handle))
}

/// What the thread reading ffmpeg's standard output hands over.
enum Chunk {
    Frame(Vec<u8>),
    /// The output ended after `bytes` bytes of an incomplete frame.
    Partial {
        bytes: usize,
    },
    Failed(std::io::Error),
}

/// A video decoded by `ffmpeg` into raw RGB frames, one at a time.
pub struct FrameReader {
    input: PathBuf,
    info: VideoInfo,
    child: Child,
    frames: Receiver<Chunk>,
    log: Receiver<LogEvent>,
    threads: Vec<JoinHandle<()>>,
    next: u64,
    /// Warnings and errors ffmpeg reported, with the frame they came before.
    messages: Vec<(u64, String, bool)>,
    ended: bool,
}

impl FrameReader {
    /// Starts decoding `input` (probed as `info`) from its first frame.
    pub fn open(input: &Path, info: &VideoInfo) -> Result<Self, VideoError> {
        let size = format!("scale=w={}:h={}", info.width, info.height);
        let mut command = Command::new(FFMPEG);
        command
            .args(["-nostdin", "-hide_banner", "-nostats"])
            .args(["-loglevel", "level+info"])
            .args(input_args(input))
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
            // Every decoded frame once (no frame-rate conversion), at the probed size.
            .args(["-fps_mode", "passthrough"])
            .arg("-vf")
            .arg(format!("showinfo,{size},format=rgb24"))
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(FFMPEG, &mut command)?;
        let io_error = |source| VideoError::Io {
            path: input.display().to_string(),
            source,
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io_error(std::io::Error::other(
                "ffmpeg's pipes are missing",
            )));
        };
        let started = spawn_log_reader(stderr).and_then(|(log, log_thread)| {
            let (tx, frames) = sync_channel(FRAMES_AHEAD);
            let frame_bytes = info.frame_bytes();
            let frame_thread = std::thread::Builder::new()
                .name("detlab-ffmpeg-frames".into())
                .spawn(move || {
                    let mut stdout = stdout;
                    loop {
                        let mut buf = vec![0u8; frame_bytes];
                        let chunk = match read_full(&mut stdout, &mut buf) {
                            Ok(n) if n == frame_bytes => Chunk::Frame(buf),
                            Ok(0) => break,
                            Ok(bytes) => Chunk::Partial { bytes },
                            Err(e) => Chunk::Failed(e),
                        };
                        let last = !matches!(chunk, Chunk::Frame(_));
                        if tx.send(chunk).is_err() || last {
                            break;
                        }
                    }
                })?;
            Ok((log, frames, vec![log_thread, frame_thread]))
        });
        let (log, frames, threads) = match started {
            Ok(parts) => parts,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_error(e));
            }
        };
        Ok(Self {
            input: input.to_path_buf(),
            info: info.clone(),
            child,
            frames,
            log,
            threads,
            next: 0,
            messages: Vec::new(),
            ended: false,
        })
    }

    /// What was probed.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// The next frame; `Ok(None)` at the end of the video. A video that ends before the
    /// frames it declares (truncated), ffmpeg failing, or an incomplete frame is an error
    /// naming the first frame that could not be read.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        if self.ended {
            return Ok(None);
        }
        match self.frames.recv() {
            Ok(Chunk::Frame(bytes)) => {
                let index = self.next;
                self.next += 1;
                let time = self.time_of(index);
                let (w, h) = (self.info.width, self.info.height);
                let image = RgbImage::from_raw(w, h, bytes)
                    .ok_or_else(|| self.decode_error("ffmpeg's frame has the wrong size".into()))?;
                Ok(Some(Frame { index, time, image }))
            }
            Ok(Chunk::Partial { bytes }) => {
                self.ended = true;
                let status = self.wait();
                Err(self.decode_error(format!(
                    "ffmpeg's output stopped inside the frame ({bytes} of {} bytes){}",
                    self.info.frame_bytes(),
                    self.status_note(status)
                )))
            }
            Ok(Chunk::Failed(e)) => {
                self.ended = true;
                let _ = self.child.kill();
                self.wait();
                Err(self.decode_error(format!("reading ffmpeg's output: {e}")))
            }
            Err(_) => {
                self.ended = true;
                self.end_of_stream()
            }
        }
    }

    /// The end of ffmpeg's output: fine, or the point where the video broke off.
    fn end_of_stream(&mut self) -> Result<Option<Frame>, VideoError> {
        let status = self.wait();
        let read = self.next;
        if status.is_some_and(|s| !s.success()) || status.is_none() {
            return Err(self.decode_error(format!("ffmpeg stopped{}", self.status_note(status))));
        }
        let errors = self.messages.iter().any(|(_, _, is_error)| *is_error);
        match self.info.expected_frames() {
            Some(expected) if errors && read < expected => Err(self.decode_error(format!(
                "the video breaks off after {read} of its {expected} frames (truncated or damaged)"
            ))),
            _ => Ok(None),
        }
    }

    /// The time of frame `index`: `showinfo`'s line for it (ffmpeg writes it before the
    /// frame itself), else `index / fps`.
    fn time_of(&mut self, index: u64) -> f64 {
        let fallback = self.info.fps.map_or(0.0, |fps| index as f64 / fps);
        loop {
            // The line precedes the frame on ffmpeg's side; the wait only covers the
            // log thread's scheduling.
            match self.log.recv_timeout(Duration::from_secs(5)) {
                Ok(LogEvent::Shown { n, time }) if n == index => return time.unwrap_or(fallback),
                Ok(LogEvent::Shown { .. }) => {}
                Ok(LogEvent::Message { text, is_error }) => self.note(index, text, is_error),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return fallback,
            }
        }
    }

    fn note(&mut self, frame: u64, text: String, is_error: bool) {
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push((frame, text, is_error));
        }
    }

    /// Waits for ffmpeg and its pipe threads; takes the messages still queued.
    fn wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.wait().ok();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let frame = self.next;
        while let Ok(event) = self.log.try_recv() {
            if let LogEvent::Message { text, is_error } = event {
                self.note(frame, text, is_error);
            }
        }
        status
    }

    fn status_note(&self, status: Option<ExitStatus>) -> String {
        match status {
            Some(s) if s.success() => String::new(),
            Some(s) => format!(" ({s})"),
            None => " (its exit status is unknown)".into(),
        }
    }

    /// A decoding error at the next frame, with ffmpeg's first errors as the detail.
    fn decode_error(&self, what: String) -> VideoError {
        let errors: Vec<&str> = self
            .messages
            .iter()
            .filter(|(_, _, is_error)| *is_error)
            .map(|(_, t, _)| t.as_str())
            .take(3)
            .collect();
        let reason = if errors.is_empty() {
            what
        } else {
            format!("{what}; ffmpeg: {}", errors.join("; "))
        };
        VideoError::Decode {
            input: self.input.display().to_string(),
            frame: self.next,
            reason,
        }
    }

    /// The warnings and errors ffmpeg reported so far, each with the index of the frame
    /// it was reported before (damaged data that ffmpeg concealed, for instance).
    pub fn problems(&self) -> Vec<(u64, String)> {
        self.messages
            .iter()
            .map(|(frame, text, _)| (*frame, text.clone()))
            .collect()
    }

    /// Frames read so far.
    pub fn frames_read(&self) -> u64 {
        self.next
    }
}

impl Drop for FrameReader {
    /// Stops ffmpeg when the caller stops early.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        // Unblock the frame thread (its channel closes with `frames`), then reap.
        let (_, closed) = sync_channel(0);
        drop(std::mem::replace(&mut self.frames, closed));
        let _ = self.child.wait();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_become_frame_times_and_messages() {
        let shown = "[Parsed_showinfo_0 @ 0x55d8] [info] n:  12 pts:   4096 pts_time:0.25    pos: 20683 fmt:yuv420p";
        match parse_log_line(shown) {
            Some(LogEvent::Shown { n, time }) => {
                assert_eq!(n, 12);
                assert_eq!(time, Some(0.25));
            }
            other => panic!("{other:?}"),
        }
        let nopts = "[Parsed_showinfo_0 @ 0x1] [info] n:   3 pts:NOPTS pts_time:NOPTS pos: 1";
        assert!(matches!(
            parse_log_line(nopts),
            Some(LogEvent::Shown { n: 3, time: None })
        ));
        let err = "[h264 @ 0x55d82b043040] [error] Invalid NAL unit size (6006 > 2302).";
        match parse_log_line(err) {
            Some(LogEvent::Message { text, is_error }) => {
                assert_eq!(text, "h264: Invalid NAL unit size (6006 > 2302).");
                assert!(is_error);
            }
            other => panic!("{other:?}"),
        }
        let warn = "[warning] trunc.mp4: corrupt input packet in stream 0";
        assert!(matches!(
            parse_log_line(warn),
            Some(LogEvent::Message {
                is_error: false,
                ..
            })
        ));
        assert!(parse_log_line("[info] Stream mapping:").is_none());
        assert!(parse_log_line("[Parsed_showinfo_0 @ 0x1] [info]   side data").is_none());
    }
}
