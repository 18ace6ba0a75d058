//! The model and post-processing options shared by `detlab predict` and `eval --model`
//! (`--model`, `--score`, `--nms`, `--tile`, `--tta`, …) and how they become a
//! [`PredictConfig`] and a loaded [`Detector`].

use std::path::PathBuf;

use anyhow::{bail, Context};

use detlab::detector::inference::{
    default_model_path, Detector, DetectorOptions, DeviceChoice, PredictConfig, SHIPPED_MODEL,
};
use detlab::detector::maths::nms::DEFAULT_SOFT_NMS_SIGMA;
use detlab::detector::maths::postprocess::{NmsMethod, SelectConfig};
use detlab::detector::maths::tiling::{TileParams, Tiling, DEFAULT_TILE_OVERLAP};
use detlab::detector::maths::tta::{Tta, DEFAULT_TTA_SCALES};
use detlab::detector::precision::Precision;

/// Model and post-processing options shared by `predict` and `eval --model`.
#[derive(clap::Args, Debug, Clone)]
pub struct DetectArgs {
    /// The detlab model file (default: the shipped models/cola-sprite-lite0.safetensors,
    /// or $DETLAB_MODEL).
    #[arg(long, value_name = "M.safetensors")]
    pub model: Option<PathBuf>,
    /// Keep detections with a score above this.
    #[arg(long, default_value_t = 0.05)]
    pub score: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.5)]
    pub iou: f64,
    /// NMS across classes instead of within each class.
    #[arg(long)]
    pub class_agnostic: bool,
    /// Suppression: hard (remove boxes with IoU > --iou), linear Soft-NMS (score ×
    /// (1 − IoU) above --iou) or gaussian Soft-NMS (score × exp(−IoU²/σ)).
    #[arg(long, value_enum, default_value_t = NmsChoice::Hard)]
    pub nms: NmsChoice,
    /// σ of gaussian Soft-NMS.
    #[arg(long, default_value_t = DEFAULT_SOFT_NMS_SIGMA, value_name = "SIGMA")]
    pub soft_nms_sigma: f64,
    /// At most this many detections per image (default 100; 300 when the known labels
    /// are dense: more than 100 boxes on one image).
    #[arg(long)]
    pub max_det: Option<usize>,
    /// Images per network call (default: one per CPU thread on the CPU engine, up to the
    /// pixels of eight 512² inputs; else 1).
    #[arg(long)]
    pub batch: Option<usize>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU threads for libtorch (default: libtorch's choice): from 1 to four per CPU
    /// thread of this machine (more only slows libtorch down, and it starts every one of
    /// them, which takes minutes for a mistyped 100000).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// fp32, or bf16: the 1×1 convolutions' products in bfloat16 with float32
    /// accumulation on CPUs with AVX512-BF16 (AMX when present); elsewhere fp32, with a
    /// note.
    #[arg(long, default_value = "fp32", value_name = "fp32|bf16")]
    pub precision: Precision,
    /// Detect large photos in tiles at native resolution: SIZE (tile side in original
    /// pixels, plus one whole-photo pass for large objects), off, or auto (tiles of the
    /// model's training crops for a model trained with `train --tile`, on photos more than
    /// twice that size).
    #[arg(long, default_value = "auto", value_name = "SIZE|auto|off")]
    pub tile: TileArg,
    /// Overlap of neighbouring tiles, as a fraction of the tile size (objects up to this
    /// fraction of a tile are always whole in some tile).
    #[arg(long, default_value_t = DEFAULT_TILE_OVERLAP, value_name = "F")]
    pub tile_overlap: f32,
    /// Test-time augmentation: off; flip (the photo and its mirror image, about 2× the
    /// time); flip-scales (also the photo at --tta-scales, about 5–6× the time on 4:3
    /// photos). The passes' candidates are pooled before NMS. A tiled photo gets the flip
    /// only (flip-scales with --tile SIZE is refused).
    #[arg(long, value_enum, default_value_t = TtaChoice::Off)]
    pub tta: TtaChoice,
    /// The two scales of --tta flip-scales: objects at these multiples of their usual size
    /// in the network input (below 1: a smaller letterbox, padded; above 1: overlapping
    /// windows of the photo), each in [0.5, 2] and not 1.
    #[arg(long, value_name = "S1,S2", value_delimiter = ',', requires = "tta")]
    pub tta_scales: Option<Vec<f32>>,
}

