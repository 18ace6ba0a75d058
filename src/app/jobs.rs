//! Background jobs the UI starts and polls: COCO export, demo generation and native
//! file dialogs (which block, so they run off the UI thread too).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
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
