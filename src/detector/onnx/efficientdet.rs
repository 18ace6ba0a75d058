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

use std::collections::HashMap;

use super::graph::{tensor_f32, Attr, Dim, ElemType, GraphBuilder};
use super::options::{ExportOptions, InputDtype, Layout, Variant};
use crate::detector::checkpoint::{CheckpointTensor, ModelFile};
use crate::detector::maths::anchors::{generate_anchors, AnchorError};
use crate::detector::model::config::{Activation, ConfigError, EfficientDetConfig, Fusion};

/// ε of every BatchNorm (`detector::model::norm::BN_EPS`).
const BN_EPS: f64 = 1e-3;
/// ε of fast normalised fusion (`detector::model::bifpn::FUSION_EPS`).
const FUSION_EPS: f32 = 1e-4;

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

/// A convolution's parameters: `[out, in / groups, k, k]` weights and `[out]` biases.
struct ConvParams {
    weight: Vec<f32>,
    bias: Vec<f32>,
    out: usize,
    in_per_group: usize,
    kernel: usize,
}

/// The model file's tensors by name, read with the shapes the network expects.
struct Weights<'a> {
    by_name: HashMap<&'a str, &'a CheckpointTensor>,
}

impl<'a> Weights<'a> {
    fn new(file: &'a ModelFile) -> Self {
        Self {
            by_name: file.tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
        }
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, GraphError> {
        let t = self
            .by_name
            .get(name)
            .ok_or_else(|| GraphError::Missing(name.to_string()))?;
        if t.shape != shape {
            return Err(GraphError::Shape {
                name: name.to_string(),
                got: t.shape.clone(),
                want: shape.to_vec(),
            });
        }
        if !t.dtype.is_float() {
            return Err(GraphError::NotFloat(name.to_string()));
        }
        Ok(t.to_f32())
    }

    /// `{prefix}.weight` `[out, in_per_group, k, k]` and, with `bias`, `{prefix}.bias`.
    fn conv(
        &self,
        prefix: &str,
        out: usize,
        in_per_group: usize,
        kernel: usize,
        bias: bool,
    ) -> Result<ConvParams, GraphError> {
        let weight = self.get(
            &format!("{prefix}.weight"),
            &[out, in_per_group, kernel, kernel],
        )?;
        let bias = if bias {
            self.get(&format!("{prefix}.bias"), &[out])?
        } else {
            vec![0.0; out]
        };
        Ok(ConvParams {
            weight,
            bias,
            out,
            in_per_group,
            kernel,
        })
    }

    /// Folds the eval-mode BatchNorm at `bn` (which follows `conv`) into `conv`:
    /// `w′ = w·γ/√(σ²+ε)`, `b′ = (b − μ)·γ/√(σ²+ε) + β`, computed in f64.
    fn fold(&self, conv: &mut ConvParams, bn: &str) -> Result<(), GraphError> {
        let n = [conv.out];
        let gamma = self.get(&format!("{bn}.weight"), &n)?;
        let beta = self.get(&format!("{bn}.bias"), &n)?;
        let mean = self.get(&format!("{bn}.running_mean"), &n)?;
        let var = self.get(&format!("{bn}.running_var"), &n)?;
        let per_out = conv.in_per_group * conv.kernel * conv.kernel;
        for o in 0..conv.out {
            let scale = f64::from(gamma[o]) / (f64::from(var[o]) + BN_EPS).sqrt();
            for w in &mut conv.weight[o * per_out..(o + 1) * per_out] {
                *w = (f64::from(*w) * scale) as f32;
            }
            let b = (f64::from(conv.bias[o]) - f64::from(mean[o])) * scale + f64::from(beta[o]);
            conv.bias[o] = b as f32;
        }
        Ok(())
    }
}

/// A feature map in the graph: its value name, channels and static spatial size.
#[derive(Clone, Debug)]
struct Map {
    name: String,
    channels: usize,
    h: i64,
    w: i64,
}

/// TF-"SAME" padding `(before, after)` of one axis (`detector::model::same_pad`).
fn same_padding(input: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (input + stride - 1) / stride;
    let total = ((out - 1) * stride + kernel - input).max(0);
    (total / 2, total - total / 2)
}

/// Source rows of libtorch's `upsample_nearest2d` from `input` to `output` rows.
fn nearest_indices(input: i64, output: i64) -> Vec<i64> {
    if output == 2 * input {
        return (0..output).map(|d| d >> 1).collect();
    }
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|d| ((d as f32 * scale).floor() as i64).min(input - 1))
        .collect()
}

