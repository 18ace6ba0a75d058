//! The app's one-shot background jobs (COCO export, the demo dataset, moving an image to
//! the trash, the native file dialog): starting them and applying what they answer.

use std::path::{Path, PathBuf};

use super::jobs::{repaint, spawn_export, spawn_picker, Job, PickAnswer, PickPurpose};
use super::training::EXIT_WAIT;
use super::ui_state::{ExportForm, SplitChoice};
use super::AppState;
use crate::export::{ExportOptions, ExportSummary, Layout, SplitMode};

/// The jobs in flight, at most one of each kind, and the last export's result.
#[derive(Default)]
pub struct Jobs {
    /// The COCO export.
    pub export: Option<Job<Result<ExportSummary, String>>>,
    /// The last export's summary or error (shown in the dialog).
    pub export_result: Option<Result<ExportSummary, String>>,
    /// The native file dialog.
    pub picker: Option<Job<(PickPurpose, PickAnswer)>>,
    /// Writing the demo dataset.
    pub demo: Option<Job<Result<PathBuf, String>>>,
    /// Moving an image to the trash.
    pub trash: Option<Job<Result<PathBuf, String>>>,
    /// Extracting a video's frames (File → Extract frames…), and probing the video.
    pub frames: super::extract_frames::FramesJobs,
}

/// Photos of the dense shelf demo made from the app (about 2 s each on two cores).
const DENSE_DEMO_IMAGES: usize = 20;

impl AppState {
    /// Moves the current image (not its labels) to the system trash, on a thread; the
    /// list changes when it is done ([`Self::poll_jobs`]).
    pub fn delete_image(&mut self, path: &Path) {
        if self.jobs.trash.is_some() {
            return;
        }
        let path = path.to_path_buf();
        self.jobs.trash = Some(Job::spawn("trash", repaint(self.ctx.clone()), move |_| {
            trash::delete(&path)
                .map(|()| path.clone())
                .map_err(|e| format!("cannot move {} to the trash: {e}", path.display()))
        }));
    }

    /// Takes a trashed image out of the list (and off the screen when it is shown).
    fn image_trashed(&mut self, path: &Path) {
        self.info(format!("moved {} to the trash", path.display()));
        if let Some(loader) = &mut self.workspace.loader {
            loader.forget(path);
        }
        let Some(session) = &mut self.workspace.session else {
            return;
        };
        let Some(i) = session.index_of(path) else {
            return;
        };
        session.remove_image(i);
        let remaining = session.images.len();
        let ws = &mut self.workspace;
        match ws.current {
            Some(c) if c == i => {
                ws.doc = None;
                ws.current = None;
                ws.labels_ticket = None;
                if remaining > 0 {
                    self.load_image(i.min(remaining - 1));
                }
            }
            Some(c) if c > i => ws.current = Some(c - 1),
            _ => {}
        }
    }

    /// Opens a native picker (off the UI thread); the answer arrives in `poll_jobs`.
    pub fn pick(&mut self, purpose: PickPurpose) {
        if self.jobs.picker.is_some() || self.ui.file_browser.is_some() {
            return;
        }
        let start = self.workspace.session.as_ref().map(|s| s.root.clone());
        self.jobs.picker = Some(spawn_picker(purpose, start, self.ctx.clone()));
    }

    /// Opens the Export COCO dialog with defaults for the current folder.
    pub fn open_export_dialog(&mut self) {
        let Some(session) = &self.workspace.session else {
            self.fail("open a folder first");
            return;
        };
        let out = session.root.join("coco");
        self.jobs.export_result = None;
        self.ui.export_form = Some(ExportForm {
            split: SplitChoice::Fraction,
            val_fraction: 0.2,
            seed: 0,
            zylo117: false,
            project: "detlab".into(),
            out_dir: out.to_string_lossy().into_owned(),
            difficult_as_crowd: false,
        });
    }

    /// Starts the export described by the dialog (saving the current image first).
    pub fn start_export(&mut self) {
        let (Some(form), Some(session)) = (self.ui.export_form.clone(), &self.workspace.session)
        else {
            return;
        };
        if self.jobs.export.is_some() {
            return;
        }
        let options = ExportOptions {
            images_dir: session.root.clone(),
            labels_dir: session.save_dir.clone(),
            out_dir: PathBuf::from(form.out_dir.trim()),
            classes: self.workspace.classes.clone(),
            split: match form.split {
                SplitChoice::None => SplitMode::None,
                SplitChoice::Fraction => SplitMode::Fraction {
                    val_fraction: form.val_fraction,
                    seed: form.seed,
                },
                SplitChoice::ByFolder => SplitMode::ByFolder,
            },
            layout: if form.zylo117 {
                Layout::Zylo117 {
                    project: form.project.trim().to_string(),
                }
            } else {
                Layout::Plain
            },
            difficult_as_crowd: form.difficult_as_crowd,
            strict: false,
        };
        if !self.leave_current_image() {
            return;
        }
        self.jobs.export_result = None;
        // The export reads the label files: it starts after the pending saves.
        let after = self.workspace.labels.barrier();
        self.jobs.export = Some(spawn_export(options, after, self.ctx.clone()));
    }

