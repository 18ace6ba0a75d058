//! A detector over a video's frames: FFmpeg decodes, the detector runs on every N-th
//! frame in batches, and an annotated copy of the video (boxes, classes and scores on
//! every frame; frames between two detected ones show the earlier one's boxes) is encoded
//! by FFmpeg. A run that stops early (a truncated video, a detector error, the encoder
//! failing) keeps everything before the frame where it stopped: its detections are
//! returned and the annotated video is finished up to there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::draw::{annotate, class_color, Annotation};
use super::extract::{Sampler, Sampling};
use super::ffmpeg::{probe, Frame, FrameReader, FrameWriter, VideoInfo};
use super::VideoError;
use crate::detector::inference::{Detector, InferenceError, PredictConfig};
use crate::detector::maths::postprocess::Detection;

/// Frames held back while a batch fills are capped at this many bytes.
const PENDING_BYTES: usize = 256 << 20;

/// What to run on.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoDetectOptions {
    /// The video file or `/dev/videoN`.
    pub input: PathBuf,
    /// Write an annotated copy of the video here.
    pub out_video: Option<PathBuf>,
    /// Detect on every N-th frame (N ≥ 1).
    pub every: u64,
    /// Stop after this many frames (for a live camera).
    pub max_frames: Option<u64>,
    /// Thresholds, NMS and the batch size.
    pub config: PredictConfig,
}

/// The detections of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameDetections {
    /// 0-based frame index in the video.
    pub index: u64,
    /// Presentation time in seconds.
    pub time: f64,
    /// Boxes in frame pixels, by descending score.
    pub detections: Vec<Detection>,
}

/// Progress of a run, after each batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VideoProgress {
    pub frames_read: u64,
    /// The video's frame count, when known (capped by `max_frames`).
    pub frames_total: Option<u64>,
    pub frames_detected: usize,
    pub elapsed: Duration,
}

/// Why a run stopped before the end of the video.
#[derive(Debug, thiserror::Error)]
pub enum VideoDetectError {
    #[error(transparent)]
    Video(#[from] VideoError),
    /// The detector failed on the batch starting at `frame`.
    #[error("the detector failed at frame {frame} (counting from 0): {source}")]
    Detector { frame: u64, source: InferenceError },
}

impl VideoDetectError {
    /// The frame where the run stopped, when it stopped at one.
    pub fn frame(&self) -> Option<u64> {
        match self {
            Self::Video(e) => e.frame(),
            Self::Detector { frame, .. } => Some(*frame),
        }
    }
}

/// The outcome of [`detect_video`]: everything done, and the error that ended it early.
#[derive(Debug)]
pub struct VideoRun {
    pub info: VideoInfo,
    /// The detected frames, in order.
    pub frames: Vec<FrameDetections>,
    /// Frames decoded.
    pub frames_read: u64,
    /// Frames in the annotated video (when one was asked for and finished).
    pub frames_encoded: Option<u64>,
    /// Warnings FFmpeg reported on frames it could still decode.
    pub warnings: Vec<String>,
    /// Why the run stopped before the end of the video.
    pub error: Option<VideoDetectError>,
    pub elapsed: Duration,
}

/// Runs `detector` over `options.input`. Fails only when the video cannot be opened at
/// all; a run that stops on the way is returned with [`VideoRun::error`] set and what
/// came before kept (the annotated video included).
pub fn detect_video(
    detector: &Detector,
    options: &VideoDetectOptions,
    progress: &mut dyn FnMut(VideoProgress),
) -> Result<VideoRun, VideoError> {
    let every = Sampling::Every(options.every).validate()?;
    let info = probe(&options.input)?;
    let mut writer = match &options.out_video {
        Some(path) => Some(FrameWriter::create(
            path,
            info.width,
            info.height,
            info.fps.unwrap_or(25.0),
        )?),
        None => None,
    };
    let mut reader = FrameReader::open(&options.input, &info)?;
    let start = Instant::now();
    let total = match (info.expected_frames(), options.max_frames) {
        (Some(e), Some(m)) => Some(e.min(m)),
        (e, m) => e.or(m),
    };
    let mut run = VideoRun {
        info: info.clone(),
        frames: Vec::new(),
        frames_read: 0,
        frames_encoded: None,
        warnings: Vec::new(),
        error: None,
        elapsed: Duration::ZERO,
    };
    let mut pipeline = Pipeline {
        detector,
        config: options.config,
        names: detector.class_names().to_vec(),
        writer: writer.as_mut(),
        pending: Vec::new(),
        held: Vec::new(),
    };
    let batch = options.config.batch_size.max(1);
    let mut sampler = Sampler::new(every);
    let mut detect_waiting = 0;
    let end: Result<(), VideoDetectError> = loop {
        if options.max_frames.is_some_and(|m| run.frames_read >= m) {
            break Ok(());
        }
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        run.frames_read = frame.index + 1;
        let detect = sampler.keep(frame.index, frame.time);
        if !detect && pipeline.writer.is_none() {
            continue;
        }
        detect_waiting += usize::from(detect);
        pipeline.pending.push((frame, detect));
        let held_bytes = pipeline.pending.len() * info.frame_bytes();
        if detect_waiting >= batch || held_bytes >= PENDING_BYTES {
            detect_waiting = 0;
            if let Err(e) = pipeline.flush(&mut run.frames) {
                break Err(e);
            }
            progress(VideoProgress {
                frames_read: run.frames_read,
                frames_total: total,
                frames_detected: run.frames.len(),
                elapsed: start.elapsed(),
            });
        }
    };
    // The frames read before a decoding error are complete: they are detected and
    // written. After an error of the detector or the encoder, nothing more is.
    let end = match end {
        Err(VideoDetectError::Video(e @ VideoError::Decode { .. })) => {
            pipeline.flush(&mut run.frames).and(Err(e.into()))
        }
        Err(e) => Err(e),
        Ok(()) => pipeline.flush(&mut run.frames),
    };
    run.warnings = reader
        .problems()
        .into_iter()
        .map(|(frame, text)| format!("near frame {frame}: {text}"))
        .collect();
    drop(reader);
    drop(pipeline);
    run.error = end.err();
    if let Some(writer) = writer {
        match writer.finish() {
            Ok(n) => run.frames_encoded = Some(n),
            Err(e) => {
                if run.error.is_none() {
                    run.error = Some(e.into());
                }
            }
        }
    }
    run.elapsed = start.elapsed();
    progress(VideoProgress {
        frames_read: run.frames_read,
        frames_total: total,
        frames_detected: run.frames.len(),
        elapsed: run.elapsed,
    });
    Ok(run)
}

/// Frames waiting for a batch, and the way out to the annotated video.
struct Pipeline<'a> {
    detector: &'a Detector,
    config: PredictConfig,
    names: Vec<String>,
    writer: Option<&'a mut FrameWriter>,
    /// Frames in order, each with whether it is detected on.
    pending: Vec<(Frame, bool)>,
    /// The detections drawn on frames that are not detected on (the last detected
    /// frame's).
    held: Vec<Detection>,
}

