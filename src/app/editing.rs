//! Editing the shown image's labels: drawing, labelling, moving, deleting, copying boxes,
//! the verified and difficult flags, undo and redo.

use std::path::Path;

use super::document::Document;
use super::label_io::LoadPurpose;
use super::ui_state::{PendingLabel, UiState};
use super::AppState;
use crate::dataset::LabelBox;
use crate::geometry::BoxXyxy;

/// The selected boxes of `doc` (its selected box and `ui`'s multi-selection for it),
/// in ascending order.
pub fn selection_of(doc: Option<&Document>, ui: &UiState) -> Vec<usize> {
    let Some(doc) = doc else {
        return Vec::new();
    };
    let n = doc.annotation.boxes.len();
    let mut all: Vec<usize> = doc.selected.into_iter().collect();
    if ui.selection_image.as_deref() == Some(doc.image_path.as_path()) {
        all.extend(ui.multi_selection.iter().copied());
    }
    all.retain(|&i| i < n);
    all.sort_unstable();
    all.dedup();
    all
}

/// The shown labels (of classes not hidden) that lie wholly inside `band` (image
/// pixels): what a rubber band (Shift+drag on empty canvas) selects.
pub fn labels_inside(doc: Option<&Document>, ui: &UiState, band: BoxXyxy) -> Vec<usize> {
    let Some(doc) = doc else {
        return Vec::new();
    };
    doc.annotation
        .boxes
        .iter()
        .enumerate()
        .filter(|(_, b)| !ui.hidden_classes.contains(&b.class_name))
        .filter(|(_, b)| band.contains(&b.bbox))
        .map(|(i, _)| i)
        .collect()
}

impl AppState {
    /// The label a new box gets without asking, if any.
    pub fn automatic_label(&self) -> Option<String> {
        if !self.settings.single_class_mode {
            return None;
        }
        self.settings
            .default_label
            .clone()
            .or_else(|| self.workspace.classes.names().first().cloned())
    }

    /// A new box was drawn: over a pending prediction it fixes it
    /// ([`AppState::fix_prediction_under`]); otherwise it is labelled at once (the class it
    /// looks like, else the default label), or the label picker opens with that class.
    pub fn box_drawn(&mut self, bbox: BoxXyxy) {
        if self.fix_prediction_under(bbox) {
            return;
        }
        let automatic = self.automatic_label();
        let by_look = self.class_by_look(&bbox, automatic.as_deref());
        match automatic {
            Some(default) => {
                let label = match by_look {
                    Some(look) if look != default => {
                        self.info(format!(
                            "labelled {look} by its look (default label: {default})"
                        ));
                        look
                    }
                    _ => default,
                };
                self.add_box(bbox, &label);
            }
            None => {
                let text = by_look
                    .or_else(|| self.settings.default_label.clone())
                    .unwrap_or_default();
                self.ui.pending_label = Some(PendingLabel::new_box(bbox, text));
            }
        }
    }

    /// Adds a box labelled `label` (which becomes the default label) and selects it.
    pub fn add_box(&mut self, bbox: BoxXyxy, label: &str) {
        let Some(label) = self.checked_class_name(label) else {
            return;
        };
        self.workspace.classes.ensure(&label);
        self.settings.default_label = Some(label.clone());
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        self.ui.recent_classes.push(&label);
        let index = doc.edit(|a| {
            a.boxes.push(LabelBox::new(label, bbox));
            a.boxes.len() - 1
        });
        doc.selected = Some(index);
    }

    /// The selected boxes of the shown image (the document's selected box and the
    /// multi-selection), in ascending order.
    pub fn selection(&self) -> Vec<usize> {
        selection_of(self.workspace.doc.as_ref(), &self.ui)
    }

    /// Selects exactly `indices` (the first one becomes the document's selected box).
    pub fn select_boxes(&mut self, indices: Vec<usize>) {
        let path = self.workspace.doc.as_ref().map(|d| d.image_path.clone());
        self.select_box(indices.first().copied());
        self.ui.multi_selection = indices.into_iter().skip(1).collect();
        self.ui.selection_image = path;
    }

    /// Ctrl/Shift-click: adds box `index` to the selection, or removes it.
    pub fn toggle_in_selection(&mut self, index: usize) {
        let mut all = self.selection();
        match all.iter().position(|&i| i == index) {
            Some(p) => {
                all.remove(p);
            }
            None => all.push(index),
        }
        self.select_boxes(all);
    }

