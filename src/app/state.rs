//! The app's state and every action the UI can take on it. No drawing here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::document::Document;
use super::image_loader::ImageLoader;
use super::jobs::{
    repaint, spawn_export, spawn_picker, Job, LatestWriter, PickAnswer, PickPurpose,
};
use super::label_io::{LabelIo, LabelReply, LoadPurpose};
use super::review::Review;
use super::session::{ImageStatus, Session};
use super::settings::Settings;
use super::training::{TrainingForm, TrainingRun};
use crate::dataset::{ClassList, LabelBox, LabelFormat};
use crate::export::{ExportOptions, ExportSummary, Layout, SplitMode};
use crate::geometry::BoxXyxy;

/// What a left-drag on the canvas does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Select, move and resize boxes; drag empty canvas to pan.
    Edit,
    /// Drag to draw a new box (`w`).
    Draw,
}

/// How the image is fitted into the canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fit {
    Window,
    Width,
    /// A user-chosen zoom (screen points per image pixel).
    Manual,
}

/// The canvas view: zoom and pan, in screen points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub fit: Fit,
    pub zoom: f32,
    /// Screen offset of the image's top-left corner from the canvas' top-left corner.
    pub pan: egui::Vec2,
    /// −1 (dark) … 0 … +1 (bright).
    pub brightness: f32,
    /// Keyboard zoom to apply about the canvas centre on the next frame (1 = none).
    pub pending_zoom: f32,
    /// Screen position of the image's top-left corner in the last frame.
    pub origin: egui::Pos2,
}

impl Default for View {
    fn default() -> Self {
        Self {
            fit: Fit::Window,
            zoom: 1.0,
            pan: egui::Vec2::ZERO,
            brightness: 0.0,
            pending_zoom: 1.0,
            origin: egui::Pos2::ZERO,
        }
    }
}

/// A new box waiting for its class (the label picker is open).
#[derive(Clone, Debug)]
pub struct PendingLabel {
    pub bbox: BoxXyxy,
    pub text: String,
}

/// A navigation that waits for the user's answer about unsaved changes.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterPrompt {
    GoTo(usize),
    OpenFolder(PathBuf),
    Quit,
}

/// Everything the app shows.
pub struct AppState {
    pub settings: Settings,
    pub settings_path: PathBuf,
    pub session: Option<Session>,
    pub current: Option<usize>,
    pub doc: Option<Document>,
    pub classes: ClassList,
    pub tool: Tool,
    pub view: View,
    pub hidden_classes: HashSet<String>,
    pub file_filter: String,
    pub pending_label: Option<PendingLabel>,
    pub unsaved_prompt: Option<AfterPrompt>,
    pub confirm_delete: Option<PathBuf>,
    /// Messages for the status bar / log (latest last).
    pub messages: Vec<String>,
    /// Last error shown prominently until dismissed.
    pub error: Option<String>,
    /// Cursor position / box size in image pixels, for the status bar.
    pub canvas_info: String,
    pub loader: Option<ImageLoader>,
    pub quit_requested: bool,
    /// Repaints the window from background jobs (`None` in headless use).
    pub ctx: Option<egui::Context>,
    pub export_form: Option<ExportForm>,
    pub export_job: Option<Job<Result<ExportSummary, String>>>,
    pub export_result: Option<Result<ExportSummary, String>>,
    pub picker: Option<Job<(PickPurpose, PickAnswer)>>,
    /// detlab's own file dialog, shown where no native one can open.
    pub file_browser: Option<super::file_browser::FileBrowser>,
    pub demo_job: Option<Job<Result<PathBuf, String>>>,
    pub trash_job: Option<Job<Result<PathBuf, String>>>,
    pub page: Page,
    pub review: Review,
    pub training_form: TrainingForm,
    pub training: Option<TrainingRun>,
    /// Reads and writes label files off the UI thread, in order.
    pub labels: LabelIo,
    /// The read of the current image's labels, while it is in flight.
    labels_ticket: Option<u64>,
    /// A read of the previous image's labels to copy into `.1`, while it is in flight.
    copy_ticket: Option<(u64, PathBuf)>,
    /// Labels whose save failed, by image: they stay here (and are shown again when the
    /// image is) until a save succeeds, so nothing is lost.
    pub unsaved: HashMap<PathBuf, Document>,
    /// A close was refused once because of unsaved labels; the next one goes ahead.
    pub close_despite_unsaved: bool,
    settings_writer: LatestWriter<Settings>,
}

