//! Two writers on one label file: what was on disk when a document was read (its
//! [`DiskBase`]), how to tell that someone else changed the file since ([`FileStamp`]),
//! and the three-way merge of their boxes with ours ([`merge_annotations`]).
//!
//! The merge rule, on boxes (two boxes are "the same" when their class, `difficult` flag
//! and every corner agree within [`SAME_BOX_PX`]):
//! - a box added on either side is kept (added identically on both sides: kept once);
//! - a box removed on one side only is removed;
//! - a box changed (moved, resized, renamed: removed, and a box overlapping it with IoU ≥
//!   [`EDIT_IOU`] added) on one side only takes that change;
//! - a box changed on both sides differently, or changed on one side and deleted on the
//!   other, is a **conflict**: the merge keeps our version and names the box, and the
//!   caller keeps theirs beside the file.
//!
//! The `verified` flag takes the side that changed it; everything else is ours.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::dataset::{ImageAnnotation, LabelBox};

/// Two boxes are the same box when every corner agrees within this many pixels (a file
/// written by another tool may round coordinates).
pub const SAME_BOX_PX: f64 = 0.5;

/// A box removed on one side and a box added there that overlaps it at least this much
/// are one box that was changed.
pub const EDIT_IOU: f64 = 0.5;

/// What identifies one version of a file: size, modification time and a hash of its
/// content. Two stamps are the same version when size and hash agree (a file saved again
/// with the same bytes is not a change).
#[derive(Clone, Debug)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, where the file system has one.
    pub modified: Option<SystemTime>,
    /// A hash of the content.
    pub hash: u64,
}

impl PartialEq for FileStamp {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.hash == other.hash
    }
}

impl FileStamp {
    /// The stamp of `bytes` read from a file with `modified` time.
    pub fn of_bytes(bytes: &[u8], modified: Option<SystemTime>) -> Self {
        // `DefaultHasher::new()` has fixed keys: the same bytes hash alike in every process.
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytes);
        Self {
            len: bytes.len() as u64,
            modified,
            hash: h.finish(),
        }
    }

    /// The stamp of the file at `path` and its bytes; `Ok(None)` when there is no file.
    pub fn read(path: &Path) -> std::io::Result<Option<(Self, Vec<u8>)>> {
        let modified = match std::fs::metadata(path) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some((Self::of_bytes(&bytes, modified), bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The label file of a document as it was on disk when it was read or last saved: the
/// base of the three-way merge when someone else changed the file meanwhile.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskBase {
    /// The label file.
    pub path: PathBuf,
    /// Its version then (`None`: there was no file).
    pub stamp: Option<FileStamp>,
    /// Its labels then (no boxes when there was no file).
    pub annotation: ImageAnnotation,
}

/// The result of [`merge_annotations`].
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// Ours with their non-conflicting changes.
    pub annotation: ImageAnnotation,
    /// One line per conflicting box (ours kept), empty when the merge is clean.
    pub conflicts: Vec<String>,
}

/// Whether `a` and `b` are the same box (see [`SAME_BOX_PX`]).
pub fn same_box(a: &LabelBox, b: &LabelBox) -> bool {
    a.class_name == b.class_name
        && a.difficult == b.difficult
        && [
            (a.bbox.x1, b.bbox.x1),
            (a.bbox.y1, b.bbox.y1),
            (a.bbox.x2, b.bbox.x2),
            (a.bbox.y2, b.bbox.y2),
        ]
        .iter()
        .all(|(p, q)| (p - q).abs() <= SAME_BOX_PX)
}

/// Whether two annotations hold the same labels (boxes by [`same_box`], in any order, and
/// the verified flag).
pub fn same_labels(a: &ImageAnnotation, b: &ImageAnnotation) -> bool {
    a.verified == b.verified
        && a.boxes.len() == b.boxes.len()
        && match_boxes(&a.boxes, &b.boxes).iter().all(Option::is_some)
}

/// For each box of `from`, the index of the same box in `to` (one-to-one, first fit).
fn match_boxes(from: &[LabelBox], to: &[LabelBox]) -> Vec<Option<usize>> {
    let mut taken = vec![false; to.len()];
    from.iter()
        .map(|f| {
            let j = (0..to.len()).find(|&j| !taken[j] && same_box(f, &to[j]))?;
            taken[j] = true;
            Some(j)
        })
        .collect()
}

/// What one side did to the base: which base boxes it kept (`kept[i]` is the index of
/// base box `i` on that side) and which of its boxes are new.
struct Side<'a> {
    boxes: &'a [LabelBox],
    kept: Vec<Option<usize>>,
    added: Vec<bool>,
}

