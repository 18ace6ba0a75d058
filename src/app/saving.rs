//! Saving the workspace's labels and applying what the label thread answers; closing the
//! window without losing labels.

use super::label_io::{LabelReply, LoadPurpose};
use super::session::ImageStatus;
use super::ui_state::AfterPrompt;
use super::AppState;
use crate::dataset::LabelFormat;

/// What to do with a request to close the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseAnswer {
    /// Everything is saved (or the user chose to go without it): close.
    Close,
    /// Keep the window open: the user is asked, or told what could not be saved.
    Refuse,
}

impl AppState {
    /// Saves the current image's labels on the label thread (the result arrives in
    /// [`Self::poll_labels`]). Returns `false` when the labels may not be saved: their
    /// file could not be read, and the user has not chosen to overwrite it.
    pub fn save(&mut self) -> bool {
        let ws = &mut self.workspace;
        let Some(doc) = &mut ws.doc else {
            return true;
        };
        if !doc.can_save() {
            let msg = format!(
                "not saved: the label file of {} could not be read, so it is left untouched (use \"Overwrite\" to replace it)",
                doc.image_path.display()
            );
            self.fail(msg);
            return false;
        }
        let save_dir = ws.session.as_ref().and_then(|s| s.save_dir.as_deref());
        ws.labels.save(
            &doc.image_path,
            save_dir,
            doc.format,
            doc.annotation.clone(),
            ws.classes.clone(),
        );
        doc.mark_saved();
        doc.load_error = None;
        doc.overwrite_allowed = false;
        true
    }

    /// Applies the label thread's replies; returns whether anything changed.
    pub fn poll_labels(&mut self) -> bool {
        let mut changed = false;
        while let Some(reply) = self.workspace.labels.poll() {
            self.apply_label_reply(reply);
            changed = true;
        }
        changed
    }

    /// Waits until every label read and write asked for so far is done (when the app
    /// closes).
    pub fn flush_labels(&mut self) {
        while let Some(reply) = self.workspace.labels.wait() {
            self.apply_label_reply(reply);
        }
    }

    fn apply_label_reply(&mut self, reply: LabelReply) {
        let ws = &mut self.workspace;
        match reply {
            LabelReply::Saved {
                image,
                path,
                annotation,
            } => {
                ws.unsaved.remove(&image);
                let boxes = annotation.boxes.len();
                let status = if annotation.verified {
                    ImageStatus::Verified { boxes }
                } else {
                    ImageStatus::Labelled { boxes }
                };
                ws.set_status(&image, status);
                self.info(format!("saved {}", path.display()));
            }
            LabelReply::SaveFailed {
                image,
                message,
                doc,
            } => {
                ws.set_status(
                    &image,
                    ImageStatus::LabelError(format!("not saved: {message}")),
                );
                match &mut ws.doc {
                    Some(current) if current.image_path == image => current.mark_unsaved(),
                    _ => {
                        ws.unsaved.insert(image, doc);
                    }
                }
                self.fail(format!("not saved: {message}"));
            }
            LabelReply::Loaded {
                ticket,
                purpose: LoadPurpose::Open,
                image,
                doc,
            } => {
                if ws.labels_ticket != Some(ticket) {
                    return; // the user has moved on
                }
                ws.labels_ticket = None;
                // A save of this image that failed meanwhile holds the newer labels.
                let doc = ws.unsaved.remove(&image).unwrap_or(doc);
                if let Some(message) = &doc.load_error {
                    ws.set_status(&image, ImageStatus::LabelError(message.clone()));
                }
                for b in &doc.annotation.boxes {
                    ws.classes.ensure(&b.class_name);
                }
                let error = doc.load_error.clone();
                ws.doc = Some(doc);
                if let Some(message) = error {
                    self.info(format!("cannot read labels: {message}"));
                }
            }
            LabelReply::Loaded {
                ticket,
                purpose: LoadPurpose::CopyInto,
                image,
                doc,
            } => {
                let Some((wanted, target)) = ws.copy_ticket.take() else {
                    return;
                };
                // Only into the image it was asked for, if it is still shown.
                let shown = ws.doc.as_ref().map(|d| d.image_path.as_path());
                if wanted == ticket && shown == Some(target.as_path()) {
                    self.merge_boxes_from(&image, doc);
                }
            }
        }
    }

    /// Allows replacing a label file that could not be read (explicit user choice).
    pub fn allow_overwrite(&mut self) {
        if let Some(doc) = &mut self.workspace.doc {
            doc.overwrite_allowed = true;
        }
    }

    /// The format new label files are saved in (and the current image's, from now on).
    pub fn set_format(&mut self, format: LabelFormat) {
        self.settings.format = format;
        if let Some(doc) = &mut self.workspace.doc {
            if doc.format != format {
                doc.format = format;
                doc.edit(|_| {});
            }
        }
    }

    /// The window is asked to close (`window_size` is its inner size, to remember): saves
    /// what autosave saves and flushes the label thread, or asks about unsaved changes.
    /// When labels could not be saved, the first close is refused with a message and the
    /// next one goes ahead.
    pub fn close_requested(&mut self, window_size: Option<[f32; 2]>) -> CloseAnswer {
        if self.quit_requested {
            return CloseAnswer::Close;
        }
        if self.needs_prompt() {
            self.ui.unsaved_prompt = Some(AfterPrompt::Quit);
            return CloseAnswer::Refuse;
        }
        self.leave_current_image();
        self.flush_labels();
        let unsaved = self.workspace.unsaved.len();
        if unsaved > 0 && !self.workspace.close_despite_unsaved {
            self.workspace.close_despite_unsaved = true;
            self.fail(format!(
                "the labels of {unsaved} image(s) could not be saved (see the file list); close again to quit without them"
            ));
            return CloseAnswer::Refuse;
        }
        self.settings.window_size = window_size;
        self.save_settings();
        CloseAnswer::Close
    }
}