/// What the central area shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Page {
    /// The image with its labels and the model's predictions.
    #[default]
    Label,
    /// COCO numbers and PR curves of the model on the labels.
    Evaluate,
    /// The training panel.
    Train,
}

/// The Export COCO dialog's choices.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportForm {
    pub split: SplitChoice,
    pub val_fraction: f64,
    pub seed: u64,
    pub zylo117: bool,
    pub project: String,
    pub out_dir: String,
    pub difficult_as_crowd: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitChoice {
    None,
    Fraction,
    ByFolder,
}

impl AppState {
    /// The state of a window on `ctx` (repainted by background threads), or headless.
    pub fn new(
        settings: Settings,
        settings_path: PathBuf,
        loader: Option<ImageLoader>,
        ctx: Option<egui::Context>,
    ) -> Self {
        let mut review = Review::default();
        review.select.score_threshold = settings.review_score.clamp(0.0, 1.0);
        review.select.iou_threshold = settings.review_iou.clamp(0.0, 1.0);
        review.select.class_agnostic = settings.review_class_agnostic;
        Self {
            settings,
            settings_path,
            session: None,
            current: None,
            doc: None,
            classes: ClassList::new(),
            tool: Tool::Edit,
            view: View::default(),
            hidden_classes: HashSet::new(),
            file_filter: String::new(),
            pending_label: None,
            unsaved_prompt: None,
            confirm_delete: None,
            messages: Vec::new(),
            error: None,
            canvas_info: String::new(),
            loader,
            quit_requested: false,
            ctx: ctx.clone(),
            export_form: None,
            export_job: None,
            export_result: None,
            picker: None,
            file_browser: None,
            demo_job: None,
            trash_job: None,
            page: Page::Label,
            review,
            training_form: TrainingForm::default(),
            training: None,
            labels: LabelIo::new(ctx),
            labels_ticket: None,
            copy_ticket: None,
            unsaved: HashMap::new(),
            close_despite_unsaved: false,
            settings_writer: LatestWriter::spawn("settings", save_settings_file),
        }
    }

    pub fn info(&mut self, message: impl Into<String>) {
        self.messages.push(message.into());
        if self.messages.len() > 200 {
            self.messages.remove(0);
        }
    }

    pub fn fail(&mut self, message: impl Into<String>) {
        let m = message.into();
        self.messages.push(m.clone());
        self.error = Some(m);
    }

    /// The document, if it may be edited (its label file was readable, or the user chose
    /// to overwrite it).
    pub fn editable(&mut self) -> Option<&mut Document> {
        self.doc.as_mut().filter(|d| d.can_save())
    }

    pub fn save_settings(&mut self) {
        let select = &self.review.select;
        self.settings.review_score = select.score_threshold;
        self.settings.review_iou = select.iou_threshold;
        self.settings.review_class_agnostic = select.class_agnostic;
        let (path, settings) = (self.settings_path.clone(), self.settings.clone());
        if let Err(e) = self.settings_writer.write(path, settings) {
            self.info(e);
        }
    }

    /// Finishes every write in flight: label files, settings and the review log (when
    /// the app closes). Failures go to stderr, as the window is gone.
    pub fn finish_writes(&mut self) {
        self.flush_labels();
        for e in self.settings_writer.finish() {
            eprintln!("{e}");
        }
        if let Some(writer) = &mut self.review.log_writer {
            for e in writer.finish() {
                eprintln!("{e}");
            }
        }
    }

    // ---- folders -------------------------------------------------------------------

    /// Opens an image folder (after saving or asking about the current image).
    pub fn request_open_folder(&mut self, folder: PathBuf, ctx: Option<egui::Context>) {
        if self.needs_prompt() {
            self.unsaved_prompt = Some(AfterPrompt::OpenFolder(folder));
            return;
        }
        if !self.leave_current_image() {
            return;
        }
        self.open_folder(folder, ctx);
    }

