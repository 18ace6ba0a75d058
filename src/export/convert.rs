//! Converting label folders between VOC, YOLO and CreateML, and importing COCO files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{list_skipped, ExportError, Skipped};
use super::transaction::Transaction;
use crate::dataset::{
    check_label_folder, label_path, read_image_info, read_label_file, scan_images, ClassList,
    ClassListError, ImageAnnotation, LabelBox, LabelFolderError, LabelFormat,
};
use crate::formats::coco::CocoDataset;
use crate::formats::{createml, voc, yolo, FormatError};

/// Where labels come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Label files of one format, in `labels_dir` or beside the images.
    Labels {
        format: LabelFormat,
        labels_dir: Option<PathBuf>,
    },
    /// A COCO file whose `file_name`s are relative to the images folder.
    Coco(PathBuf),
}

/// What to convert, and where to.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub source: Source,
    pub to: LabelFormat,
    pub images_dir: PathBuf,
    pub out_dir: PathBuf,
    pub classes: ClassList,
}

/// What a conversion did.
#[derive(Clone, Debug, Default)]
pub struct ConvertSummary {
    /// Label files written.
    pub written: usize,
    /// Boxes written.
    pub boxes: usize,
    /// Images whose labels were not converted, and why.
    pub skipped: Vec<Skipped>,
    /// Boxes dropped because they were empty after clipping to the image.
    pub dropped_boxes: Vec<Skipped>,
    /// Images whose label file (or COCO entry) gives a size other than the image header's:
    /// as in the export, the header's size (that of the pixels) is used and boxes are
    /// clipped to it.
    pub size_mismatches: Vec<Skipped>,
}

/// Failures that stop a conversion as a whole. Nothing was written, except with
/// [`ConvertError::PartlyWritten`], which lists what was.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The images folder cannot be scanned, or two images would share one label file.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A class file (`--classes`, the out folder's `classes.txt`) cannot be used.
    #[error(transparent)]
    Classes(#[from] ClassListError),
    #[error(transparent)]
    LabelFolder(#[from] LabelFolderError),
    /// The COCO file cannot be read, or an existing CreateML file to merge into.
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("--out {0} is a file, not a folder (nothing was written)")]
    OutNotAFolder(PathBuf),
    /// A folder (or another non-file) where a label file or `classes.txt` is to go.
    #[error("{path} is {what}, where convert must write a file; nothing was written")]
    NotAFile { path: PathBuf, what: &'static str },
    /// Not one label file to write (all skipped, or none found).
    #[error("nothing to convert, so nothing was written: {0}")]
    Nothing(String),
    /// A file could not be written; no file was replaced.
    #[error(
        "cannot write {path}: {source}; nothing was written (the label files and \
         classes.txt are as they were)"
    )]
    NotWritten {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every file was written, but renaming them into place failed part way.
    #[error(
        "cannot put {path} in place: {source}; the conversion is INCOMPLETE: replaced \
         already: {written}; left as they were: {rest}; run it again"
    )]
    PartlyWritten {
        path: PathBuf,
        source: std::io::Error,
        written: String,
        rest: String,
    },
}