    /// Deletes the selected boxes.
    pub fn delete_selected(&mut self) {
        let all = self.selection();
        if all.is_empty() {
            self.info("nothing to delete: select a box first");
            return;
        }
        self.ui.multi_selection.clear();
        let Some(doc) = self.workspace.editable() else {
            self.info("these labels cannot be edited (see the message on the image)");
            return;
        };
        doc.selected = None;
        doc.edit(|a| {
            for &i in all.iter().rev() {
                a.boxes.remove(i);
            }
        });
    }

    /// Gives every selected box the class `label` (created if new).
    pub fn relabel_selected(&mut self, targets: &[usize], label: &str) {
        if targets.is_empty() {
            return;
        }
        let Some(label) = self.checked_class_name(label) else {
            return;
        };
        self.workspace.classes.ensure(&label);
        self.settings.default_label = Some(label.clone());
        let Some(doc) = self.workspace.editable() else {
            self.info("these labels cannot be edited (see the message on the image)");
            return;
        };
        let n = doc.annotation.boxes.len();
        doc.edit(|a| {
            for &i in targets.iter().filter(|&&i| i < n) {
                a.boxes[i].class_name = label.clone();
            }
        });
        self.ui.recent_classes.push(&label);
        let k = targets.len();
        self.info(format!(
            "{k} box{} labelled {label}",
            if k == 1 { "" } else { "es" }
        ));
    }

    /// `name` trimmed, or `None` (said in the status bar, unless it is empty) when it is
    /// no class name: one that would split `classes.txt` or make XML other readers refuse
    /// ([`crate::dataset::ClassList::check_name`]).
    fn checked_class_name(&mut self, name: &str) -> Option<String> {
        if name.trim().is_empty() {
            return None;
        }
        match crate::dataset::ClassList::check_name(name) {
            Ok(n) => Some(n.to_string()),
            Err(e) => {
                self.info(format!("not labelled: {e}"));
                None
            }
        }
    }

    /// Ctrl+E / double-click: opens the label dialog for the selected boxes.
    pub fn edit_label(&mut self) {
        let targets = self.selection();
        if targets.is_empty() {
            self.info("Ctrl+E edits the label of the selected box: select a box first");
            return;
        }
        self.ui.pending_label = Some(PendingLabel {
            targets,
            ..PendingLabel::default()
        });
    }

    /// Hides the classes of the selected boxes.
    pub fn hide_selected_classes(&mut self) {
        let names: Vec<String> = match &self.workspace.doc {
            Some(doc) => self
                .selection()
                .iter()
                .map(|&i| doc.annotation.boxes[i].class_name.clone())
                .collect(),
            None => Vec::new(),
        };
        if names.is_empty() {
            self.info("nothing to hide: select a box first");
        }
        self.ui.hidden_classes.extend(names);
    }

    /// Ctrl+D: a copy of the selected box, offset by 2 px inside the image, selected.
    pub fn duplicate_selected(&mut self) {
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        let Some(b) = doc.selected_box().cloned() else {
            self.info("Ctrl+D duplicates the selected box: select a box first");
            return;
        };
        let (w, h) = (doc.annotation.width as f64, doc.annotation.height as f64);
        let shifted = b.bbox.translated(2.0, 2.0);
        let bbox = if shifted.x2 <= w && shifted.y2 <= h {
            shifted
        } else {
            b.bbox.translated(-2.0, -2.0)
        };
        let index = doc.edit(|a| {
            a.boxes.push(LabelBox {
                bbox,
                extra: Vec::new(),
                ..b
            });
            a.boxes.len() - 1
        });
        doc.selected = Some(index);
    }

    /// Number keys: relabel the selected box, or make the class the default label.
    pub fn use_class(&mut self, id: usize) {
        let Some(name) = self.workspace.classes.name(id).map(str::to_string) else {
            self.info(format!(
                "there is no class {} (the folder has {} classes)",
                id + 1,
                self.workspace.classes.names().len()
            ));
            return;
        };
        let targets = self.selection();
        if targets.is_empty() {
            self.settings.default_label = Some(name.clone());
            self.info(format!("default label: {name}"));
        } else {
            self.relabel_selected(&targets, &name);
        }
    }

    /// Toggles the difficult flag of box `index`.
    pub fn toggle_difficult(&mut self, index: usize) {
        if let Some(doc) = self.workspace.editable() {
            if index < doc.annotation.boxes.len() {
                doc.edit(|a| a.boxes[index].difficult = !a.boxes[index].difficult);
            }
        }
    }