impl<'a> Side<'a> {
    fn of(base: &[LabelBox], boxes: &'a [LabelBox]) -> Self {
        let kept = match_boxes(base, boxes);
        let mut added = vec![true; boxes.len()];
        for j in kept.iter().flatten() {
            added[*j] = false;
        }
        Self { boxes, kept, added }
    }

    /// The added box of this side that replaced removed base box `b`, if any.
    fn edit_of(&self, b: &LabelBox) -> Option<usize> {
        (0..self.boxes.len())
            .filter(|&j| self.added[j])
            .map(|j| (j, self.boxes[j].bbox.iou(&b.bbox)))
            .filter(|&(_, iou)| iou >= EDIT_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(j, _)| j)
    }
}

fn describe(b: &LabelBox) -> String {
    format!(
        "{} at ({:.0}, {:.0}, {:.0}, {:.0})",
        b.class_name, b.bbox.x1, b.bbox.y1, b.bbox.x2, b.bbox.y2
    )
}

/// Three-way merge of the labels of one image: `base` as read, `ours` as edited here,
/// `theirs` as now on disk (see the module documentation for the rule).
pub fn merge_annotations(
    base: &ImageAnnotation,
    ours: &ImageAnnotation,
    theirs: &ImageAnnotation,
) -> Merged {
    let o = Side::of(&base.boxes, &ours.boxes);
    let t = Side::of(&base.boxes, &theirs.boxes);
    let mut drop_ours = vec![false; ours.boxes.len()];
    let mut skip_theirs = vec![false; theirs.boxes.len()];
    let mut conflicts = Vec::new();
    for (i, b) in base.boxes.iter().enumerate() {
        match (o.kept[i], t.kept[i]) {
            // Removed (or changed) by them only: so it is here.
            (Some(j), None) => drop_ours[j] = true,
            // Removed on both sides: a conflict when both changed it differently, or one
            // changed it and the other deleted it.
            (None, None) => {
                let (oe, te) = (o.edit_of(b), t.edit_of(b));
                match (oe, te) {
                    (Some(x), Some(y)) if same_box(&ours.boxes[x], &theirs.boxes[y]) => {
                        skip_theirs[y] = true;
                    }
                    (None, None) => {}
                    _ => {
                        if let Some(y) = te {
                            skip_theirs[y] = true;
                        }
                        let what = |e: Option<usize>, side: &[LabelBox]| {
                            e.map_or("deleted it".to_string(), |k| {
                                format!("made it {}", describe(&side[k]))
                            })
                        };
                        conflicts.push(format!(
                            "box {}: you {}, they {}",
                            describe(b),
                            what(oe, &ours.boxes),
                            what(te, &theirs.boxes)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    let mut boxes: Vec<LabelBox> = ours
        .boxes
        .iter()
        .zip(&drop_ours)
        .filter(|(_, &drop)| !drop)
        .map(|(b, _)| b.clone())
        .collect();
    for (j, b) in theirs.boxes.iter().enumerate() {
        if !t.added[j] || skip_theirs[j] {
            continue;
        }
        // Added identically on both sides: once.
        let twin = (0..ours.boxes.len()).any(|k| o.added[k] && same_box(&ours.boxes[k], b));
        if !twin {
            boxes.push(b.clone());
        }
    }
    let mut annotation = ours.clone();
    annotation.boxes = boxes;
    annotation.verified = if ours.verified != base.verified {
        ours.verified
    } else {
        theirs.verified
    };
    Merged {
        annotation,
        conflicts,
    }
}

/// Where the other writer's version of `label` is kept on a conflict: `NAME.theirs.EXT`
/// beside it (`NAME.theirs-2.EXT`, … when that exists). No image has that stem, so no tool
/// reads it as an image's labels.
pub fn theirs_path(label: &Path) -> PathBuf {
    let stem = label
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = label
        .extension()
        .map(|s| format!(".{}", s.to_string_lossy()))
        .unwrap_or_default();
    (1..)
        .map(|n| {
            let tag = if n == 1 {
                "theirs".to_string()
            } else {
                format!("theirs-{n}")
            };
            label.with_file_name(format!("{stem}.{tag}{ext}"))
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| label.with_extension("theirs"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BoxXyxy;

    fn b(class: &str, x1: f64, x2: f64) -> LabelBox {
        LabelBox::new(class, BoxXyxy::new(x1, 10.0, x2, 50.0))
    }

    fn ann(boxes: Vec<LabelBox>) -> ImageAnnotation {
        let mut a = ImageAnnotation::new("a.jpg", 200, 100);
        a.boxes = boxes;
        a
    }

    #[test]
    fn boxes_added_on_both_sides_are_all_kept() {
        let base = ann(vec![b("cola", 0.0, 20.0)]);
        let ours = ann(vec![b("cola", 0.0, 20.0), b("fanta", 40.0, 60.0)]);
        let theirs = ann(vec![b("cola", 0.0, 20.0), b("sprite", 100.0, 130.0)]);
        let m = merge_annotations(&base, &ours, &theirs);
        assert!(m.conflicts.is_empty());
        assert_eq!(
            m.annotation.boxes,
            vec![
                b("cola", 0.0, 20.0),
                b("fanta", 40.0, 60.0),
                b("sprite", 100.0, 130.0)
            ]
        );
    }

    #[test]
    fn the_same_box_added_on_both_sides_is_kept_once() {
        let base = ann(vec![]);
        let ours = ann(vec![b("cola", 0.0, 20.0)]);
        let theirs = ann(vec![LabelBox::new(
            "cola",
            BoxXyxy::new(0.3, 10.0, 20.0, 50.2),
        )]);
        let m = merge_annotations(&base, &ours, &theirs);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.annotation.boxes, vec![b("cola", 0.0, 20.0)]);
    }

    #[test]
    fn a_box_removed_or_changed_on_one_side_only_follows_that_side() {
        let base = ann(vec![b("cola", 0.0, 20.0), b("fanta", 40.0, 60.0)]);
        // They removed fanta; we moved cola.
        let ours = ann(vec![b("cola", 2.0, 24.0), b("fanta", 40.0, 60.0)]);
        let theirs = ann(vec![b("cola", 0.0, 20.0)]);
        let m = merge_annotations(&base, &ours, &theirs);
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert_eq!(m.annotation.boxes, vec![b("cola", 2.0, 24.0)]);
        // The other way round: they moved cola, we removed fanta.
        let ours = ann(vec![b("cola", 0.0, 20.0)]);
        let theirs = ann(vec![b("cola", 2.0, 24.0), b("fanta", 40.0, 60.0)]);
        let m = merge_annotations(&base, &ours, &theirs);
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert_eq!(m.annotation.boxes, vec![b("cola", 2.0, 24.0)]);
        // Removed on both sides: gone, no conflict.
        let both = ann(vec![b("cola", 0.0, 20.0)]);
        let m = merge_annotations(&base, &both, &both);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.annotation.boxes, vec![b("cola", 0.0, 20.0)]);
    }

    #[test]
    fn the_same_box_changed_differently_is_a_conflict_keeping_ours() {
        let base = ann(vec![b("cola", 0.0, 20.0)]);
        let ours = ann(vec![b("cola", 2.0, 24.0)]);
        let theirs = ann(vec![b("fanta", 0.0, 22.0)]);
        let m = merge_annotations(&base, &ours, &theirs);
        assert_eq!(m.conflicts.len(), 1, "{:?}", m.conflicts);
        assert!(m.conflicts[0].contains("fanta"), "{:?}", m.conflicts);
        assert_eq!(m.annotation.boxes, vec![b("cola", 2.0, 24.0)]);
        // Changed here, deleted there.
        let m = merge_annotations(&base, &ours, &ann(vec![]));
        assert_eq!(m.conflicts.len(), 1);
        assert!(
            m.conflicts[0].contains("they deleted it"),
            "{:?}",
            m.conflicts
        );
        assert_eq!(m.annotation.boxes, vec![b("cola", 2.0, 24.0)]);
        // Deleted here, changed there.
        let m = merge_annotations(&base, &ann(vec![]), &theirs);
        assert_eq!(m.conflicts.len(), 1);
        assert!(m.annotation.boxes.is_empty());
        // Changed alike on both sides: no conflict.
        let m = merge_annotations(&base, &ours, &ours);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.annotation.boxes, ours.boxes);
    }

    #[test]
    fn verified_takes_the_side_that_changed_it() {
        let base = ann(vec![]);
        let mut theirs = base.clone();
        theirs.verified = true;
        assert!(merge_annotations(&base, &base, &theirs).annotation.verified);
        let mut ours = base.clone();
        ours.verified = true;
        assert!(!merge_annotations(&ours, &base, &ours).annotation.verified);
    }

    #[test]
    fn stamps_compare_content_and_theirs_paths_do_not_clash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.xml");
        assert!(FileStamp::read(&p).unwrap().is_none());
        std::fs::write(&p, b"one").unwrap();
        let (s1, bytes) = FileStamp::read(&p).unwrap().unwrap();
        assert_eq!(bytes, b"one");
        std::fs::write(&p, b"two").unwrap();
        let (s2, _) = FileStamp::read(&p).unwrap().unwrap();
        assert_ne!(s1, s2, "same size, other content");
        assert_eq!(s1, FileStamp::of_bytes(b"one", None));
        assert_eq!(theirs_path(&p), dir.path().join("a.theirs.xml"));
        std::fs::write(dir.path().join("a.theirs.xml"), b"").unwrap();
        assert_eq!(theirs_path(&p), dir.path().join("a.theirs-2.xml"));
    }
}
