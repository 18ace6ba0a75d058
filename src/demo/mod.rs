//! `detlab demo`: a deterministic synthetic retail dataset (shelf scenes with
//! product-like objects of a few classes, exact boxes, LabelImg VOC files).

mod scene;

pub use scene::{render_scene, Scene, DEMO_CLASSES};

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{ClassList, ImageAnnotation};

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub out_dir: PathBuf,
    pub images: usize,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DemoSummary {
    pub images: usize,
    pub boxes: usize,
    pub negatives: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("image size {0}×{1} is too small (at least 64×64)")]
    TooSmall(u32, u32),
}

/// Writes `images` JPEGs with VOC files beside them and a `predefined_classes.txt`.
/// The same options always give the same files, whatever the number of threads.
pub fn generate(options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    if options.width < 64 || options.height < 64 {
        return Err(DemoError::TooSmall(options.width, options.height));
    }
    let out = &options.out_dir;
    std::fs::create_dir_all(out).map_err(|e| DemoError::Write {
        path: out.clone(),
        reason: e.to_string(),
    })?;
    let classes = ClassList::from_names(DEMO_CLASSES);
    let classes_path = out.join("predefined_classes.txt");
    crate::atomic::write_atomic(&classes_path, classes.to_file_content().as_bytes()).map_err(
        |e| DemoError::Write {
            path: classes_path,
            reason: e.to_string(),
        },
    )?;
    let counts: Vec<usize> = (0..options.images)
        .into_par_iter()
        .map(|i| write_one(options, i))
        .collect::<Result<_, _>>()?;
    Ok(DemoSummary {
        images: counts.len(),
        boxes: counts.iter().sum(),
        negatives: counts.iter().filter(|&&n| n == 0).count(),
    })
}

/// The file name of demo image `index`.
pub fn image_name(index: usize) -> String {
    format!("shelf_{:04}.jpg", index + 1)
}

fn write_one(options: &DemoOptions, index: usize) -> Result<usize, DemoError> {
    let scene = render_scene(options.seed, index as u64, options.width, options.height);
    let image_path = options.out_dir.join(image_name(index));
    write_jpeg(&image_path, &scene.image)?;
    let mut ann = ImageAnnotation::new(image_name(index), options.width, options.height);
    ann.boxes = scene.boxes;
    let xml_path = image_path.with_extension("xml");
    crate::formats::voc::write(&xml_path, &ann, &image_path).map_err(|e| DemoError::Write {
        path: xml_path,
        reason: e.to_string(),
    })?;
    Ok(ann.boxes.len())
}

fn write_jpeg(path: &Path, image: &image::RgbImage) -> Result<(), DemoError> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode_image(image)
        .map_err(|e| DemoError::Write {
            path: path.into(),
            reason: e.to_string(),
        })?;
    crate::atomic::write_atomic(path, &bytes).map_err(|e| DemoError::Write {
        path: path.into(),
        reason: e.to_string(),
    })
}
