//! Loading and saving one image's labels in whichever format LabelImg's rules find.

use std::path::{Path, PathBuf};

use super::image_info::read_image_info;
use super::lookup::{find_label, label_path, LabelFormat};
use super::{ClassList, ImageAnnotation};
use crate::formats::{createml, voc, yolo, FormatError};

/// The labels found for an image.
#[derive(Clone, Debug)]
pub struct LoadedLabels {
    pub path: PathBuf,
    pub format: LabelFormat,
    pub annotation: ImageAnnotation,
}

/// Reads the label file of `image` (VOC > YOLO > CreateML; in `save_dir` or beside the
/// image). `Ok(None)` means the image has no label file. The annotation's size is
/// filled from the image header when the file does not carry it.
pub fn load_labels(
    image: &Path,
    save_dir: Option<&Path>,
) -> Result<Option<LoadedLabels>, FormatError> {
    let Some((path, format)) = find_label(image, save_dir) else {
        return Ok(None);
    };
    let annotation = read_label_file(image, &path, format)?;
    Ok(Some(LoadedLabels {
        path,
        format,
        annotation,
    }))
}

/// Reads the label file `path` of `image` as `format`. The size is filled from the image
/// header when the file does not carry it (YOLO never does), and the file name from the
/// image when missing.
pub fn read_label_file(
    image: &Path,
    path: &Path,
    format: LabelFormat,
) -> Result<ImageAnnotation, FormatError> {
    let filename = image
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let header_size = || {
        read_image_info(image)
            .map(|i| (i.width, i.height))
            .map_err(|e| {
                FormatError::invalid(path, format.name(), format!("needs the image size: {e}"))
            })
    };
    let mut annotation = match format {
        LabelFormat::Voc => voc::read(path)?,
        LabelFormat::CreateMl => createml::read(path, &filename)?,
        LabelFormat::Yolo => {
            let (w, h) = header_size()?;
            yolo::read(path, &filename, w, h)?
        }
    };
    if !annotation.has_size() {
        (annotation.width, annotation.height) = header_size()?;
    }
    if annotation.filename.is_empty() {
        annotation.filename = filename;
    }
    Ok(annotation)
}

/// [`load_labels`] as the app shows them: turned upright where made on the stored pixels
/// ([`upright_stored_frame`]), with the note to show when they were.
pub fn load_labels_upright(
    image: &Path,
    save_dir: Option<&Path>,
) -> Result<Option<(LoadedLabels, Option<String>)>, FormatError> {
    let Some(mut loaded) = load_labels(image, save_dir)? else {
        return Ok(None);
    };
    let note = upright_stored_frame(image, &mut loaded.annotation);
    Ok(Some((loaded, note)))
}

/// Turns `annotation`, read from a label file of `image`, upright when it was made on the
/// stored pixels of a photo that EXIF turns a quarter (LabelImg before 1.8.4: the file's
/// size is the stored one, the upright size swapped); returns the note to show. Anything
/// else is left as read (the image header is read only for a file that gives a size).
pub fn upright_stored_frame(image: &Path, annotation: &mut ImageAnnotation) -> Option<String> {
    let (w, h) = (annotation.width, annotation.height);
    if !annotation.has_size() || w == h {
        return None;
    }
    let info = read_image_info(image).ok()?;
    if !info.quarter_turned() || (w, h) != (info.height, info.width) {
        return None;
    }
    super::fit_labels_to_image(&info, annotation)
}

/// Writes `annotation` for `image` in `format` (atomically) and returns the path written.
/// YOLO also rewrites `classes.txt` from `classes` (new names are appended to it).
pub fn save_labels(
    image: &Path,
    save_dir: Option<&Path>,
    format: LabelFormat,
    annotation: &ImageAnnotation,
    classes: &mut ClassList,
) -> Result<PathBuf, FormatError> {
    let path = label_path(image, save_dir, format);
    match format {
        LabelFormat::Voc => voc::write(&path, annotation, image)?,
        LabelFormat::Yolo => yolo::write(&path, annotation, classes)?,
        LabelFormat::CreateMl => createml::write(&path, annotation)?,
    }
    Ok(path)
}