/// Converts every image's labels and writes them into `out_dir` as `<stem>.<ext>`, where
/// LabelImg's rules will look for them: in `out_dir` itself (its "save dir"), or beside
/// each image (sub-folders included) when `out_dir` is the images folder.
///
/// The class list starts from the `classes.txt` already in `out_dir` (the YOLO files
/// beside it use its indices), then `options.classes`, then names in order of first
/// appearance; it is written back with every name kept. As in the export, an image's size
/// is its header's (a label file or COCO entry that says otherwise is listed in
/// [`ConvertSummary::size_mismatches`]), and boxes are clipped to it; a box that is empty
/// after clipping is dropped and listed in [`ConvertSummary::dropped_boxes`].
///
/// Nothing is written when anything stops the conversion: two images whose label files
/// would be the same file (`s1/x.jpg` and `s2/x.jpg` into one `--out`, or `a.jpg` and
/// `a.png`), no label file to write at all, a folder where a file is to go, a file that
/// cannot be written (read-only). Every file is written under a temporary name first and
/// only then renamed into place (`classes.txt` first), as the export does.
pub fn convert(options: &ConvertOptions) -> Result<ConvertSummary, ConvertError> {
    if std::fs::metadata(&options.out_dir).is_ok_and(|m| !m.is_dir()) {
        return Err(ConvertError::OutNotAFolder(options.out_dir.clone()));
    }
    let mut summary = ConvertSummary::default();
    let mut items = read_items(options)?;
    for (image, ann) in &mut items {
        let Ok(ann) = ann else { continue };
        // An image whose header cannot be read keeps the label file's size.
        if let Ok(info) = read_image_info(image) {
            if let Some(reason) = crate::dataset::fit_labels_to_image(&info, ann) {
                summary.size_mismatches.push(Skipped {
                    path: image.clone(),
                    reason,
                });
            }
        }
    }

    // Two images, one label file: refuse before writing anything.
    let beside_images = same_folder(&options.out_dir, &options.images_dir);
    let save_dir = |image: &Path| {
        if beside_images {
            image.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            options.out_dir.clone()
        }
    };
    let mut targets: HashMap<PathBuf, &Path> = HashMap::new();
    for (image, ann) in &items {
        if ann.is_err() {
            continue;
        }
        let target = label_path(image, Some(&save_dir(image)), options.to);
        if let Some(first) = targets.insert(target.clone(), image) {
            return Err(ExportError::Clash {
                target,
                first: first.to_path_buf(),
                second: image.clone(),
            }
            .into());
        }
    }

    let mut classes = ClassList::new();
    let classes_file = options.out_dir.join("classes.txt");
    if classes_file.is_file() {
        classes = ClassList::read_indexed(&classes_file)?;
    }
    for name in options.classes.names() {
        classes.ensure(name);
    }
    // Every label file's content, in memory: nothing is written before all are known.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut label_dirs: Vec<PathBuf> = Vec::new();
    for (image, ann) in items {
        let ann = match ann.and_then(|ann| clip_boxes(ann, &image, &mut summary)) {
            Ok(ann) => ann,
            Err(reason) => {
                summary.skipped.push(Skipped {
                    path: image,
                    reason,
                });
                continue;
            }
        };
        for b in &ann.boxes {
            classes.ensure(&b.class_name);
        }
        let dir = save_dir(&image);
        let target = label_path(&image, Some(&dir), options.to);
        let content = match options.to {
            LabelFormat::Voc => voc::to_string(&ann, &image),
            LabelFormat::Yolo => yolo::to_string(&ann, &mut classes),
            LabelFormat::CreateMl => createml::merged(&target, &ann)?,
        };
        if !label_dirs.contains(&dir) {
            label_dirs.push(dir);
        }
        files.push((target, content.into_bytes()));
        summary.written += 1;
        summary.boxes += ann.boxes.len();
    }
    if files.is_empty() {
        return Err(ConvertError::Nothing(why_nothing(
            options,
            &summary.skipped,
        )));
    }
    // `classes.txt` goes first: the new list keeps every old id, so label files of either
    // version read correctly with it.
    let class_files = match options.to {
        // Beside every YOLO file (its reader looks there).
        LabelFormat::Yolo => label_dirs.iter().map(|d| d.join("classes.txt")).collect(),
        _ => vec![classes_file],
    };
    let content = classes.to_file_content().into_bytes();
    let mut set: Vec<(PathBuf, Vec<u8>)> = class_files
        .into_iter()
        .map(|p| (p, content.clone()))
        .collect();
    set.extend(files);
    write_set(&options.out_dir, &set)?;
    Ok(summary)
}

/// An image and its labels, or why they cannot be converted.
type Item = (PathBuf, Result<ImageAnnotation, String>);

/// Each image that has labels in the source, with its annotation or why it has none.
fn read_items(options: &ConvertOptions) -> Result<Vec<Item>, ConvertError> {
    Ok(match &options.source {
        Source::Labels { format, labels_dir } => {
            if let Some(dir) = labels_dir {
                check_label_folder(dir)?;
            }
            let images = scan_images(&options.images_dir).map_err(|source| ExportError::Scan {
                path: options.images_dir.clone(),
                source,
            })?;
            images
                .into_iter()
                .filter_map(|image| {
                    let path = label_path(&image, labels_dir.as_deref(), *format);
                    path.is_file().then(|| {
                        let ann =
                            read_label_file(&image, &path, *format).map_err(|e| e.to_string());
                        (image, ann)
                    })
                })
                .collect()
        }
        Source::Coco(coco_path) => {
            let coco = CocoDataset::read(coco_path)?;
            coco_to_annotations(&coco, &options.images_dir)
                .into_iter()
                .zip(&coco.images)
                .map(|((image, ann), im)| {
                    let ann = if !is_relative_inside(&im.file_name) {
                        Err(format!(
                            "file_name {:?} is not a relative path inside the images folder",
                            im.file_name
                        ))
                    } else if !image.is_file() {
                        Err(format!(
                            "no such image below {} (file_name {:?}); a label file for it \
                             would have no image",
                            options.images_dir.display(),
                            im.file_name
                        ))
                    } else {
                        ann
                    };
                    (image, ann)
                })
                .collect()
        }
    })
}

