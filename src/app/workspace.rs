//! The workspace: the open folder, the image shown and its labels, the class list, the
//! label thread, the labels whose save failed, and moving between images (saving or
//! asking first).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::document::Document;
use super::folder_lock::{FolderLock, LockInfo};
use super::image_loader::ImageLoader;
use super::label_io::{LabelIo, LoadPurpose};
use super::session::{ChangedElsewhere, ClassCounts, ImageEntry, ImageStatus, Session};
use super::ui_state::{AfterPrompt, Fit};
use super::AppState;
use crate::dataset::{ClassList, LabelBox};

/// A save that found someone else's conflicting changes: the label file holds ours,
/// `theirs` holds their whole file, until the user decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The image.
    pub image: PathBuf,
    /// Its label file (our version).
    pub label: PathBuf,
    /// Their version, kept beside it.
    pub theirs: PathBuf,
    /// One line per conflicting box.
    pub details: Vec<String>,
}

/// The labelling work: what is open, what is shown, what is not saved yet.
pub struct Workspace {
    /// The open folder and its images, once opened.
    pub session: Option<Session>,
    /// Index of the image shown, in `session.images`.
    pub current: Option<usize>,
    /// The shown image's labels, once read.
    pub doc: Option<Document>,
    /// The class names, in key order (1 … 9).
    pub classes: ClassList,
    /// Reads and writes label files off the UI thread, in order.
    pub labels: LabelIo,
    /// Decodes images for display (`None` in headless use).
    pub loader: Option<ImageLoader>,
    /// Labels whose save failed, by image: they stay here (and are shown again when the
    /// image is) until a save succeeds, so nothing is lost.
    pub unsaved: HashMap<PathBuf, Document>,
    /// Saves that found conflicting changes by someone else, latest last (shown until the
    /// user decides).
    pub conflicts: Vec<Conflict>,
    /// This window's "open here" marker in the labels folder (see [`FolderLock`]).
    pub folder_lock: Option<FolderLock>,
    /// The other windows that had the folder open when it was opened here.
    pub others_open: Vec<LockInfo>,
    /// A close was refused once because of unsaved labels; the next one goes ahead.
    pub close_despite_unsaved: bool,
    /// The read of the current image's labels, while it is in flight.
    pub(super) labels_ticket: Option<u64>,
    /// A read of the previous image's labels to copy into `.1`, while it is in flight.
    pub(super) copy_ticket: Option<(u64, PathBuf)>,
    /// How many saves were asked for (a disk check sent before a save is stale).
    pub(super) saves_sent: u64,
    /// The disk check of the current image in flight: its image and `saves_sent` then.
    pub(super) check_pending: Option<(PathBuf, u64)>,
    /// When the current image's label file was last checked for changes by others.
    pub(super) last_check: Option<std::time::Instant>,
}

impl Workspace {
    /// An empty workspace; the label thread repaints `ctx` after each reply.
    pub fn new(loader: Option<ImageLoader>, ctx: Option<egui::Context>) -> Self {
        Self {
            session: None,
            current: None,
            doc: None,
            classes: ClassList::new(),
            labels: LabelIo::new(ctx),
            loader,
            unsaved: HashMap::new(),
            conflicts: Vec::new(),
            folder_lock: None,
            others_open: Vec::new(),
            close_despite_unsaved: false,
            labels_ticket: None,
            copy_ticket: None,
            saves_sent: 0,
            check_pending: None,
            last_check: None,
        }
    }