/// `--tta`: which test-time augmentation passes run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtaChoice {
    Off,
    Flip,
    FlipScales,
}

impl TtaChoice {
    /// The passes, with the default scales.
    pub fn tta(self) -> Tta {
        match self {
            TtaChoice::Off => Tta::Off,
            TtaChoice::Flip => Tta::Flip,
            TtaChoice::FlipScales => Tta::flip_scales(),
        }
    }
}

/// `--tile`: a tile size, `auto` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileArg {
    Auto,
    Off,
    Size(u32),
}

impl std::str::FromStr for TileArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" | "none" => Ok(Self::Off),
            n => match n.parse::<u32>() {
                Ok(v) if (32..=8192).contains(&v) => Ok(Self::Size(v)),
                _ => Err(format!(
                    "{s:?}: a tile size in pixels from 32 to 8192, auto or off"
                )),
            },
        }
    }
}

/// `--nms`: hard NMS or a Soft-NMS decay.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmsChoice {
    Hard,
    Linear,
    Gaussian,
}

/// The largest `--threads` accepted: four per CPU thread available to this process
/// ([`std::thread::available_parallelism`], 1 when unknown). libtorch starts every thread
/// asked for, so a huge count hangs for minutes, and more threads than CPUs only slow it.
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parses `--threads` (of `predict`, `eval --model` and `train`): a count from 1 to
/// [`max_threads`].
pub fn parse_threads(s: &str) -> Result<usize, String> {
    let max = max_threads();
    let cpus = max / 4;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "a number of threads from 1 to {max} (four per CPU thread; this machine has {cpus})"
        )),
    }
}

/// Detections kept per image by default (pycocotools' maxDets).
pub const DEFAULT_MAX_DET: usize = 100;

/// Detections kept per image by default when the labels are dense (more than
/// [`detlab::eval::DENSE_BOXES_PER_IMAGE`] boxes on one image).
pub const DENSE_MAX_DET: usize = 300;

impl DetectArgs {
    /// Post-processing settings (with `--batch`, or 1 until [`DetectArgs::batch_for`]).
    pub fn predict_config(&self) -> anyhow::Result<PredictConfig> {
        if !(self.score.is_finite() && (0.0..1.0).contains(&self.score)) {
            bail!("--score {} must be in [0, 1)", self.score);
        }
        if !(self.iou.is_finite() && self.iou > 0.0 && self.iou <= 1.0) {
            bail!("--iou {} must be in (0, 1]", self.iou);
        }
        if !(self.soft_nms_sigma.is_finite() && self.soft_nms_sigma > 0.0) {
            bail!("--soft-nms-sigma {} must be positive", self.soft_nms_sigma);
        }
        if !(self.tile_overlap.is_finite() && (0.0..=0.75).contains(&self.tile_overlap)) {
            bail!("--tile-overlap {} must be in [0, 0.75]", self.tile_overlap);
        }
        let tta = self.tta()?;
        Ok(PredictConfig {
            select: SelectConfig {
                score_threshold: self.score,
                iou_threshold: self.iou,
                class_agnostic: self.class_agnostic,
                nms: match self.nms {
                    NmsChoice::Hard => NmsMethod::Hard,
                    NmsChoice::Linear => NmsMethod::Linear,
                    NmsChoice::Gaussian => NmsMethod::Gaussian {
                        sigma: self.soft_nms_sigma,
                    },
                },
                max_detections: Some(self.max_det.unwrap_or(DEFAULT_MAX_DET)),
            },
            candidate_floor: None,
            top_k: None,
            batch_size: self.batch.unwrap_or(1).max(1),
            tiling: match self.tile {
                TileArg::Auto => Tiling::Auto,
                TileArg::Off => Tiling::Off,
                TileArg::Size(size) => Tiling::Tiles(TileParams {
                    overlap: self.tile_overlap,
                    ..TileParams::new(size)
                }),
            },
            tta,
        })
    }

