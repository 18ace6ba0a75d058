//! Step 2 of the graph: the network of `detector::model` — the EfficientNet backbone, the
//! BiFPN layers with their fusion nodes, and the regression and classification heads.

use super::builder::{Builder, Map};
use super::GraphError;
use crate::detector::model::config::{ConfigError, EfficientDetConfig, Fusion};
use crate::detector::onnx::graph::Attr;

/// ε of fast normalised fusion (`detector::model::bifpn::FUSION_EPS`).
const FUSION_EPS: f32 = 1e-4;

impl<'a> Builder<'a> {
    /// The EfficientNet backbone; returns C3, C4, C5.
    pub(super) fn backbone(
        &mut self,
        x: &Map,
        cfg: &EfficientDetConfig,
    ) -> Result<[Map; 3], GraphError> {
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

    /// A fusion node: weighted by `weights` (fast normalised fusion) or a plain sum, as
    /// the architecture fuses, then the activation.
    fn fuse(
        &mut self,
        inputs: &[&Map],
        weights: &str,
        cfg: &EfficientDetConfig,
    ) -> Result<Map, GraphError> {
        let scaled: Vec<Map> = if cfg.fusion == Fusion::FastAttention {
            let raw = self.w.get(weights, &[inputs.len()])?;
            let relu: Vec<f32> = raw.iter().map(|v| v.max(0.0)).collect();
            let total = relu.iter().sum::<f32>() + FUSION_EPS;
            let mut out = Vec::with_capacity(inputs.len());
            for (x, wi) in inputs.iter().zip(&relu) {
                let c = self.g.const_f32("fw", &[], &[wi / total]);
                out.push(self.binary("Mul", x, &c));
            }
            out
        } else {
            // The reference's BiFPN holds the fusion weights whatever its fusion (Lite0's
            // has none): a sum leaves them unread.
            self.w.known(weights);
            inputs.iter().map(|m| (*m).clone()).collect()
        };
        let mut sum = scaled[0].clone();
        for x in &scaled[1..] {
            sum = self.binary("Add", &sum, &x.name);
        }
        Ok(self.act(&sum, cfg.activation))
    }

    /// One BiFPN layer (`bifpn.{index}`); `inputs` are C3–C5 for the first, else P3–Pn.
    pub(super) fn bifpn_layer(
        &mut self,
        index: usize,
        inputs: &[Map],
        cfg: &EfficientDetConfig,
    ) -> Result<Vec<Map>, GraphError> {
        let p = format!("bifpn.{index}");
        let width = cfg.fpn_channels as usize;
        let n = cfg.num_levels();
        let max_level = 3 + n - 1;
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
            let fused = self.fuse(&[target, &upsampled], &wname, cfg)?;
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
            let fused = if level < max_level {
                self.fuse(&[lat, &up[i], &below], &wname, cfg)?
            } else {
                self.fuse(&[lat, &below], &wname, cfg)?
            };
            let conv = format!("{p}.conv{level}_down");
            outputs.push(self.separable(&fused, &conv, width, Some(&format!("{conv}.bn")))?);
        }
        Ok(outputs)
    }

    /// A head (`regressor` or `classifier`) over all levels: `[B, N, per_anchor]`.
    pub(super) fn head(
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
}
