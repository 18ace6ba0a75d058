//! The image being edited: its annotation, selection, dirty flag and bounded undo.

use std::path::PathBuf;

use super::merge::DiskBase;
use crate::dataset::{ImageAnnotation, LabelBox, LabelFormat};

/// How many undo steps are kept per image.
pub const UNDO_LIMIT: usize = 200;

/// A state that undo/redo restores.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    boxes: Vec<LabelBox>,
    verified: bool,
}

/// One image's labels as the user edits them.
#[derive(Clone, Debug)]
pub struct Document {
    pub image_path: PathBuf,
    pub annotation: ImageAnnotation,
    /// Format the labels were read in (and will be saved in).
    pub format: LabelFormat,
    /// Set when the label file exists but could not be read: the file is never
    /// overwritten unless the user explicitly allows it.
    pub load_error: Option<String>,
    /// What reading the labels changed, for the status bar (boxes turned upright, see
    /// [`crate::dataset::upright_stored_frame`]).
    pub load_note: Option<String>,
    pub overwrite_allowed: bool,
    pub selected: Option<usize>,
    /// The label file as it was when these labels were read or last saved (`None` when
    /// unknown): a save first checks that the file is still that version, and merges
    /// with what someone else wrote meanwhile.
    pub base: Option<DiskBase>,
    dirty: bool,
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
}

impl Document {
    pub fn new(image_path: PathBuf, annotation: ImageAnnotation, format: LabelFormat) -> Self {
        Self {
            image_path,
            annotation,
            format,
            load_error: None,
            load_note: None,
            overwrite_allowed: false,
            selected: None,
            base: None,
            dirty: false,
            undo: Vec::new(),
            redo: Vec::new(),
        }
    }

    /// A document whose label file failed to parse (shown with its error, read-only).
    pub fn failed(
        image_path: PathBuf,
        annotation: ImageAnnotation,
        format: LabelFormat,
        error: String,
    ) -> Self {
        let mut doc = Self::new(image_path, annotation, format);
        doc.load_error = Some(error);
        doc
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Marks the labels as not on disk (a save failed).
    pub fn mark_unsaved(&mut self) {
        self.dirty = true;
    }

    /// Whether edits may be saved over the label file.
    pub fn can_save(&self) -> bool {
        self.load_error.is_none() || self.overwrite_allowed
    }

    /// The one rule for "these labels should be saved": they changed since they were last
    /// saved, and they may be saved (a label file that could not be read is never
    /// overwritten unless the user allows it).
    pub fn needs_saving(&self) -> bool {
        self.dirty && self.can_save()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            boxes: self.annotation.boxes.clone(),
            verified: self.annotation.verified,
        }
    }

    fn restore(&mut self, s: Snapshot) {
        self.annotation.boxes = s.boxes;
        self.annotation.verified = s.verified;
        if self
            .selected
            .is_some_and(|i| i >= self.annotation.boxes.len())
        {
            self.selected = None;
        }
        self.dirty = true;
    }

    /// Records the current state as one undo step (call once before a change or at the
    /// start of a drag), and clears redo.
    pub fn checkpoint(&mut self) {
        let s = self.snapshot();
        if self.undo.last() == Some(&s) {
            return;
        }
        self.undo.push(s);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    /// Applies `change` as one undoable step.
    pub fn edit<R>(&mut self, change: impl FnOnce(&mut ImageAnnotation) -> R) -> R {
        self.checkpoint();
        self.dirty = true;
        change(&mut self.annotation)
    }

    /// Changes made during a drag, after a [`Self::checkpoint`] at its start.
    pub fn edit_in_drag(&mut self, change: impl FnOnce(&mut ImageAnnotation)) {
        self.dirty = true;
        change(&mut self.annotation);
    }

    pub fn undo(&mut self) -> bool {
        let Some(previous) = self.undo.pop() else {
            return false;
        };
        self.redo.push(self.snapshot());
        self.restore(previous);
        true
    }

    pub fn redo(&mut self) -> bool {
        let Some(next) = self.redo.pop() else {
            return false;
        };
        self.undo.push(self.snapshot());
        self.restore(next);
        true
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn selected_box(&self) -> Option<&LabelBox> {
        self.selected.and_then(|i| self.annotation.boxes.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BoxXyxy;

    fn doc() -> Document {
        Document::new(
            "a.jpg".into(),
            ImageAnnotation::new("a.jpg", 100, 100),
            LabelFormat::Voc,
        )
    }

    #[test]
    fn undo_redo_restore_boxes_and_verified() {
        let mut d = doc();
        d.edit(|a| {
            a.boxes
                .push(LabelBox::new("a", BoxXyxy::new(1.0, 1.0, 5.0, 5.0)))
        });
        d.edit(|a| a.verified = true);
        assert!(d.is_dirty());
        assert!(d.undo());
        assert!(!d.annotation.verified);
        assert!(d.undo());
        assert!(d.annotation.boxes.is_empty());
        assert!(!d.undo());
        assert!(d.redo() && d.redo());
        assert!(d.annotation.verified && d.annotation.boxes.len() == 1);
        assert!(!d.redo());
    }

    #[test]
    fn only_changed_labels_that_may_be_saved_need_saving() {
        let mut d = doc();
        assert!(!d.needs_saving());
        d.edit(|a| a.verified = true);
        assert!(d.needs_saving());
        d.load_error = Some("unreadable".into());
        assert!(
            !d.needs_saving(),
            "an unreadable label file is never overwritten"
        );
        d.overwrite_allowed = true;
        assert!(d.needs_saving());
        d.mark_saved();
        assert!(!d.needs_saving());
    }

    #[test]
    fn a_drag_is_one_step_and_history_is_bounded() {
        let mut d = doc();
        d.edit(|a| {
            a.boxes
                .push(LabelBox::new("a", BoxXyxy::new(1.0, 1.0, 5.0, 5.0)))
        });
        d.checkpoint();
        for i in 0..10 {
            d.edit_in_drag(|a| a.boxes[0].bbox = a.boxes[0].bbox.translated(i as f64, 0.0));
        }
        d.undo();
        assert_eq!(d.annotation.boxes[0].bbox, BoxXyxy::new(1.0, 1.0, 5.0, 5.0));
        for i in 0..(UNDO_LIMIT + 50) {
            d.edit(|a| a.boxes[0].bbox.x2 = 10.0 + i as f64);
        }
        let mut steps = 0;
        while d.undo() {
            steps += 1;
        }
        assert_eq!(steps, UNDO_LIMIT);
    }
}
