//! The label thread's memory of its own writes, so that a save asked for before the
//! reply to the previous one arrived is not mistaken for someone else's change.
//!
//! Each save carries the [`DiskBase`] the app had when it asked: the file as the labels
//! were read or last saved. Saves asked for in quick succession (accept all, a relabel
//! right after an accept) all carry the base from before the first of them, since the app
//! learns the new base only from the reply. Without this memory the label thread would
//! find the file changed since that base (by its own write) and merge our previous
//! version into the new one as "their" change: a box relabelled from Sprite to Cola came
//! back as two boxes, one of each class.
//!
//! Writes run one at a time in request order, so a base that is one of the versions this
//! thread itself wrote (or started from) for that image and file is stale only by writes
//! the app asked for earlier: the right base is the thread's last write. A version someone
//! else wrote is never among them, so their changes still merge.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use super::merge::{DiskBase, FileStamp};

/// Versions remembered per label file; far more than the saves ever in flight at once.
const REMEMBERED: usize = 64;

/// One image's label file as this thread wrote it.
#[derive(Debug)]
struct History {
    /// The versions each write started from and produced.
    versions: VecDeque<Option<FileStamp>>,
    /// The base the last write produced.
    last: DiskBase,
}

/// The writes of one label thread, by image and label file.
#[derive(Debug, Default)]
pub(crate) struct OwnWrites {
    files: HashMap<(PathBuf, PathBuf), History>,
}

impl OwnWrites {
    /// The base a save of `image` should merge against: `base`, or the thread's last write
    /// when `base` is a version the thread wrote or started from.
    pub(crate) fn current(&self, image: &Path, base: DiskBase) -> DiskBase {
        match self.files.get(&(image.to_path_buf(), base.path.clone())) {
            Some(h) if h.versions.contains(&base.stamp) => h.last.clone(),
            _ => base,
        }
    }

    /// Records a write of `image` that started from `from` and left the file as `produced`.
    pub(crate) fn record(&mut self, image: &Path, from: Option<&DiskBase>, produced: &DiskBase) {
        let key = (image.to_path_buf(), produced.path.clone());
        let h = self.files.entry(key).or_insert_with(|| History {
            versions: VecDeque::new(),
            last: produced.clone(),
        });
        if let Some(from) = from.filter(|b| b.path == produced.path) {
            h.versions.push_back(from.stamp.clone());
        }
        h.versions.push_back(produced.stamp.clone());
        while h.versions.len() > REMEMBERED {
            h.versions.pop_front();
        }
        h.last = produced.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ImageAnnotation, LabelBox};
    use crate::geometry::BoxXyxy;

    fn base(path: &str, content: &[u8], class: Option<&str>) -> DiskBase {
        let mut annotation = ImageAnnotation::new("a.jpg", 10, 10);
        if let Some(c) = class {
            annotation
                .boxes
                .push(LabelBox::new(c, BoxXyxy::new(1.0, 1.0, 5.0, 5.0)));
        }
        DiskBase {
            path: PathBuf::from(path),
            stamp: (!content.is_empty()).then(|| FileStamp::of_bytes(content, None)),
            annotation,
        }
    }

    #[test]
    fn a_base_from_before_our_own_writes_becomes_the_last_write() {
        let image = Path::new("a.jpg");
        let mut own = OwnWrites::default();
        let none = base("a.xml", b"", None);
        let sprite = base("a.xml", b"sprite", Some("Sprite"));
        let cola = base("a.xml", b"cola", Some("Cola"));
        own.record(image, Some(&none), &sprite);
        // A second save asked with the base from before the first: the first's result.
        assert_eq!(own.current(image, none.clone()), sprite);
        own.record(image, Some(&sprite), &cola);
        // A third one, still with the oldest base: the last write.
        assert_eq!(own.current(image, none.clone()), cola);
        assert_eq!(own.current(image, sprite), cola);
    }

    #[test]
    fn someone_elses_version_and_other_files_are_left_alone() {
        let image = Path::new("a.jpg");
        let mut own = OwnWrites::default();
        let none = base("a.xml", b"", None);
        let ours = base("a.xml", b"ours", Some("Cola"));
        own.record(image, Some(&none), &ours);
        let theirs = base("a.xml", b"theirs", Some("Sprite"));
        assert_eq!(own.current(image, theirs.clone()), theirs);
        // The same version of another image's file, or of another file of this image.
        assert_eq!(own.current(Path::new("b.jpg"), none.clone()), none);
        let txt = base("a.txt", b"", None);
        assert_eq!(own.current(image, txt.clone()), txt);
    }
}
