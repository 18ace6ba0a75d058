//! EfficientDet (D0–D7x, Lite0) as an ONNX graph, built straight from a detlab model
//! file's weights (no libtorch).
//!
//! The graph computes what `detlab predict` computes:
//!
//! 1. **Input**: an RGB batch at the model's input size (NCHW or NHWC, float32 pixel
//!    values 0–255 or uint8), letterboxed by the caller; cast, transposed to NCHW and
//!    normalised `(x / pixel_scale − mean) / std` inside the graph.
//! 2. **Network**: the backbone, BiFPN and heads of `detector::model`, with every
//!    BatchNorm folded into the convolution before it (in f64, then stored as f32) and
//!    TF-"SAME" padding written as explicit, possibly asymmetric, `pads` of each `Conv`
//!    (max-pools get an explicit zero `Pad`, as the reference pads with zeros). Nearest
//!    up-sampling is a `Gather` of rows and columns with libtorch's source indices, so
//!    any input size lines up exactly as in detlab. All spatial shapes are static; the
//!    batch is free unless fixed at export.
//! 3. **Decoding**: the anchors of the input size (the model file's anchor settings) are
//!    constants; regressions decode as `detector::maths::box_coding::decode` does, in the
//!    same f32 operation order, and are clipped to the input like `clip_to_input`.
//! 4. **Selection** (the `nms` variant): each anchor keeps only its best class (the first
//!    on ties), then ONNX `NonMaxSuppression` runs per class (or across classes) with
//!    `score > score_threshold` and IoU `> iou_threshold`, like detlab's
//!    `Candidates::select`; the kept boxes are ranked by score (`TopK`, lower anchor first
//!    on ties) and padded to `max_detections` per image. The `raw` variant stops after
//!    step 3 and returns every anchor's box and class probabilities.
//!
//! By concept: `weights` reads the file's tensors and folds the BatchNorms; `builder` holds
//! the layer primitives (convolution with SAME pads, pooling, up-sampling, activations);
//! `input` is step 1, `network` step 2 (backbone, BiFPN, heads), `outputs` steps 3 and 4.
//! This module assembles them ([`build_graph`]).

mod builder;
mod input;
mod network;
mod outputs;
mod weights;

use super::graph::{Dim, ElemType, GraphBuilder};
use super::options::{ExportOptions, Variant};
use crate::detector::checkpoint::ModelFile;
use crate::detector::maths::anchors::{generate_anchors, AnchorError};
use crate::detector::model::config::{ConfigError, EfficientDetConfig};
use builder::Builder;
use weights::Weights;

/// Names of the graph's inputs and outputs.
pub mod names {
    /// The image batch.
    pub const IMAGES: &str = "images";
    /// Boxes `(x1, y1, x2, y2)` in input pixels.
    pub const BOXES: &str = "boxes";
    /// Scores: `[B, max_det]` (`nms`) or class probabilities `[B, N, C]` (`raw`).
    pub const SCORES: &str = "scores";
    /// 0-based class ids `[B, max_det]`, −1 in padding rows (`nms`).
    pub const CLASS_IDS: &str = "class_ids";
    /// Detections per image `[B]` (`nms`).
    pub const NUM_DETECTIONS: &str = "num_detections";
}

/// Why a model file could not become a graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A weight the architecture needs is absent.
    #[error("weight `{0}` is missing")]
    Missing(String),
    /// A weight has another shape than the architecture needs.
    #[error("weight `{name}` has shape {got:?}; the network needs {want:?}")]
    Shape {
        /// The weight.
        name: String,
        /// Its shape in the file.
        got: Vec<usize>,
        /// The shape the network needs.
        want: Vec<usize>,
    },
    /// A weight is stored as integers.
    #[error("weight `{0}` is not a floating-point tensor")]
    NotFloat(String),
    /// The file holds tensors the architecture has no place for.
    #[error("{count} tensor(s) of the file are not part of this architecture's network (first: {first}): weights of another architecture or model?")]
    Unused {
        /// How many.
        count: usize,
        /// The first few names.
        first: String,
    },
    /// The architecture or the anchors in the metadata cannot be built.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The anchors of the metadata cannot be laid out.
    #[error("anchors: {0}")]
    Anchors(#[from] AnchorError),
    /// The model file's anchor levels are not the architecture's.
    #[error("the model file's anchors use levels P{got_min}–P{got_max}, the {arch} network P{want_min}–P{want_max}")]
    AnchorLevels {
        /// The architecture.
        arch: String,
        /// Levels in the file.
        got_min: u32,
        /// Levels in the file.
        got_max: u32,
        /// The architecture's levels.
        want_min: u32,
        /// The architecture's levels.
        want_max: u32,
    },
}

