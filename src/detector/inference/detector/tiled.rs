//! Tiled detection: a large photo cut into overlapping tiles at native resolution (plus
//! one whole-photo pass), the tiles batched through the network, their candidates merged
//! into the photo's frame ([`crate::detector::maths::tiling`]).

use image::RgbImage;
use rayon::prelude::*;

use super::Detector;
use crate::detector::inference::error::InferenceError;
use crate::detector::inference::prediction::{ImagePrediction, PredictConfig};
use crate::detector::maths::letterbox::{letterbox_rgb, Letterbox};
use crate::detector::maths::postprocess::{to_original, Candidates};
use crate::detector::maths::tiling::{
    identity_letterbox, merge_tiles, tile_grid, TileCandidates, TileParams,
};

/// Network inputs per call for the tiles of one photo on a GPU.
const GPU_TILE_BATCH: usize = 8;

impl Detector {
    /// The tiles `cfg.tiling` asks for on a `width × height` photo with this model.
    pub fn tile_plan(&self, width: u32, height: u32, cfg: &PredictConfig) -> Option<TileParams> {
        cfg.tiling.plan(width, height, self.meta.train_tile)
    }

    /// Network inputs per call for tiles: the CPU engine's batch, or a few on a GPU.
    pub(super) fn tile_batch_size(&self, cfg: &PredictConfig) -> usize {
        let hardware = if self.device.is_cuda() {
            GPU_TILE_BATCH
        } else {
            self.default_batch_size()
        };
        hardware.max(cfg.batch_size).max(1)
    }

    /// Detects objects in one photo cut into `params` tiles: every tile (and, with
    /// `params.whole_image`, the whole photo) letterboxed into the network input and run
    /// in batches (no whole-photo pass when one tile covers the photo); the candidates are
    /// merged in original pixels, so the prediction's
    /// letterbox is the identity and [`ImagePrediction::reselect`] works as usual.
    pub fn predict_tiled(
        &self,
        image: &RgbImage,
        params: &TileParams,
        cfg: &PredictConfig,
    ) -> Result<ImagePrediction, InferenceError> {
        let (w, h) = image.dimensions();
        let tiles = tile_grid(w, h, params);
        let (size, norm) = (self.meta.input_size, self.meta.normalization);
        let mut regions: Vec<Option<usize>> = (0..tiles.len()).map(Some).collect();
        if params.whole_image && tiles.len() > 1 {
            regions.push(None);
        }
        let mut found: Vec<(Option<usize>, Letterbox, Candidates)> = Vec::new();
        for chunk in regions.chunks(self.tile_batch_size(cfg)) {
            let inputs: Vec<(Vec<f32>, Letterbox)> = chunk
                .par_iter()
                .map(|region| match region {
                    Some(i) => {
                        let t = tiles[*i];
                        let crop = image::imageops::crop_imm(image, t.x, t.y, t.width, t.height)
                            .to_image();
                        letterbox_rgb(crop.as_raw(), t.width, t.height, size, &norm)
                    }
                    None => letterbox_rgb(image.as_raw(), w, h, size, &norm),
                })
                .collect();
            let candidates = self.candidates_of_inputs(&inputs, cfg)?;
            for ((region, (_, lb)), c) in chunk.iter().zip(inputs).zip(candidates) {
                found.push((*region, lb, c));
            }
        }
        let mut whole = None;
        let mut parts = Vec::with_capacity(tiles.len());
        for (region, letterbox, candidates) in &found {
            match region {
                Some(i) => parts.push(TileCandidates {
                    tile: tiles[*i],
                    letterbox: *letterbox,
                    candidates,
                }),
                None => whole = Some((candidates, letterbox)),
            }
        }
        let candidates = merge_tiles(w, h, params, &parts, whole, cfg.top_k)?;
        let letterbox = identity_letterbox(w, h);
        let detections = to_original(&candidates.select(&cfg.select), &letterbox);
        Ok(ImagePrediction {
            width: w,
            height: h,
            letterbox,
            candidates,
            detections,
        })
    }
}
