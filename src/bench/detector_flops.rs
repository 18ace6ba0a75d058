//! Analytic multiply-accumulate count of an EfficientDet forward pass (convolutions only,
//! the way `torch.utils.flop_counter` counts; BN, activations, pooling, resampling and
//! fusion are not counted). FLOPs = 2 × MACs.
//!
//! Per conv: `MACs = H_out · W_out · C_out · (C_in / groups) · k²`. Feature sizes follow
//! TF "SAME" stride-2 steps (`⌈f / 2⌉`), as in the network.

use detlab::detector::maths::anchors::feature_size;
use detlab::detector::model::EfficientDetConfig;

fn conv(h: usize, w: usize, c_in: i64, c_out: i64, k: i64, groups: i64) -> f64 {
    (h * w) as f64 * c_out as f64 * (c_in / groups) as f64 * (k * k) as f64
}

/// Separable conv (depthwise 3×3 + pointwise) at `h × w`.
fn separable(h: usize, w: usize, c_in: i64, c_out: i64) -> f64 {
    conv(h, w, c_in, c_in, 3, c_in) + conv(h, w, c_in, c_out, 1, 1)
}

/// MACs of one forward pass of `cfg` with `num_classes` classes at `height × width`.
pub fn efficientdet_macs(
    cfg: &EfficientDetConfig,
    num_classes: usize,
    height: usize,
    width: usize,
) -> f64 {
    let size = |level: u32| (feature_size(height, level), feature_size(width, level));
    // Backbone: stem (stride 2), MBConv blocks; the ImageNet head is not part of the detector.
    let mut macs = 0.0;
    let (mut h, mut w) = size(1);
    macs += conv(h, w, 3, cfg.backbone.stem_channels(), 3, 1);
    for b in cfg.backbone.blocks() {
        let hidden = b.input * b.expand_ratio;
        if b.expand_ratio != 1 {
            macs += conv(h, w, b.input, hidden, 1, 1);
        }
        if b.stride == 2 {
            h = h.div_ceil(2);
            w = w.div_ceil(2);
        }
        macs += conv(h, w, hidden, hidden, b.kernel, hidden);
        if let Some(ratio) = b.se_ratio {
            let squeezed = ((b.input as f64 * ratio) as i64).max(1);
            macs += conv(1, 1, hidden, squeezed, 1, 1) + conv(1, 1, squeezed, hidden, 1, 1);
        }
        macs += conv(h, w, hidden, b.output, 1, 1);
    }
    // BiFPN.
    let fpn = cfg.fpn_channels;
    let levels: Vec<u32> = (cfg.anchors.min_level..=cfg.anchors.max_level).collect();
    let [c3, c4, c5] = cfg.backbone.tap_channels();
    let (h3, w3) = size(3);
    let (h4, w4) = size(4);
    let (h5, w5) = size(5);
    macs += conv(h3, w3, c3, fpn, 1, 1)
        + 2.0 * conv(h4, w4, c4, fpn, 1, 1)
        + 3.0 * conv(h5, w5, c5, fpn, 1, 1); // p5_down_channel(_2) and p5_to_p6 (before the pool)
    let n = levels.len();
    let node_convs: f64 = levels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let (h, w) = size(l);
            // Top-down nodes on all but the top level, bottom-up nodes on all but P3.
            let nodes = usize::from(i + 1 < n) + usize::from(i > 0);
            nodes as f64 * separable(h, w, fpn, fpn)
        })
        .sum();
    macs += cfg.fpn_repeats as f64 * node_convs;
    // Heads: shared convs per level, then the header.
    let a = cfg.anchors_per_location() as i64;
    for &l in &levels {
        let (h, w) = size(l);
        for out in [4 * a, num_classes as i64 * a] {
            macs += cfg.head_repeats as f64 * separable(h, w, fpn, fpn) + separable(h, w, fpn, out);
        }
    }
    macs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d0_to_d3_match_the_measured_counts() {
        // Spec §1.6: torch.utils.flop_counter on 90-class models, in GMACs.
        for (n, want) in [(0u8, 2.49), (1, 6.00), (2, 10.83), (3, 24.57)] {
            let cfg = EfficientDetConfig::d(n).unwrap();
            let s = cfg.input_size as usize;
            let got = efficientdet_macs(&cfg, 90, s, s) / 1e9;
            assert!((got - want).abs() / want < 0.02, "d{n}: {got:.3} vs {want}");
        }
    }
}