/// What was built, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphSummary {
    /// Anchors (rows of the raw outputs).
    pub anchors: usize,
    /// Nodes in the graph.
    pub nodes: usize,
    /// Float parameters stored (after BatchNorm folding).
    pub parameters: usize,
}

/// The network configuration a model file describes (its architecture's, with the file's
/// input size and anchors), as `detector::inference::network_config` derives it.
pub fn network_config(file: &ModelFile) -> Result<EfficientDetConfig, GraphError> {
    let meta = &file.meta;
    let mut cfg = EfficientDetConfig::new(meta.arch)?;
    let (want, got) = (&cfg.anchors, &meta.anchors);
    if (want.min_level, want.max_level) != (got.min_level, got.max_level) {
        return Err(GraphError::AnchorLevels {
            arch: meta.arch.to_string(),
            got_min: got.min_level,
            got_max: got.max_level,
            want_min: want.min_level,
            want_max: want.max_level,
        });
    }
    cfg.anchors = meta.anchors.clone();
    cfg.input_size = i64::from(meta.input_size);
    Ok(cfg)
}

/// Builds the whole graph of `file` (see the module documentation).
pub fn build_graph(
    file: &ModelFile,
    opts: &ExportOptions,
) -> Result<(super::proto::GraphProto, GraphSummary), GraphError> {
    let cfg = network_config(file)?;
    let size = file.meta.input_size as usize;
    let anchors: Vec<[f32; 4]> = generate_anchors(&cfg.anchors, size, size)?
        .boxes
        .iter()
        .map(|a| a.to_array())
        .collect();
    let num_classes = file.meta.num_classes();
    let mut b = Builder {
        g: GraphBuilder::new(),
        w: Weights::new(file),
        parameters: 0,
        relu6_bounds: None,
    };
    let batch = match opts.batch {
        Some(n) => Dim::Fixed(i64::from(n)),
        None => Dim::Named("batch".into()),
    };
    let x = b.input(file, opts, &batch);
    let taps = b.backbone(&x, &cfg)?;
    let mut features = taps.to_vec();
    for i in 0..cfg.fpn_repeats {
        features = b.bifpn_layer(i, &features, &cfg)?;
    }
    let regression = b.head("regressor", &features, &cfg, 4)?;
    let logits = b.head("classifier", &features, &cfg, num_classes)?;
    let boxes = b.decode(&regression, &anchors, size as f32);
    let n = anchors.len() as i64;
    match opts.variant {
        Variant::Raw => {
            b.g.op_into("Identity", &[&boxes], vec![], &[names::BOXES]);
            b.g.op_into("Sigmoid", &[&logits], vec![], &[names::SCORES]);
            b.g.output(
                names::BOXES,
                ElemType::Float,
                &[batch.clone(), Dim::Fixed(n), Dim::Fixed(4)],
            );
            let c = Dim::Fixed(num_classes as i64);
            b.g.output(
                names::SCORES,
                ElemType::Float,
                &[batch.clone(), Dim::Fixed(n), c],
            );
        }
        Variant::Nms => {
            let scores = b.g.op("Sigmoid", &[&logits], vec![]);
            b.select(&boxes, &scores, num_classes, anchors.len(), opts, &batch);
        }
    }
    b.w.check_all_used()?;
    let summary = GraphSummary {
        anchors: anchors.len(),
        nodes: b.g.node_count(),
        parameters: b.parameters,
    };
    let doc = format!(
        "detlab EfficientDet-{} ({} classes) at {size}×{size}",
        file.meta.arch, num_classes
    );
    Ok((
        b.g.finish(&format!("detlab-{}", file.meta.arch), &doc),
        summary,
    ))
}
