//! [`Detector`]: a detlab model file loaded onto a device, ready to run on images.
//!
//! The pipeline per image is: EXIF-upright RGB → letterbox to the model's square input
//! (OpenCV-style bilinear, zero padding bottom/right, the model's normalisation) → the
//! network (batched, `no_grad`, eval mode) → `sigmoid` of the class logits → pre-NMS
//! [`Candidates`] (decoded with the anchors, clipped to the input) → score threshold, NMS,
//! cap → boxes mapped back to original-image pixels.

use std::path::Path;

use image::RgbImage;
use rayon::prelude::*;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::error::InferenceError;
use super::prediction::{ImagePrediction, PredictConfig};
use crate::detector::checkpoint::varstore::{from_varstore, load_into};
use crate::detector::checkpoint::{ModelArch, ModelFile, ModelMeta};
use crate::detector::maths::anchors::generate_anchors;
use crate::detector::maths::box_coding::{DeltaRows, YxyxRows};
use crate::detector::maths::letterbox::{letterbox_rgb, Letterbox};
use crate::detector::maths::postprocess::{to_original, Candidates, ImageOutputs};
use crate::detector::model::{
    EfficientDet, EfficientDetConfig, EfficientDetOutput, NhwcEfficientDet,
};
use crate::detector::precision::Precision;
use crate::detector::settings::DeviceChoice;

/// How to set a detector up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorOptions {
    pub device: DeviceChoice,
    /// libtorch intra-op CPU threads (process-wide); `None` leaves libtorch's setting.
    pub threads: Option<usize>,
    /// Fold BatchNorm into the convolutions (faster; same outputs to ~1e-5, but the
    /// weights can no longer be saved from this detector).
    pub fold_batchnorm: bool,
    /// With BatchNorm folded on the CPU, run the channels-last engine
    /// ([`NhwcEfficientDet`]) instead of libtorch's convolutions (same outputs to ~1e-5,
    /// about three times as fast on one thread).
    pub nhwc_engine: bool,
    /// The precision of the engine's matrix products; `Bf16` needs the channels-last
    /// engine and a CPU with AVX512-BF16, and falls back to `Fp32` (with
    /// [`Detector::precision_note`]) elsewhere.
    pub precision: Precision,
}

impl Default for DetectorOptions {
    /// Auto device, libtorch's threads, BatchNorm folded, the channels-last engine on
    /// the CPU.
    fn default() -> Self {
        Self {
            device: DeviceChoice::Auto,
            threads: None,
            fold_batchnorm: true,
            nhwc_engine: true,
            precision: Precision::Fp32,
        }
    }
}

/// One image per thread, at most the pixels of eight 512² inputs (at least one image).
fn engine_batch_size(threads: usize, input_size: u32) -> usize {
    let side = u64::from(input_size).max(1);
    let cap = (8 * 512 * 512 / (side * side)).max(1) as usize;
    threads.clamp(1, cap)
}

/// The network configuration a model file describes: its architecture's, with the file's
/// input size and anchor settings.
pub fn network_config(meta: &ModelMeta) -> Result<EfficientDetConfig, InferenceError> {
    let mut cfg = EfficientDetConfig::new(meta.arch)?;
    let anchors = meta.anchors.clone();
    if anchors.min_level != cfg.anchors.min_level || anchors.max_level != cfg.anchors.max_level {
        return Err(InferenceError::AnchorLayout {
            arch: format!(
                "{} (levels P{}–P{}, file says P{}–P{})",
                meta.arch,
                cfg.anchors.min_level,
                cfg.anchors.max_level,
                anchors.min_level,
                anchors.max_level
            ),
            got: anchors.anchors_per_location(),
            want: cfg.anchors_per_location(),
        });
    }
    cfg.anchors = anchors;
    cfg.input_size = i64::from(meta.input_size);
    Ok(cfg)
}