    /// The number of images in the open folder.
    pub fn image_count(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.images.len())
    }

    /// The path of the image shown.
    pub fn current_path(&self) -> Option<PathBuf> {
        let s = self.session.as_ref()?;
        Some(s.images.get(self.current?)?.path.clone())
    }

    /// The folder label files go to, when not beside the images.
    pub fn save_dir(&self) -> Option<&Path> {
        self.session.as_ref().and_then(|s| s.save_dir.as_deref())
    }

    /// The one rule for "there is something to save": the shown labels changed since they
    /// were last saved, and they may be saved (see [`Document::needs_saving`]).
    pub fn needs_saving(&self) -> bool {
        self.doc.as_ref().is_some_and(Document::needs_saving)
    }

    /// The document, if it may be edited (its label file was readable, or the user chose
    /// to overwrite it).
    pub fn editable(&mut self) -> Option<&mut Document> {
        self.doc.as_mut().filter(|d| d.can_save())
    }

    /// Sets the file list's status of `image`.
    pub(super) fn set_status(&mut self, image: &Path, status: ImageStatus) {
        if let Some(e) = self.entry_mut(image) {
            e.status = status;
        }
    }

    /// Marks `image` in the file list as changed by someone else; returns whether it was
    /// marked so already.
    pub(super) fn set_elsewhere(&mut self, image: &Path, mark: ChangedElsewhere) -> bool {
        self.entry_mut(image)
            .map(|e| e.elsewhere.replace(mark.clone()) == Some(mark))
            .unwrap_or(false)
    }

    pub(super) fn entry_mut(&mut self, image: &Path) -> Option<&mut ImageEntry> {
        let index = self.entry_index(image)?;
        self.session.as_mut()?.images.get_mut(index)
    }

    /// The position of `image` in the file list.
    fn entry_index(&self, image: &Path) -> Option<usize> {
        let s = self.session.as_ref()?;
        // Label replies are nearly always about the current image or a neighbour: look
        // there before searching the whole list.
        let near = self.current.map(|c| [c, c.wrapping_sub(1), c + 1]);
        near.into_iter()
            .flatten()
            .find(|&i| s.images.get(i).is_some_and(|e| e.path == image))
            .or_else(|| s.index_of(image))
    }

    /// Records `counts` as what the label file of `image` holds now (read or saved), for
    /// the folder's per-class counts.
    pub(super) fn set_class_counts(&mut self, image: &Path, counts: ClassCounts) {
        let Some(index) = self.entry_index(image) else {
            return;
        };
        if let Some(s) = &mut self.session {
            s.set_class_counts(index, counts);
        }
    }

    /// The number of boxes of each class in the open folder (`None` without one): every
    /// label file as last read (by the folder scan, or when its image was opened) or saved
    /// here, except that the shown image and the images whose save failed count with
    /// their labels as they are here. No disk access: O(classes) per call, plus a list
    /// search per failed save.
    pub fn folder_class_counts(&self) -> Option<HashMap<&str, usize>> {
        let s = self.session.as_ref()?;
        let mut counts: HashMap<&str, usize> = s
            .class_totals()
            .iter()
            .map(|(c, n)| (c.as_str(), *n))
            .collect();
        // The labels here replace the label file's in the counts.
        fn live<'a>(
            counts: &mut HashMap<&'a str, usize>,
            entry: Option<&ImageEntry>,
            boxes: &'a [LabelBox],
        ) {
            for (c, n) in entry.map_or(&[][..], |e| e.class_counts().as_slice()) {
                if let Some(total) = counts.get_mut(c.as_str()) {
                    *total = total.saturating_sub(*n);
                }
            }
            for b in boxes {
                *counts.entry(b.class_name.as_str()).or_insert(0) += 1;
            }
        }
        let shown = self.doc.as_ref().map(|d| d.image_path.as_path());
        if let Some(doc) = &self.doc {
            let entry = self
                .current
                .and_then(|c| s.images.get(c))
                .filter(|e| e.path == doc.image_path);
            live(&mut counts, entry, &doc.annotation.boxes);
        }
        for (path, doc) in &self.unsaved {
            if Some(path.as_path()) != shown {
                let entry = s.index_of(path).and_then(|i| s.images.get(i));
                live(&mut counts, entry, &doc.annotation.boxes);
            }
        }
        counts.retain(|_, n| *n > 0);
        Some(counts)
    }
}

impl AppState {
    /// The path of the image shown.
    pub fn current_path(&self) -> Option<PathBuf> {
        self.workspace.current_path()
    }

    // ---- folders -------------------------------------------------------------------

    /// Opens an image folder (after saving or asking about the current image).
    pub fn request_open_folder(&mut self, folder: PathBuf) {
        if self.needs_prompt() {
            self.ui.unsaved_prompt = Some(AfterPrompt::OpenFolder(folder));
            return;
        }
        if !self.leave_current_image() {
            return;
        }
        self.open_folder(folder);
    }

