//! Boxes in image-pixel coordinates and the maths on them (no egui, no tch).

mod bbox;

pub use bbox::{BoxXywh, BoxXyxy};