/// The exact `(name, shape)` list (sorted by name) of the `arch` network with
/// `num_classes` classes and the reference anchors: what a model file for it must hold.
pub fn expected_keys(
    arch: ModelArch,
    num_classes: usize,
) -> Result<Vec<(String, Vec<i64>)>, InferenceError> {
    if num_classes == 0 {
        return Err(InferenceError::NoClasses);
    }
    let cfg = EfficientDetConfig::new(arch)?;
    let vs = VarStore::new(Device::Cpu);
    let _net = EfficientDet::new(&vs.root(), &cfg, num_classes as i64)?;
    Ok(crate::detector::checkpoint::varstore::expected_keys(&vs))
}

impl EfficientDet {
    /// The network a model file describes (its architecture, input size, anchors and class
    /// count), built in `vs` with the file's weights: every weight's name and shape is
    /// checked against the network first, and a NaN or infinite weight is refused. `source` names the file in errors. The one way
    /// from a model file to a network, for [`Detector::load`] and training's
    /// `load_trained` alike.
    pub fn from_model_file(
        vs: &VarStore,
        file: &ModelFile,
        source: &Path,
    ) -> Result<Self, InferenceError> {
        if file.meta.class_names.is_empty() {
            return Err(InferenceError::NoClasses);
        }
        let cfg = network_config(&file.meta)?;
        let net = EfficientDet::new(&vs.root(), &cfg, file.meta.num_classes() as i64)?;
        let expected = crate::detector::checkpoint::varstore::expected_keys(vs);
        file.check_keys(&expected)
            .and_then(|()| file.check_finite())
            .map_err(|kind| InferenceError::ModelFileAt {
                path: source.to_path_buf(),
                kind,
            })?;
        load_into(vs, &file.tensors, false)?;
        Ok(net)
    }
}

/// A loaded EfficientDet with its metadata, on one device.
#[derive(Debug)]
pub struct Detector {
    meta: ModelMeta,
    vs: VarStore,
    net: EfficientDet,
    device: Device,
    /// Anchors `(y1, x1, y2, x2)` of the square network input.
    anchors: Vec<[f32; 4]>,
    folded: bool,
    /// Floating-point kind of the weights (inputs are converted to it).
    kind: Kind,
    /// The channels-last CPU engine, when it runs the network instead of `net`.
    engine: Option<NhwcEfficientDet>,
    /// The precision asked for (the engine's may be lower-capability: see
    /// [`Detector::precision`]).
    requested_precision: Precision,
}

impl Detector {
    /// Loads a detlab model file: checks its metadata, refuses partial files, checks every
    /// weight's name and shape against the network its metadata describes, and loads them.
    pub fn load(path: &Path, options: &DetectorOptions) -> Result<Self, InferenceError> {
        let file = ModelFile::read(path)?;
        Self::build(file.meta.clone(), Some(&file), path, options)
    }

    /// [`Detector::load`] on a model file already in memory.
    pub fn from_model_file(
        file: &ModelFile,
        options: &DetectorOptions,
    ) -> Result<Self, InferenceError> {
        Self::build(
            file.meta.clone(),
            Some(file),
            Path::new("<model in memory>"),
            options,
        )
    }

    /// A randomly initialised detector of `arch` (reference initialisation, class prior
    /// 0.01) for these classes, with the architecture's reference settings.
    pub fn fresh(
        arch: ModelArch,
        class_names: Vec<String>,
        options: &DetectorOptions,
    ) -> Result<Self, InferenceError> {
        Self::fresh_with_meta(ModelMeta::for_arch(arch, class_names), options)
    }

    /// A randomly initialised detector described by `meta` (e.g. another input size).
    pub fn fresh_with_meta(
        meta: ModelMeta,
        options: &DetectorOptions,
    ) -> Result<Self, InferenceError> {
        Self::build(meta, None, Path::new("<fresh model>"), options)
    }