    /// Creates the synthetic demo dataset in `folder` in the background, then opens it:
    /// 40 sparse 640 × 480 photos, or (`dense`) 20 shelf photos of 3500 × 2600 with
    /// 80–250 facings of 40 similar SKUs each.
    pub fn create_demo(&mut self, folder: PathBuf, dense: bool) {
        if self.jobs.demo.is_some() {
            return;
        }
        let (images, width, height) = if dense {
            (DENSE_DEMO_IMAGES, 3500, 2600)
        } else {
            (40, 640, 480)
        };
        let options = crate::demo::DemoOptions {
            out_dir: folder.clone(),
            images,
            seed: 0,
            width,
            height,
        };
        let what = if dense {
            "dense shelf demo"
        } else {
            "demo dataset"
        };
        self.info(format!("creating the {what} in {}", folder.display()));
        self.jobs.demo = Some(Job::spawn("demo", repaint(self.ctx.clone()), move |_| {
            let made = if dense {
                crate::demo::generate_dense(&options)
            } else {
                crate::demo::generate(&options)
            };
            match made {
                Ok(_) => Ok(folder),
                // The same demo made there before (nothing is replaced): it is opened.
                Err(crate::demo::DemoError::WouldOverwrite(_))
                    if crate::demo::holds_demo(&options, dense) =>
                {
                    Ok(folder)
                }
                Err(e) => Err(e.to_string()),
            }
        }));
    }

    /// Before the app ends: stops the training runs ([`Self::stop_background_training`])
    /// and lets the threads that run the network (a model loading, a review run, which is
    /// cancelled, a trial, an evaluation) end, at most [`EXIT_WAIT`] in all: a process
    /// that exits while one of them is inside libtorch can crash in its teardown.
    pub fn finish_background_work(&mut self) {
        self.stop_background_training();
        let deadline = std::time::Instant::now() + EXIT_WAIT;
        let left = || deadline.saturating_duration_since(std::time::Instant::now());
        let mut ended = true;
        if let Some(run) = &self.review.run {
            ended &= run.cancel_and_wait(left());
        }
        let jobs_ended = [
            self.review.model_job.as_ref().map(|j| j.wait_end(left())),
            self.review
                .evaluation_job
                .as_ref()
                .map(|j| j.wait_end(left())),
            self.review
                .disagreement_job
                .as_ref()
                .map(|j| j.wait_end(left())),
            self.auto_retrain
                .trial
                .as_ref()
                .and_then(|t| t.job.as_ref())
                .map(|j| j.wait_end(left())),
        ];
        ended &= jobs_ended.into_iter().flatten().all(|e| e);
        if !ended {
            eprintln!("warning: background work did not end within {EXIT_WAIT:?}");
        }
    }

    /// Applies finished background jobs; returns whether anything changed.
    pub fn poll_jobs(&mut self) -> bool {
        let mut changed = false;
        if let Some(result) = self.jobs.picker.as_ref().and_then(Job::result) {
            self.jobs.picker = None;
            changed = true;
            match result {
                Ok((purpose, PickAnswer::Native(Some(path)))) => self.picked(purpose, path),
                Ok((_, PickAnswer::Native(None))) => {}
                Ok((purpose, PickAnswer::Unavailable(reason))) => {
                    self.info(format!(
                        "no native file dialog ({reason}): using detlab's own"
                    ));
                    self.open_file_browser(purpose);
                }
                Err(failed) => {
                    self.fail(format!(
                        "the file dialog failed ({failed}): using detlab's own"
                    ));
                }
            }
        }
        if let Some(result) = self.jobs.export.as_ref().and_then(Job::outcome) {
            self.jobs.export = None;
            changed = true;
            match &result {
                Ok(s) => self.info(format!("exported {} images to COCO", s.total_images())),
                Err(e) => self.info(format!("export failed: {e}")),
            }
            self.jobs.export_result = Some(result);
        }
        if let Some(result) = self.jobs.trash.as_ref().and_then(Job::outcome) {
            self.jobs.trash = None;
            changed = true;
            match result {
                Ok(path) => self.image_trashed(&path),
                Err(e) => self.fail(e),
            }
        }
        if let Some(result) = self.jobs.demo.as_ref().and_then(Job::outcome) {
            self.jobs.demo = None;
            changed = true;
            match result {
                Ok(folder) => self.request_open_folder(folder),
                Err(e) => self.fail(format!("cannot create the demo dataset: {e}")),
            }
        }
        changed |= self.poll_extract_frames();
        changed
    }
}

#[cfg(test)]
mod tests {
    use crate::app::jobs::PickPurpose;
    use crate::app::{AppState, Command};

    fn poll_until(state: &mut AppState, done: impl Fn(&AppState) -> bool) {
        let start = std::time::Instant::now();
        while !done(state) {
            state.poll_background();
            assert!(start.elapsed().as_secs() < 120, "the job never ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Making the demo where it was made before opens it; a folder holding one of the
    /// demo's file names otherwise is refused and keeps its file.
    #[test]
    fn a_demo_folder_is_made_once_then_opened_and_others_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("demo");
        let mut state = AppState::new(
            Default::default(),
            dir.path().join("settings.json"),
            None,
            None,
        );
        for _ in 0..2 {
            state.apply(Command::Picked(PickPurpose::DemoFolder, folder.clone()));
            poll_until(&mut state, |s| s.jobs.demo.is_none());
            assert_eq!(state.error, None);
            poll_until(&mut state, |s| {
                s.workspace
                    .session
                    .as_ref()
                    .is_some_and(|x| x.root == folder)
            });
        }
        let mine = dir.path().join("mine");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("shelf_0001.jpg"), b"my photo").unwrap();
        state.apply(Command::Picked(PickPurpose::DemoFolder, mine.clone()));
        poll_until(&mut state, |s| s.jobs.demo.is_none());
        let error = state.error.clone().unwrap_or_default();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(
            std::fs::read(mine.join("shelf_0001.jpg")).unwrap(),
            b"my photo"
        );
        // Dropping the state waits for a shipped model still loading in the background
        // (leaving during it crashed the process at exit, in 1 run of 9).
    }
}
