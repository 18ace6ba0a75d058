//! The graph builder and its layer primitives: convolutions with TF-"SAME" padding written
//! as explicit `pads`, activations, SAME max-pooling, nearest up-sampling with libtorch's
//! source indices, and the separable and 1×1 conv + BN blocks the network is made of.

use super::weights::{ConvParams, Weights};
use super::GraphError;
use crate::detector::model::config::Activation;
use crate::detector::onnx::graph::{Attr, GraphBuilder};

/// A feature map in the graph: its value name, channels and static spatial size.
#[derive(Clone, Debug)]
pub(super) struct Map {
    pub(super) name: String,
    pub(super) channels: usize,
    pub(super) h: i64,
    pub(super) w: i64,
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
pub(super) struct Builder<'a> {
    pub(super) g: GraphBuilder,
    pub(super) w: Weights<'a>,
    pub(super) parameters: usize,
    pub(super) relu6_bounds: Option<(String, String)>,
}

impl<'a> Builder<'a> {
    pub(super) fn conv(&mut self, x: &Map, p: ConvParams, stride: i64, groups: usize) -> Map {
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

    pub(super) fn act(&mut self, x: &Map, act: Activation) -> Map {
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

    pub(super) fn binary(&mut self, op: &str, a: &Map, b: &str) -> Map {
        let name = self.g.op(op, &[&a.name, b], vec![]);
        Map { name, ..a.clone() }
    }

    /// 1×1 conv + BN (`{prefix}.0.conv`, `{prefix}.1`).
    pub(super) fn conv_bn(&mut self, x: &Map, prefix: &str, out: usize) -> Result<Map, GraphError> {
        let mut c = self
            .w
            .conv(&format!("{prefix}.0.conv"), out, x.channels, 1, true)?;
        self.w.fold(&mut c, &format!("{prefix}.1"))?;
        Ok(self.conv(x, c, 1, 1))
    }

    /// Depthwise 3×3 → pointwise 1×1 (+ the BN at `bn`, folded) of a separable block.
    pub(super) fn separable(
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
    pub(super) fn downsample_to(&mut self, x: &Map, h: i64, w: i64) -> Map {
        let sh = (x.h - 1) / h.max(1) + 1;
        let sw = (x.w - 1) / w.max(1) + 1;
        self.max_pool(x, (sh + 1, sw + 1), (sh, sw))
    }

    /// Max-pool with TF-"SAME" padding, zero-filled like the reference.
    pub(super) fn max_pool(&mut self, x: &Map, (kh, kw): (i64, i64), (sh, sw): (i64, i64)) -> Map {
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
    pub(super) fn upsample_to(&mut self, x: &Map, h: i64, w: i64) -> Map {
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
