//! Image size as the user sees it (after EXIF orientation), read from the header
//! without decoding the pixels.

use std::path::Path;

use crate::dataset::ImageAnnotation;
use crate::geometry::BoxXyxy;

/// Size and orientation facts of an image file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width and height after applying the EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Whether the EXIF orientation swaps or flips the stored pixels.
    pub exif_transformed: bool,
    /// The EXIF orientation (how the stored pixels turn upright).
    pub orientation: image::metadata::Orientation,
}

impl ImageInfo {
    /// Whether the stored pixels are turned by a quarter (the stored width is the upright
    /// height).
    pub fn quarter_turned(&self) -> bool {
        use image::metadata::Orientation::*;
        matches!(
            self.orientation,
            Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH
        )
    }

    /// `b`, a box on the stored pixels, on the upright image (the EXIF orientation applied
    /// as [`image::DynamicImage::apply_orientation`] does).
    pub fn upright_box(&self, b: BoxXyxy) -> BoxXyxy {
        use image::metadata::Orientation::*;
        let (w, h) = if self.quarter_turned() {
            (f64::from(self.height), f64::from(self.width))
        } else {
            (f64::from(self.width), f64::from(self.height))
        };
        let (x1, y1, x2, y2) = (b.x1, b.y1, b.x2, b.y2);
        let (a, c, d, e) = match self.orientation {
            NoTransforms => (x1, y1, x2, y2),
            FlipHorizontal => (w - x2, y1, w - x1, y2),
            FlipVertical => (x1, h - y2, x2, h - y1),
            Rotate180 => (w - x2, h - y2, w - x1, h - y1),
            Rotate90 => (h - y2, x1, h - y1, x2),
            Rotate270 => (y1, w - x2, y2, w - x1),
            Rotate90FlipH => (y1, x1, y2, x2),
            Rotate270FlipH => (h - y2, w - x2, h - y1, w - x1),
        };
        BoxXyxy::new(a, c, d, e)
    }
}

/// An image header that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read image {path}: {reason}")]
pub struct ImageInfoError {
    pub path: String,
    pub reason: String,
}

/// Largest side accepted (a "decompression bomb" guard): 32,768 px per side,
/// 256 megapixels in all.
pub const MAX_SIDE: u32 = 32_768;
pub const MAX_PIXELS: u64 = 256 * 1024 * 1024;

