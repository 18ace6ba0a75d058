//! The annotation data model: one image's boxes, in image-pixel coordinates.

use crate::formats::xml_tree::XmlElement;
use crate::geometry::BoxXyxy;

/// One labelled box.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LabelBox {
    /// Corners in image pixels (after EXIF orientation), as `f64` so that float
    /// coordinates from other tools survive a read.
    pub bbox: BoxXyxy,
    pub class_name: String,
    pub difficult: bool,
    /// As read from the file; LabelImg's writer recomputes it from the box position.
    pub truncated: bool,
    /// Child elements of `<object>` that detlab does not interpret, kept for round-trips.
    pub extra: Vec<XmlElement>,
}

impl LabelBox {
    pub fn new(class_name: impl Into<String>, bbox: BoxXyxy) -> Self {
        Self {
            bbox,
            class_name: class_name.into(),
            ..Self::default()
        }
    }
}

/// All labels of one image.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImageAnnotation {
    /// The image's file name (with extension), as stored in the label file.
    pub filename: String,
    /// Width and height after EXIF orientation; `0` when unknown.
    pub width: u32,
    pub height: u32,
    /// 1 for grey-scale images, else 3.
    pub depth: u32,
    /// LabelImg's "verified" flag (Space).
    pub verified: bool,
    pub boxes: Vec<LabelBox>,
    /// Top-level elements of a VOC file that detlab does not interpret (e.g. `owner`).
    pub extra: Vec<XmlElement>,
    /// Children of `<source>` other than `<database>` (e.g. VOC2007's `flickrid`).
    pub extra_source: Vec<XmlElement>,
}

impl ImageAnnotation {
    pub fn new(filename: impl Into<String>, width: u32, height: u32) -> Self {
        Self {
            filename: filename.into(),
            width,
            height,
            depth: 3,
            ..Self::default()
        }
    }

    pub fn has_size(&self) -> bool {
        self.width > 0 && self.height > 0
    }
}