impl Pipeline<'_> {
    /// Detects on the pending frames marked for it (one network batch), records their
    /// detections and writes every pending frame to the annotated video.
    fn flush(&mut self, out: &mut Vec<FrameDetections>) -> Result<(), VideoDetectError> {
        let mut pending = std::mem::take(&mut self.pending);
        let images: Vec<RgbImage> = pending
            .iter_mut()
            .filter(|(_, detect)| *detect)
            .map(|(frame, _)| std::mem::take(&mut frame.image))
            .collect();
        let predicted = if images.is_empty() {
            Ok(Vec::new())
        } else {
            let config = PredictConfig {
                batch_size: images.len(),
                ..self.config
            };
            self.detector.predict_images(&images, &config)
        };
        let predictions = match predicted {
            Ok(p) => p,
            Err(source) => {
                // The frames before the first one of the failed batch are still written.
                let frame = pending
                    .iter()
                    .find(|(_, detect)| *detect)
                    .map_or(0, |(f, _)| f.index);
                for (f, _) in pending.iter_mut().take_while(|(_, detect)| !*detect) {
                    self.write(&mut f.image)?;
                }
                return Err(VideoDetectError::Detector { frame, source });
            }
        };
        let mut predictions = predictions.into_iter();
        let mut images = images.into_iter();
        for (frame, detect) in &mut pending {
            if let (true, Some(mut image)) = (*detect, images.next()) {
                let detections = predictions.next().map(|p| p.detections).unwrap_or_default();
                self.held = detections.clone();
                out.push(FrameDetections {
                    index: frame.index,
                    time: frame.time,
                    detections,
                });
                self.write(&mut image)?;
            } else {
                self.write(&mut frame.image)?;
            }
        }
        Ok(())
    }

    /// Draws the held detections on `image` and encodes it (when a video is written).
    fn write(&mut self, image: &mut RgbImage) -> Result<(), VideoDetectError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let annotations: Vec<Annotation> = self
            .held
            .iter()
            .map(|d| {
                let name = self.names.get(d.class_id).map_or("?", String::as_str);
                Annotation {
                    bbox: d.bbox,
                    text: format!("{name} {:.2}", d.score),
                    color: class_color(name),
                }
            })
            .collect();
        annotate(image, &annotations);
        writer.write(image)?;
        Ok(())
    }
}
