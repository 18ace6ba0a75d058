//! File → Extract frames…: every N-th frame (or R per second) of a video written into a
//! folder as images ready to label, on a background job with progress (FFmpeg decodes,
//! [`crate::video::extract`] writes). The video is probed in the background too, so the
//! dialog can say how many images to expect; the UI thread never waits on either.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::jobs::{repaint, Job};
use super::AppState;
use crate::video::{extract_frames, ExtractOptions, ExtractSummary, Sampling, VideoInfo};

/// What the Extract frames dialog asks the app to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramesAction {
    /// Start extracting as the dialog's form says.
    Start,
    /// Stop the running extraction (what is written stays).
    Stop,
}

/// The Extract frames dialog's choices.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtractForm {
    /// The video chosen.
    pub video: PathBuf,
    /// The output folder (as typed).
    pub out_dir: String,
    /// Keep R frames per second (else every N-th frame).
    pub per_second: bool,
    /// N for every N-th frame.
    pub every: u64,
    /// R frames per second.
    pub rate: f64,
}

impl ExtractForm {
    /// The form for `video`: one frame per second into `{video stem}_frames` beside it.
    pub fn new(video: PathBuf) -> Self {
        let stem = video
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".into());
        let out = video
            .parent()
            .map(|p| p.join(format!("{stem}_frames")))
            .unwrap_or_else(|| PathBuf::from(format!("{stem}_frames")));
        Self {
            video,
            out_dir: out.to_string_lossy().into_owned(),
            per_second: true,
            every: 30,
            rate: 1.0,
        }
    }

    /// The sampling chosen.
    pub fn sampling(&self) -> Sampling {
        if self.per_second {
            Sampling::PerSecond(self.rate)
        } else {
            Sampling::Every(self.every)
        }
    }
}

/// The extraction's background work: the probe of the chosen video, the run, and the
/// last run's outcome.
#[derive(Default)]
pub struct FramesJobs {
    /// Probing the video chosen in the dialog.
    pub probe: Option<Job<Result<VideoInfo, String>>>,
    /// What the probe found (for the dialog).
    pub info: Option<Result<VideoInfo, String>>,
    /// The extraction; its progress counts frames read of the frames expected.
    pub run: Option<Job<Result<ExtractSummary, String>>>,
    /// Set to stop the running extraction.
    pub stop: Arc<AtomicBool>,
    /// Images written so far by the running extraction.
    pub written: Arc<std::sync::atomic::AtomicUsize>,
    /// The last extraction's summary or error (shown in the dialog).
    pub result: Option<Result<ExtractSummary, String>>,
}

impl AppState {
    /// Opens the Extract frames dialog for `video` and probes it in the background.
    pub fn open_extract_dialog(&mut self, video: PathBuf) {
        let frames = &mut self.jobs.frames;
        frames.result = None;
        frames.info = None;
        let probed = video.clone();
        frames.probe = Some(Job::spawn(
            "probe-video",
            repaint(self.ctx.clone()),
            move |_| crate::video::probe(&probed).map_err(|e| e.to_string()),
        ));
        self.ui.extract_form = Some(ExtractForm::new(video));
    }

    /// Carries out what the Extract frames dialog asked for.
    pub fn frames_action(&mut self, action: FramesAction) {
        match action {
            FramesAction::Start => self.start_extract_frames(),
            FramesAction::Stop => self.jobs.frames.stop.store(true, Ordering::Relaxed),
        }
    }