    fn open_folder(&mut self, folder: PathBuf, ctx: Option<egui::Context>) {
        let folder = folder.canonicalize().unwrap_or(folder);
        if !folder.is_dir() {
            self.fail(format!("{} is not a folder", folder.display()));
            return;
        }
        let save_dir = self.settings.save_dirs.get(&folder).cloned();
        // The folder's class list arrives from the scan, before its images.
        self.classes = ClassList::new();
        self.session = Some(Session::open(folder.clone(), save_dir, ctx));
        self.current = None;
        self.doc = None;
        // A read of the previous folder's image still in flight is not this folder's.
        self.labels_ticket = None;
        if let Some(loader) = &mut self.loader {
            loader.cancel_pending();
        }
        self.settings.remember_folder(&folder);
        self.save_settings();
        self.load_default_model();
        self.info(format!("opened {}", folder.display()));
    }

    /// Sets the folder where label files are read and written.
    pub fn change_save_dir(&mut self, dir: PathBuf) {
        if !self.leave_current_image() {
            return;
        }
        let Some(session) = &self.session else { return };
        let root = session.root.clone();
        self.settings.save_dirs.insert(root.clone(), dir.clone());
        self.save_settings();
        let current = self.current_path();
        self.open_folder(root, None);
        if let Some(p) = current {
            self.settings.last_image.insert(
                self.session
                    .as_ref()
                    .map(|s| s.root.clone())
                    .unwrap_or_default(),
                p,
            );
        }
        self.info(format!("labels are now saved in {}", dir.display()));
    }

    /// Applies everything the background threads have finished: the folder scan, label
    /// files, jobs, predictions, training events and decoded images.
    pub fn poll_background(&mut self, ctx: &egui::Context) {
        self.poll_session();
        self.poll_labels();
        self.poll_jobs();
        self.poll_review();
        self.poll_training();
        let keep = self.current_path();
        if let Some(loader) = &mut self.loader {
            loader.poll(ctx, keep.as_deref());
        }
    }

    /// Applies background results (folder scan); picks the first image once listed.
    pub fn poll_session(&mut self) -> bool {
        let Some(session) = &mut self.session else {
            return false;
        };
        let changed = session.poll();
        if let Some(list) = session.classes.take() {
            // Before any image of the folder is shown, so no name was added meanwhile.
            self.classes = list;
        }
        if self.current.is_none() && session.listed && !session.images.is_empty() {
            let resume = self
                .settings
                .last_image
                .get(&session.root)
                .and_then(|p| session.index_of(p))
                .unwrap_or(0);
            self.load_image(resume);
        }
        changed
    }