    fn build(
        meta: ModelMeta,
        file: Option<&ModelFile>,
        source: &Path,
        options: &DetectorOptions,
    ) -> Result<Self, InferenceError> {
        if let Some(n) = options.threads {
            tch::set_num_threads(n.max(1) as i32);
        }
        if meta.partial && file.is_some() {
            return Err(InferenceError::Partial {
                path: source.to_path_buf(),
            });
        }
        if meta.class_names.is_empty() {
            return Err(InferenceError::NoClasses);
        }
        let cfg = network_config(&meta)?;
        let device = options.device.resolve()?;
        let vs = VarStore::new(device);
        let mut net = match file {
            Some(file) => EfficientDet::from_model_file(&vs, file, source)?,
            None => EfficientDet::new(&vs.root(), &cfg, meta.num_classes() as i64)?,
        };
        if options.fold_batchnorm {
            tch::no_grad(|| net.fold_batchnorm());
        }
        let size = meta.input_size as usize;
        let anchors = generate_anchors(&cfg.anchors, size, size)
            .map_err(crate::detector::model::ModelError::from)?
            .boxes
            .iter()
            .map(|a| a.to_array())
            .collect();
        let mut detector = Self {
            meta,
            vs,
            net,
            device,
            anchors,
            folded: options.fold_batchnorm,
            kind: Kind::Float,
            engine: None,
            requested_precision: options.precision,
        };
        if options.nhwc_engine && options.fold_batchnorm && device == Device::Cpu {
            detector.set_nhwc_engine(true)?;
        }
        Ok(detector)
    }

    /// The model's metadata (architecture, classes, input size, normalisation, anchors).
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Class names; a detection's `class_id` indexes this.
    pub fn class_names(&self) -> &[String] {
        &self.meta.class_names
    }

    /// The device the network runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Side of the square network input.
    pub fn input_size(&self) -> u32 {
        self.meta.input_size
    }

    /// Whether BatchNorm is folded into the convolutions.
    pub fn is_folded(&self) -> bool {
        self.folded
    }

    /// The network.
    pub fn network(&self) -> &EfficientDet {
        &self.net
    }

    /// Folds BatchNorm now (no-op when already folded).
    pub fn fold_batchnorm(&mut self) {
        if !self.folded {
            tch::no_grad(|| self.net.fold_batchnorm());
            self.folded = true;
        }
    }

    /// Whether the channels-last CPU engine runs the network.
    pub fn uses_nhwc_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// Images per network call that use this detector's hardware best: one per CPU thread
    /// with the channels-last engine (which runs the images of a batch side by side), else
    /// one. Capped at the pixels of eight 512² inputs, so that the maps held at once stay
    /// bounded on many-core machines (D4 at 1024: 2 images; D6 and up: 1).
    pub fn default_batch_size(&self) -> usize {
        if !self.uses_nhwc_engine() {
            return 1;
        }
        engine_batch_size(tch::get_num_threads().max(1) as usize, self.meta.input_size)
    }

    /// Switches the channels-last CPU engine on or off. It needs a float32 network on the
    /// CPU with BatchNorm folded ([`Detector::fold_batchnorm`]).
    pub fn set_nhwc_engine(&mut self, on: bool) -> Result<(), InferenceError> {
        self.engine = None;
        if on {
            if !self.folded || self.device != Device::Cpu || self.kind != Kind::Float {
                return Err(InferenceError::NhwcEngine);
            }
            let (precision, _) = self.requested_precision.effective();
            self.engine = Some(NhwcEfficientDet::new(&self.net, precision)?);
        }
        Ok(())
    }

    /// The precision the network runs in: [`Precision::Bf16`] only on the channels-last
    /// engine of a CPU with AVX512-BF16.
    pub fn precision(&self) -> Precision {
        self.engine
            .as_ref()
            .map_or(Precision::Fp32, NhwcEfficientDet::precision)
    }

    /// Why the precision asked for is not the one that runs (`None` when it is).
    pub fn precision_note(&self) -> Option<String> {
        if self.requested_precision == self.precision() {
            return None;
        }
        let (_, why) = self.requested_precision.effective();
        Some(match why {
            Some(why) => why.to_string(),
            None => format!(
                "{} runs on the channels-last CPU engine, which this detector does not use \
                 (device {:?}): running in fp32",
                self.requested_precision, self.device
            ),
        })
    }

