//! An opened image folder: its images (found in the background) and their label status.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, TryRecvError};

use crate::dataset::{find_label, load_labels, scan_images, ClassList, LabelBox};

/// What the file list shows for an image.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageStatus {
    /// Not looked at yet (the background scan is still running).
    Unknown,
    Unlabelled,
    Labelled {
        boxes: usize,
    },
    Verified {
        boxes: usize,
    },
    /// The label file exists but cannot be read.
    LabelError(String),
    /// The image itself cannot be decoded.
    ImageError(String),
}

impl ImageStatus {
    pub fn is_labelled(&self) -> bool {
        matches!(self, Self::Labelled { .. } | Self::Verified { .. })
    }

    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }
}

/// Someone else (another window, another labeller, `detlab convert`) changed an image's
/// label file while it was open here; the file list marks it.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangedElsewhere {
    /// Changed on disk: reloaded when not edited here, else merged at the next save.
    Changed,
    /// Their changes and ours were merged at a save (no conflict).
    Merged,
    /// They changed the same boxes as we did: ours is saved, theirs is kept in this file.
    Conflict(PathBuf),
}

#[derive(Clone, Debug)]
pub struct ImageEntry {
    pub path: PathBuf,
    pub status: ImageStatus,
    /// Set when someone else changed the label file during this session.
    pub elsewhere: Option<ChangedElsewhere>,
    /// Its boxes per class in its label file as last read or saved (kept in step with
    /// [`Session::class_totals`] by [`Session::set_class_counts`]).
    class_counts: ClassCounts,
}

impl ImageEntry {
    /// Its boxes per class in its label file as last read or saved (empty while not read).
    pub fn class_counts(&self) -> &ClassCounts {
        &self.class_counts
    }
}

/// The number of boxes of each class (by name) of one image.
pub type ClassCounts = Vec<(String, usize)>;

/// The number of boxes of each class in `boxes`, in order of first appearance.
pub fn class_counts(boxes: &[LabelBox]) -> ClassCounts {
    let mut counts: ClassCounts = Vec::new();
    for b in boxes {
        match counts.iter_mut().find(|(c, _)| *c == b.class_name) {
            Some((_, n)) => *n += 1,
            None => counts.push((b.class_name.clone(), 1)),
        }
    }
    counts
}

enum ScanEvent {
    /// The class file's list, and what to tell about it.
    Classes((ClassList, Vec<String>)),
    Listed(Vec<PathBuf>),
    Statuses(Vec<(usize, ImageStatus, ClassCounts)>),
    Failed(String),
    Done,
}

/// The opened folder.
pub struct Session {
    pub root: PathBuf,
    pub save_dir: Option<PathBuf>,
    pub images: Vec<ImageEntry>,
    /// `true` until the background scan has listed and classified every image.
    pub scanning: bool,
    pub listed: bool,
    pub scan_error: Option<String>,
    /// The folder's class file, once read, with what to tell about it (the app takes
    /// both).
    pub classes: Option<(ClassList, Vec<String>)>,
    /// Boxes per class over the folder's label files as last read (by the scan, or when
    /// an image is opened) or saved here: the sum of the entries' class counts.
    class_totals: HashMap<String, usize>,
    events: Receiver<ScanEvent>,
}

