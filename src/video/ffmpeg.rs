//! The `ffprobe` and `ffmpeg` programs as pipes: [`probe`] reads a video's size, frame
//! rate and frame count (ffprobe's JSON); [`FrameReader`] decodes it into raw RGB frames
//! on ffmpeg's standard output, each with its index and presentation time; and
//! [`FrameWriter`] encodes raw RGB frames written to ffmpeg's standard input into a
//! video file. No codec is written here: FFmpeg, the maintained program, does all of it.
//!
//! Timestamps come from ffmpeg itself: the decoder runs the `showinfo` filter, whose one
//! line per frame on standard error carries the frame's `pts_time`, so that variable
//! frame-rate footage (phones) gets true times, not `index / fps`.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use image::RgbImage;

use super::VideoError;
use crate::dataset::image_info::{MAX_PIXELS, MAX_SIDE};

/// The decoding program.
pub const FFMPEG: &str = "ffmpeg";
/// The probing program.
pub const FFPROBE: &str = "ffprobe";

/// Frames decoded ahead of the caller (so that ffmpeg keeps decoding while a frame is
/// being detected on or encoded).
const FRAMES_AHEAD: usize = 4;
/// At most this many of ffmpeg's warning and error lines are kept.
const MAX_MESSAGES: usize = 50;

/// What [`probe`] found out about a video's first video stream.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Frame size as decoded (after the stream's rotation, which ffmpeg applies).
    pub width: u32,
    pub height: u32,
    /// Average frames per second (else the stream's base rate), when known.
    pub fps: Option<f64>,
    /// The number of frames the container declares, when it does.
    pub frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration: Option<f64>,
    /// The codec's short name (`h264`, `mjpeg`, …).
    pub codec: String,
}

impl VideoInfo {
    /// The number of frames to expect: the declared count, else duration × fps rounded;
    /// `None` for a live source or a container that says neither.
    pub fn expected_frames(&self) -> Option<u64> {
        self.frames.or_else(|| match (self.duration, self.fps) {
            (Some(d), Some(f)) if d > 0.0 && f > 0.0 => Some((d * f).round() as u64),
            _ => None,
        })
    }

    /// Bytes of one raw RGB frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

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

/// Reads `input`'s first video stream with `ffprobe`.
pub fn probe(input: &Path) -> Result<VideoInfo, VideoError> {
    let name = input.display().to_string();
    let fail = |reason: String| VideoError::Probe {
        input: name.clone(),
        reason,
    };
    if !is_capture_device(input) && !input.exists() {
        return Err(fail("no such file".into()));
    }
    let mut command = Command::new(FFPROBE);
    command
        .args(["-v", "error", "-print_format", "json"])
        .args(["-show_streams", "-show_format", "-select_streams", "v:0"])
        .args(input_args(input))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(FFPROBE, &mut command)?;
    let output = child.wait_with_output().map_err(|source| VideoError::Io {
        path: name.clone(),
        source,
    })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let reason = last_lines(&text, 3);
        return Err(fail(if reason.is_empty() {
            format!("ffprobe failed ({})", output.status)
        } else {
            reason
        }));
    }
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| fail(format!("ffprobe's answer is not JSON: {e}")))?;
    parse_probe(&doc).map_err(fail)
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

/// [`VideoInfo`] from ffprobe's `-show_streams -show_format` JSON.
fn parse_probe(doc: &serde_json::Value) -> Result<VideoInfo, String> {
    let stream = doc["streams"]
        .as_array()
        .and_then(|s| s.first())
        .ok_or("it has no video stream")?;
    let dim = |key: &str| -> Result<u32, String> {
        stream[key]
            .as_u64()
            .filter(|&v| v > 0 && v <= u64::from(MAX_SIDE))
            .map(|v| v as u32)
            .ok_or_else(|| format!("the video stream has no usable {key} ({})", stream[key]))
    };
    let (mut width, mut height) = (dim("width")?, dim("height")?);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "{width}×{height} pixels is larger than detlab accepts"
        ));
    }
    if rotation(stream).is_some_and(|r| (r.round() as i64).rem_euclid(180) == 90) {
        std::mem::swap(&mut width, &mut height);
    }
    let rate = |key: &str| stream[key].as_str().and_then(parse_rate);
    let fps = rate("avg_frame_rate").or_else(|| rate("r_frame_rate"));
    let number = |v: &serde_json::Value| -> Option<f64> {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| v.as_f64())
            .filter(|x| x.is_finite() && *x > 0.0)
    };
    let frames = number(&stream["nb_frames"]).map(|f| f as u64);
    let duration = number(&stream["duration"]).or_else(|| number(&doc["format"]["duration"]));
    Ok(VideoInfo {
        width,
        height,
        fps,
        frames,
        duration,
        codec: stream["codec_name"].as_str().unwrap_or("?").to_string(),
    })
}

/// The stream's rotation in degrees (display matrix side data, or the older `rotate`
/// tag), when it has one.
fn rotation(stream: &serde_json::Value) -> Option<f64> {
    let from_side_data = stream["side_data_list"].as_array().and_then(|list| {
        list.iter().find_map(|d| {
            d["rotation"]
                .as_f64()
                .or_else(|| d["rotation"].as_i64().map(|r| r as f64))
        })
    });
    from_side_data.or_else(|| {
        stream["tags"]["rotate"]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
    })
}

/// `30000/1001` or `25` as frames per second; `0/0` (unknown) is `None`.
fn parse_rate(s: &str) -> Option<f64> {
    let rate = match s.split_once('/') {
        Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
        None => s.trim().parse().ok()?,
    };
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_parse_and_unknown_is_none() {
        assert_eq!(parse_rate("25/1"), Some(25.0));
        assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.01);
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("12.5"), Some(12.5));
        assert_eq!(parse_rate("x"), None);
    }

    #[test]
    fn probe_json_gives_size_rate_count_and_rotation() {
        let doc = json!({
            "streams": [{"codec_name": "h264", "width": 320, "height": 240,
                "avg_frame_rate": "4/1", "r_frame_rate": "4/1", "nb_frames": "8",
                "duration": "2.000000"}],
            "format": {"duration": "2.0"}
        });
        let info = parse_probe(&doc).unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.fps, Some(4.0));
        assert_eq!(info.frames, Some(8));
        assert_eq!(info.expected_frames(), Some(8));
        assert_eq!(info.codec, "h264");

        let doc = json!({
            "streams": [{"codec_name": "h264", "width": 320, "height": 240,
                "avg_frame_rate": "0/0", "r_frame_rate": "10/1",
                "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}],
            "format": {"duration": "1.5"}
        });
        let info = parse_probe(&doc).unwrap();
        assert_eq!((info.width, info.height), (240, 320));
        assert_eq!(info.fps, Some(10.0));
        assert_eq!(info.frames, None);
        assert_eq!(info.expected_frames(), Some(15));

        assert!(parse_probe(&json!({"streams": []})).is_err());
        let huge = json!({"streams": [{"width": 40000, "height": 10}]});
        assert!(parse_probe(&huge).is_err());
    }

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