    fn open_folder(&mut self, folder: PathBuf) {
        let folder = folder.canonicalize().unwrap_or(folder);
        if !folder.is_dir() {
            self.fail(format!("{} is not a folder", folder.display()));
            return;
        }
        let save_dir = self.settings.save_dirs.get(&folder).cloned();
        let ws = &mut self.workspace;
        // The folder's class list arrives from the scan, before its images.
        ws.classes = ClassList::new();
        // The previous folder's marker goes first (a folder reopened is not "open twice").
        ws.folder_lock = None;
        let labels_dir = save_dir.clone().unwrap_or_else(|| folder.clone());
        let (lock, others) = FolderLock::acquire(&labels_dir);
        ws.folder_lock = lock;
        ws.others_open = others;
        ws.conflicts.clear();
        ws.session = Some(Session::open(folder.clone(), save_dir, self.ctx.clone()));
        ws.current = None;
        ws.doc = None;
        // A read of the previous folder's image still in flight is not this folder's.
        ws.labels_ticket = None;
        if let Some(loader) = &mut ws.loader {
            loader.cancel_pending();
        }
        self.settings.remember_folder(&folder);
        self.save_settings();
        self.load_default_model();
        self.info(format!("opened {}", folder.display()));
        let others: Vec<String> = self
            .workspace
            .others_open
            .iter()
            .map(LockInfo::describe)
            .collect();
        if !others.is_empty() {
            self.info(format!(
                "this folder is also open in detlab on {}: saves of the same image are merged, and conflicting changes are kept as NAME.theirs.EXT beside the label file",
                others.join(", ")
            ));
        }
    }

    /// Sets the folder where label files are read and written.
    pub fn change_save_dir(&mut self, dir: PathBuf) {
        if !self.leave_current_image() {
            return;
        }
        let Some(session) = &self.workspace.session else {
            return;
        };
        let root = session.root.clone();
        self.settings.save_dirs.insert(root.clone(), dir.clone());
        self.save_settings();
        let current = self.current_path();
        self.open_folder(root);
        if let Some(p) = current {
            let root = self.workspace.session.as_ref().map(|s| s.root.clone());
            self.settings.last_image.insert(root.unwrap_or_default(), p);
        }
        self.info(format!("labels are now saved in {}", dir.display()));
    }

    /// Opens the folder of `image` and shows it (Open File, or a dropped image).
    pub fn open_file(&mut self, image: PathBuf) {
        let Some(folder) = image.parent().map(Path::to_path_buf) else {
            return;
        };
        let image = image.canonicalize().unwrap_or(image);
        let folder = folder.canonicalize().unwrap_or(folder);
        self.settings.last_image.insert(folder.clone(), image);
        self.request_open_folder(folder);
    }

    /// Files or folders dropped on the window.
    pub fn dropped(&mut self, path: PathBuf) {
        if path.is_dir() {
            self.request_open_folder(path);
        } else if crate::dataset::is_image_path(&path) {
            self.open_file(path);
        } else {
            self.fail(format!(
                "{} is neither a folder nor an image",
                path.display()
            ));
        }
    }

    /// Applies background results (folder scan); picks the first image once listed.
    pub fn poll_session(&mut self) -> bool {
        let ws = &mut self.workspace;
        let Some(session) = &mut ws.session else {
            return false;
        };
        let changed = session.poll();
        let mut notes = Vec::new();
        if let Some((list, said)) = session.classes.take() {
            // Before any image of the folder is shown, so no name was added meanwhile.
            ws.classes = list;
            notes = said;
        }
        if ws.current.is_none() && session.listed && !session.images.is_empty() {
            let resume = self
                .settings
                .last_image
                .get(&session.root)
                .and_then(|p| session.index_of(p))
                .unwrap_or(0);
            self.load_image(resume);
        }
        for note in notes {
            self.info(note);
        }
        changed
    }

    // ---- navigation ----------------------------------------------------------------