/// Builds the graph, one layer at a time.
struct Builder<'a> {
    g: GraphBuilder,
    w: Weights<'a>,
    parameters: usize,
    relu6_bounds: Option<(String, String)>,
}

impl<'a> Builder<'a> {
    fn conv(&mut self, x: &Map, p: ConvParams, stride: i64, groups: usize) -> Map {
        let k = p.kernel as i64;
        let (top, bottom) = same_padding(x.h, k, stride);
        let (left, right) = same_padding(x.w, k, stride);
        self.parameters += p.weight.len() + p.bias.len();
        let dims = [p.out as i64, p.in_per_group as i64, k, k];
        let wname = self.g.const_f32("w", &dims, &p.weight);
        let bname = self.g.const_f32("b", &[p.out as i64], &p.bias);
        let name = self.g.op(
            "Conv",
            &[&x.name, &wname, &bname],
            vec![
                ("kernel_shape", Attr::Ints(vec![k, k])),
                ("strides", Attr::Ints(vec![stride, stride])),
                ("pads", Attr::Ints(vec![top, left, bottom, right])),
                ("group", Attr::Int(groups as i64)),
                ("dilations", Attr::Ints(vec![1, 1])),
            ],
        );
        Map {
            name,
            channels: p.out,
            h: (x.h + stride - 1) / stride,
            w: (x.w + stride - 1) / stride,
        }
    }

    fn act(&mut self, x: &Map, act: Activation) -> Map {
        let name = match act {
            Activation::Swish => {
                let s = self.g.op("Sigmoid", &[&x.name], vec![]);
                self.g.op("Mul", &[&x.name, &s], vec![])
            }
            Activation::Relu6 => {
                let (lo, hi) = match &self.relu6_bounds {
                    Some(b) => b.clone(),
                    None => {
                        let b = (
                            self.g.const_f32("zero", &[], &[0.0]),
                            self.g.const_f32("six", &[], &[6.0]),
                        );
                        self.relu6_bounds = Some(b.clone());
                        b
                    }
                };
                self.g.op("Clip", &[&x.name, &lo, &hi], vec![])
            }
        };
        Map { name, ..x.clone() }
    }

    fn binary(&mut self, op: &str, a: &Map, b: &str) -> Map {
        let name = self.g.op(op, &[&a.name, b], vec![]);
        Map { name, ..a.clone() }
    }

    /// The EfficientNet backbone; returns C3, C4, C5.
    fn backbone(&mut self, x: &Map, cfg: &EfficientDetConfig) -> Result<[Map; 3], GraphError> {
        let bb = &cfg.backbone;
        let act = bb.activation();
        let p = "backbone_net.model";
        let stem_c = bb.stem_channels() as usize;
        let mut stem = self
            .w
            .conv(&format!("{p}._conv_stem.conv"), stem_c, 3, 3, false)?;
        self.w.fold(&mut stem, &format!("{p}._bn0"))?;
        let stem = self.conv(x, stem, 2, 1);
        let mut x = self.act(&stem, act);
        let blocks = bb.blocks();
        let n = blocks.len();
        // The input of every stride-2 block but the first, and the last block's output
        // (`EfficientNet::new`); the last three are C3, C4, C5.
        let mut taps: Vec<usize> = (1..n)
            .filter(|&i| blocks[i].stride == 2)
            .map(|i| i - 1)
            .collect();
        taps.push(n - 1);
        let taps = &taps[taps.len().saturating_sub(3)..];
        let mut out = Vec::with_capacity(3);
        for (i, b) in blocks.iter().enumerate() {
            let q = format!("{p}._blocks.{i}");
            let input = x.clone();
            let (cin, cout) = (b.input as usize, b.output as usize);
            let hidden = cin * b.expand_ratio as usize;
            if b.expand_ratio != 1 {
                let mut e =
                    self.w
                        .conv(&format!("{q}._expand_conv.conv"), hidden, cin, 1, false)?;
                self.w.fold(&mut e, &format!("{q}._bn0"))?;
                let y = self.conv(&x, e, 1, 1);
                x = self.act(&y, act);
            }
            let k = b.kernel as usize;
            let mut dw = self
                .w
                .conv(&format!("{q}._depthwise_conv.conv"), hidden, 1, k, false)?;
            self.w.fold(&mut dw, &format!("{q}._bn1"))?;
            let y = self.conv(&x, dw, b.stride, hidden);
            x = self.act(&y, act);
            if let Some(ratio) = b.se_ratio {
                let squeezed = ((cin as f64 * ratio) as usize).max(1);
                let pooled = self.g.op("GlobalAveragePool", &[&x.name], vec![]);
                let pooled = Map {
                    name: pooled,
                    channels: hidden,
                    h: 1,
                    w: 1,
                };
                let r = self
                    .w
                    .conv(&format!("{q}._se_reduce.conv"), squeezed, hidden, 1, true)?;
                let s = self.conv(&pooled, r, 1, 1);
                let s = self.act(&s, act);
                let e = self
                    .w
                    .conv(&format!("{q}._se_expand.conv"), hidden, squeezed, 1, true)?;
                let s = self.conv(&s, e, 1, 1);
                let gate = self.g.op("Sigmoid", &[&s.name], vec![]);
                x = self.binary("Mul", &x, &gate);
            }
            let mut pr = self
                .w
                .conv(&format!("{q}._project_conv.conv"), cout, hidden, 1, false)?;
            self.w.fold(&mut pr, &format!("{q}._bn2"))?;
            x = self.conv(&x, pr, 1, 1);
            if b.stride == 1 && b.input == b.output {
                x = self.binary("Add", &input, &x.name);
            }
            if taps.contains(&i) {
                out.push(x.clone());
            }
        }
        let [c3, c4, c5]: [Map; 3] = out
            .try_into()
            .map_err(|_| GraphError::Config(ConfigError::UnknownBackbone(bb.name.clone())))?;
        Ok([c3, c4, c5])
    }

