//! detlab: label retail product photos, export COCO, fine-tune EfficientDet and review
//! its predictions — one library behind a desktop app and a CLI.
//!
//! Layers (every arrow points down):
//! `ui` → `app` → `dataset`/`formats`/`export` → `geometry`;
//! `app` → `detector` (tch model; pure box maths in `detector::maths`);
//! `eval` (COCO mAP) and `cli` sit beside them over the same library calls;
//! `review` (prediction review, pure) sits under `app`, over `detector::maths`, `eval` and
//! `dataset`; so do `assist` (labelling assistants over pixels and boxes) and `video`
//! (FFmpeg pipes).

#[cfg(feature = "gui")]
pub mod app;
pub mod assist;
pub mod atomic;
pub mod commands;
pub mod dataset;
pub mod demo;
#[cfg(feature = "gui")]
pub mod desktop;
pub mod detector;
pub mod eval;
pub mod export;
pub mod file_id;
pub mod formats;
pub mod geometry;
pub mod review;
pub mod task;
#[cfg(feature = "gui")]
pub mod ui;
pub mod video;