    /// Whether leaving the image must ask first (unsaved changes, no autosave).
    pub(super) fn needs_prompt(&self) -> bool {
        !self.settings.autosave && self.workspace.needs_saving()
    }

    /// Goes to image `index`, saving the current one first (autosave) or asking.
    pub fn go_to(&mut self, index: usize) {
        let ws = &self.workspace;
        if Some(index) == ws.current || index >= ws.image_count() {
            return;
        }
        if self.needs_prompt() {
            self.ui.unsaved_prompt = Some(AfterPrompt::GoTo(index));
            return;
        }
        if self.leave_current_image() {
            self.load_image(index);
        }
    }

    /// Goes to the next image (`d`).
    pub fn next(&mut self) {
        if let Some(i) = self.workspace.current {
            self.go_to(i + 1);
        }
    }

    /// Goes to the previous image (`a`).
    pub fn previous(&mut self) {
        if let Some(i) = self.workspace.current.filter(|&i| i > 0) {
            self.go_to(i - 1);
        }
    }

    /// The next image (after the current one, wrapping) whose status matches.
    pub fn next_matching(&mut self, matches: impl Fn(&ImageStatus) -> bool) {
        let ws = &self.workspace;
        let Some(session) = &ws.session else { return };
        let n = session.images.len();
        let start = ws.current.map_or(0, |c| c + 1);
        let found = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| Some(i) != ws.current && matches(&session.images[i].status));
        match found {
            Some(i) => self.go_to(i),
            None => self.info("no such image"),
        }
    }

    /// Goes to `image` (from the disagreement list).
    pub fn go_to_path(&mut self, image: &Path) {
        let index = self
            .workspace
            .session
            .as_ref()
            .and_then(|s| s.images.iter().position(|e| e.path == image));
        if let Some(i) = index {
            self.go_to(i);
        }
    }

    /// Saves (when needed and allowed) before the current image is left. Returns `false`
    /// when the save failed and the user must decide (nothing is lost).
    pub fn leave_current_image(&mut self) -> bool {
        self.remember_labels();
        if self.settings.autosave && self.workspace.needs_saving() {
            return self.save();
        }
        true
    }

    /// Answers the unsaved-changes prompt.
    pub fn answer_prompt(&mut self, save: bool) {
        let Some(after) = self.ui.unsaved_prompt.take() else {
            return;
        };
        if save && !self.save() {
            return;
        }
        if !save {
            if let Some(d) = &mut self.workspace.doc {
                d.mark_saved();
            }
        }
        match after {
            AfterPrompt::GoTo(i) => self.load_image(i),
            AfterPrompt::OpenFolder(f) => self.open_folder(f),
            AfterPrompt::Quit => self.quit_requested = true,
        }
    }

    /// Shows image `index`: asks the label thread for its labels (they arrive in
    /// [`Self::poll_labels`]) and the loader for its pixels (and neighbours').
    pub fn load_image(&mut self, index: usize) {
        let ws = &mut self.workspace;
        let Some(session) = &ws.session else { return };
        let Some(entry) = session.images.get(index) else {
            return;
        };
        let path = entry.path.clone();
        let root = session.root.clone();
        match ws.unsaved.remove(&path) {
            Some(doc) => {
                ws.doc = Some(doc);
                ws.labels_ticket = None;
            }
            None => {
                ws.doc = None;
                let save_dir = session.save_dir.clone();
                let ticket = ws.labels.load(
                    LoadPurpose::Open,
                    &path,
                    save_dir.as_deref(),
                    self.settings.format,
                );
                ws.labels_ticket = Some(ticket);
            }
        }
        ws.current = Some(index);
        self.ui.pending_label = None;
        self.review.selected = None;
        let view = &mut self.ui.view;
        view.fit = if view.fit == Fit::Width {
            Fit::Width
        } else {
            Fit::Window
        };
        self.settings.last_image.insert(root, path);
        self.request_images(index);
    }

    fn request_images(&mut self, index: usize) {
        let ws = &mut self.workspace;
        let Some(session) = &ws.session else { return };
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
        if let Some(loader) = &mut ws.loader {
            for (k, p) in paths.iter().enumerate() {
                loader.request(p, k == 0);
            }
        }
    }
}