impl Session {
    /// Opens `root` and starts scanning it in the background.
    pub fn open(root: PathBuf, save_dir: Option<PathBuf>, ctx: Option<egui::Context>) -> Self {
        let (tx, events) = channel();
        let (scan_root, scan_save) = (root.clone(), save_dir.clone());
        let spawned = std::thread::Builder::new()
            .name("detlab-scan".into())
            .spawn(move || {
                let repaint = || {
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                };
                let classes = load_class_file_noting(&scan_root, scan_save.as_deref());
                if tx.send(ScanEvent::Classes(classes)).is_err() {
                    return;
                }
                let images = match scan_images(&scan_root) {
                    Ok(images) => images,
                    Err(e) => {
                        let _ = tx.send(ScanEvent::Failed(e.to_string()));
                        repaint();
                        return;
                    }
                };
                if tx.send(ScanEvent::Listed(images.clone())).is_err() {
                    return;
                }
                repaint();
                for (chunk_index, chunk) in images.chunks(256).enumerate() {
                    let statuses = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            let (status, counts) = read_label_status(p, scan_save.as_deref());
                            (chunk_index * 256 + i, status, counts)
                        })
                        .collect();
                    if tx.send(ScanEvent::Statuses(statuses)).is_err() {
                        return;
                    }
                    repaint();
                }
                let _ = tx.send(ScanEvent::Done);
                repaint();
            });
        let scan_error = spawned
            .err()
            .map(|e| format!("cannot start the folder scan: {e}"));
        Self {
            root,
            save_dir,
            images: Vec::new(),
            scanning: scan_error.is_none(),
            listed: false,
            scan_error,
            classes: None,
            class_totals: HashMap::new(),
            events,
        }
    }

    /// Applies what the scan found since the last call; returns whether anything changed.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.events.try_recv() {
                Ok(event) => self.apply(event),
                Err(TryRecvError::Empty) => break,
                // The scan thread ended without `Done` or `Failed`: it panicked.
                Err(TryRecvError::Disconnected) => {
                    if !self.scanning {
                        break;
                    }
                    self.scanning = false;
                    self.scan_error = Some("the folder scan stopped unexpectedly".into());
                }
            }
            changed = true;
        }
        changed
    }

    /// Waits for the scan to finish (tests and the CLI only; never the UI thread).
    pub fn wait_until_scanned(&mut self) {
        while self.scanning {
            match self.events.recv() {
                Ok(event) => self.apply(event),
                Err(_) => self.scanning = false,
            }
        }
    }

    fn apply(&mut self, event: ScanEvent) {
        match event {
            ScanEvent::Classes(list) => self.classes = Some(list),
            ScanEvent::Listed(paths) => {
                self.images = paths
                    .into_iter()
                    .map(|path| ImageEntry {
                        path,
                        status: ImageStatus::Unknown,
                        elsewhere: None,
                        class_counts: Vec::new(),
                    })
                    .collect();
                self.class_totals.clear();
                self.listed = true;
            }
            ScanEvent::Statuses(statuses) => {
                for (i, status, counts) in statuses {
                    // A status set by the app meanwhile (after a save) is newer.
                    if let Some(e) = self
                        .images
                        .get_mut(i)
                        .filter(|e| e.status == ImageStatus::Unknown)
                    {
                        e.status = status;
                        // Counts set meanwhile (the image opened or saved) are newer too.
                        if e.class_counts.is_empty() {
                            self.set_class_counts(i, counts);
                        }
                    }
                }
            }
            ScanEvent::Failed(e) => {
                self.scan_error = Some(e);
                self.scanning = false;
            }
            ScanEvent::Done => self.scanning = false,
        }
    }

    pub fn index_of(&self, path: &Path) -> Option<usize> {
        self.images.iter().position(|e| e.path == path)
    }

    /// Boxes per class over the folder's label files as last read or saved (no disk
    /// access; the shown image's unsaved edits are not in it).
    pub fn class_totals(&self) -> &HashMap<String, usize> {
        &self.class_totals
    }

    /// Sets the boxes per class of image `index`'s label file, keeping
    /// [`Self::class_totals`] in step.
    pub fn set_class_counts(&mut self, index: usize, counts: ClassCounts) {
        let Some(e) = self.images.get_mut(index) else {
            return;
        };
        for (class, n) in &e.class_counts {
            if let Some(total) = self.class_totals.get_mut(class) {
                *total = total.saturating_sub(*n);
                if *total == 0 {
                    self.class_totals.remove(class);
                }
            }
        }
        for (class, n) in &counts {
            *self.class_totals.entry(class.clone()).or_insert(0) += n;
        }
        e.class_counts = counts;
    }

    /// Takes image `index` out of the list (and its boxes out of the class totals).
    pub fn remove_image(&mut self, index: usize) -> Option<ImageEntry> {
        if index >= self.images.len() {
            return None;
        }
        self.set_class_counts(index, Vec::new());
        Some(self.images.remove(index))
    }
}

/// The status of one image's labels (reads the label file).
pub fn label_status(image: &Path, save_dir: Option<&Path>) -> ImageStatus {
    read_label_status(image, save_dir).0
}

/// The status of one image's labels and its boxes per class (reads the label file).
pub fn read_label_status(image: &Path, save_dir: Option<&Path>) -> (ImageStatus, ClassCounts) {
    if find_label(image, save_dir).is_none() {
        return (ImageStatus::Unlabelled, Vec::new());
    }
    match load_labels(image, save_dir) {
        Ok(None) => (ImageStatus::Unlabelled, Vec::new()),
        Ok(Some(l)) => {
            let boxes = l.annotation.boxes.len();
            let status = if l.annotation.verified {
                ImageStatus::Verified { boxes }
            } else {
                ImageStatus::Labelled { boxes }
            };
            (status, class_counts(&l.annotation.boxes))
        }
        Err(e) => (ImageStatus::LabelError(e.to_string()), Vec::new()),
    }
}

/// The folder's class file: `predefined_classes.txt` or `classes.txt`, in the save
/// folder or the image folder.
pub fn load_class_file(folder: &Path, save_dir: Option<&Path>) -> ClassList {
    load_class_file_noting(folder, save_dir).0
}

/// [`load_class_file`], with what the user should hear about the files: repeated or
/// skipped names, and a class file that cannot be read (the next one is tried).
pub fn load_class_file_noting(folder: &Path, save_dir: Option<&Path>) -> (ClassList, Vec<String>) {
    let dirs = save_dir.into_iter().chain(std::iter::once(folder));
    let mut notes = Vec::new();
    for dir in dirs {
        for name in ["predefined_classes.txt", "classes.txt", "labels.txt"] {
            let p = dir.join(name);
            if p.is_file() {
                match ClassList::read_noting(&p) {
                    Ok((list, mut more)) => {
                        notes.append(&mut more);
                        return (list, notes);
                    }
                    Err(e) => notes.push(format!("{e}; the class list does not use it")),
                }
            }
        }
    }
    (ClassList::new(), notes)
}
