//! Reading the crops of a folder in the background: for each image, its labels (after
//! every save asked for before the scan), then its pixels, cut into one thumbnail and
//! descriptor per box. Results arrive image by image, so the gallery fills in while the
//! scan runs; the UI thread only uploads finished thumbnails.
//!
//! A few worker threads share the images; dropping the [`CropScan`] stops them after the
//! image each one is on. At most [`MAX_CROPS`] crops are read (memory stays bounded:
//! a thumbnail is at most 96 × 96 RGBA, 36 KiB).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::descriptor::{describe, thumbnail, typical_height, Descriptor};
use crate::dataset::{load_labels_upright, ImageAnnotation};
use crate::geometry::BoxXyxy;

/// The most crops one gallery reads.
pub const MAX_CROPS: usize = 10_000;

/// One box of one image, ready to show.
pub struct ScannedCrop {
    /// Position of the image in the scanned list (for a stable order).
    pub image_rank: usize,
    pub image: PathBuf,
    /// The box's index in the image's labels when read.
    pub index: usize,
    pub bbox: BoxXyxy,
    pub class_name: String,
    pub thumb: egui::ColorImage,
    pub descriptor: Descriptor,
}

/// What the workers send.
pub enum ScanEvent {
    /// The crops of one image.
    Crops(Vec<ScannedCrop>),
    /// An image (or its labels) could not be read.
    Failed(String),
}

/// A scan in flight.
pub struct CropScan {
    events: Receiver<ScanEvent>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    /// Images to read.
    pub total: usize,
}

/// What the scan reads.
pub struct ScanInput {
    /// The images, in file-list order.
    pub images: Vec<PathBuf>,
    /// Where label files are, when not beside the images.
    pub save_dir: Option<PathBuf>,
    /// Labels held in the app (the open image's, unsaved ones), used instead of the file.
    pub in_memory: HashMap<PathBuf, ImageAnnotation>,
    /// Answers once every label save asked for before the scan is on disk.
    pub saves_done: Receiver<()>,
}

impl CropScan {
    /// Starts the workers; `wake` is called after each image.
    pub fn spawn(input: ScanInput, wake: impl Fn() + Send + Sync + 'static) -> Self {
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let total = input.images.len();
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        let ScanInput {
            images,
            save_dir,
            in_memory,
            saves_done,
        } = input;
        let shared = Arc::new(Shared {
            images,
            save_dir,
            in_memory,
            saves_done: Mutex::new(Some(saves_done)),
            next: AtomicUsize::new(0),
            crops: AtomicUsize::new(0),
            stop: stop.clone(),
            done: done.clone(),
            wake: Box::new(wake),
        });
        for i in 0..threads {
            let shared = shared.clone();
            let worker_tx: Sender<ScanEvent> = tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("detlab-gallery-{i}"))
                .spawn(move || worker(&shared, &worker_tx));
            if let Err(e) = spawned {
                let _ = tx.send(ScanEvent::Failed(format!(
                    "cannot start a gallery thread: {e}"
                )));
            }
        }
        Self {
            events,
            stop,
            done,
            total,
        }
    }

    /// The next result, if one is ready; `Err(())` once every worker has finished.
    #[allow(clippy::result_unit_err)]
    pub fn poll(&self) -> Result<Option<ScanEvent>, ()> {
        match self.events.try_recv() {
            Ok(e) => Ok(Some(e)),
            Err(std::sync::mpsc::TryRecvError::Empty) => Ok(None),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(()),
        }
    }

    /// Images read so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }
}

impl Drop for CropScan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Shared {
    images: Vec<PathBuf>,
    save_dir: Option<PathBuf>,
    in_memory: HashMap<PathBuf, ImageAnnotation>,
    /// Taken (and waited on) by the first worker; the others wait for its lock.
    saves_done: Mutex<Option<Receiver<()>>>,
    next: AtomicUsize,
    crops: AtomicUsize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    wake: Box<dyn Fn() + Send + Sync>,
}

fn worker(shared: &Shared, tx: &Sender<ScanEvent>) {
    // Labels are read once the saves asked for before are on disk (a hang-up means the
    // label thread is gone: read anyway).
    {
        let mut barrier = shared.saves_done.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(wait) = barrier.take() {
            let _ = wait.recv();
        }
    }
    loop {
        if shared.stop.load(Ordering::Relaxed) || shared.crops.load(Ordering::Relaxed) >= MAX_CROPS
        {
            return;
        }
        let rank = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(image) = shared.images.get(rank) else {
            return;
        };
        let event = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_image(shared, rank, image)
        }))
        .unwrap_or_else(|p| {
            Some(ScanEvent::Failed(format!(
                "{}: {}",
                image.display(),
                crate::task::panic_message(p)
            )))
        });
        shared.done.fetch_add(1, Ordering::Relaxed);
        if let Some(event) = event {
            if tx.send(event).is_err() {
                return;
            }
        }
        (shared.wake)();
    }
}

/// The crops of one image (`None` for an image without boxes).
fn read_image(shared: &Shared, rank: usize, image: &Path) -> Option<ScanEvent> {
    let fail = |reason: String| Some(ScanEvent::Failed(format!("{}: {reason}", image.display())));
    let annotation = match shared.in_memory.get(image) {
        Some(a) => a.clone(),
        None => match load_labels_upright(image, shared.save_dir.as_deref()) {
            Ok(Some((loaded, _))) => loaded.annotation,
            Ok(None) => return None,
            Err(e) => return fail(e.to_string()),
        },
    };
    if annotation.boxes.is_empty() {
        return None;
    }
    let pixels = match crate::dataset::image_info::decode_upright_rgb(image) {
        Ok(p) => p,
        Err(e) => return fail(e.reason),
    };
    let room = MAX_CROPS.saturating_sub(
        shared
            .crops
            .fetch_add(annotation.boxes.len(), Ordering::Relaxed),
    );
    let typical = typical_height(annotation.boxes.iter().map(|b| &b.bbox)).unwrap_or(1.0);
    let crops = annotation
        .boxes
        .iter()
        .enumerate()
        .take(room)
        .filter_map(|(index, b)| {
            let thumb = thumbnail(&pixels, &b.bbox)?;
            let mut descriptor = describe(&thumb);
            descriptor.set_relative_size((b.bbox.height() / typical) as f32);
            let size = [thumb.width() as usize, thumb.height() as usize];
            Some(ScannedCrop {
                image_rank: rank,
                image: image.to_path_buf(),
                index,
                bbox: b.bbox,
                class_name: b.class_name.clone(),
                thumb: egui::ColorImage::from_rgb(size, thumb.as_raw()),
                descriptor,
            })
        })
        .collect();
    Some(ScanEvent::Crops(crops))
}