    /// 1×1 conv + BN (`{prefix}.0.conv`, `{prefix}.1`).
    fn conv_bn(&mut self, x: &Map, prefix: &str, out: usize) -> Result<Map, GraphError> {
        let mut c = self
            .w
            .conv(&format!("{prefix}.0.conv"), out, x.channels, 1, true)?;
        self.w.fold(&mut c, &format!("{prefix}.1"))?;
        Ok(self.conv(x, c, 1, 1))
    }

    /// Depthwise 3×3 → pointwise 1×1 (+ the BN at `bn`, folded) of a separable block.
    fn separable(
        &mut self,
        x: &Map,
        prefix: &str,
        out: usize,
        bn: Option<&str>,
    ) -> Result<Map, GraphError> {
        let c = x.channels;
        let dw = self
            .w
            .conv(&format!("{prefix}.depthwise_conv.conv"), c, 1, 3, false)?;
        let y = self.conv(x, dw, 1, c);
        let mut pw = self
            .w
            .conv(&format!("{prefix}.pointwise_conv.conv"), out, c, 1, true)?;
        if let Some(bn) = bn {
            self.w.fold(&mut pw, bn)?;
        }
        Ok(self.conv(&y, pw, 1, 1))
    }

    /// SAME max-pool of `x` down to `(h, w)` (`layers::downsample_to`: stride
    /// `(in − 1) / out + 1`, kernel stride + 1 per axis).
    fn downsample_to(&mut self, x: &Map, h: i64, w: i64) -> Map {
        let sh = (x.h - 1) / h.max(1) + 1;
        let sw = (x.w - 1) / w.max(1) + 1;
        self.max_pool(x, (sh + 1, sw + 1), (sh, sw))
    }

    /// Max-pool with TF-"SAME" padding, zero-filled like the reference.
    fn max_pool(&mut self, x: &Map, (kh, kw): (i64, i64), (sh, sw): (i64, i64)) -> Map {
        let (top, bottom) = same_padding(x.h, kh, sh);
        let (left, right) = same_padding(x.w, kw, sw);
        let input = if top + bottom + left + right > 0 {
            let pads = self
                .g
                .const_i64("pads", &[8], &[0, 0, top, left, 0, 0, bottom, right]);
            self.g.op("Pad", &[&x.name, &pads], vec![])
        } else {
            x.name.clone()
        };
        let name = self.g.op(
            "MaxPool",
            &[&input],
            vec![
                ("kernel_shape", Attr::Ints(vec![kh, kw])),
                ("strides", Attr::Ints(vec![sh, sw])),
            ],
        );
        Map {
            name,
            channels: x.channels,
            h: (x.h + top + bottom - kh) / sh + 1,
            w: (x.w + left + right - kw) / sw + 1,
        }
    }