/// Why a conversion has nothing to write: where no label file was found, or every
/// skipped image with its reason (at most 20, then how many more).
fn why_nothing(options: &ConvertOptions, skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        return match &options.source {
            Source::Labels { format, labels_dir } => format!(
                "no {} label file (<stem>.{}) for any image in {} ({})",
                format.name(),
                format.extension(),
                options.images_dir.display(),
                match labels_dir {
                    Some(dir) => format!("looked in {}", dir.display()),
                    None => "looked beside the images".to_string(),
                }
            ),
            Source::Coco(path) => format!("{} lists no images", path.display()),
        };
    }
    format!(
        "every image with labels was skipped ({}):\n{}",
        skipped.len(),
        list_skipped(skipped)
    )
}

/// Writes `files` as one set, in order: each is checked to be a file (or absent), written
/// and synced under a temporary name, and only when all are complete are they renamed
/// into place, back to back, under the commit journal in `out` (as the export does).
fn write_set(out: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), ConvertError> {
    for (path, _) in files {
        if let Ok(m) = std::fs::metadata(path) {
            if !m.is_file() {
                return Err(ConvertError::NotAFile {
                    path: path.clone(),
                    what: if m.is_dir() {
                        "a folder"
                    } else {
                        "not a regular file"
                    },
                });
            }
        }
    }
    let not_written = |e: ExportError| match e {
        ExportError::Write { path, source } | ExportError::NotWritten { path, source, .. } => {
            ConvertError::NotWritten { path, source }
        }
        ExportError::Inconsistent {
            path,
            source,
            new,
            old,
            ..
        } => ConvertError::PartlyWritten {
            path,
            source,
            written: new,
            rest: old,
        },
        other => other.into(),
    };
    // A set whose renames a killed process left half done is completed first.
    let journal = out.join(crate::atomic::COMMIT_JOURNAL);
    if out.is_dir() {
        crate::atomic::finish_interrupted_commit(&journal).map_err(|source| {
            ConvertError::NotWritten {
                path: journal,
                source,
            }
        })?;
    }
    let mut tx = Transaction::new(out);
    tx.mkdir(out).map_err(not_written)?;
    for (path, bytes) in files {
        tx.stage(path, bytes).map_err(not_written)?;
    }
    tx.commit().map_err(not_written)?;
    Ok(())
}

/// Whether a COCO `file_name` is a relative path that stays inside the images folder
/// (no root, no `..`).
fn is_relative_inside(file_name: &str) -> bool {
    use std::path::Component;
    !file_name.is_empty()
        && Path::new(file_name)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Whether `a` and `b` are the same existing folder.
fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Clips every box to the image, as the export does; empty ones are dropped and listed.
fn clip_boxes(
    mut ann: ImageAnnotation,
    image: &Path,
    summary: &mut ConvertSummary,
) -> Result<ImageAnnotation, String> {
    if !ann.has_size() {
        return Err(format!(
            "the image size is unknown ({}×{}), so the boxes cannot be placed",
            ann.width, ann.height
        ));
    }
    let (w, h) = (ann.width as f64, ann.height as f64);
    ann.boxes.retain_mut(|b| {
        let clipped = b.bbox.normalized().clamp_to(w, h);
        if clipped.width() <= 0.0 || clipped.height() <= 0.0 {
            summary.dropped_boxes.push(Skipped {
                path: image.to_path_buf(),
                reason: format!(
                    "{} box ({}, {})–({}, {}) is empty inside the {}×{} image",
                    b.class_name, b.bbox.x1, b.bbox.y1, b.bbox.x2, b.bbox.y2, ann.width, ann.height
                ),
            });
            return false;
        }
        b.bbox = clipped;
        true
    });
    Ok(ann)
}

/// One annotation per COCO image, with its image path below `images_dir`.
pub fn coco_to_annotations(
    coco: &CocoDataset,
    images_dir: &Path,
) -> Vec<(PathBuf, Result<ImageAnnotation, String>)> {
    use std::collections::HashMap;
    let names: HashMap<u64, &str> = coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let mut by_image: HashMap<u64, Vec<LabelBox>> = HashMap::new();
    for a in &coco.annotations {
        let name = names.get(&a.category_id).copied().unwrap_or("unknown");
        let mut b = LabelBox::new(name, a.bbox_xywh().to_xyxy());
        b.difficult = a.iscrowd != 0;
        by_image.entry(a.image_id).or_default().push(b);
    }
    coco.images
        .iter()
        .map(|im| {
            let path = images_dir.join(&im.file_name);
            let filename = path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut ann = ImageAnnotation::new(filename, im.width, im.height);
            ann.boxes = by_image.remove(&im.id).unwrap_or_default();
            (path, Ok(ann))
        })
        .collect()
}
