//! Pure-Rust detection maths (no tch): anchors, box coding, NMS, post-processing and
//! letterboxing.
//!
//! Coordinate orders are explicit types: anchors and regressions use the reference's
//! `(y1, x1, y2, x2)` / `(dy, dx, dh, dw)` ([`anchors::AnchorYxyx`], [`box_coding::YxyxBox`],
//! [`box_coding::BoxDelta`]); decoded boxes are `(x1, y1, x2, y2)` ([`box_coding::XyxyF32`],
//! [`crate::geometry::BoxXyxy`]).

pub mod anchors;
pub mod box_coding;
pub mod letterbox;
pub mod nms;
pub mod postprocess;
pub mod tiling;
pub mod tta;
