//! Converting label folders between VOC, YOLO and CreateML, and importing COCO files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::coco_export::{ExportError, Skipped};
use crate::dataset::{
    check_label_folder, label_path, read_label_file, save_labels, scan_images, ClassList,
    ImageAnnotation, LabelBox, LabelFormat,
};
use crate::formats::coco::CocoDataset;

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
}

/// Converts every image's labels and writes them into `out_dir` as `<stem>.<ext>`, where
/// LabelImg's rules will look for them: in `out_dir` itself (its "save dir"), or beside
/// each image (sub-folders included) when `out_dir` is the images folder.
///
/// The class list starts from the `classes.txt` already in `out_dir` (the YOLO files
/// beside it use its indices), then `options.classes`, then names in order of first
/// appearance; it is written back with every name kept. Boxes are clipped to the image
/// as the COCO export clips them; a box that is empty after clipping is dropped and
/// listed in [`ConvertSummary::dropped_boxes`]. Two images whose label files would be the
/// same file (`s1/x.jpg` and `s2/x.jpg` into one `--out`, or `a.jpg` and `a.png`) are an
/// error naming both, before anything is written.
pub fn convert(options: &ConvertOptions) -> Result<ConvertSummary, ExportError> {
    let mut summary = ConvertSummary::default();
    let items: Vec<(PathBuf, Result<ImageAnnotation, String>)> = match &options.source {
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
    };

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
            });
        }
    }

    let mut classes = ClassList::new();
    let classes_file = options.out_dir.join("classes.txt");
    if classes_file.is_file() {
        classes = ClassList::read(&classes_file)?;
    }
    for name in options.classes.names() {
        classes.ensure(name);
    }
    // Only once the input has been read, so that a bad input leaves no output folder.
    std::fs::create_dir_all(&options.out_dir).map_err(|source| ExportError::Write {
        path: options.out_dir.clone(),
        source,
    })?;
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
        save_labels(&image, Some(&dir), options.to, &ann, &mut classes)?;
        summary.written += 1;
        summary.boxes += ann.boxes.len();
    }
    if options.to != LabelFormat::Yolo {
        crate::atomic::write_atomic(&classes_file, classes.to_file_content().as_bytes()).map_err(
            |source| ExportError::Write {
                path: classes_file,
                source,
            },
        )?;
    }
    Ok(summary)
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
                    "{} box {:?} is empty inside the {}×{} image",
                    b.class_name, b.bbox, ann.width, ann.height
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
