//! *Class by look*: with it on, a new box drawn by hand (or grown from a click) takes the
//! class of the labelled box it looks most like instead of the default label, when the
//! look is sure ([`super::gallery::look_class`]). The shown image is decoded once in the background; its
//! labels join the index as they change, so the boxes of every image labelled in this
//! session (and of every image shown with labels) vote.

use std::path::PathBuf;

use super::gallery::look_class::{LookIndex, LookPixels};
use super::jobs::{repaint, Job};
use super::AppState;
use crate::geometry::BoxXyxy;
use crate::task::TaskState;

/// The index and the shown image's pixels.
#[derive(Default)]
pub struct ClassByLook {
    pub index: LookIndex,
    /// The folder the index is about.
    root: Option<PathBuf>,
    pixels: Option<LookPixels>,
    /// The image being decoded.
    job: Option<(PathBuf, Job<Result<LookPixels, String>>)>,
    /// The image that could not be decoded (not tried again).
    failed: Option<PathBuf>,
}

impl AppState {
    /// Decodes the shown image for the look (once), and keeps its labels in the index.
    pub(super) fn poll_class_by_look(&mut self) {
        if !self.settings.class_by_look {
            return;
        }
        let root = self.workspace.session.as_ref().map(|s| s.root.clone());
        let looks = &mut self.looks;
        if looks.root != root {
            *looks = ClassByLook {
                root,
                ..ClassByLook::default()
            };
        }
        if let Some((image, job)) = &looks.job {
            match job.poll() {
                TaskState::Running => return,
                TaskState::Done(Ok(px)) => looks.pixels = Some(px),
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
                LookPixels::decode(&image)
            });
            looks.job = Some((path, job));
            return;
        }
        self.sync_look_index();
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

    /// The class a new box at `bbox` looks like (see [`super::gallery::look_class`]); `None` when the
    /// option is off, the index is empty, or the shown image is not decoded yet.
    pub fn class_by_look(&mut self, bbox: &BoxXyxy) -> Option<String> {
        if !self.settings.class_by_look {
            return None;
        }
        self.sync_look_index();
        let px = self.looks.pixels.as_ref()?;
        if Some(&px.image) != self.workspace.current_path().as_ref() {
            return None;
        }
        let default = self.automatic_label();
        self.looks.index.class_for(px, bbox, default.as_deref())
    }
}