    /// Asks for another precision (rebuilds the CPU engine when there is one); see
    /// [`Detector::precision`] and [`Detector::precision_note`] for what runs.
    pub fn set_precision(&mut self, precision: Precision) -> Result<(), InferenceError> {
        self.requested_precision = precision;
        if self.engine.is_some() && self.precision() != precision.effective().0 {
            self.set_nhwc_engine(true)?;
        }
        Ok(())
    }

    /// Converts the weights to `kind` (e.g. `Kind::Half` on a GPU); inputs are converted
    /// to it, outputs come back as `f32`. Only before BatchNorm folding.
    pub fn set_kind(&mut self, kind: Kind) -> Result<(), InferenceError> {
        if self.folded {
            return Err(InferenceError::Folded);
        }
        self.vs.set_kind(kind);
        self.kind = kind;
        Ok(())
    }

    /// The weights as a model file (for a fresh or fine-tuned detector). Fails once
    /// BatchNorm is folded (the folded weights live outside the VarStore).
    pub fn to_model_file(&self) -> Result<ModelFile, InferenceError> {
        if self.folded {
            return Err(InferenceError::Folded);
        }
        let mut meta = self.meta.clone();
        meta.partial = false;
        Ok(ModelFile {
            meta,
            tensors: from_varstore(&self.vs)?,
        })
    }

    /// Letterboxes and normalises one upright RGB image into the `[3, S, S]` network input.
    pub fn preprocess(&self, image: &RgbImage) -> (Vec<f32>, Letterbox) {
        letterbox_rgb(
            image.as_raw(),
            image.width(),
            image.height(),
            self.meta.input_size,
            &self.meta.normalization,
        )
    }