    pub fn image_count(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.images.len())
    }

    pub fn current_path(&self) -> Option<PathBuf> {
        let s = self.session.as_ref()?;
        Some(s.images.get(self.current?)?.path.clone())
    }

    pub fn save_dir(&self) -> Option<&Path> {
        self.session.as_ref().and_then(|s| s.save_dir.as_deref())
    }

    // ---- navigation ----------------------------------------------------------------

    fn needs_prompt(&self) -> bool {
        !self.settings.autosave
            && self
                .doc
                .as_ref()
                .is_some_and(|d| d.is_dirty() && d.can_save())
    }

    /// Goes to image `index`, saving the current one first (autosave) or asking.
    pub fn go_to(&mut self, index: usize) {
        if Some(index) == self.current || index >= self.image_count() {
            return;
        }
        if self.needs_prompt() {
            self.unsaved_prompt = Some(AfterPrompt::GoTo(index));
            return;
        }
        if self.leave_current_image() {
            self.load_image(index);
        }
    }

    pub fn next(&mut self) {
        if let Some(i) = self.current {
            self.go_to(i + 1);
        }
    }

    pub fn previous(&mut self) {
        if let Some(i) = self.current.filter(|&i| i > 0) {
            self.go_to(i - 1);
        }
    }

    /// The next image (after the current one, wrapping) whose status matches.
    pub fn next_matching(&mut self, matches: impl Fn(&ImageStatus) -> bool) {
        let Some(session) = &self.session else { return };
        let n = session.images.len();
        let start = self.current.map_or(0, |c| c + 1);
        let found = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| Some(i) != self.current && matches(&session.images[i].status));
        match found {
            Some(i) => self.go_to(i),
            None => self.info("no such image"),
        }
    }

    /// Saves (when needed and allowed) before the current image is left. Returns `false`
    /// when the save failed and the user must decide (nothing is lost).
    pub fn leave_current_image(&mut self) -> bool {
        self.remember_labels();
        if self.settings.autosave
            && self
                .doc
                .as_ref()
                .is_some_and(|d| d.is_dirty() && d.can_save())
        {
            return self.save();
        }
        true
    }

    /// Answers the unsaved-changes prompt.
    pub fn answer_prompt(&mut self, save: bool, ctx: Option<egui::Context>) {
        let Some(after) = self.unsaved_prompt.take() else {
            return;
        };
        if save && !self.save() {
            return;
        }
        if !save {
            if let Some(d) = &mut self.doc {
                d.mark_saved();
            }
        }
        match after {
            AfterPrompt::GoTo(i) => self.load_image(i),
            AfterPrompt::OpenFolder(f) => self.open_folder(f, ctx),
            AfterPrompt::Quit => self.quit_requested = true,
        }
    }

    /// Shows image `index`: asks the label thread for its labels (they arrive in
    /// [`Self::poll_labels`]) and the loader for its pixels (and neighbours').
    pub fn load_image(&mut self, index: usize) {
        let Some(session) = &self.session else { return };
        let Some(entry) = session.images.get(index) else {
            return;
        };
        let path = entry.path.clone();
        let root = session.root.clone();
        match self.unsaved.remove(&path) {
            Some(doc) => {
                self.doc = Some(doc);
                self.labels_ticket = None;
            }
            None => {
                self.doc = None;
                let ticket = self.labels.load(
                    LoadPurpose::Open,
                    &path,
                    session.save_dir.as_deref(),
                    self.settings.format,
                );
                self.labels_ticket = Some(ticket);
            }
        }
        self.current = Some(index);
        self.pending_label = None;
        self.review.selected = None;
        self.view.fit = if self.view.fit == Fit::Width {
            Fit::Width
        } else {
            Fit::Window
        };
        self.settings.last_image.insert(root, path);
        self.request_images(index);
    }

    fn request_images(&mut self, index: usize) {
        let Some(session) = &self.session else { return };
        let paths: Vec<PathBuf> = [
            index as isize,
            index as isize + 1,
            index as isize - 1,
            index as isize + 2,
        ]
        .iter()
        .filter(|&&i| i >= 0 && (i as usize) < session.images.len())
        .map(|&i| session.images[i as usize].path.clone())
        .collect();
        if let Some(loader) = &mut self.loader {
            for (k, p) in paths.iter().enumerate() {
                loader.request(p, k == 0);
            }
        }
    }

    // ---- saving --------------------------------------------------------------------

    /// Saves the current image's labels on the label thread (the result arrives in
    /// [`Self::poll_labels`]). Returns `false` when the labels may not be saved: their
    /// file could not be read, and the user has not chosen to overwrite it.
    pub fn save(&mut self) -> bool {
        let Some(doc) = &mut self.doc else {
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
        let save_dir = self.session.as_ref().and_then(|s| s.save_dir.as_deref());
        self.labels.save(
            &doc.image_path,
            save_dir,
            doc.format,
            doc.annotation.clone(),
            self.classes.clone(),
        );
        doc.mark_saved();
        doc.load_error = None;
        doc.overwrite_allowed = false;
        true
    }

    /// Applies the label thread's replies; returns whether anything changed.
    pub fn poll_labels(&mut self) -> bool {
        let mut changed = false;
        while let Some(reply) = self.labels.poll() {
            self.apply_label_reply(reply);
            changed = true;
        }
        changed
    }

    /// Waits until every label read and write asked for so far is done (when the app
    /// closes).
    pub fn flush_labels(&mut self) {
        while let Some(reply) = self.labels.wait() {
            self.apply_label_reply(reply);
        }
    }

    fn set_status(&mut self, image: &Path, status: ImageStatus) {
        let Some(s) = &mut self.session else { return };
        // Label replies are nearly always about the current image or a neighbour: look
        // there before searching the whole list.
        let near = self.current.map(|c| [c, c.wrapping_sub(1), c + 1]);
        let index = near
            .into_iter()
            .flatten()
            .find(|&i| s.images.get(i).is_some_and(|e| e.path == image))
            .or_else(|| s.index_of(image));
        if let Some(i) = index {
            s.images[i].status = status;
        }
    }

    fn apply_label_reply(&mut self, reply: LabelReply) {
        match reply {
            LabelReply::Saved {
                image,
                path,
                annotation,
            } => {
                self.unsaved.remove(&image);
                let boxes = annotation.boxes.len();
                let status = if annotation.verified {
                    ImageStatus::Verified { boxes }
                } else {
                    ImageStatus::Labelled { boxes }
                };
                self.set_status(&image, status);
                self.info(format!("saved {}", path.display()));
            }
            LabelReply::SaveFailed {
                image,
                message,
                doc,
            } => {
                self.fail(format!("not saved: {message}"));
                self.set_status(
                    &image,
                    ImageStatus::LabelError(format!("not saved: {message}")),
                );
                match &mut self.doc {
                    Some(current) if current.image_path == image => current.mark_unsaved(),
                    _ => {
                        self.unsaved.insert(image, doc);
                    }
                }
            }
            LabelReply::Loaded {
                ticket,
                purpose: LoadPurpose::Open,
                image,
                doc,
            } => {
                if self.labels_ticket != Some(ticket) {
                    return; // the user has moved on
                }
                self.labels_ticket = None;
                // A save of this image that failed meanwhile holds the newer labels.
                let doc = self.unsaved.remove(&image).unwrap_or(doc);
                if let Some(message) = &doc.load_error {
                    self.info(format!("cannot read labels: {message}"));
                    self.set_status(&image, ImageStatus::LabelError(message.clone()));
                }
                for b in &doc.annotation.boxes {
                    self.classes.ensure(&b.class_name);
                }
                self.doc = Some(doc);
            }
            LabelReply::Loaded {
                ticket,
                purpose: LoadPurpose::CopyInto,
                image,
                doc,
            } => {
                let Some((wanted, target)) = self.copy_ticket.take() else {
                    return;
                };
                // Only into the image it was asked for, if it is still shown.
                let shown = self.doc.as_ref().map(|d| d.image_path.as_path());
                if wanted == ticket && shown == Some(target.as_path()) {
                    self.merge_boxes_from(&image, doc);
                }
            }
        }
    }

    /// Allows replacing a label file that could not be read (explicit user choice).
    pub fn allow_overwrite(&mut self) {
        if let Some(doc) = &mut self.doc {
            doc.overwrite_allowed = true;
        }
    }

    pub fn set_format(&mut self, format: LabelFormat) {
        self.settings.format = format;
        if let Some(doc) = &mut self.doc {
            if doc.format != format {
                doc.format = format;
                doc.edit(|_| {});
            }
        }
    }

    // ---- editing -------------------------------------------------------------------

    /// The label a new box gets without asking, if any.
    pub fn automatic_label(&self) -> Option<String> {
        if !self.settings.single_class_mode {
            return None;
        }
        self.settings
            .default_label
            .clone()
            .or_else(|| self.classes.names().first().cloned())
    }

    /// A new box was drawn: label it at once, or open the label picker.
    pub fn box_drawn(&mut self, bbox: BoxXyxy) {
        match self.automatic_label() {
            Some(label) => self.add_box(bbox, &label),
            None => {
                let text = self.settings.default_label.clone().unwrap_or_default();
                self.pending_label = Some(PendingLabel { bbox, text });
            }
        }
    }

    pub fn add_box(&mut self, bbox: BoxXyxy, label: &str) {
        let label = label.trim().to_string();
        if label.is_empty() {
            return;
        }
        self.classes.ensure(&label);
        self.settings.default_label = Some(label.clone());
        let Some(doc) = self.editable() else { return };
        let index = doc.edit(|a| {
            a.boxes.push(LabelBox::new(label, bbox));
            a.boxes.len() - 1
        });
        doc.selected = Some(index);
    }

    pub fn delete_selected(&mut self) {
        let Some(doc) = self.editable() else { return };
        if let Some(i) = doc.selected.take() {
            doc.edit(|a| {
                a.boxes.remove(i);
            });
        }
    }

    /// Ctrl+D: a copy of the selected box, offset by 2 px inside the image, selected.
    pub fn duplicate_selected(&mut self) {
        let Some(doc) = self.editable() else { return };
        let Some(b) = doc.selected_box().cloned() else {
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
        let Some(name) = self.classes.name(id).map(str::to_string) else {
            return;
        };
        self.settings.default_label = Some(name.clone());
        if let Some(doc) = self.editable() {
            if let Some(i) = doc.selected {
                doc.edit(|a| a.boxes[i].class_name = name.clone());
            }
        }
        if let Some(p) = &mut self.pending_label {
            p.text = name;
        }
    }

    pub fn toggle_difficult(&mut self, index: usize) {
        if let Some(doc) = self.editable() {
            if index < doc.annotation.boxes.len() {
                doc.edit(|a| a.boxes[index].difficult = !a.boxes[index].difficult);
            }
        }
    }

    /// Space: toggles verified and saves (as LabelImg does).
    pub fn toggle_verified(&mut self) {
        let Some(doc) = self.editable() else { return };
        doc.edit(|a| a.verified = !a.verified);
        self.save();
    }

    /// Arrow keys: moves the selected box by (dx, dy) pixels, kept inside the image.
    pub fn nudge_selected(&mut self, dx: f64, dy: f64) {
        let Some(doc) = self.editable() else { return };
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
        let (Some(i), Some(session)) = (self.current, &self.session) else {
            return;
        };
        if i == 0 {
            return;
        }
        let previous = session.images[i - 1].path.clone();
        match self.unsaved.get(&previous) {
            Some(doc) => self.merge_boxes_from(&previous, doc.clone()),
            None => {
                let target = session.images[i].path.clone();
                let ticket = self.labels.load(
                    LoadPurpose::CopyInto,
                    &previous,
                    session.save_dir.as_deref(),
                    self.settings.format,
                );
                self.copy_ticket = Some((ticket, target));
            }
        }
    }

    fn merge_boxes_from(&mut self, previous: &Path, source: Document) {
        if let Some(e) = source.load_error {
            self.fail(format!("cannot copy: {e}"));
            return;
        }
        if source.annotation.boxes.is_empty() {
            self.info("the previous image has no labels");
            return;
        }
        let Some(doc) = self.editable() else { return };
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

    pub fn undo(&mut self) {
        if let Some(d) = &mut self.doc {
            d.undo();
        }
    }

    pub fn redo(&mut self) {
        if let Some(d) = &mut self.doc {
            d.redo();
        }
    }

    /// Moves the current image (not its labels) to the system trash, on a thread; the
    /// list changes when it is done ([`Self::poll_jobs`]).
    pub fn delete_image(&mut self, path: &Path) {
        if self.trash_job.is_some() {
            return;
        }
        let path = path.to_path_buf();
        self.trash_job = Some(Job::spawn("trash", repaint(self.ctx.clone()), move |_| {
            trash::delete(&path)
                .map(|()| path.clone())
                .map_err(|e| format!("cannot move {} to the trash: {e}", path.display()))
        }));
    }

    /// Takes a trashed image out of the list (and off the screen when it is shown).
    fn image_trashed(&mut self, path: &Path) {
        self.info(format!("moved {} to the trash", path.display()));
        if let Some(loader) = &mut self.loader {
            loader.forget(path);
        }
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(i) = session.index_of(path) else {
            return;
        };
        session.images.remove(i);
        let remaining = session.images.len();
        match self.current {
            Some(c) if c == i => {
                self.doc = None;
                self.current = None;
                self.labels_ticket = None;
                if remaining > 0 {
                    self.load_image(i.min(remaining - 1));
                }
            }
            Some(c) if c > i => self.current = Some(c - 1),
            _ => {}
        }
    }
}

impl AppState {
    // ---- background jobs -----------------------------------------------------------

    /// Opens a native picker (off the UI thread); the answer arrives in `poll_jobs`.
    pub fn pick(&mut self, purpose: PickPurpose) {
        if self.picker.is_some() || self.file_browser.is_some() {
            return;
        }
        let start = self.session.as_ref().map(|s| s.root.clone());
        self.picker = Some(spawn_picker(purpose, start, self.ctx.clone()));
    }

    /// Opens the Export COCO dialog with defaults for the current folder.
    pub fn open_export_dialog(&mut self) {
        let Some(session) = &self.session else {
            self.fail("open a folder first");
            return;
        };
        let out = session.root.join("coco");
        self.export_result = None;
        self.export_form = Some(ExportForm {
            split: SplitChoice::Fraction,
            val_fraction: 0.2,
            seed: 0,
            zylo117: false,
            project: "detlab".into(),
            out_dir: out.to_string_lossy().into_owned(),
            difficult_as_crowd: false,
        });
    }

    /// Starts the export described by the dialog (saving the current image first).
    pub fn start_export(&mut self) {
        let (Some(form), Some(session)) = (self.export_form.clone(), &self.session) else {
            return;
        };
        if self.export_job.is_some() {
            return;
        }
        let options = ExportOptions {
            images_dir: session.root.clone(),
            labels_dir: session.save_dir.clone(),
            out_dir: PathBuf::from(form.out_dir.trim()),
            classes: self.classes.clone(),
            split: match form.split {
                SplitChoice::None => SplitMode::None,
                SplitChoice::Fraction => SplitMode::Fraction {
                    val_fraction: form.val_fraction,
                    seed: form.seed,
                },
                SplitChoice::ByFolder => SplitMode::ByFolder,
            },
            layout: if form.zylo117 {
                Layout::Zylo117 {
                    project: form.project.trim().to_string(),
                }
            } else {
                Layout::Plain
            },
            difficult_as_crowd: form.difficult_as_crowd,
        };
        if !self.leave_current_image() {
            return;
        }
        self.export_result = None;
        // The export reads the label files: it starts after the pending saves.
        let after = self.labels.barrier();
        self.export_job = Some(spawn_export(options, after, self.ctx.clone()));
    }

    /// Creates the synthetic demo dataset in `folder` in the background, then opens it.
    pub fn create_demo(&mut self, folder: PathBuf) {
        if self.demo_job.is_some() {
            return;
        }
        let options = crate::demo::DemoOptions {
            out_dir: folder.clone(),
            images: 40,
            seed: 0,
            width: 640,
            height: 480,
        };
        self.info(format!("creating the demo dataset in {}", folder.display()));
        self.demo_job = Some(Job::spawn("demo", repaint(self.ctx.clone()), move |_| {
            crate::demo::generate(&options)
                .map(|_| folder)
                .map_err(|e| e.to_string())
        }));
    }

    /// Applies finished background jobs; returns whether anything changed.
    pub fn poll_jobs(&mut self) -> bool {
        let mut changed = false;
        for e in self.settings_writer.errors() {
            self.info(e);
        }
        if let Some(result) = self.picker.as_ref().and_then(Job::result) {
            self.picker = None;
            changed = true;
            match result {
                Ok((purpose, PickAnswer::Native(Some(path)))) => self.picked(purpose, path),
                Ok((_, PickAnswer::Native(None))) => {}
                Ok((purpose, PickAnswer::Unavailable(reason))) => {
                    self.info(format!(
                        "no native file dialog ({reason}): using detlab's own"
                    ));
                    self.open_file_browser(purpose);
                }
                Err(failed) => {
                    self.fail(format!(
                        "the file dialog failed ({failed}): using detlab's own"
                    ));
                }
            }
        }
        if let Some(result) = self.export_job.as_ref().and_then(Job::outcome) {
            self.export_job = None;
            changed = true;
            match &result {
                Ok(s) => self.info(format!("exported {} images to COCO", s.total_images())),
                Err(e) => self.info(format!("export failed: {e}")),
            }
            self.export_result = Some(result);
        }
        if let Some(result) = self.trash_job.as_ref().and_then(Job::outcome) {
            self.trash_job = None;
            changed = true;
            match result {
                Ok(path) => self.image_trashed(&path),
                Err(e) => self.fail(e),
            }
        }
        if let Some(result) = self.demo_job.as_ref().and_then(Job::outcome) {
            self.demo_job = None;
            changed = true;
            match result {
                Ok(folder) => self.request_open_folder(folder, self.ctx.clone()),
                Err(e) => self.fail(format!("cannot create the demo dataset: {e}")),
            }
        }
        changed
    }

    /// Opens the folder of `image` and shows it (Open File, or a dropped image).
    pub fn open_file(&mut self, image: PathBuf) {
        let Some(folder) = image.parent().map(Path::to_path_buf) else {
            return;
        };
        let image = image.canonicalize().unwrap_or(image);
        let folder = folder.canonicalize().unwrap_or(folder);
        self.settings.last_image.insert(folder.clone(), image);
        self.request_open_folder(folder, self.ctx.clone());
    }

    /// Files or folders dropped on the window.
    pub fn dropped(&mut self, path: PathBuf) {
        if path.is_dir() {
            self.request_open_folder(path, self.ctx.clone());
        } else if crate::dataset::is_image_path(&path) {
            self.open_file(path);
        } else {
            self.fail(format!(
                "{} is neither a folder nor an image",
                path.display()
            ));
        }
    }
}

/// Saves the settings (for [`LatestWriter`]); the error is the message to show.
fn save_settings_file(settings: &Settings, path: &Path) -> Result<(), String> {
    settings
        .save(path)
        .map_err(|e| format!("cannot save settings: {e}"))
}
