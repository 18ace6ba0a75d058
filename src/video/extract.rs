//! Frame extraction: every N-th frame (or R frames per second) of a video written into a
//! folder as JPEG (or PNG) images ready to label — the usual way a labelling set is made
//! from store footage. Frames are decoded by FFmpeg ([`super::ffmpeg`]) and the images
//! encoded on all cores while FFmpeg decodes ahead; each image is written atomically.

use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;

use super::ffmpeg::{probe, FrameReader, VideoInfo};
use super::VideoError;

/// Which frames to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Frames 0, N, 2N, … (N ≥ 1).
    Every(u64),
    /// About R frames per second of video time (the first frame of each 1/R-second
    /// slot, by the frames' timestamps).
    PerSecond(f64),
}

impl Sampling {
    /// Checks the parameter: N ≥ 1, R finite and > 0.
    pub fn validate(self) -> Result<Self, VideoError> {
        match self {
            Self::Every(0) => Err(VideoError::Setting("every N-th frame needs N ≥ 1".into())),
            Self::PerSecond(r) if !(r.is_finite() && r > 0.0) => Err(VideoError::Setting(format!(
                "{r} frames per second: a positive number is needed"
            ))),
            ok => Ok(ok),
        }
    }

    /// The number of frames kept out of `frames` at `fps` (an estimate for
    /// [`Sampling::PerSecond`]).
    pub fn kept_of(self, frames: u64, fps: Option<f64>) -> u64 {
        match self {
            Self::Every(n) => frames.div_ceil(n.max(1)),
            Self::PerSecond(r) => match fps {
                Some(fps) if fps > 0.0 && r < fps => {
                    ((frames as f64 / fps) * r).ceil().min(frames as f64) as u64
                }
                _ => frames,
            },
        }
    }
}

/// Decides frame by frame which frames a [`Sampling`] keeps.
#[derive(Clone, Debug)]
pub struct Sampler {
    sampling: Sampling,
    /// For `PerSecond`: the first frame's time, and the next slot to fill.
    start: Option<f64>,
    next_slot: u64,
}

impl Sampler {
    pub fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            start: None,
            next_slot: 0,
        }
    }

    /// Whether frame `index` at `time` seconds is kept (call once per frame, in order).
    pub fn keep(&mut self, index: u64, time: f64) -> bool {
        match self.sampling {
            Sampling::Every(n) => index.is_multiple_of(n.max(1)),
            Sampling::PerSecond(rate) => {
                let start = *self.start.get_or_insert(time);
                let slot = ((time - start).max(0.0) * rate + 1e-9).floor();
                let slot = if slot.is_finite() { slot as u64 } else { 0 };
                if slot >= self.next_slot {
                    self.next_slot = slot + 1;
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// The image format frames are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFormat {
    /// JPEG at this quality (1–100).
    Jpeg(u8),
    Png,
}

impl FrameFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg(_) => "jpg",
            Self::Png => "png",
        }
    }

    /// Encodes `image`.
    fn encode(self, image: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
        let mut bytes = Vec::new();
        match self {
            Self::Jpeg(q) => {
                let encoder =
                    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, q.clamp(1, 100));
                image.write_with_encoder(encoder)?;
            }
            Self::Png => {
                let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
                image.write_with_encoder(encoder)?;
            }
        }
        Ok(bytes)
    }
}

/// What to extract.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtractOptions {
    /// The video file (or `/dev/videoN`).
    pub video: PathBuf,
    /// The folder to write into (created when missing).
    pub out_dir: PathBuf,
    pub sampling: Sampling,
    pub format: FrameFormat,
    /// Stop after this many frames have been read (for a live camera).
    pub max_frames: Option<u64>,
}

impl ExtractOptions {
    /// Every `every`-th frame of `video` into `out_dir` as JPEG (quality 92).
    pub fn new(video: PathBuf, out_dir: PathBuf, sampling: Sampling) -> Self {
        Self {
            video,
            out_dir,
            sampling,
            format: FrameFormat::Jpeg(92),
            max_frames: None,
        }
    }
}

/// Progress of an extraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractProgress {
    /// Frames decoded so far.
    pub frames_read: u64,
    /// The video's frame count, when known.
    pub frames_total: Option<u64>,
    /// Images written so far.
    pub written: usize,
}

/// What an extraction did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtractSummary {
    pub out_dir: PathBuf,
    /// Frames decoded.
    pub frames_read: u64,
    /// The images written, in frame order.
    pub written: Vec<PathBuf>,
    /// Images of the same name that were already in the folder (left as they were).
    pub kept_existing: usize,
    /// Warnings FFmpeg reported on frames it could still decode.
    pub warnings: Vec<String>,
    /// The run was stopped by the caller.
    pub cancelled: bool,
}

