//! Running a detlab model on images: device choice, batched pre-processing, the network
//! under `no_grad`, and post-processing back to original-image pixels.
//!
//! ```no_run
//! use detlab::detector::inference::{Detector, DetectorOptions, PredictConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let det = Detector::load("model.safetensors".as_ref(), &DetectorOptions::default())?;
//! let img = detlab::dataset::image_info::decode_upright_rgb("shelf.jpg".as_ref())?;
//! let pred = det.predict_images(&[img], &PredictConfig::default())?;
//! for d in &pred[0].detections {
//!     println!("{} {:.2} {:?}", det.class_names()[d.class_id], d.score, d.bbox);
//! }
//! # Ok(()) }
//! ```

mod default_model;
mod detector;
mod error;
mod files;
mod prediction;

pub use crate::detector::settings::{DeviceChoice, DeviceError};
pub use default_model::{default_model_path, SHIPPED_MODEL};
pub use detector::{expected_keys, network_config, Detector, DetectorOptions};
pub use error::InferenceError;
pub use files::{predict_files, FileFailure, FilePredictions};
pub use prediction::{ImagePrediction, PredictConfig};