    /// Nearest up-sampling of `x` to exactly `(h, w)` (libtorch's source indices).
    fn upsample_to(&mut self, x: &Map, h: i64, w: i64) -> Map {
        if (x.h, x.w) == (h, w) {
            return x.clone();
        }
        let rows = self.g.const_i64("rows", &[h], &nearest_indices(x.h, h));
        let cols = self.g.const_i64("cols", &[w], &nearest_indices(x.w, w));
        let y = self
            .g
            .op("Gather", &[&x.name, &rows], vec![("axis", Attr::Int(2))]);
        let name = self
            .g
            .op("Gather", &[&y, &cols], vec![("axis", Attr::Int(3))]);
        Map {
            name,
            channels: x.channels,
            h,
            w,
        }
    }

    /// A fusion node: weighted (fast normalised) or plain sum, then the activation.
    fn fuse(
        &mut self,
        inputs: &[&Map],
        weights: Option<&str>,
        cfg: &EfficientDetConfig,
    ) -> Result<Map, GraphError> {
        let scaled: Vec<Map> = match (cfg.fusion, weights) {
            (Fusion::FastAttention, Some(name)) => {
                let raw = self.w.get(name, &[inputs.len()])?;
                let relu: Vec<f32> = raw.iter().map(|v| v.max(0.0)).collect();
                let total = relu.iter().sum::<f32>() + FUSION_EPS;
                let mut out = Vec::with_capacity(inputs.len());
                for (x, wi) in inputs.iter().zip(&relu) {
                    let c = self.g.const_f32("fw", &[], &[wi / total]);
                    out.push(self.binary("Mul", x, &c));
                }
                out
            }
            _ => inputs.iter().map(|m| (*m).clone()).collect(),
        };
        let mut sum = scaled[0].clone();
        for x in &scaled[1..] {
            sum = self.binary("Add", &sum, &x.name);
        }
        Ok(self.act(&sum, cfg.activation))
    }

    /// One BiFPN layer (`bifpn.{index}`); `inputs` are C3–C5 for the first, else P3–Pn.
    fn bifpn_layer(
        &mut self,
        index: usize,
        inputs: &[Map],
        cfg: &EfficientDetConfig,
    ) -> Result<Vec<Map>, GraphError> {
        let p = format!("bifpn.{index}");
        let width = cfg.fpn_channels as usize;
        let n = cfg.num_levels();
        let max_level = 3 + n - 1;
        let fast = cfg.fusion == Fusion::FastAttention;
        let (lateral, second) = if index == 0 {
            let (c3, c4, c5) = (&inputs[0], &inputs[1], &inputs[2]);
            let mut lat = vec![
                self.conv_bn(c3, &format!("{p}.p3_down_channel"), width)?,
                self.conv_bn(c4, &format!("{p}.p4_down_channel"), width)?,
                self.conv_bn(c5, &format!("{p}.p5_down_channel"), width)?,
            ];
            let p6 = self.conv_bn(c5, &format!("{p}.p5_to_p6"), width)?;
            // `SameMaxPool2d::DOWN2`: 3×3, stride 2.
            let mut top = self.max_pool(&p6, (3, 3), (2, 2));
            while lat.len() < n - 1 {
                let next = self.max_pool(&top, (3, 3), (2, 2));
                lat.push(top);
                top = next;
            }
            lat.push(top);
            let second = [
                self.conv_bn(c4, &format!("{p}.p4_down_channel_2"), width)?,
                self.conv_bn(c5, &format!("{p}.p5_down_channel_2"), width)?,
            ];
            (lat, Some(second))
        } else {
            (inputs.to_vec(), None)
        };

        // Top-down: levels n−1 … 3.
        let mut up: Vec<Option<Map>> = vec![None; n - 1];
        let mut above = lateral[n - 1].clone();
        for i in (0..n - 1).rev() {
            let level = i + 3;
            let target = &lateral[i];
            let upsampled = self.upsample_to(&above, target.h, target.w);
            let wname = format!("{p}.p{level}_w1");
            let fused = self.fuse(&[target, &upsampled], fast.then_some(wname.as_str()), cfg)?;
            let conv = format!("{p}.conv{level}_up");
            let out = self.separable(&fused, &conv, width, Some(&format!("{conv}.bn")))?;
            above = out.clone();
            up[i] = Some(out);
        }
        let up: Vec<Map> = up.into_iter().flatten().collect();

        // Bottom-up: levels 4 … n.
        let mut outputs = vec![up[0].clone()];
        for i in 1..n {
            let level = i + 3;
            let target = &lateral[i];
            let below = self.downsample_to(&outputs[i - 1], target.h, target.w);
            let lat = match (&second, i) {
                (Some(s), 1) => &s[0],
                (Some(s), 2) => &s[1],
                _ => &lateral[i],
            };
            let wname = format!("{p}.p{level}_w2");
            let weights = fast.then_some(wname.as_str());
            let fused = if level < max_level {
                self.fuse(&[lat, &up[i], &below], weights, cfg)?
            } else {
                self.fuse(&[lat, &below], weights, cfg)?
            };
            let conv = format!("{p}.conv{level}_down");
            outputs.push(self.separable(&fused, &conv, width, Some(&format!("{conv}.bn")))?);
        }
        Ok(outputs)
    }

