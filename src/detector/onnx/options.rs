//! What an ONNX export produces: the graph's ending, input layout and type, batch size
//! and the default post-processing settings.

use std::fmt;
use std::str::FromStr;

/// How the graph ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Variant {
    /// ONNX `NonMaxSuppression`, then per image the best `max_detections` boxes, scores
    /// and class ids (padded), and their count.
    #[default]
    Nms,
    /// The decoded pre-NMS boxes and class probabilities of every anchor, for runtimes
    /// that bring their own NMS.
    Raw,
}

/// The image input's axis order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// `[batch, 3, height, width]`.
    Nchw,
    /// `[batch, height, width, 3]`, what image decoders give.
    #[default]
    Nhwc,
}

/// The image input's element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputDtype {
    /// Pixel values 0–255 as float32 (a bilinear resize need not be rounded: detlab's
    /// exact input).
    #[default]
    Float32,
    /// Pixel values as uint8 (the letterboxed image rounded to integers).
    Uint8,
}

/// Why an export option is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct OptionError(pub String);

/// Settings of one export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// `nms` (default) or `raw`.
    pub variant: Variant,
    /// NHWC (default) or NCHW.
    pub layout: Layout,
    /// float32 (default) or uint8.
    pub input_dtype: InputDtype,
    /// A fixed batch size; `None` leaves the batch axis free (named `batch`).
    pub batch: Option<u32>,
    /// Keep scores `>` this (`nms` variant; recorded in the metadata either way).
    pub score_threshold: f32,
    /// NMS suppresses a box whose IoU with a kept one is `>` this.
    pub iou_threshold: f32,
    /// Detections per image (the padded size of the `nms` outputs).
    pub max_detections: usize,
    /// NMS across classes instead of within each class.
    pub class_agnostic: bool,
}

impl Default for ExportOptions {
    /// `detlab predict`'s defaults: score 0.05, IoU 0.5, 100 detections, per class.
    fn default() -> Self {
        Self {
            variant: Variant::Nms,
            layout: Layout::Nhwc,
            input_dtype: InputDtype::Float32,
            batch: None,
            score_threshold: 0.05,
            iou_threshold: 0.5,
            max_detections: 100,
            class_agnostic: false,
        }
    }
}

/// The most detections per image an export may ask for.
pub const MAX_DETECTIONS: usize = 10_000;
/// The largest fixed batch an export may ask for.
pub const MAX_BATCH: u32 = 4096;

impl ExportOptions {
    /// Checks every number (thresholds in range, a positive cap and batch).
    pub fn check(&self) -> Result<(), OptionError> {
        let s = self.score_threshold;
        if !(s.is_finite() && (0.0..1.0).contains(&s)) {
            return Err(OptionError(format!(
                "score threshold {s} must be in [0, 1)"
            )));
        }
        let i = self.iou_threshold;
        if !(i.is_finite() && i > 0.0 && i <= 1.0) {
            return Err(OptionError(format!("IoU threshold {i} must be in (0, 1]")));
        }
        if self.max_detections == 0 || self.max_detections > MAX_DETECTIONS {
            return Err(OptionError(format!(
                "max detections {} must be from 1 to {MAX_DETECTIONS}",
                self.max_detections
            )));
        }
        if let Some(b) = self.batch {
            if b == 0 || b > MAX_BATCH {
                return Err(OptionError(format!(
                    "batch {b} must be from 1 to {MAX_BATCH}"
                )));
            }
        }
        Ok(())
    }
}

macro_rules! names {
    ($t:ty, $what:literal, $($v:path => $s:literal),+) => {
        impl $t {
            /// The name used on the command line and in the file's metadata.
            pub fn name(self) -> &'static str {
                match self { $($v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $t {
            type Err = OptionError;
            fn from_str(s: &str) -> Result<Self, OptionError> {
                match s.to_ascii_lowercase().as_str() {
                    $($s => Ok($v),)+
                    _ => Err(OptionError(format!(
                        "unknown {} `{s}` (one of: {})",
                        $what,
                        [$($s),+].join(", ")
                    ))),
                }
            }
        }
    };
}
names!(Variant, "variant", Variant::Nms => "nms", Variant::Raw => "raw");
names!(Layout, "layout", Layout::Nchw => "nchw", Layout::Nhwc => "nhwc");
names!(InputDtype, "input type", InputDtype::Float32 => "float32", InputDtype::Uint8 => "uint8");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_values_are_refused() {
        for l in [Layout::Nchw, Layout::Nhwc] {
            assert_eq!(l.name().parse::<Layout>().unwrap(), l);
        }
        assert_eq!("UINT8".parse::<InputDtype>().unwrap(), InputDtype::Uint8);
        assert!("nhcw".parse::<Layout>().unwrap_err().0.contains("nchw"));
        ExportOptions::default().check().unwrap();
        let bad = ExportOptions {
            iou_threshold: 0.0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let bad = ExportOptions {
            max_detections: 0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
