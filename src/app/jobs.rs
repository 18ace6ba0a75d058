//! Background jobs the UI starts and polls: COCO export, demo generation and native
//! file dialogs (which block, so they run off the UI thread too).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use crate::export::{export_coco, ExportOptions, ExportSummary};

/// A job running on its own thread that ends with one value.
pub struct Job<T> {
    rx: Receiver<T>,
    /// `(done, total)` for a progress bar.
    pub progress: Arc<(AtomicUsize, AtomicUsize)>,
}

impl<T: Send + 'static> Job<T> {
    /// Runs `work` on a thread; it may report progress through the shared counters.
    pub fn spawn(
        name: &str,
        ctx: Option<egui::Context>,
        work: impl FnOnce(&(AtomicUsize, AtomicUsize)) -> T + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        let progress = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let p = progress.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("detlab-{name}"))
            .spawn(move || {
                let value = work(&p);
                let _ = tx.send(value);
                if let Some(ctx) = ctx {
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            eprintln!("cannot start {name}: {e}");
        }
        Self { rx, progress }
    }

    /// The result, once the job has finished.
    pub fn poll(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    pub fn fraction(&self) -> f32 {
        let (done, total) = (&self.progress.0, &self.progress.1);
        let total = total.load(Ordering::Relaxed);
        if total == 0 {
            0.0
        } else {
            done.load(Ordering::Relaxed) as f32 / total as f32
        }
    }
}

/// Writes whole files (settings, the review log) on a thread of its own, so that the UI
/// thread never waits on an fsync. Only the newest value waiting for each path is
/// written: each one replaces the file, so older ones would be overwritten anyway.
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
                        if let Err(e) = save(&value, &path) {
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
    let repaint = ctx.clone();
    Job::spawn("export", ctx, move |progress| {
        let _ = after.recv();
        export_coco(&options, &|done, total| {
            progress.0.store(done, Ordering::Relaxed);
            progress.1.store(total, Ordering::Relaxed);
            if let Some(c) = &repaint {
                c.request_repaint();
            }
        })
        .map_err(|e| e.to_string())
    })
}

/// What a native dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickPurpose {
    OpenFolder,
    OpenFile,
    SaveDir,
    ExportFolder,
    DemoFolder,
    ModelFile,
}

/// Opens a native folder/file picker on a thread.
pub fn spawn_picker(
    purpose: PickPurpose,
    start: Option<PathBuf>,
    ctx: Option<egui::Context>,
) -> Job<(PickPurpose, Option<PathBuf>)> {
    Job::spawn("dialog", ctx, move |_| {
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
            _ => dialog.pick_folder(),
        };
        (purpose, picked)
    })
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
