//! Detection over image files: parallel EXIF-upright decoding, batched network calls,
//! and unreadable files reported instead of stopping the run.

use std::path::PathBuf;

use rayon::prelude::*;

use super::detector::Detector;
use super::error::InferenceError;
use super::prediction::{ImagePrediction, PredictConfig};
use crate::dataset::image_info::{decode_upright_rgb, truncation_warning};

/// An image file that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFailure {
    pub path: PathBuf,
    pub reason: String,
}

/// The outcome of [`predict_files`], in input order.
#[derive(Clone, Debug, Default)]
pub struct FilePredictions {
    pub predicted: Vec<(PathBuf, ImagePrediction)>,
    pub failed: Vec<FileFailure>,
    /// Files predicted on, with something the user should know (a truncated JPEG).
    pub warnings: Vec<FileFailure>,
}

/// Runs `detector` on every file in `paths`, in order, `cfg.batch_size` images per network
/// call. Files that cannot be decoded are returned as failures (the run goes on);
/// `progress(done)` is called after each batch with the number of files handled so far.
/// Errors of the model itself stop the run.
pub fn predict_files(
    detector: &Detector,
    paths: &[PathBuf],
    cfg: &PredictConfig,
    progress: &dyn Fn(usize),
) -> Result<FilePredictions, InferenceError> {
    let mut done = Vec::with_capacity(paths.len());
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut handled = 0;
    for chunk in paths.chunks(cfg.batch_size.max(1)) {
        let decoded: Vec<_> = chunk.par_iter().map(|p| decode_upright_rgb(p)).collect();
        let mut images = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        for (path, result) in chunk.iter().zip(decoded) {
            match result {
                Ok(img) if img.width() > 0 && img.height() > 0 => {
                    if let Some(w) = truncation_warning(path) {
                        warnings.push(FileFailure {
                            path: path.clone(),
                            reason: w.into(),
                        });
                    }
                    images.push(img);
                    names.push(path.clone());
                }
                Ok(_) => failed.push(FileFailure {
                    path: path.clone(),
                    reason: "the image is empty".into(),
                }),
                Err(e) => failed.push(FileFailure {
                    path: path.clone(),
                    reason: e.reason,
                }),
            }
        }
        if !images.is_empty() {
            let cfg = PredictConfig {
                batch_size: images.len(),
                ..*cfg
            };
            let preds = detector.predict_images(&images, &cfg)?;
            done.extend(names.into_iter().zip(preds));
        }
        handled += chunk.len();
        progress(handled);
    }
    Ok(FilePredictions {
        predicted: done,
        failed,
        warnings,
    })
}