    /// The raw network outputs of a normalised `[B, 3, S, S]` batch (moved to the
    /// detector's device), under `no_grad` in eval mode. Class outputs are logits.
    pub fn forward(&self, xs: &Tensor) -> Result<EfficientDetOutput, InferenceError> {
        let s = i64::from(self.meta.input_size);
        let size = xs.size();
        if size.len() != 4 || size[0] < 1 || size[1] != 3 || size[2] != s || size[3] != s {
            return Err(InferenceError::InputShape {
                size: self.meta.input_size,
                got: size,
            });
        }
        let xs = xs.f_to_device(self.device)?.f_to_kind(self.kind)?;
        // libtorch reports errors inside the network's ops (out of memory, a bad kernel)
        // as panics of tch's infallible calls: they become this call's error.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &self.engine {
            Some(engine) => Ok(engine.forward(&xs)?),
            None => Ok(tch::no_grad(|| self.net.forward_t(&xs, false))),
        }));
        run.unwrap_or_else(|p| Err(InferenceError::Network(crate::task::panic_message(p))))
    }

    /// Pre-NMS candidates of each image of a normalised `[B, 3, S, S]` batch: every anchor
    /// whose best class probability is `> score_floor` (at most `top_k` per image), decoded
    /// and clipped to the input, by descending score.
    pub fn candidates(
        &self,
        xs: &Tensor,
        score_floor: f32,
        top_k: Option<usize>,
    ) -> Result<Vec<Candidates>, InferenceError> {
        let out = self.forward(xs)?;
        let batch = out.regression.size()[0] as usize;
        let flat = |t: Tensor| -> Result<Vec<f32>, InferenceError> {
            let t = t
                .f_to_kind(Kind::Float)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?
                .f_view([-1])?;
            Ok(Vec::<f32>::try_from(&t)?)
        };
        let regression = flat(out.regression)?;
        let scores = flat(tch::no_grad(|| out.classification.sigmoid()))?;
        let nc = self.meta.num_classes();
        let n = self.anchors.len();
        let (reg_per, cls_per) = (regression.len() / batch, scores.len() / batch);
        let s = self.meta.input_size;
        let anchors = &self.anchors[..n];
        (0..batch)
            .into_par_iter()
            .map(|b| {
                let reg = &regression[b * reg_per..(b + 1) * reg_per];
                let regression = DeltaRows::from_flat(reg).ok_or_else(|| {
                    crate::detector::maths::postprocess::ShapeError(format!(
                        "regression of {} values is not rows of 4",
                        reg.len()
                    ))
                })?;
                let outputs = ImageOutputs {
                    regression,
                    classification: &scores[b * cls_per..(b + 1) * cls_per],
                    num_classes: nc,
                    anchors: YxyxRows::new(anchors),
                    input_width: s,
                    input_height: s,
                };
                Ok(Candidates::from_outputs(&outputs, score_floor, top_k)?)
            })
            .collect()
    }

    /// [`Detector::candidates`] of letterboxed inputs (as [`letterbox_rgb`] makes them),
    /// run as one batch.
    fn candidates_of_inputs(
        &self,
        inputs: &[(Vec<f32>, Letterbox)],
        cfg: &PredictConfig,
    ) -> Result<Vec<Candidates>, InferenceError> {
        let s = i64::from(self.meta.input_size);
        let mut data = Vec::with_capacity(inputs.len() * 3 * (s * s) as usize);
        for (x, _) in inputs {
            data.extend_from_slice(x);
        }
        let xs = Tensor::f_from_slice(&data)?.f_view([inputs.len() as i64, 3, s, s])?;
        self.candidates(&xs, cfg.floor(), cfg.top_k)
    }

    /// Detects objects in upright RGB images, `cfg.batch_size` per network call; a photo
    /// that `cfg.tiling` cuts into tiles is detected on its own, its tiles batched
    /// ([`Detector::predict_tiled`]); with `cfg.tta` on, each photo is detected on its own,
    /// its passes batched ([`Detector::predict_tta`]).
    pub fn predict_images(
        &self,
        images: &[RgbImage],
        cfg: &PredictConfig,
    ) -> Result<Vec<ImagePrediction>, InferenceError> {
        if cfg.tta.is_on() {
            return images
                .iter()
                .map(|img| self.predict_tta(img, cfg))
                .collect();
        }
        let plans: Vec<_> = images
            .iter()
            .map(|img| self.tile_plan(img.width(), img.height(), cfg))
            .collect();
        if plans.iter().all(Option::is_none) {
            return self.predict_whole(images, cfg);
        }
        let mut out = Vec::with_capacity(images.len());
        for (img, plan) in images.iter().zip(plans) {
            match plan {
                Some(params) => out.push(self.predict_tiled(img, &params, cfg)?),
                None => out.extend(self.predict_whole(std::slice::from_ref(img), cfg)?),
            }
        }
        Ok(out)
    }

    /// Each image whole, letterboxed into the network input.
    fn predict_whole(
        &self,
        images: &[RgbImage],
        cfg: &PredictConfig,
    ) -> Result<Vec<ImagePrediction>, InferenceError> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(cfg.batch_size.max(1)) {
            let (size, norm) = (self.meta.input_size, self.meta.normalization);
            let inputs: Vec<(Vec<f32>, Letterbox)> = chunk
                .par_iter()
                .map(|img| letterbox_rgb(img.as_raw(), img.width(), img.height(), size, &norm))
                .collect();
            let candidates = self.candidates_of_inputs(&inputs, cfg)?;
            out.extend(candidates.into_iter().zip(inputs).zip(chunk).map(
                |((candidates, (_, letterbox)), img)| {
                    let detections = to_original(&candidates.select(&cfg.select), &letterbox);
                    ImagePrediction {
                        width: img.width(),
                        height: img.height(),
                        letterbox,
                        candidates,
                        detections,
                    }
                },
            ));
        }
        Ok(out)
    }
}

mod tiled;
mod tta;

#[cfg(test)]
mod tests;