impl ExtractSummary {
    /// One line for a status bar or the terminal.
    pub fn report(&self) -> String {
        let mut s = format!(
            "wrote {} images from {} frames to {}",
            self.written.len(),
            self.frames_read,
            self.out_dir.display()
        );
        if self.kept_existing > 0 {
            s.push_str(&format!(
                " ({} already there were kept)",
                self.kept_existing
            ));
        }
        if self.cancelled {
            s.push_str(" (stopped)");
        }
        s
    }
}

/// An extraction that stopped on an error, with what was written before it (complete
/// images only).
#[derive(Debug, thiserror::Error)]
#[error("{error} ({} images written before it)", .done.written.len())]
pub struct ExtractFailed {
    pub done: Box<ExtractSummary>,
    pub error: VideoError,
}

/// The image path of frame `index` of `video` in `out_dir`: `{video stem}_{index:06}.ext`.
pub fn frame_path(out_dir: &Path, video: &Path, index: u64, format: FrameFormat) -> PathBuf {
    out_dir.join(format!(
        "{}_{index:06}.{}",
        frame_stem(video),
        format.extension()
    ))
}

/// The name frame images of `video` start with.
fn frame_stem(video: &Path) -> String {
    video
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "frame".into())
}

/// Whether `name` is the name of a frame image of `video` ([`frame_path`]).
fn is_frame_name(name: &str, video: &Path, format: FrameFormat) -> bool {
    name.strip_suffix(format.extension())
        .and_then(|n| n.strip_suffix('.'))
        .and_then(|n| n.rsplit_once('_'))
        .is_some_and(|(stem, index)| {
            stem == frame_stem(video)
                && !index.is_empty()
                && index.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Extracts the frames `options` asks for. `progress` is called after each frame;
/// `stop()` returning `true` ends the run early (what is written stays).
pub fn extract_frames(
    options: &ExtractOptions,
    progress: &dyn Fn(ExtractProgress),
    stop: &dyn Fn() -> bool,
) -> Result<ExtractSummary, ExtractFailed> {
    let mut done = ExtractSummary {
        out_dir: options.out_dir.clone(),
        ..ExtractSummary::default()
    };
    let fail = |done: ExtractSummary, error: VideoError| ExtractFailed {
        done: Box::new(done),
        error,
    };
    let sampling = match options.sampling.validate() {
        Ok(s) => s,
        Err(e) => return Err(fail(done, e)),
    };
    let info = match probe(&options.video) {
        Ok(info) => info,
        Err(e) => return Err(fail(done, e)),
    };
    if let Err(source) = std::fs::create_dir_all(&options.out_dir) {
        let error = VideoError::Io {
            path: options.out_dir.display().to_string(),
            source,
        };
        return Err(fail(done, error));
    }
    // What a killed extraction of this video left: its temporary images.
    crate::atomic::remove_dead_writers_files(&options.out_dir, |n| {
        crate::atomic::temp_file_target(n)
            .filter(|(target, _)| is_frame_name(target, &options.video, options.format))
            .map(|(_, pid)| pid)
    });
    let mut reader = match FrameReader::open(&options.video, &info) {
        Ok(r) => r,
        Err(e) => return Err(fail(done, e)),
    };
    let total = total_frames(&info, options.max_frames);
    let mut sampler = Sampler::new(sampling);
    let batch_size = rayon::current_num_threads().max(1) * 2;
    let mut batch: Vec<(u64, RgbImage)> = Vec::with_capacity(batch_size);
    let report = |done: &ExtractSummary| {
        progress(ExtractProgress {
            frames_read: done.frames_read,
            frames_total: total,
            written: done.written.len(),
        })
    };
    let outcome = loop {
        if stop() {
            done.cancelled = true;
            break Ok(());
        }
        if options.max_frames.is_some_and(|m| done.frames_read >= m) {
            break Ok(());
        }
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        done.frames_read = frame.index + 1;
        if sampler.keep(frame.index, frame.time) {
            batch.push((frame.index, frame.image));
        }
        if batch.len() >= batch_size {
            if let Err(e) = write_batch(options, &mut batch, &mut done) {
                break Err(e);
            }
        }
        report(&done);
    };
    // The frames read before a decoding error are complete: they are written too.
    let outcome = match outcome {
        Ok(()) => write_batch(options, &mut batch, &mut done),
        Err(e @ VideoError::Decode { .. }) => {
            write_batch(options, &mut batch, &mut done).and(Err(e))
        }
        Err(e) => Err(e),
    };
    done.warnings = reader
        .problems()
        .into_iter()
        .map(|(frame, text)| format!("near frame {frame}: {text}"))
        .collect();
    drop(reader);
    report(&done);
    match outcome {
        Ok(()) => Ok(done),
        Err(error) => Err(fail(done, error)),
    }
}

/// The frames to expect, for a progress bar.
fn total_frames(info: &VideoInfo, max_frames: Option<u64>) -> Option<u64> {
    match (info.expected_frames(), max_frames) {
        (Some(e), Some(m)) => Some(e.min(m)),
        (e, m) => e.or(m),
    }
}

/// Encodes the batch in parallel and writes it (atomically, in frame order); an image
/// of the same name that is already there is kept.
fn write_batch(
    options: &ExtractOptions,
    batch: &mut Vec<(u64, RgbImage)>,
    done: &mut ExtractSummary,
) -> Result<(), VideoError> {
    let results: Vec<(u64, PathBuf, Result<bool, VideoError>)> = batch
        .par_drain(..)
        .map(|(index, image)| {
            let path = frame_path(&options.out_dir, &options.video, index, options.format);
            if path.exists() {
                return (index, path, Ok(false));
            }
            let written = options
                .format
                .encode(&image)
                .map_err(|e| VideoError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })
                .and_then(|bytes| {
                    crate::atomic::write_atomic(&path, &bytes).map_err(|source| VideoError::Io {
                        path: path.display().to_string(),
                        source,
                    })
                })
                .map(|()| true);
            (index, path, written)
        })
        .collect();
    settle(results, done)
}

/// Records a batch's results in frame order up to the first failure. The images of later
/// frames, written in parallel before the failure was known, are removed: what is left is
/// every frame before the failed one, without a gap.
fn settle(
    results: Vec<(u64, PathBuf, Result<bool, VideoError>)>,
    done: &mut ExtractSummary,
) -> Result<(), VideoError> {
    let mut failure = None;
    for (index, path, result) in results {
        match (&failure, result) {
            (None, Ok(true)) => done.written.push(path),
            (None, Ok(false)) => done.kept_existing += 1,
            (None, Err(e)) => {
                failure = Some(VideoError::Write {
                    frame: index,
                    reason: e.to_string(),
                })
            }
            (Some(_), Ok(true)) => {
                let _ = std::fs::remove_file(&path);
            }
            (Some(_), _) => {}
        }
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_frame_leaves_no_later_image_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = |i: u64| dir.path().join(format!("f{i}.png"));
        for i in [0, 2, 3] {
            std::fs::write(path(i), b"image").unwrap();
        }
        let failed = VideoError::Io {
            path: path(1).display().to_string(),
            source: std::io::Error::other("No space left on device"),
        };
        let results = vec![
            (0, path(0), Ok(true)),
            (1, path(1), Err(failed)),
            (2, path(2), Ok(true)),
            (3, path(3), Ok(false)),
        ];
        let mut done = ExtractSummary::default();
        let err = settle(results, &mut done).unwrap_err();
        assert!(matches!(err, VideoError::Write { frame: 1, .. }), "{err}");
        assert_eq!(done.written, vec![path(0)]);
        assert!(path(0).exists() && !path(2).exists());
        assert!(path(3).exists(), "an image that was there before stays");
    }

    use super::*;

    #[test]
    fn every_nth_keeps_multiples() {
        let mut s = Sampler::new(Sampling::Every(3));
        let kept: Vec<u64> = (0..10).filter(|&i| s.keep(i, i as f64 / 25.0)).collect();
        assert_eq!(kept, [0, 3, 6, 9]);
        assert_eq!(Sampling::Every(3).kept_of(10, None), 4);
        assert!(Sampling::Every(0).validate().is_err());
    }

    #[test]
    fn per_second_keeps_one_frame_per_slot_by_timestamp() {
        // 10 fps, 2 per second: frames 0, 5, 10, 15.
        let mut s = Sampler::new(Sampling::PerSecond(2.0));
        let kept: Vec<u64> = (0..20)
            .filter(|&i| s.keep(i, 3.0 + i as f64 / 10.0))
            .collect();
        assert_eq!(kept, [0, 5, 10, 15]);
        // Variable frame rate: a gap keeps the next frame, never two in one slot.
        let mut s = Sampler::new(Sampling::PerSecond(1.0));
        let times = [0.0, 0.4, 0.9, 1.0, 1.2, 3.5, 3.6, 4.01];
        let kept: Vec<usize> = (0..times.len())
            .filter(|&i| s.keep(i as u64, times[i]))
            .collect();
        assert_eq!(kept, [0, 3, 5, 7]);
        // More per second than the video has: every frame.
        assert_eq!(Sampling::PerSecond(50.0).kept_of(20, Some(10.0)), 20);
        assert_eq!(Sampling::PerSecond(2.0).kept_of(20, Some(10.0)), 4);
        assert!(Sampling::PerSecond(0.0).validate().is_err());
        assert!(Sampling::PerSecond(f64::NAN).validate().is_err());
    }

    #[test]
    fn frame_names_sort_in_frame_order() {
        let p = frame_path(
            Path::new("out"),
            Path::new("/videos/aisle 3.mp4"),
            42,
            FrameFormat::Jpeg(90),
        );
        assert_eq!(p, Path::new("out/aisle 3_000042.jpg"));
        let cam = frame_path(
            Path::new("o"),
            Path::new("/dev/video0"),
            7,
            FrameFormat::Png,
        );
        assert_eq!(cam, Path::new("o/video0_000007.png"));
    }
}
