//! Background jobs the UI starts and polls: COCO export, demo generation and native
//! file dialogs (which block, so they run off the UI thread too), all one-shot
//! [`Job`]s; and the [`LatestWriter`] service for whole-file writes.
//!
//! The app's other background threads are long-lived services that a one-shot task does
//! not describe; each catches a panic in its work and reports it: the label thread
//! (`label_io`), the image decoders (`image_loader`), the folder scan (`session`), a
//! review run (`review::run`) and a training run (`training`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};

use crate::export::{export_coco, ExportOptions, ExportSummary};

/// A background job of the app: a [`Task`](crate::task::Task) (running, done or failed,
/// a panic included) that repaints the window when it ends.
pub type Job<T> = crate::task::Task<T>;

/// Wakes the window (if any) when a job ends.
pub fn repaint(ctx: Option<egui::Context>) -> impl Fn() + Send + 'static {
    move || {
        if let Some(ctx) = &ctx {
            ctx.request_repaint();
        }
    }
}

/// Writes whole files (settings, the review log) on a thread of its own, so that the UI
/// thread never waits on an fsync. Only the newest value waiting for each path is
/// written: each one replaces the file, so older ones would be overwritten anyway.
///
/// A long-lived service with a queue rather than a one-shot [`Job`]: each write's failure
/// (a panic included) is reported through [`Self::errors`].
pub struct LatestWriter<T> {
    values: Option<Sender<(PathBuf, T)>>,
    errors: Receiver<String>,
    thread: Option<std::thread::JoinHandle<()>>,
    save: fn(&T, &Path) -> Result<(), String>,
}

impl<T: Send + 'static> LatestWriter<T> {
    /// Starts the thread; `save` writes one value to its path, its error being the
    /// message to show.
    pub fn spawn(name: &str, save: fn(&T, &Path) -> Result<(), String>) -> Self {
        let (values, queue) = channel::<(PathBuf, T)>();
        let (report, errors) = channel();
        let spawned = std::thread::Builder::new()
            .name(format!("detlab-{name}"))
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    for (path, value) in queue.try_iter() {
                        match batch.iter_mut().find(|(p, _)| *p == path) {
                            Some(waiting) => waiting.1 = value,
                            None => batch.push((path, value)),
                        }
                    }
                    for (path, value) in batch {
                        // A panic in `save` is this write's failure; the thread lives on.
                        let saved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            save(&value, &path)
                        }))
                        .unwrap_or_else(|p| Err(crate::task::panic_message(p)));
                        if let Err(e) = saved {
                            let _ = report.send(e);
                        }
                    }
                }
            });
        let thread = spawned
            .map_err(|e| eprintln!("cannot start the {name} writer: {e}"))
            .ok();
        Self {
            values: thread.as_ref().map(|_| values),
            errors,
            thread,
            save,
        }
    }

    /// Queues `value` to be written to `path`. Without the thread (it could not start, or
    /// [`Self::finish`] ran) it is written here, and a failure is returned.
    pub fn write(&self, path: PathBuf, value: T) -> Result<(), String> {
        match &self.values {
            Some(values) => match values.send((path, value)) {
                Ok(()) => Ok(()),
                Err(e) => (self.save)(&e.0 .1, &e.0 .0),
            },
            None => (self.save)(&value, &path),
        }
    }

    /// The failures reported since the last call.
    pub fn errors(&self) -> Vec<String> {
        self.errors.try_iter().collect()
    }

    /// Writes what is queued and stops the thread (when the app closes); returns the
    /// failures.
    pub fn finish(&mut self) -> Vec<String> {
        self.values = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.errors()
    }
}

/// Runs a COCO export in the background, with progress, once `after` answers (the label
/// thread's barrier: the saves asked for before are on disk).
pub fn spawn_export(
    options: ExportOptions,
    after: Receiver<()>,
    ctx: Option<egui::Context>,
) -> Job<Result<ExportSummary, String>> {
    let wake = ctx.clone();
    Job::spawn("export", repaint(ctx), move |progress| {
        let _ = after.recv();
        export_coco(&options, &|done, total| {
            progress.0.store(done, Ordering::Relaxed);
            progress.1.store(total, Ordering::Relaxed);
            if let Some(c) = &wake {
                c.request_repaint();
            }
        })
        .map_err(|e| e.to_string())
    })
}