    /// Space: toggles verified and saves (as LabelImg does).
    pub fn toggle_verified(&mut self) {
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        doc.edit(|a| a.verified = !a.verified);
        self.save();
    }

    /// Arrow keys: moves the selected box by (dx, dy) pixels, kept inside the image.
    pub fn nudge_selected(&mut self, dx: f64, dy: f64) {
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        let Some(i) = doc.selected else { return };
        let (w, h) = (doc.annotation.width as f64, doc.annotation.height as f64);
        let b = doc.annotation.boxes[i].bbox;
        let dx = dx.clamp(-b.x1, (w - b.x2).max(0.0));
        let dy = dy.clamp(-b.y1, (h - b.y2).max(0.0));
        if dx != 0.0 || dy != 0.0 {
            doc.edit(|a| a.boxes[i].bbox = b.translated(dx, dy));
        }
    }

    /// Copies the previous image's boxes into this one, merging (boxes already present
    /// at the same place with the same class are not doubled). Its labels are read on the
    /// label thread, after any pending save of them.
    pub fn copy_previous_boxes(&mut self) {
        let ws = &mut self.workspace;
        let (Some(i), Some(session)) = (ws.current, &ws.session) else {
            return;
        };
        if i == 0 {
            self.info("Ctrl+V copies the previous image's boxes: this is the first image");
            return;
        }
        let previous = session.images[i - 1].path.clone();
        match ws.unsaved.get(&previous) {
            Some(doc) => {
                let doc = doc.clone();
                self.merge_boxes_from(&previous, doc);
            }
            None => {
                let target = session.images[i].path.clone();
                let ticket = ws.labels.load(
                    LoadPurpose::CopyInto,
                    &previous,
                    session.save_dir.as_deref(),
                    self.settings.format,
                );
                ws.copy_ticket = Some((ticket, target));
            }
        }
    }

    pub(super) fn merge_boxes_from(&mut self, previous: &Path, source: Document) {
        if let Some(e) = source.load_error {
            self.fail(format!("cannot copy: {e}"));
            return;
        }
        if source.annotation.boxes.is_empty() {
            self.info("the previous image has no labels");
            return;
        }
        let Some(doc) = self.workspace.editable() else {
            return;
        };
        let (w, h) = (doc.annotation.width as f64, doc.annotation.height as f64);
        let added = doc.edit(|a| {
            let mut added = 0;
            for b in source.annotation.boxes {
                let bbox = if w > 0.0 && h > 0.0 {
                    b.bbox.clamp_to(w, h)
                } else {
                    b.bbox
                };
                let present = a
                    .boxes
                    .iter()
                    .any(|o| o.class_name == b.class_name && o.bbox.iou(&bbox) > 0.95);
                if !present && bbox.area() > 0.0 {
                    a.boxes.push(LabelBox { bbox, ..b });
                    added += 1;
                }
            }
            added
        });
        self.info(format!("copied {added} boxes from {}", previous.display()));
    }

    /// Undoes the last change of the shown image's labels.
    pub fn undo(&mut self) {
        if let Some(d) = &mut self.workspace.doc {
            d.undo();
        }
    }

    /// Redoes the last undone change.
    pub fn redo(&mut self) {
        if let Some(d) = &mut self.workspace.doc {
            d.redo();
        }
    }

    /// Selects box `index` of the shown image (or none).
    pub fn select_box(&mut self, index: Option<usize>) {
        if let Some(doc) = &mut self.workspace.doc {
            doc.selected = index;
        }
    }

    /// A drag of box `index` starts: it is selected, and the drag becomes one undo step.
    pub fn begin_box_drag(&mut self, index: usize) {
        if let Some(doc) = self.workspace.editable() {
            doc.selected = Some(index);
            doc.checkpoint();
        }
    }

    /// During a drag: box `index` is now at `bbox` (undone with the whole drag).
    pub fn drag_box(&mut self, index: usize, bbox: BoxXyxy) {
        if let Some(doc) = self.workspace.editable() {
            if index < doc.annotation.boxes.len() {
                doc.edit_in_drag(|a| a.boxes[index].bbox = bbox);
            }
        }
    }

    /// The shown image's size in pixels, once decoded (for labels that lack it).
    pub fn set_image_size(&mut self, size: [u32; 2]) {
        if let Some(doc) = &mut self.workspace.doc {
            if !doc.annotation.has_size() {
                (doc.annotation.width, doc.annotation.height) = (size[0], size[1]);
            }
        }
    }
}