/// Reads the header of `path`.
pub fn read_image_info(path: &Path) -> Result<ImageInfo, ImageInfoError> {
    use image::ImageDecoder;
    let fail = |reason: String| ImageInfoError {
        path: path.display().to_string(),
        reason,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?;
    let mut decoder = reader.into_decoder().map_err(|e| fail(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(fail(format!("the header says {w}×{h} pixels")));
    }
    if w > MAX_SIDE || h > MAX_SIDE || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(fail(format!(
            "{w}×{h} pixels is larger than detlab accepts"
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    use image::metadata::Orientation::*;
    let swapped = matches!(
        orientation,
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH
    );
    let (width, height) = if swapped { (h, w) } else { (w, h) };
    Ok(ImageInfo {
        width,
        height,
        exif_transformed: orientation != NoTransforms,
        orientation,
    })
}

/// Fits a label file's annotation to its image's header (a cheap read: no pixels are
/// decoded); returns what was changed, for a warning. Labels in the photo's stored
/// orientation (LabelImg before 1.8.4 ignored EXIF: the size is the stored one, turned a
/// quarter from the upright) have their boxes turned upright, as detlab shows and trains
/// on the photo; any other size that disagrees is replaced by the header's.
pub fn fit_labels_to_image(info: &ImageInfo, ann: &mut ImageAnnotation) -> Option<String> {
    let mut size = (ann.width, ann.height);
    let reason = fit_boxes_to_image(info, &mut size, ann.boxes.iter_mut().map(|b| &mut b.bbox));
    (ann.width, ann.height) = size;
    reason
}

/// [`fit_labels_to_image`] on boxes and the size their label file gives (`size` becomes
/// the header's).
pub fn fit_boxes_to_image<'a>(
    info: &ImageInfo,
    size: &mut (u32, u32),
    boxes: impl IntoIterator<Item = &'a mut BoxXyxy>,
) -> Option<String> {
    let (w, h) = *size;
    if (w, h) == (info.width, info.height) {
        return None;
    }
    *size = (info.width, info.height);
    if info.quarter_turned() && (w, h) == (info.height, info.width) {
        for b in boxes {
            *b = info.upright_box(*b);
        }
        return Some(format!(
            "the label file is in the photo's stored orientation ({w}×{h}, EXIF turns it to \
             {}×{}; LabelImg before 1.8.4 labelled so): its boxes were turned upright",
            info.width, info.height
        ));
    }
    Some(format!(
        "the label file says {w}×{h}, the image header {}×{}",
        info.width, info.height
    ))
}

/// What [`truncation_warning`] reports.
pub const TRUNCATED_JPEG: &str =
    "the JPEG file ends before its end-of-image marker (truncated?); the missing rows show as grey";

/// A warning for a JPEG file that stops before its end-of-image marker (`FF D9`, allowing
/// zero-byte padding after it): its decoder fills the missing rows with grey instead of
/// failing, so the image is usable but incomplete. `None` for other formats, complete
/// files, and files that cannot be read (their decoding reports that).
pub fn truncation_warning(path: &Path) -> Option<&'static str> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).ok()?;
    if magic != [0xFF, 0xD8] {
        return None;
    }
    let len = file.metadata().ok()?.len();
    let tail_len = len.min(4096);
    file.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.read_to_end(&mut tail).ok()?;
    let end = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    (!tail[..end].ends_with(&[0xFF, 0xD9])).then_some(TRUNCATED_JPEG)
}

/// Decodes `path` to upright RGB8 (EXIF orientation applied), with the same size guard.
pub fn decode_upright_rgb(path: &Path) -> Result<image::RgbImage, ImageInfoError> {
    use image::ImageDecoder;
    let fail = |reason: String| ImageInfoError {
        path: path.display().to_string(),
        reason,
    };
    read_image_info(path)?;
    let reader = image::ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?;
    let mut decoder = reader.into_decoder().map_err(|e| fail(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| fail(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::metadata::Orientation;

    /// The box of the white pixels of `img`, in pixel-edge coordinates.
    fn white_box(img: &image::RgbImage) -> BoxXyxy {
        let (mut x1, mut y1, mut x2, mut y2) = (u32::MAX, u32::MAX, 0, 0);
        for (x, y, p) in img.enumerate_pixels() {
            if p.0[0] > 128 {
                (x1, y1, x2, y2) = (x1.min(x), y1.min(y), x2.max(x + 1), y2.max(y + 1));
            }
        }
        BoxXyxy::new(x1.into(), y1.into(), x2.into(), y2.into())
    }

    #[test]
    fn a_stored_box_turns_upright_as_the_pixels_do() {
        // A 7×4 stored image with a white 2×2 block at x 1..3, y 0..2.
        let mut stored = image::RgbImage::new(7, 4);
        for (x, y) in [(1, 0), (2, 0), (1, 1), (2, 1)] {
            stored.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
        let b = white_box(&stored);
        for exif in 1..=8u8 {
            let orientation = Orientation::from_exif(exif).unwrap();
            let mut upright = image::DynamicImage::ImageRgb8(stored.clone());
            upright.apply_orientation(orientation);
            let upright = upright.to_rgb8();
            let info = ImageInfo {
                width: upright.width(),
                height: upright.height(),
                exif_transformed: orientation != Orientation::NoTransforms,
                orientation,
            };
            assert_eq!(info.quarter_turned(), upright.width() == 4, "EXIF {exif}");
            assert_eq!(info.upright_box(b), white_box(&upright), "EXIF {exif}");
        }
    }
}