    /// `--tta` with `--tta-scales`, checked (and against `--tile SIZE`).
    pub fn tta(&self) -> anyhow::Result<Tta> {
        let scales = match self.tta_scales.as_deref() {
            None => DEFAULT_TTA_SCALES,
            Some(&[a, b]) => [a, b],
            Some(other) => bail!("--tta-scales takes two scales, got {}", other.len()),
        };
        let tta = match self.tta {
            TtaChoice::Off | TtaChoice::Flip if self.tta_scales.is_some() => {
                bail!("--tta-scales needs --tta flip-scales")
            }
            TtaChoice::Off => Tta::Off,
            TtaChoice::Flip => Tta::Flip,
            TtaChoice::FlipScales => Tta::FlipScales(scales),
        };
        tta.validate()
            .map_err(|e| anyhow::anyhow!("--tta-scales: {e}"))?;
        if let (Tta::FlipScales(_), TileArg::Size(_)) = (tta, self.tile) {
            bail!(
                "--tta flip-scales cannot be combined with --tile SIZE: tiles and their \
                 whole-photo pass already see the photo at two scales; use --tta flip \
                 (tiles of the photo and of its mirror image) or --tile off"
            );
        }
        Ok(tta)
    }

    /// `--max-det`, else `default` (e.g. [`DENSE_MAX_DET`] for dense labels).
    pub fn max_det_or(&self, default: usize) -> usize {
        self.max_det.unwrap_or(default)
    }

    /// `--batch`, or the batch size that suits `det` ([`Detector::default_batch_size`]).
    pub fn batch_for(&self, det: &Detector) -> usize {
        self.batch
            .unwrap_or_else(|| det.default_batch_size())
            .max(1)
    }

    /// The model file to load: `--model`, else the shipped model (an error when neither
    /// exists).
    pub fn model_path(&self) -> anyhow::Result<PathBuf> {
        match self.model.clone().or_else(default_model_path) {
            Some(path) => Ok(path),
            None => bail!(
                "a model is needed: pass --model M.safetensors (the shipped {SHIPPED_MODEL} \
                 was not found in models/; make a model with `detlab train` or \
                 `detlab import-weights`)"
            ),
        }
    }

    /// Loads `--model`, else the shipped model (an error when neither exists).
    pub fn load_detector(&self) -> anyhow::Result<(PathBuf, Detector)> {
        let path = self.model_path()?;
        let options = DetectorOptions {
            device: self.device,
            threads: self.threads,
            fold_batchnorm: true,
            nhwc_engine: true,
            precision: self.precision,
        };
        let det = Detector::load(&path, &options)
            .with_context(|| format!("loading model {}", path.display()))?;
        if let Some(note) = det.precision_note() {
            eprintln!("note: {note}");
        }
        if let (TileArg::Auto, Some(t)) = (self.tile, det.meta().train_tile) {
            eprintln!(
                "note: the model was trained on {t}-pixel crops: photos over {} pixels are \
                 detected in {t}-pixel tiles (--tile off for whole photos)",
                detlab::detector::maths::tiling::AUTO_TILE_FACTOR * t
            );
            if matches!(self.tta, TtaChoice::FlipScales) {
                eprintln!(
                    "note: --tta flip-scales: the photos detected in tiles get the flip only"
                );
            }
        }
        Ok((path, det))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_from_one_to_four_per_cpu() {
        assert_eq!(parse_threads("1"), Ok(1));
        assert_eq!(parse_threads(&max_threads().to_string()), Ok(max_threads()));
        for bad in ["0", "100000", "-1", "x", &(max_threads() + 1).to_string()] {
            let e = parse_threads(bad).unwrap_err();
            assert!(e.contains("from 1 to"), "{e}");
        }
    }
}
