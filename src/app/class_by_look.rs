//! *Class by look*: with it on, a new box drawn by hand (or grown from a click) takes the
//! class of the labelled box it looks most like instead of the default label, when the
//! look is sure ([`super::gallery::look_class`]).
//!
//! When a folder opens, the labels of up to [`SEED_IMAGES`] of its labelled images (those
//! nearest the shown one in the file list) are read and described in the background. The
//! shown image is decoded once in the background too, and its labels join the index as
//! they change, so every box labelled in this session votes as well.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use image::RgbImage;

use super::gallery::look_class::{ImageLooks, LookIndex, LookPixels};
use super::jobs::{repaint, Job};
use super::AppState;
use crate::dataset::image_info::decode_upright_rgb;
use crate::dataset::load_labels_upright;
use crate::geometry::BoxXyxy;
use crate::task::TaskState;

/// How many labelled images are described when a folder opens (about 10 s of one
/// background thread for 200 two-megapixel photos).
pub const SEED_IMAGES: usize = 200;

/// Reading the folder's labelled images; stopped when dropped (another folder opened).
struct Seed {
    job: Job<Vec<(PathBuf, ImageLooks)>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An image decoded for the look: scaled down, and at full resolution.
type Decoded = (LookPixels, Arc<RgbImage>);

/// The index and the shown image's pixels.
#[derive(Default)]
pub struct ClassByLook {
    pub index: LookIndex,
    /// The folder the index is about.
    root: Option<PathBuf>,
    pixels: Option<Arc<LookPixels>>,
    /// The image being decoded (at full resolution too, handed to the assistants).
    job: Option<(PathBuf, Job<Result<Decoded, String>>)>,
    /// The image that could not be decoded (not tried again).
    failed: Option<PathBuf>,
    /// The folder's labelled images being read (`started` once it was started).
    seed: Option<Seed>,
    started: bool,
}

impl AppState {
    /// Reads the folder's labelled images once, decodes the shown image for the look
    /// (once per image shown), and keeps its labels in the index.
    pub(super) fn poll_class_by_look(&mut self) {
        if !self.settings.class_by_look {
            return;
        }
        let root = self.workspace.session.as_ref().map(|s| s.root.as_path());
        if self.looks.root.as_deref() != root {
            self.looks = ClassByLook {
                root: root.map(Path::to_path_buf),
                ..ClassByLook::default()
            };
        }
        self.poll_seed();
        let looks = &mut self.looks;
        if let Some((image, job)) = &looks.job {
            match job.poll() {
                TaskState::Running => return,
                TaskState::Done(Ok((px, full))) => {
                    self.assist.offer_pixels(image, full);
                    looks.pixels = Some(Arc::new(px));
                }
                // The image view says why the image cannot be read.
                TaskState::Done(Err(_)) | TaskState::Failed(_) => {
                    looks.failed = Some(image.clone())
                }
            }
            looks.job = None;
        }
        let Some(path) = self.workspace.current_path() else {
            return;
        };
        let decoded = looks.pixels.as_ref().is_some_and(|p| p.image == path);
        if !decoded && looks.failed.as_ref() != Some(&path) {
            looks.pixels = None;
            let image = path.clone();
            let job = Job::spawn("look", repaint(self.ctx.clone()), move |_| {
                let full = Arc::new(decode_upright_rgb(&image).map_err(|e| e.to_string())?);
                Ok((LookPixels::from_pixels(image, &full), full))
            });
            looks.job = Some((path, job));
            return;
        }
        self.sync_look_index();
    }

    /// Starts reading the folder's labelled images once it is listed, and takes in what
    /// they give.
    fn poll_seed(&mut self) {
        let looks = &mut self.looks;
        if let Some(seed) = &looks.seed {
            match seed.job.poll() {
                TaskState::Running => {}
                TaskState::Done(images) => {
                    for (image, described) in images {
                        looks.index.insert_if_absent(image, described);
                    }
                    looks.seed = None;
                }
                TaskState::Failed(e) => {
                    looks.seed = None;
                    self.info(format!("class by look: {e}"));
                }
            }
            return;
        }
        let Some(session) = self.workspace.session.as_ref() else {
            return;
        };
        if looks.started || session.scanning {
            return;
        }
        looks.started = true;
        let here = self.workspace.current.unwrap_or(0);
        let mut labelled: Vec<(usize, PathBuf)> = session
            .images
            .iter()
            .enumerate()
            .filter(|(_, e)| e.status.is_labelled())
            .map(|(i, e)| (i.abs_diff(here), e.path.clone()))
            .collect();
        if labelled.is_empty() {
            return;
        }
        labelled.sort();
        labelled.truncate(SEED_IMAGES);
        let images: Vec<PathBuf> = labelled.into_iter().map(|(_, p)| p).collect();
        let save_dir = session.save_dir.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let job = Job::spawn("look-seed", repaint(self.ctx.clone()), move |_| {
            describe_labelled(&images, save_dir.as_deref(), &flag)
        });
        looks.seed = Some(Seed { job, stop });
    }

    /// The index and the shown image's pixels as they are now, for a background job
    /// (cheap: shared), when *Class by look* is on and the shown image is decoded.
    pub(super) fn look_snapshot(&mut self) -> Option<(LookIndex, Arc<LookPixels>)> {
        if !self.settings.class_by_look {
            return None;
        }
        self.sync_look_index();
        let px = self.looks.pixels.clone()?;
        (Some(&px.image) == self.workspace.current_path().as_ref())
            .then(|| (self.looks.index.clone(), px))
    }

    /// Puts the shown image's labels into the index (when its pixels are in).
    fn sync_look_index(&mut self) {
        if let (Some(px), Some(doc)) = (&self.looks.pixels, &self.workspace.doc) {
            if doc.image_path == px.image {
                self.looks.index.sync(px, &doc.annotation.boxes);
            }
        }
    }

    /// Whether *Class by look* can answer for the shown image (or is off, or the image
    /// cannot be read): what a new box gets no longer waits on a background job.
    pub fn class_by_look_ready(&self) -> bool {
        let looks = &self.looks;
        let path = self.workspace.current_path();
        !self.settings.class_by_look
            || looks.job.is_none()
                && (looks.pixels.as_ref().map(|p| &p.image) == path.as_ref()
                    || looks.failed == path)
    }

    /// The class a new box at `bbox` looks like, against `default` (the class it gets
    /// otherwise; see [`super::gallery::look_class`]); `None` when the option is off, too
    /// few boxes are indexed, or the shown image is not decoded yet.
    pub fn class_by_look(&mut self, bbox: &BoxXyxy, default: Option<&str>) -> Option<String> {
        if !self.settings.class_by_look {
            return None;
        }
        self.sync_look_index();
        let px = self.looks.pixels.as_ref()?;
        if Some(&px.image) != self.workspace.current_path().as_ref() {
            return None;
        }
        self.looks.index.class_for(px, bbox, default)
    }
}

/// The described labels of `images` (label files in `save_dir` or beside them); images
/// whose labels or pixels cannot be read are left out (the file list says why).
fn describe_labelled(
    images: &[PathBuf],
    save_dir: Option<&Path>,
    stop: &AtomicBool,
) -> Vec<(PathBuf, ImageLooks)> {
    let mut out = Vec::new();
    for image in images {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(Some((labels, _))) = load_labels_upright(image, save_dir) else {
            continue;
        };
        let boxes = labels.annotation.boxes;
        if boxes.is_empty() {
            continue;
        }
        if let Ok(px) = LookPixels::decode(image) {
            out.push((image.clone(), ImageLooks::of(&px, &boxes)));
        }
    }
    out
}
