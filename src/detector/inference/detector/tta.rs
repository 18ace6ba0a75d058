//! Test-time augmentation: the photo, its mirror image and the photo at other scales run
//! through the network together (batched like tiles), each pass's candidates mapped back
//! to photo pixels and pooled before NMS ([`crate::detector::maths::tta`]).

use image::RgbImage;
use rayon::prelude::*;

use super::Detector;
use crate::detector::inference::error::InferenceError;
use crate::detector::inference::prediction::{ImagePrediction, PredictConfig};
use crate::detector::maths::letterbox::{letterbox_rgb, Letterbox};
use crate::detector::maths::postprocess::{to_original, Candidates};
use crate::detector::maths::tiling::{
    identity_letterbox, merge_tiles, tile_grid, Tile, TileCandidates, TileParams,
};
use crate::detector::maths::tta::{
    fuse_detections, mirror_candidates, pad_input, pool, scale_windows, shrunk_letterbox, to_photo,
    TTA_FUSION_IOU,
};

/// One network input of a TTA prediction.
#[derive(Clone, Copy, Debug)]
struct Input {
    /// The pass it belongs to.
    pass: usize,
    /// Of the mirrored photo.
    flip: bool,
    /// A window of an enlarged pass, else the whole photo.
    window: Option<Tile>,
    /// The side the whole photo is letterboxed into (below the input size: a shrunk
    /// pass, padded to the input).
    inner: u32,
}

impl Detector {
    /// Detects objects in one photo with `cfg.tta`'s passes, their candidates pooled in
    /// photo pixels (so the prediction's letterbox is the identity and
    /// [`ImagePrediction::reselect`] works as usual). The detections are the pooled
    /// candidates after NMS, each box fused with the candidates of its class overlapping
    /// it ([`fuse_detections`]; `reselect` gives the boxes before that fusion, which the
    /// review's *Refine boxes* does in its own way). A photo that `cfg.tiling` cuts into
    /// tiles is detected in tiles and in tiles of its mirror image; the scales are not
    /// applied to it (the tiles and the whole-photo pass already see it at two scales).
    pub fn predict_tta(
        &self,
        image: &RgbImage,
        cfg: &PredictConfig,
    ) -> Result<ImagePrediction, InferenceError> {
        let (w, h) = image.dimensions();
        let mirrored = image::imageops::flip_horizontal(image);
        let parts = match self.tile_plan(w, h, cfg) {
            Some(params) => {
                let plain = self.predict_tiled(image, &params, cfg)?.candidates;
                let flipped = self.predict_tiled(&mirrored, &params, cfg)?.candidates;
                vec![plain, mirror_candidates(&flipped, w)]
            }
            None => self.tta_passes(image, &mirrored, cfg)?,
        };
        let candidates = pool(&parts, cfg.top_k)?;
        let letterbox = identity_letterbox(w, h);
        // Each kept box fused with the overlapping candidates of all passes: on
        // cola-sprite/val this is what makes TTA pay (BENCHMARKS.md).
        let kept = to_original(&candidates.select(&cfg.select), &letterbox);
        let detections = fuse_detections(
            &kept,
            &candidates,
            cfg.select.score_threshold,
            TTA_FUSION_IOU,
        );
        Ok(ImagePrediction {
            width: w,
            height: h,
            letterbox,
            candidates,
            detections,
        })
    }

    /// The candidates of each pass of `cfg.tta` on a whole photo, in photo pixels.
    fn tta_passes(
        &self,
        image: &RgbImage,
        mirrored: &RgbImage,
        cfg: &PredictConfig,
    ) -> Result<Vec<Candidates>, InferenceError> {
        let (w, h) = image.dimensions();
        let (size, norm) = (self.meta.input_size, self.meta.normalization);
        let passes = cfg.tta.passes();
        let mut inputs = Vec::new();
        let mut windows: Vec<Option<TileParams>> = Vec::with_capacity(passes.len());
        for (i, pass) in passes.iter().enumerate() {
            let params = scale_windows(w, h, pass.scale);
            windows.push(params);
            match params {
                Some(params) => {
                    inputs.extend(tile_grid(w, h, &params).into_iter().map(|t| Input {
                        pass: i,
                        flip: pass.flip,
                        window: Some(t),
                        inner: size,
                    }))
                }
                None => inputs.push(Input {
                    pass: i,
                    flip: pass.flip,
                    window: None,
                    inner: shrunk_letterbox(w, h, size, pass.scale).size,
                }),
            }
        }
        let mut found: Vec<(Input, Letterbox, Candidates)> = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(self.tile_batch_size(cfg)) {
            let prepared: Vec<(Vec<f32>, Letterbox)> = chunk
                .par_iter()
                .map(|input| {
                    let src = if input.flip { mirrored } else { image };
                    match input.window {
                        Some(t) => {
                            let crop = image::imageops::crop_imm(src, t.x, t.y, t.width, t.height)
                                .to_image();
                            letterbox_rgb(crop.as_raw(), t.width, t.height, size, &norm)
                        }
                        None => {
                            let (data, lb) = letterbox_rgb(src.as_raw(), w, h, input.inner, &norm);
                            if input.inner < size {
                                (pad_input(&data, input.inner, size), lb)
                            } else {
                                (data, lb)
                            }
                        }
                    }
                })
                .collect();
            let candidates = self.candidates_of_inputs(&prepared, cfg)?;
            for ((input, (_, lb)), c) in chunk.iter().zip(prepared).zip(candidates) {
                found.push((*input, lb, c));
            }
        }
        let mut parts = Vec::with_capacity(passes.len());
        for (i, pass) in passes.iter().enumerate() {
            let flip = pass.flip.then_some(w);
            let mut of_pass = found.iter().filter(|(input, _, _)| input.pass == i);
            match windows[i] {
                Some(params) => {
                    let tiles: Vec<TileCandidates> = of_pass
                        .filter_map(|(input, letterbox, candidates)| {
                            input.window.map(|tile| TileCandidates {
                                tile,
                                letterbox: *letterbox,
                                candidates,
                            })
                        })
                        .collect();
                    let merged = merge_tiles(w, h, &params, &tiles, None, cfg.top_k)?;
                    parts.push(match flip {
                        Some(w) => mirror_candidates(&merged, w),
                        None => merged,
                    });
                }
                None => {
                    let (_, letterbox, candidates) = of_pass
                        .next()
                        .expect("every pass without windows has its whole-photo input");
                    parts.push(to_photo(candidates, letterbox, flip));
                }
            }
        }
        Ok(parts)
    }
}
