//! Relabelling the gallery's selected crops, and jumping from a crop to its image.
//!
//! The open image's boxes change through its document (one undo step, saved as any edit
//! is); an image whose save failed earlier changes in the labels kept for it, which are
//! then saved again; every other image is read, changed and saved on the label thread
//! (merging with changes someone else made). Only the open image's change can be undone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::document::Document;
use super::super::label_io::find_boxes;
use super::super::AppState;
use crate::geometry::BoxXyxy;

/// Gives the boxes `wanted` (index and corners as read) of `doc` the class `label`, as
/// one undo step; returns how many were changed and how many were not found.
fn relabel_document(
    doc: &mut Document,
    wanted: &[(usize, BoxXyxy)],
    label: &str,
) -> (usize, usize) {
    let found = find_boxes(&doc.annotation.boxes, wanted);
    let missing = found.iter().filter(|f| f.is_none()).count();
    let targets: Vec<usize> = found
        .into_iter()
        .flatten()
        .filter(|&i| doc.annotation.boxes[i].class_name != label)
        .collect();
    if !targets.is_empty() {
        doc.edit(|a| {
            for &i in &targets {
                a.boxes[i].class_name = label.to_string();
            }
        });
    }
    (targets.len(), missing)
}

impl AppState {
    /// Gives every selected crop of the gallery the class `label` (see the module
    /// documentation for how each image is written).
    pub(super) fn gallery_assign(&mut self, label: &str) {
        let label = label.trim().to_string();
        let Some(g) = &mut self.gallery else { return };
        if label.is_empty() {
            return;
        }
        if g.selection.is_empty() {
            self.info("select crops first (click, Ctrl+click, Shift+click, Ctrl+A)");
            return;
        }
        let mut by_image: BTreeMap<PathBuf, Vec<(usize, BoxXyxy)>> = BTreeMap::new();
        let ids: Vec<usize> = g.selection.ids().collect();
        for &id in &ids {
            let crop = &mut g.crops[id];
            by_image
                .entry(crop.image.clone())
                .or_default()
                .push((crop.index, crop.bbox));
            crop.class_name = label.clone();
        }
        let ws = &mut self.workspace;
        ws.classes.ensure(&label);
        let save_dir = ws.session.as_ref().and_then(|s| s.save_dir.clone());
        let open = ws
            .doc
            .as_ref()
            .filter(|_| ws.labels_ticket.is_none())
            .map(|d| d.image_path.clone());
        let images = by_image.len();
        let mut open_changed = false;
        let mut notes = Vec::new();
        for (image, wanted) in by_image {
            // Class by look learns the new class at once (the open image's boxes also
            // through its document, at the next sync).
            for (_, bbox) in &wanted {
                self.looks.index.relabel(&image, bbox, &label);
            }
            if Some(&image) == open.as_ref() {
                match ws.editable() {
                    Some(doc) => {
                        let (changed, missing) = relabel_document(doc, &wanted, &label);
                        open_changed = changed > 0;
                        if missing > 0 {
                            notes.push(format!(
                                "{missing} box(es) of the open image were no longer there"
                            ));
                        }
                    }
                    None => notes.push(
                        "the open image's labels cannot be edited (see the message on the image)"
                            .to_string(),
                    ),
                }
            } else if let Some(doc) = ws.unsaved.get_mut(&image) {
                // Its earlier save failed: change what is kept, and try the save again
                // (the reply takes it out of `unsaved` once on disk).
                relabel_document(doc, &wanted, &label);
                let (format, annotation, base) =
                    (doc.format, doc.annotation.clone(), doc.base.clone());
                let classes = ws.classes.clone();
                ws.labels.save(
                    &image,
                    save_dir.as_deref(),
                    format,
                    annotation,
                    classes,
                    base,
                );
            } else {
                let classes = ws.classes.clone();
                let format = self.settings.format;
                ws.labels.relabel(
                    &image,
                    save_dir.as_deref(),
                    format,
                    wanted,
                    label.clone(),
                    classes,
                );
            }
        }
        if open_changed && self.settings.autosave {
            self.save();
        }
        let n = ids.len();
        self.info(format!(
            "{n} box{} in {images} image{} labelled {label}{}",
            if n == 1 { "" } else { "es" },
            if images == 1 { "" } else { "s" },
            if open_changed {
                " (Ctrl+Z undoes it on the open image)"
            } else {
                ""
            }
        ));
        for note in notes {
            self.info(note);
        }
    }

    /// Shows the image of crop `id` with its box selected (the gallery is hidden; the
    /// box is selected once the image's labels are in).
    pub(super) fn gallery_jump(&mut self, id: usize) {
        let Some(g) = &mut self.gallery else { return };
        let Some(crop) = g.crops.get(id) else { return };
        let (image, index, bbox) = (crop.image.clone(), crop.index, crop.bbox);
        g.visible = false;
        g.pending_jump = Some((image.clone(), index, bbox));
        self.ui.page = super::super::Page::Label;
        self.go_to_path(&image);
        self.settle_jump();
    }

    /// Selects the box of a pending jump once its image's labels are shown; forgets the
    /// jump when another image is shown instead.
    pub(super) fn settle_jump(&mut self) {
        let Some((image, index, bbox)) = self.gallery.as_ref().and_then(|g| g.pending_jump.clone())
        else {
            return;
        };
        let ws = &self.workspace;
        if self.ui.unsaved_prompt.is_some() {
            return; // still asking whether to save first
        }
        if self.current_path().as_ref() != Some(&image) {
            if let Some(g) = &mut self.gallery {
                g.pending_jump = None;
            }
            return;
        }
        if ws.labels_ticket.is_some() {
            return;
        }
        let Some(doc) = &ws.doc else { return };
        let found = find_boxes(&doc.annotation.boxes, &[(index, bbox)])[0];
        if let Some(g) = &mut self.gallery {
            g.pending_jump = None;
        }
        match found {
            Some(i) => {
                self.ui.multi_selection.clear();
                self.select_boxes(vec![i]);
            }
            None => self.info("that box is no longer in the image's labels"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ImageAnnotation, LabelBox, LabelFormat};

    #[test]
    fn relabelling_a_document_is_one_undo_step() {
        let mut ann = ImageAnnotation::new("a.jpg", 100, 100);
        for x in 0..3 {
            let x = x as f64 * 20.0;
            ann.boxes.push(LabelBox::new(
                "product",
                BoxXyxy::new(x, 0.0, x + 10.0, 10.0),
            ));
        }
        let mut doc = Document::new("a.jpg".into(), ann, LabelFormat::Voc);
        let wanted = [
            (0, BoxXyxy::new(0.0, 0.0, 10.0, 10.0)),
            (2, BoxXyxy::new(40.0, 0.0, 50.0, 10.0)),
            (2, BoxXyxy::new(90.0, 0.0, 95.0, 10.0)),
        ];
        assert_eq!(relabel_document(&mut doc, &wanted, "Cola"), (2, 1));
        let names: Vec<&str> = doc
            .annotation
            .boxes
            .iter()
            .map(|b| b.class_name.as_str())
            .collect();
        assert_eq!(names, ["Cola", "product", "Cola"]);
        assert!(doc.undo());
        assert!(doc
            .annotation
            .boxes
            .iter()
            .all(|b| b.class_name == "product"));
        assert!(!doc.undo(), "one step");
    }
}
