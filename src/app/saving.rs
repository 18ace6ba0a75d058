//! Saving the workspace's labels and applying what the label thread answers; closing the
//! window without losing labels; noticing label files changed by someone else (another
//! window or labeller, `detlab convert`): reloaded when not edited here, merged at the
//! next save when they are (see [`super::label_io`]).

use std::path::Path;
use std::time::{Duration, Instant};

use super::label_io::{LabelReply, LoadPurpose, OtherWriter};
use super::merge::{merge_annotations, same_labels};
use super::session::{class_counts, ChangedElsewhere, ImageStatus};
use super::ui_state::AfterPrompt;
use super::AppState;
use crate::dataset::LabelFormat;

/// How often the current image's label file is checked for changes by someone else.
pub const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(2);

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
            // Overwriting an unreadable file is the user's explicit choice: no merge.
            doc.base.clone().filter(|_| doc.load_error.is_none()),
        );
        ws.saves_sent += 1;
        doc.mark_saved();
        doc.load_error = None;
        doc.overwrite_allowed = false;
        true
    }

    /// Asks the label thread whether the current image's label file was changed by
    /// someone else (the answer arrives in [`Self::poll_labels`]: reloaded when not edited
    /// here). [`Self::poll_labels`] does this every [`DISK_CHECK_INTERVAL`].
    pub fn check_disk(&mut self) {
        let ws = &mut self.workspace;
        if ws.check_pending.is_some() || ws.labels_ticket.is_some() {
            return;
        }
        let Some(doc) = &ws.doc else { return };
        let Some(base) = doc.base.clone() else { return };
        let save_dir = ws.session.as_ref().and_then(|s| s.save_dir.clone());
        ws.labels
            .check(&doc.image_path, save_dir.as_deref(), doc.format, base);
        ws.check_pending = Some((doc.image_path.clone(), ws.saves_sent));
        ws.last_check = Some(Instant::now());
    }

    /// Applies the label thread's replies; returns whether anything changed.
    pub fn poll_labels(&mut self) -> bool {
        if self
            .workspace
            .last_check
            .is_none_or(|t| t.elapsed() >= DISK_CHECK_INTERVAL)
        {
            self.check_disk();
        }
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
                sent,
                base,
                other,
            } => {
                ws.unsaved.remove(&image);
                let boxes = annotation.boxes.len();
                let status = if annotation.verified {
                    ImageStatus::Verified { boxes }
                } else {
                    ImageStatus::Labelled { boxes }
                };
                ws.set_status(&image, status);
                ws.set_class_counts(&image, class_counts(&annotation.boxes));
                if let Some(doc) = ws.doc.as_mut().filter(|d| d.image_path == image) {
                    // The file holds more than was sent (someone else's boxes): show them,
                    // keeping what was edited here since the save was asked for.
                    if !same_labels(&base.annotation, &sent) {
                        if doc.annotation == sent {
                            doc.annotation.boxes = base.annotation.boxes.clone();
                            doc.annotation.verified = base.annotation.verified;
                        } else {
                            let merged =
                                merge_annotations(&sent, &doc.annotation, &base.annotation);
                            doc.annotation.boxes = merged.annotation.boxes;
                            doc.annotation.verified = merged.annotation.verified;
                        }
                        doc.selected = None;
                    }
                    doc.base = Some(base);
                }
                match other {
                    None => self.info(format!("saved {}", path.display())),
                    Some(OtherWriter::Merged) => {
                        ws.set_elsewhere(&image, ChangedElsewhere::Merged);
                        self.info(format!(
                            "saved {}, merged with the changes someone else made to it meanwhile",
                            path.display()
                        ));
                    }
                    Some(OtherWriter::Conflict { theirs, conflicts }) => {
                        ws.set_elsewhere(&image, ChangedElsewhere::Conflict(theirs.clone()));
                        ws.conflicts.push(super::workspace::Conflict {
                            image: image.clone(),
                            label: path.clone(),
                            theirs: theirs.clone(),
                            details: conflicts.clone(),
                        });
                        self.fail(format!(
                            "conflict: {} was changed by someone else too ({}); your version is saved, theirs is kept as {}",
                            path.display(),
                            conflicts.join("; "),
                            theirs.display()
                        ));
                    }
                }
            }
            LabelReply::Checked { image, found } => {
                let sent_at = ws.check_pending.take();
                let Some(found) = found else { return };
                // A save asked for after the check makes its answer stale.
                if sent_at != Some((image.clone(), ws.saves_sent)) {
                    return;
                }
                let Some(doc) = ws.doc.as_mut().filter(|d| d.image_path == image) else {
                    return;
                };
                let labels_changed = doc
                    .base
                    .as_ref()
                    .is_none_or(|b| !same_labels(&b.annotation, &found.annotation));
                if !labels_changed || found.load_error.is_some() {
                    // Rewritten with the same labels (or unreadable now: the next save
                    // keeps their file): nothing to show.
                    if !labels_changed {
                        doc.base = found.base;
                    }
                    return;
                }
                if doc.is_dirty() {
                    ws.set_class_counts(&image, class_counts(&found.annotation.boxes));
                    if !ws.set_elsewhere(&image, ChangedElsewhere::Changed) {
                        self.info(format!(
                            "the labels of {} were changed by someone else; your changes will be merged with theirs when saved",
                            image.display()
                        ));
                    }
                    return;
                }
                let boxes = found.annotation.boxes.len();
                let verified = found.annotation.verified;
                for b in &found.annotation.boxes {
                    ws.classes.ensure(&b.class_name);
                }
                let counts = class_counts(&found.annotation.boxes);
                *doc = found;
                ws.set_class_counts(&image, counts);
                ws.set_elsewhere(&image, ChangedElsewhere::Changed);
                ws.set_status(
                    &image,
                    if verified {
                        ImageStatus::Verified { boxes }
                    } else {
                        ImageStatus::Labelled { boxes }
                    },
                );
                self.info(format!(
                    "reloaded the labels of {}: someone else changed them",
                    image.display()
                ));
            }
            LabelReply::Relabelled {
                image,
                missing,
                error,
                saved,
            } => {
                if let Some(error) = error {
                    self.fail(format!(
                        "not relabelled: the labels of {} cannot be read: {error}",
                        image.display()
                    ));
                } else if missing > 0 {
                    self.info(format!(
                        "{missing} box(es) of {} were no longer there (changed since the gallery read them): not relabelled",
                        image.display()
                    ));
                }
                if let Some(saved) = saved {
                    self.apply_label_reply(*saved);
                }
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
                let mut doc = ws.unsaved.remove(&image).unwrap_or(doc);
                if let Some(message) = &doc.load_error {
                    ws.set_status(&image, ImageStatus::LabelError(message.clone()));
                } else if let Some(base) = &doc.base {
                    // The label file as read now (for the folder's per-class counts).
                    ws.set_class_counts(&image, class_counts(&base.annotation.boxes));
                }
                for b in &doc.annotation.boxes {
                    ws.classes.ensure(&b.class_name);
                }
                let error = doc.load_error.clone();
                let note = doc.load_note.take();
                ws.doc = Some(doc);
                if let Some(message) = error {
                    self.info(format!("cannot read labels: {message}"));
                }
                if let Some(note) = note {
                    self.info(note);
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

    /// Settles conflict `index` of [`super::Workspace::conflicts`]: keeps our version
    /// (their copy is removed), or takes theirs (their copy replaces the label file and is
    /// shown if the image is). An explicit, rare choice: it waits for the label thread.
    pub fn resolve_conflict(&mut self, index: usize, take_theirs: bool) {
        if index >= self.workspace.conflicts.len() {
            return;
        }
        self.flush_labels();
        let conflict = self.workspace.conflicts.remove(index);
        let result = if take_theirs {
            std::fs::read(&conflict.theirs)
                .and_then(|bytes| crate::atomic::write_atomic(&conflict.label, &bytes))
                .and_then(|()| std::fs::remove_file(&conflict.theirs))
        } else {
            std::fs::remove_file(&conflict.theirs)
        };
        if let Err(e) = result {
            self.workspace.conflicts.insert(index, conflict.clone());
            self.fail(format!(
                "cannot settle the conflict on {}: {e}",
                conflict.label.display()
            ));
            return;
        }
        if let Some(entry) = self.workspace.entry_mut(&conflict.image) {
            entry.elsewhere = None;
        }
        if take_theirs {
            let save_dir = self.workspace.save_dir().map(Path::to_path_buf);
            let (status, counts) =
                super::session::read_label_status(&conflict.image, save_dir.as_deref());
            self.workspace.set_status(&conflict.image, status);
            self.workspace.set_class_counts(&conflict.image, counts);
            if self.current_path().as_deref() == Some(conflict.image.as_path()) {
                if let Some(doc) = &mut self.workspace.doc {
                    doc.mark_saved(); // their version replaces it, by choice
                }
                if let Some(i) = self.workspace.current {
                    self.load_image(i);
                }
            }
            self.info(format!(
                "took their version of {}",
                conflict.label.display()
            ));
        } else {
            self.info(format!(
                "kept your version of {} (theirs removed)",
                conflict.label.display()
            ));
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
