//! Video through FFmpeg: decoding a video file or a V4L2 camera into RGB frames and
//! encoding frames into a video, by piping raw frames to and from the `ffmpeg` program
//! (probed with `ffprobe`) — the maintained program does the codecs, detlab none.
//!
//! - [`ffmpeg`]: probe, the decoding pipe ([`FrameReader`]) and the encoding pipe
//!   ([`FrameWriter`]).
//! - [`extract`]: every N-th frame (or R per second) into a folder of images to label.
//! - [`draw`] and [`font`]: boxes, classes and scores drawn on frames.
//! - `detect` (with the `torch` feature): a detector over a video's frames, with an
//!   annotated copy of the video.
//!
//! A video that breaks off (truncated or damaged) is an error naming the first frame that
//! could not be read; what came before it is kept and finished.

#[cfg(feature = "torch")]
pub mod detect;
pub mod draw;
pub mod extract;
pub mod ffmpeg;
pub mod font;

pub use extract::{extract_frames, ExtractOptions, ExtractSummary, FrameFormat, Sampling};
pub use ffmpeg::{probe, Frame, FrameReader, FrameWriter, VideoInfo};

/// File extensions offered as videos in file dialogs (FFmpeg reads many more).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "m2ts", "wmv", "flv",
    "3gp", "ogv",
];

/// Whether `path` has a video extension ([`VIDEO_EXTENSIONS`], any case).
pub fn is_video_path(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Why a video could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// `ffmpeg` or `ffprobe` is not installed (not on `PATH`).
    #[error(
        "`{program}` was not found on PATH: detlab reads and writes video with FFmpeg; \
         install it (Debian/Ubuntu: `apt-get install ffmpeg`, macOS: `brew install ffmpeg`)"
    )]
    Missing { program: &'static str },
    /// The program is there but could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: &'static str,
        source: std::io::Error,
    },
    /// `ffprobe` could not read the input as a video.
    #[error("{input}: not a video FFmpeg can read: {reason}")]
    Probe { input: String, reason: String },
    /// Decoding stopped before the end; frames `0..frame` were read.
    #[error("{input}: reading failed at frame {frame} (counting from 0): {reason}")]
    Decode {
        input: String,
        frame: u64,
        reason: String,
    },
    /// Encoding stopped; frames `0..frame` were written.
    #[error("{output}: writing the video failed at frame {frame} (counting from 0): {reason}")]
    Encode {
        output: String,
        frame: u64,
        reason: String,
    },
    /// The image of frame `frame` could not be written.
    #[error("writing the image of frame {frame}: {reason}")]
    Write { frame: u64, reason: String },
    /// A file or pipe operation failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A setting is out of range (the message says which).
    #[error("{0}")]
    Setting(String),
}

impl VideoError {
    /// The frame where reading or writing stopped, for the errors that have one.
    pub fn frame(&self) -> Option<u64> {
        match self {
            Self::Decode { frame, .. } | Self::Encode { frame, .. } | Self::Write { frame, .. } => {
                Some(*frame)
            }
            _ => None,
        }
    }
}
