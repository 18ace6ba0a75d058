//! `detlab demo`: a deterministic synthetic retail dataset (shelf scenes with
//! product-like objects of a few classes, exact boxes, LabelImg VOC files).

mod dense;
mod scene;

pub use dense::{
    dense_classes, dense_layout, render_dense, render_layout, Camera, DenseLayout, Facing,
    DENSE_CLASS_COUNT, DENSE_FACINGS, DENSE_HEIGHT, DENSE_WIDTH,
};
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
    #[error("image size {0}×{1} is too small for dense shelves (at least 256×256)")]
    TooSmallDense(u32, u32),
    #[error("image size {0}×{1} is too large (at most {MAX_SIDE} pixels a side)")]
    TooLarge(u32, u32),
    /// The folder already holds a file the demo would write.
    #[error(
        "{0} already exists: the demo writes only into a new or empty folder (or one \
         without its file names), so nothing was written"
    )]
    WouldOverwrite(PathBuf),
}

/// The largest image side the demo renders (a 12,000² photo is 432 MB of pixels).
pub const MAX_SIDE: u32 = 12_000;

/// Refuses sizes outside `min..=`[`MAX_SIDE`] and an output folder holding any of the
/// files `images` demo images would be written to (checked before anything is written).
fn check_before_writing(
    options: &DemoOptions,
    min: u32,
    too_small: fn(u32, u32) -> DemoError,
) -> Result<(), DemoError> {
    let (w, h) = (options.width, options.height);
    if w < min || h < min {
        return Err(too_small(w, h));
    }
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(DemoError::TooLarge(w, h));
    }
    let out = &options.out_dir;
    let names = (0..options.images).flat_map(|i| {
        let image = image_name(i);
        let xml = Path::new(&image).with_extension("xml");
        [PathBuf::from(image), xml]
    });
    std::iter::once(PathBuf::from(CLASS_FILE))
        .chain(names)
        .map(|name| out.join(name))
        .find(|path| path.symlink_metadata().is_ok())
        .map_or(Ok(()), |path| Err(DemoError::WouldOverwrite(path)))
}

/// Whether `options.out_dir` already holds the demo `options` describe, as far as file
/// names go: its class file (with the demo's classes, `dense` or not) and every image.
/// Making it again there would replace files, so a caller may open it instead.
pub fn holds_demo(options: &DemoOptions, dense: bool) -> bool {
    let classes = if dense {
        ClassList::from_names(dense_classes())
    } else {
        ClassList::from_names(DEMO_CLASSES)
    };
    let out = &options.out_dir;
    std::fs::read_to_string(out.join(CLASS_FILE)).is_ok_and(|t| t == classes.to_file_content())
        && (0..options.images).all(|i| out.join(image_name(i)).is_file())
}

/// The class list a demo folder holds.
const CLASS_FILE: &str = "predefined_classes.txt";

/// Writes `images` JPEGs with VOC files beside them and a `predefined_classes.txt`.
/// The same options always give the same files, whatever the number of threads.
pub fn generate(options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    check_before_writing(options, 64, DemoError::TooSmall)?;
    write_classes(&options.out_dir, ClassList::from_names(DEMO_CLASSES))?;
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

/// Writes `images` dense shelf photos (see [`render_dense`]: 80–250 facings of
/// [`DENSE_CLASS_COUNT`] similar SKUs each) as JPEGs with VOC files beside them and a
/// `predefined_classes.txt`. The same options always give the same files. Images are
/// rendered one after another, each on all threads.
pub fn generate_dense(options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    check_before_writing(options, 256, DemoError::TooSmallDense)?;
    write_classes(&options.out_dir, ClassList::from_names(dense_classes()))?;
    let mut summary = DemoSummary::default();
    for index in 0..options.images {
        let scene = render_dense(options.seed, index as u64, options.width, options.height);
        let n = write_scene(options, index, scene)?;
        summary.images += 1;
        summary.boxes += n;
        summary.negatives += usize::from(n == 0);
    }
    Ok(summary)
}

/// Creates the output folder and writes its `predefined_classes.txt`.
fn write_classes(out: &std::path::Path, classes: ClassList) -> Result<(), DemoError> {
    let write_error = |path: &std::path::Path, e: std::io::Error| DemoError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(out).map_err(|e| write_error(out, e))?;
    let classes_path = out.join(CLASS_FILE);
    crate::atomic::write_atomic(&classes_path, classes.to_file_content().as_bytes())
        .map_err(|e| write_error(&classes_path, e))
}

/// The file name of demo image `index`.
pub fn image_name(index: usize) -> String {
    format!("shelf_{:04}.jpg", index + 1)
}

fn write_one(options: &DemoOptions, index: usize) -> Result<usize, DemoError> {
    let scene = render_scene(options.seed, index as u64, options.width, options.height);
    write_scene(options, index, scene)
}

/// Writes a rendered scene as image `index` (JPEG and VOC); returns its box count.
fn write_scene(options: &DemoOptions, index: usize, scene: Scene) -> Result<usize, DemoError> {
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
