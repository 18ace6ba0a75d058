//! Label file formats: Pascal VOC (LabelImg-exact), YOLO, CreateML and COCO.
//! No egui and no tch in here.

pub mod coco;
pub mod createml;
mod error;
pub mod voc;
pub mod xml_tree;
pub mod yolo;

pub use error::FormatError;

/// The largest coordinate, in pixels, that a label file may hold (as a magnitude): twice the
/// largest image side detlab opens. A box beyond it is refused when the file is read, with
/// a message naming the file, the box and the value, instead of reaching the canvas, the
/// export or a converter as an absurd number (`xmax` = 1e308 once pushed the app's side
/// panel off-screen, and became `9223372036854775807` in a converted VOC file).
pub const MAX_ABS_COORDINATE: f64 = 2.0 * crate::dataset::image_info::MAX_SIDE as f64;

/// Checks one coordinate read from a label file: finite and within
/// [`MAX_ABS_COORDINATE`]; the error is the reason, for the caller to prefix.
pub(crate) fn check_coordinate(v: f64) -> Result<f64, String> {
    if !v.is_finite() {
        Err("is not finite".into())
    } else if v.abs() > MAX_ABS_COORDINATE {
        Err(format!(
            "{v} is outside the range a label can hold (±{MAX_ABS_COORDINATE} pixels)"
        ))
    } else {
        Ok(v)
    }
}