    /// A head (`regressor` or `classifier`) over all levels: `[B, N, per_anchor]`.
    fn head(
        &mut self,
        name: &str,
        features: &[Map],
        cfg: &EfficientDetConfig,
        per_anchor: usize,
    ) -> Result<String, GraphError> {
        let width = cfg.fpn_channels as usize;
        let anchors = cfg.anchors_per_location();
        let shape = self.g.const_i64("shape", &[3], &[0, -1, per_anchor as i64]);
        let mut levels = Vec::with_capacity(features.len());
        for (level, feature) in features.iter().enumerate() {
            let mut x = feature.clone();
            for i in 0..cfg.head_repeats {
                let bn = format!("{name}.bn_list.{level}.{i}");
                let y = self.separable(&x, &format!("{name}.conv_list.{i}"), width, Some(&bn))?;
                x = self.act(&y, cfg.activation);
            }
            let y = self.separable(&x, &format!("{name}.header"), anchors * per_anchor, None)?;
            let t = self.g.op(
                "Transpose",
                &[&y.name],
                vec![("perm", Attr::Ints(vec![0, 2, 3, 1]))],
            );
            levels.push(self.g.op("Reshape", &[&t, &shape], vec![]));
        }
        let refs: Vec<&str> = levels.iter().map(String::as_str).collect();
        Ok(self.g.op("Concat", &refs, vec![("axis", Attr::Int(1))]))
    }

