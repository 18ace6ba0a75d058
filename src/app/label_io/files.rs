//! The label files themselves, as the label thread reads, checks and writes them: a
//! document with the file's version as its base, the check for a change by someone else,
//! and the write that first merges such a change (three-way, [`merge_annotations`]) or
//! keeps their file beside ours on a conflict.

use std::path::{Path, PathBuf};

use super::OtherWriter;
use crate::app::document::Document;
use crate::app::merge::{merge_annotations, same_labels, theirs_path, DiskBase, FileStamp};
use crate::dataset::{
    find_label, label_path, load_labels_upright, read_image_info, read_label_file, save_labels,
    upright_stored_frame, ClassList, ImageAnnotation, LabelFormat,
};

/// A label file of `image` as the app reads it: turned upright when made on the stored
/// pixels ([`upright_stored_frame`]), so that the base a save merges with is read the way
/// the document was.
fn read_upright(
    image: &Path,
    path: &Path,
    format: LabelFormat,
) -> Result<ImageAnnotation, crate::formats::FormatError> {
    let mut annotation = read_label_file(image, path, format)?;
    upright_stored_frame(image, &mut annotation);
    Ok(annotation)
}

/// The labels of `image` as a document, with the file's version as its base.
pub(super) fn read_document(
    image: &Path,
    save_dir: Option<&Path>,
    default_format: LabelFormat,
) -> Document {
    // The stamp is taken before the labels are read: if the file changes in between, the
    // next save sees another stamp, re-reads the file and compares labels, so nothing of
    // the newer version is lost.
    let found = find_label(image, save_dir);
    let stamp = found
        .as_ref()
        .and_then(|(p, _)| FileStamp::read(p).ok().flatten())
        .map(|(s, _)| s);
    match load_labels_upright(image, save_dir) {
        Ok(Some((loaded, note))) => {
            let base = DiskBase {
                path: loaded.path.clone(),
                stamp,
                annotation: loaded.annotation.clone(),
            };
            let mut doc = Document::new(image.to_path_buf(), loaded.annotation, loaded.format);
            doc.base = Some(base);
            doc.load_note = note.map(|n| format!("{}: {n}", loaded.path.display()));
            doc
        }
        Ok(None) => {
            let annotation = blank_annotation(image);
            let mut doc = Document::new(image.to_path_buf(), annotation.clone(), default_format);
            doc.base = Some(DiskBase {
                path: label_path(image, save_dir, default_format),
                stamp: None,
                annotation,
            });
            doc
        }
        Err(e) => {
            let format = find_label(image, save_dir).map_or(default_format, |(_, f)| f);
            Document::failed(
                image.to_path_buf(),
                blank_annotation(image),
                format,
                e.to_string(),
            )
        }
    }
}

/// Whether the label file of `image` changed since `base`: the document as now on disk
/// when it did, `None` when it did not.
pub(super) fn check(
    image: &Path,
    save_dir: Option<&Path>,
    format: LabelFormat,
    base: &DiskBase,
) -> Option<Document> {
    let found = find_label(image, save_dir).map(|(p, _)| p);
    let moved = found.as_ref().is_some_and(|p| *p != base.path);
    let now = FileStamp::read(&base.path).ok()?.map(|(s, _)| s);
    if !moved && now == base.stamp {
        return None;
    }
    Some(read_document(image, save_dir, format))
}

/// Writes the labels (first reading the image size when the annotation lacks it), after
/// checking that the file is still `base`: when someone else changed it, their changes
/// are merged into `annotation` (see the module documentation). Returns the file, its new
/// base and what was found.
pub(super) fn write_checked(
    image: &Path,
    save_dir: Option<&Path>,
    format: LabelFormat,
    annotation: &mut ImageAnnotation,
    classes: &mut ClassList,
    base: Option<&DiskBase>,
) -> Result<(PathBuf, DiskBase, Option<OtherWriter>), String> {
    if !annotation.has_size() {
        let info = read_image_info(image).map_err(|e| e.to_string())?;
        (annotation.width, annotation.height) = (info.width, info.height);
    }
    let target = label_path(image, save_dir, format);
    let other = match base {
        Some(base) => reconcile(image, &target, format, annotation, base)?,
        None => None,
    };
    let path =
        save_labels(image, save_dir, format, annotation, classes).map_err(|e| e.to_string())?;
    // The new base: the file as it is now (stamp first, see `read_document`).
    let stamp = FileStamp::read(&path).ok().flatten().map(|(s, _)| s);
    let on_disk = read_upright(image, &path, format).unwrap_or_else(|_| annotation.clone());
    let new_base = DiskBase {
        path: path.clone(),
        stamp,
        annotation: on_disk,
    };
    Ok((path, new_base, other))
}

/// Before a save to `target`: when the file is no longer `base`, merges what is there
/// into `annotation` and, on a conflict, keeps their file as `NAME.theirs.EXT`.
fn reconcile(
    image: &Path,
    target: &Path,
    format: LabelFormat,
    annotation: &mut ImageAnnotation,
    base: &DiskBase,
) -> Result<Option<OtherWriter>, String> {
    let now = FileStamp::read(target)
        .map_err(|e| format!("cannot read {} before saving: {e}", target.display()))?;
    // A base for another file (the format changed): that file was expected absent, and
    // whatever is there now was added by someone else.
    let (expected, base_labels) = if base.path == target {
        (base.stamp.as_ref(), base.annotation.clone())
    } else {
        let mut empty = base.annotation.clone();
        empty.boxes.clear();
        empty.verified = false;
        (None, empty)
    };
    let Some((stamp, bytes)) = now else {
        // Deleted meanwhile: ours is written again.
        return Ok(None);
    };
    if Some(&stamp) == expected {
        return Ok(None);
    }
    let keep_theirs = |conflicts: Vec<String>| -> Result<Option<OtherWriter>, String> {
        let theirs = theirs_path(target);
        crate::atomic::write_atomic(&theirs, &bytes).map_err(|e| {
            format!(
                "{} was changed by someone else, and their version cannot be kept as {}: {e}; not saved",
                target.display(),
                theirs.display()
            )
        })?;
        Ok(Some(OtherWriter::Conflict { theirs, conflicts }))
    };
    match read_upright(image, target, format) {
        // The same labels (rewritten, or another image's entry in a shared file).
        Ok(theirs) if same_labels(&theirs, &base_labels) => Ok(None),
        Ok(theirs) => {
            let merged = merge_annotations(&base_labels, annotation, &theirs);
            *annotation = merged.annotation;
            if merged.conflicts.is_empty() {
                Ok(Some(OtherWriter::Merged))
            } else {
                keep_theirs(merged.conflicts)
            }
        }
        Err(e) => keep_theirs(vec![format!("their file cannot be read: {e}")]),
    }
}

/// An empty annotation for an image without labels (its size from the image header, or
/// 0×0 until it is saved).
fn blank_annotation(path: &Path) -> ImageAnnotation {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (w, h) = read_image_info(path)
        .map(|i| (i.width, i.height))
        .unwrap_or((0, 0));
    ImageAnnotation::new(name, w, h)
}