/// What a file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickPurpose {
    OpenFolder,
    OpenFile,
    SaveDir,
    ExportFolder,
    DemoFolder,
    /// The folder the dense shelf demo goes into.
    DenseDemoFolder,
    ModelFile,
    /// A video to extract frames from.
    VideoFile,
    /// The folder extracted frames go into.
    FramesFolder,
}

impl PickPurpose {
    /// The dialog's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::OpenFolder => "Open image folder",
            Self::OpenFile => "Open image",
            Self::SaveDir => "Change save folder",
            Self::ExportFolder => "Export to folder",
            Self::DemoFolder => "Create the demo dataset in",
            Self::DenseDemoFolder => "Create the dense shelf demo in",
            Self::ModelFile => "Open model",
            Self::VideoFile => "Extract frames from video",
            Self::FramesFolder => "Write the frames into",
        }
    }
}

/// What a picker job answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickAnswer {
    /// The native dialog ran: the chosen path, or `None` when it was cancelled.
    Native(Option<PathBuf>),
    /// No native dialog can open on this desktop (the reason): the app shows its own.
    Unavailable(String),
}

/// Opens a native folder/file picker on a thread: the desktop's file-chooser portal, or
/// `zenity` where there is no portal (rfd's own fallback). When neither is there, the
/// answer says so and the app shows its built-in dialog instead.
pub fn spawn_picker(
    purpose: PickPurpose,
    start: Option<PathBuf>,
    ctx: Option<egui::Context>,
) -> Job<(PickPurpose, PickAnswer)> {
    Job::spawn("dialog", repaint(ctx), move |_| {
        if let Some(reason) = native_dialog_problem() {
            return (purpose, PickAnswer::Unavailable(reason));
        }
        let mut dialog = rfd::FileDialog::new();
        if let Some(dir) = start {
            dialog = dialog.set_directory(dir);
        }
        let picked = match purpose {
            PickPurpose::OpenFile => dialog
                .add_filter("images", crate::dataset::scan::IMAGE_EXTENSIONS)
                .pick_file(),
            PickPurpose::ModelFile => dialog
                .add_filter("detlab model", &["safetensors"])
                .pick_file(),
            PickPurpose::VideoFile => dialog
                .add_filter("videos", crate::video::VIDEO_EXTENSIONS)
                .pick_file(),
            _ => dialog.pick_folder(),
        };
        (purpose, PickAnswer::Native(picked))
    })
}

/// Why no native dialog can open here, if it cannot: neither a file-chooser portal on
/// the session bus nor `zenity` on `PATH`, or `DETLAB_BUILTIN_DIALOG` is set.
pub fn native_dialog_problem() -> Option<String> {
    if std::env::var_os("DETLAB_BUILTIN_DIALOG").is_some() {
        return Some("DETLAB_BUILTIN_DIALOG is set".into());
    }
    if file_chooser_portal() || program_on_path("zenity") {
        return None;
    }
    Some("this desktop has no file-chooser portal and zenity is not installed".into())
}

/// Whether the session bus has a desktop portal that implements the file chooser.
fn file_chooser_portal() -> bool {
    let check = || -> zbus::Result<()> {
        let bus = zbus::blocking::Connection::session()?;
        let properties = zbus::blocking::fdo::PropertiesProxy::builder(&bus)
            .destination("org.freedesktop.portal.Desktop")?
            .path("/org/freedesktop/portal/desktop")?
            .build()?;
        let interface =
            zbus::names::InterfaceName::from_static_str("org.freedesktop.portal.FileChooser")?;
        properties.get(interface, "version")?;
        Ok(())
    };
    check().is_ok()
}

fn program_on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(text: &String, path: &Path) -> Result<(), String> {
        crate::atomic::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_newest_value_of_each_file_is_written_and_failures_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
        let mut writer = LatestWriter::spawn("test", save);
        for i in 0..100 {
            writer.write(a.clone(), format!("a{i}")).unwrap();
        }
        writer.write(b.clone(), "b".to_string()).unwrap();
        // A folder cannot be replaced by a file: the failure is reported, not lost.
        writer
            .write(dir.path().to_path_buf(), "x".to_string())
            .unwrap();
        let errors = writer.finish();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "a99");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        assert_eq!(errors.len(), 1, "{errors:?}");
        // After `finish`, writes happen on the caller's thread.
        writer.write(b.clone(), "b2".to_string()).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b2");
    }
}
