//! Detector maths in pure Rust (no tch): anchors, box coding, NMS, letterboxing.

pub mod anchors;
