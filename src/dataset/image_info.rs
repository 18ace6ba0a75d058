//! Image size as the user sees it (after EXIF orientation), read from the header
//! without decoding the pixels.

use std::path::Path;

/// Size and orientation facts of an image file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width and height after applying the EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Whether the EXIF orientation swaps or flips the stored pixels.
    pub exif_transformed: bool,
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
    })
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
