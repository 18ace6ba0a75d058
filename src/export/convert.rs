//! Converting label folders between VOC, YOLO and CreateML, and importing COCO files.

use std::path::{Path, PathBuf};

use super::coco_export::{ExportError, Skipped};
use crate::dataset::{
    label_path, read_label_file, save_labels, scan_images, ClassList, ImageAnnotation, LabelBox,
    LabelFormat,
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

#[derive(Clone, Debug, Default)]
pub struct ConvertSummary {
    pub written: usize,
    pub boxes: usize,
    pub skipped: Vec<Skipped>,
}

/// Converts every image's labels and writes them into `out_dir` as `<stem>.<ext>`.
pub fn convert(options: &ConvertOptions) -> Result<ConvertSummary, ExportError> {
    let mut classes = options.classes.clone();
    let mut summary = ConvertSummary::default();
    let items: Vec<(PathBuf, Result<ImageAnnotation, String>)> = match &options.source {
        Source::Labels { format, labels_dir } => {
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
            coco_to_annotations(&CocoDataset::read(coco_path)?, &options.images_dir)
        }
    };
    // Only once the input has been read, so that a bad input leaves no output folder.
    std::fs::create_dir_all(&options.out_dir).map_err(|source| ExportError::Write {
        path: options.out_dir.clone(),
        source,
    })?;
    for (image, ann) in items {
        match ann {
            Ok(ann) => {
                save_labels(
                    &image,
                    Some(&options.out_dir),
                    options.to,
                    &ann,
                    &mut classes,
                )?;
                summary.written += 1;
                summary.boxes += ann.boxes.len();
            }
            Err(reason) => summary.skipped.push(Skipped {
                path: image,
                reason,
            }),
        }
    }
    if options.to != LabelFormat::Yolo {
        let path = options.out_dir.join("classes.txt");
        crate::atomic::write_atomic(&path, classes.to_file_content().as_bytes())
            .map_err(|source| ExportError::Write { path, source })?;
    }
    Ok(summary)
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
