//! EfficientDet (D0–D7x, Lite0) on tch, with pure-Rust anchors, box coding and NMS.

pub mod maths;
pub mod model;