    /// The image input: cast, NCHW, normalised.
    fn input(&mut self, file: &ModelFile, opts: &ExportOptions, batch: &Dim) -> Map {
        let s = i64::from(file.meta.input_size);
        let elem = match opts.input_dtype {
            InputDtype::Float32 => ElemType::Float,
            InputDtype::Uint8 => ElemType::Uint8,
        };
        let dims = match opts.layout {
            Layout::Nchw => [batch.clone(), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)],
            Layout::Nhwc => [batch.clone(), Dim::Fixed(s), Dim::Fixed(s), Dim::Fixed(3)],
        };
        self.g.input(names::IMAGES, elem, &dims);
        let mut x = names::IMAGES.to_string();
        if opts.input_dtype == InputDtype::Uint8 {
            x = self.g.op(
                "Cast",
                &[&x],
                vec![("to", Attr::Int(ElemType::Float.code().into()))],
            );
        }
        if opts.layout == Layout::Nhwc {
            x = self.g.op(
                "Transpose",
                &[&x],
                vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
            );
        }
        let norm = file.meta.normalization;
        if norm.pixel_scale != 1.0 {
            let ps = self.g.const_f32("pixel_scale", &[], &[norm.pixel_scale]);
            x = self.g.op("Div", &[&x, &ps], vec![]);
        }
        let mean = self.g.const_f32("mean", &[1, 3, 1, 1], &norm.mean);
        x = self.g.op("Sub", &[&x, &mean], vec![]);
        let std = self.g.const_f32("std", &[1, 3, 1, 1], &norm.std);
        x = self.g.op("Div", &[&x, &std], vec![]);
        Map {
            name: x,
            channels: 3,
            h: s,
            w: s,
        }
    }

    /// Decoded, clipped `[B, N, 4]` boxes `(x1, y1, x2, y2)` from `[B, N, 4]` regressions.
    fn decode(&mut self, regression: &str, anchors: &[[f32; 4]], size: f32) -> String {
        let n = anchors.len() as i64;
        // Per anchor, in the f32 order of `box_coding::decode`.
        let col = |f: &dyn Fn(&[f32; 4]) -> f32| anchors.iter().map(f).collect::<Vec<f32>>();
        let cya = col(&|a| (a[0] + a[2]) / 2.0);
        let cxa = col(&|a| (a[1] + a[3]) / 2.0);
        let ha = col(&|a| a[2] - a[0]);
        let wa = col(&|a| a[3] - a[1]);
        let mut konst = |hint: &str, v: &[f32]| self.g.const_f32(hint, &[n, 1], v);
        let (cya, cxa, ha, wa) = (
            konst("anchor_cy", &cya),
            konst("anchor_cx", &cxa),
            konst("anchor_h", &ha),
            konst("anchor_w", &wa),
        );
        let axes = self.g.const_i64("axes", &[1], &[2]);
        let mut part = |k: i64| {
            let start = self.g.const_i64("start", &[1], &[k]);
            let end = self.g.const_i64("end", &[1], &[k + 1]);
            self.g
                .op("Slice", &[regression, &start, &end, &axes], vec![])
        };
        let (dy, dx, dh, dw) = (part(0), part(1), part(2), part(3));
        let ew = self.g.op("Exp", &[&dw], vec![]);
        let w = self.g.op("Mul", &[&ew, &wa], vec![]);
        let eh = self.g.op("Exp", &[&dh], vec![]);
        let h = self.g.op("Mul", &[&eh, &ha], vec![]);
        let ty = self.g.op("Mul", &[&dy, &ha], vec![]);
        let cy = self.g.op("Add", &[&ty, &cya], vec![]);
        let tx = self.g.op("Mul", &[&dx, &wa], vec![]);
        let cx = self.g.op("Add", &[&tx, &cxa], vec![]);
        let two = self.g.const_f32("two", &[], &[2.0]);
        let half_w = self.g.op("Div", &[&w, &two], vec![]);
        let half_h = self.g.op("Div", &[&h, &two], vec![]);
        let zero = self.g.const_f32("zero", &[], &[0.0]);
        let last = self.g.const_f32("last", &[], &[size - 1.0]);
        let x1 = self.g.op("Sub", &[&cx, &half_w], vec![]);
        let x1 = self.g.op("Max", &[&x1, &zero], vec![]);
        let y1 = self.g.op("Sub", &[&cy, &half_h], vec![]);
        let y1 = self.g.op("Max", &[&y1, &zero], vec![]);
        let x2 = self.g.op("Add", &[&cx, &half_w], vec![]);
        let x2 = self.g.op("Min", &[&x2, &last], vec![]);
        let y2 = self.g.op("Add", &[&cy, &half_h], vec![]);
        let y2 = self.g.op("Min", &[&y2, &last], vec![]);
        self.g.op(
            "Concat",
            &[&x1, &y1, &x2, &y2],
            vec![("axis", Attr::Int(2))],
        )
    }

    /// NMS and per-image ranking into padded `[B, max_det]` outputs.
    fn select(
        &mut self,
        boxes: &str,
        scores: &str,
        num_classes: usize,
        num_anchors: usize,
        opts: &ExportOptions,
        batch: &Dim,
    ) {
        let g = &mut self.g;
        let max_det = opts.max_detections.min(num_anchors) as i64;
        let best = g.op(
            "ArgMax",
            &[scores],
            vec![("axis", Attr::Int(2)), ("keepdims", Attr::Int(0))],
        );
        let nms_scores = if opts.class_agnostic {
            let axes = g.const_i64("axes", &[1], &[2]);
            let top = g.op(
                "ReduceMax",
                &[scores, &axes],
                vec![("keepdims", Attr::Int(1))],
            );
            g.op(
                "Transpose",
                &[&top],
                vec![("perm", Attr::Ints(vec![0, 2, 1]))],
            )
        } else {
            // Only each anchor's best class competes (as in `Candidates::from_outputs`).
            let best_k = g.op(
                "ArgMax",
                &[scores],
                vec![("axis", Attr::Int(2)), ("keepdims", Attr::Int(1))],
            );
            let classes: Vec<i64> = (0..num_classes as i64).collect();
            let range = g.const_i64("classes", &[num_classes as i64], &classes);
            let is_best = g.op("Equal", &[&best_k, &range], vec![]);
            let minus_one = g.const_f32("minus_one", &[], &[-1.0]);
            let masked = g.op("Where", &[&is_best, scores, &minus_one], vec![]);
            g.op(
                "Transpose",
                &[&masked],
                vec![("perm", Attr::Ints(vec![0, 2, 1]))],
            )
        };
        let score_threshold = g.const_f32("score_threshold", &[], &[opts.score_threshold]);
        let iou_threshold = g.const_f32("iou_threshold", &[], &[opts.iou_threshold]);
        let max_out = g.const_i64("max_per_class", &[1], &[max_det]);
        let selected = g.op(
            "NonMaxSuppression",
            &[
                boxes,
                &nms_scores,
                &max_out,
                &iou_threshold,
                &score_threshold,
            ],
            vec![("center_point_box", Attr::Int(0))],
        );
        // Scores of the kept boxes scattered back over the anchors: [B, classes, N].
        let shape = g.op("Shape", &[&nms_scores], vec![]);
        let zero = Box::new(tensor_f32("value", &[1], &[0.0]));
        let zeros = g.op(
            "ConstantOfShape",
            &[&shape],
            vec![("value", Attr::Tensor(zero))],
        );
        let kept_scores = g.op("GatherND", &[&nms_scores, &selected], vec![]);
        let kept = g.op("ScatterND", &[&zeros, &selected, &kept_scores], vec![]);
        let axes1 = g.const_i64("axes", &[1], &[1]);
        let kept = g.op(
            "ReduceMax",
            &[&kept, &axes1],
            vec![("keepdims", Attr::Int(0))],
        );
        let k = g.const_i64("k", &[1], &[max_det]);
        let top = g.op_n(
            "TopK",
            &[&kept, &k],
            vec![
                ("axis", Attr::Int(1)),
                ("largest", Attr::Int(1)),
                ("sorted", Attr::Int(1)),
            ],
            2,
        );
        let (values, indices) = (&top[0], &top[1]);
        let axes2 = g.const_i64("axes", &[1], &[2]);
        let idx3 = g.op("Unsqueeze", &[indices, &axes2], vec![]);
        let det_boxes = g.op(
            "GatherND",
            &[boxes, &idx3],
            vec![("batch_dims", Attr::Int(1))],
        );
        let det_classes = g.op(
            "GatherElements",
            &[&best, indices],
            vec![("axis", Attr::Int(1))],
        );
        let fzero = g.const_f32("zero", &[], &[0.0]);
        let valid = g.op("Greater", &[values, &fzero], vec![]);
        let valid3 = g.op("Unsqueeze", &[&valid, &axes2], vec![]);
        g.op_into(
            "Where",
            &[&valid3, &det_boxes, &fzero],
            vec![],
            &[names::BOXES],
        );
        g.op_into("Identity", &[values], vec![], &[names::SCORES]);
        let none = g.const_i64("none", &[], &[-1]);
        g.op_into(
            "Where",
            &[&valid, &det_classes, &none],
            vec![],
            &[names::CLASS_IDS],
        );
        let count = g.op(
            "Cast",
            &[&valid],
            vec![("to", Attr::Int(ElemType::Int64.code().into()))],
        );
        g.op_into(
            "ReduceSum",
            &[&count, &axes1],
            vec![("keepdims", Attr::Int(0))],
            &[names::NUM_DETECTIONS],
        );
        let k = Dim::Fixed(max_det);
        g.output(
            names::BOXES,
            ElemType::Float,
            &[batch.clone(), k.clone(), Dim::Fixed(4)],
        );
        g.output(names::SCORES, ElemType::Float, &[batch.clone(), k.clone()]);
        g.output(names::CLASS_IDS, ElemType::Int64, &[batch.clone(), k]);
        g.output(
            names::NUM_DETECTIONS,
            ElemType::Int64,
            std::slice::from_ref(batch),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same_padding(512, 3, 2), (0, 1));
        assert_eq!(same_padding(5, 3, 2), (1, 1));
        assert_eq!(same_padding(64, 5, 2), (1, 2));
        assert_eq!(same_padding(64, 3, 1), (1, 1));
        assert_eq!(same_padding(64, 1, 1), (0, 0));
    }

    #[test]
    fn nearest_indices_follow_libtorch() {
        assert_eq!(nearest_indices(2, 4), [0, 0, 1, 1]);
        assert_eq!(nearest_indices(3, 5), [0, 0, 1, 1, 2]);
        assert_eq!(nearest_indices(5, 10), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }
}