    /// Starts the extraction the dialog describes (one at a time).
    fn start_extract_frames(&mut self) {
        let Some(form) = self.ui.extract_form.clone() else {
            return;
        };
        if self.jobs.frames.run.is_some() {
            return;
        }
        let out_dir = PathBuf::from(form.out_dir.trim());
        if out_dir.as_os_str().is_empty() {
            self.fail("choose a folder for the frames");
            return;
        }
        let sampling = match form.sampling().validate() {
            Ok(s) => s,
            Err(e) => {
                self.fail(e.to_string());
                return;
            }
        };
        let options = ExtractOptions::new(form.video.clone(), out_dir.clone(), sampling);
        let frames = &mut self.jobs.frames;
        frames.result = None;
        frames.stop = Arc::new(AtomicBool::new(false));
        frames.written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop, written) = (frames.stop.clone(), frames.written.clone());
        let wake = self.ctx.clone();
        self.info(format!(
            "extracting frames of {} into {}",
            form.video.display(),
            out_dir.display()
        ));
        self.jobs.frames.run = Some(Job::spawn(
            "extract-frames",
            repaint(self.ctx.clone()),
            move |progress| {
                let report = |p: crate::video::extract::ExtractProgress| {
                    let total = p.frames_total.unwrap_or(0).max(p.frames_read);
                    progress.0.store(p.frames_read as usize, Ordering::Relaxed);
                    progress.1.store(total as usize, Ordering::Relaxed);
                    written.store(p.written, Ordering::Relaxed);
                    if let Some(c) = &wake {
                        c.request_repaint();
                    }
                };
                extract_frames(&options, &report, &|| stop.load(Ordering::Relaxed))
                    .map_err(|e| e.to_string())
            },
        ));
    }

    /// Applies the probe's and the extraction's results; returns whether anything changed.
    pub fn poll_extract_frames(&mut self) -> bool {
        let mut changed = false;
        let frames = &mut self.jobs.frames;
        if let Some(result) = frames.probe.as_ref().and_then(Job::outcome) {
            frames.probe = None;
            frames.info = Some(result);
            changed = true;
        }
        if let Some(result) = self.jobs.frames.run.as_ref().and_then(Job::outcome) {
            self.jobs.frames.run = None;
            changed = true;
            match &result {
                Ok(summary) => self.info(summary.report()),
                Err(e) => self.info(format!("frame extraction failed: {e}")),
            }
            self.jobs.frames.result = Some(result);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_defaults_to_one_frame_per_second_beside_the_video() {
        let form = ExtractForm::new(PathBuf::from("/footage/aisle 3.mp4"));
        assert_eq!(form.out_dir, "/footage/aisle 3_frames");
        assert_eq!(form.sampling(), Sampling::PerSecond(1.0));
        let every = ExtractForm {
            per_second: false,
            ..form
        };
        assert_eq!(every.sampling(), Sampling::Every(30));
    }

    /// Waits (polling as the window does) until `done` holds.
    fn poll_until(state: &mut AppState, done: impl Fn(&AppState) -> bool) {
        let start = std::time::Instant::now();
        while !done(state) {
            state.poll_jobs();
            assert!(start.elapsed().as_secs() < 60, "the job never ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn picking_a_video_probes_it_and_extract_writes_the_frames_in_the_background() {
        use crate::app::jobs::PickPurpose;
        use crate::app::Command;
        let runs = |p: &str| {
            std::process::Command::new(p)
                .arg("-version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !(runs("ffmpeg") && runs("ffprobe")) {
            eprintln!("SKIP: ffmpeg is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // Six 64×48 frames at 3 fps.
        for i in 0..6u8 {
            let img = image::RgbImage::from_pixel(64, 48, image::Rgb([i * 40, 90, 200]));
            img.save(dir.path().join(format!("f{i}.png"))).unwrap();
        }
        let video = dir.path().join("aisle.mkv");
        let made = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-framerate", "3", "-i"])
            .arg(dir.path().join("f%d.png"))
            .args(["-c:v", "ffv1"])
            .arg(&video)
            .status()
            .unwrap();
        assert!(made.success());

        let settings_path = dir.path().join("settings.json");
        let mut state = AppState::new(Default::default(), settings_path, None, None);
        state.apply(Command::Picked(PickPurpose::VideoFile, video.clone()));
        let form = state.ui.extract_form.clone().unwrap();
        assert_eq!(
            PathBuf::from(&form.out_dir),
            dir.path().join("aisle_frames")
        );
        poll_until(&mut state, |s| s.jobs.frames.info.is_some());
        let info = state.jobs.frames.info.clone().unwrap().unwrap();
        assert_eq!(
            (info.width, info.height, info.expected_frames()),
            (64, 48, Some(6))
        );

        if let Some(f) = &mut state.ui.extract_form {
            f.per_second = false;
            f.every = 2;
        }
        state.apply(Command::ExtractFrames(FramesAction::Start));
        assert!(
            state.jobs.frames.run.is_some(),
            "the job runs in the background"
        );
        poll_until(&mut state, |s| s.jobs.frames.run.is_none());
        let summary = state.jobs.frames.result.clone().unwrap().unwrap();
        assert_eq!(summary.frames_read, 6);
        let names: Vec<String> = summary
            .written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["aisle_000000.jpg", "aisle_000002.jpg", "aisle_000004.jpg"]
        );
        assert!(summary.written.iter().all(|p| p.is_file()));
    }
}
