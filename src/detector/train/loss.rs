//! The EfficientDet training loss: focal loss on class logits plus a weighted box loss.
//!
//! **Focal loss** (Lin et al.), per anchor `n` and class `c`, from the logit `x` and the
//! target `t ∈ {0, 1}`, computed in log space so that it is finite for any logit:
//!
//! ```text
//! log p = log σ(x),  log(1 − p) = log σ(−x)
//! bce   = −[t·log p + (1 − t)·log(1 − p)]
//! 1 − p_t = t·σ(−x) + (1 − t)·σ(x)
//! α_t   = t·α + (1 − t)·(1 − α)
//! FL    = α_t · (1 − p_t)^γ · bce
//! ```
//!
//! Ignored anchors (the reference preset's IoU band) contribute nothing. The reference
//! port clamps probabilities to `[1e-4, 1 − 1e-4]` instead; from logits no clamp is needed.
//!
//! **Box loss** on positive anchors only, `d = prediction − target` per coordinate:
//! smooth-L1 `0.5·d²/β` (`|d| ≤ β`) else `|d| − 0.5·β` with β = 1/9 (reference), or Huber
//! `0.5·d²` (`|d| ≤ δ`) else `δ·(|d| − 0.5·δ)` with δ = 0.1 (official); times 50.
//!
//! **GIoU term** (optional, [`LossParams::giou_weight`] > 0; Rezatofighi et al. 2019) on
//! positive anchors only: the predicted deltas are decoded against their anchors as
//! inference decodes them ([`decode_boxes`]; `dh`, `dw` clamped to ≤ ln(1000/16) first so
//! that `exp` cannot overflow) into the box `A`, the target deltas into the ground truth `B`
//! (as encoded, sides ≥ 1 px), and with `C` the smallest box enclosing both:
//!
//! ```text
//! IoU  = |A ∩ B| / |A ∪ B|
//! GIoU = IoU − |C \ (A ∪ B)| / |C|        ∈ (−1, 1]
//! loss = 1 − GIoU                         ∈ [0, 2)
//! ```
//!
//! It is 0 for a perfect box and, unlike IoU, still has a gradient for disjoint boxes. It
//! scores the box in pixels, as AP75 does, where the Huber term scores the encoded deltas.
//! Denominators are clamped to ≥ 1e-7, so degenerate (zero-area) boxes stay finite.
//!
//! **Normalisation**: reference per image (class sum / `max(num_pos, 1)`, box sum /
//! `4·num_pos` or 0), then the batch mean; official over the batch (class sum /
//! `(Σ num_pos + 1)`, box sum / `4·(Σ num_pos + 1)`). Images without boxes therefore
//! train as pure negatives. The GIoU term (one value per positive, not four) is normalised
//! by `num_pos` where the box term has `4·num_pos`, then multiplied by its weight.

use tch::{Kind, Tensor};

use super::assign::{corners, decode_boxes, Targets};
use super::config::{BoxLoss, LossParams, Normaliser};

/// The loss of a batch, as scalar tensors (`total = cls + box_loss + giou`).
#[derive(Debug)]
pub struct LossParts {
    pub total: Tensor,
    pub cls: Tensor,
    /// The preset's box term (smooth-L1 or Huber on the deltas), weighted.
    pub box_loss: Tensor,
    /// The GIoU term, weighted; a zero scalar when [`LossParams::giou_weight`] is 0.
    pub giou: Tensor,
}

/// Upper clamp of `dh`, `dw` before the GIoU term decodes them: ln(1000/16), mmdetection's
/// `wh_ratio_clip` (a box at most 62.5 × its anchor), far beyond any real box.
pub const GIOU_MAX_LOG_SCALE: f64 = 4.135_166_556_742_356;

/// Element-wise GIoU of boxes `a` and `b` (`[.., 4]` `(x1, y1, x2, y2)`, broadcasting) —
/// see the module docs. Negative sides count as 0; denominators are clamped to ≥ 1e-7.
pub fn giou(a: &Tensor, b: &Tensor) -> Tensor {
    const EPS: f64 = 1e-7;
    let [ax1, ay1, ax2, ay2] = corners(a);
    let [bx1, by1, bx2, by2] = corners(b);
    let area_a = (&ax2 - &ax1).clamp_min(0.0) * (&ay2 - &ay1).clamp_min(0.0);
    let area_b = (&bx2 - &bx1).clamp_min(0.0) * (&by2 - &by1).clamp_min(0.0);
    let iw = (ax2.minimum(&bx2) - ax1.maximum(&bx1)).clamp_min(0.0);
    let ih = (ay2.minimum(&by2) - ay1.maximum(&by1)).clamp_min(0.0);
    let inter = iw * ih;
    let union = area_a + area_b - &inter;
    let cw = (ax2.maximum(&bx2) - ax1.minimum(&bx1)).clamp_min(0.0);
    let ch = (ay2.maximum(&by2) - ay1.minimum(&by1)).clamp_min(0.0);
    let hull = cw * ch;
    let iou = inter / union.clamp_min(EPS);
    iou - (&hull - &union) / hull.clamp_min(EPS)
}

/// Per-image sums `[B]` of `1 − GIoU` over the positive anchors (`pos`, `[B, N, 1]` bool).
fn giou_per_image(regression: &Tensor, targets: &Targets, pos: &Tensor) -> Tensor {
    // Non-positive rows are zeroed before decoding: their (possibly huge) deltas never
    // reach `exp`, and they get exactly no gradient.
    let zeros = regression.zeros_like();
    let reg = regression.where_self(pos, &zeros);
    let (centre, scale) = (reg.narrow(-1, 0, 2), reg.narrow(-1, 2, 2));
    let reg = Tensor::cat(&[centre, scale.clamp_max(GIOU_MAX_LOG_SCALE)], -1);
    let anchors = targets.anchors.unsqueeze(0);
    let pred = decode_boxes(&anchors, &reg);
    let target = decode_boxes(&anchors, &targets.boxes.where_self(pos, &zeros));
    let loss = (-giou(&pred, &target) + 1.0) * pos.squeeze_dim(-1).to_kind(Kind::Float);
    loss.sum_dim_intlist(-1, false, Kind::Float)
}

/// Element-wise focal loss of `logits` against `targets` (same shape).
pub fn focal_loss(logits: &Tensor, targets: &Tensor, gamma: f64, alpha: f64) -> Tensor {
    let t = targets;
    let one_minus_t = t.ones_like() - t;
    let log_p = logits.log_sigmoid();
    let log_1mp = (-logits).log_sigmoid();
    let bce = -(t * &log_p + &one_minus_t * &log_1mp);
    let one_minus_pt = t * (-logits).sigmoid() + &one_minus_t * logits.sigmoid();
    let alpha_t = t * alpha + &one_minus_t * (1.0 - alpha);
    alpha_t * one_minus_pt.pow_tensor_scalar(gamma) * bce
}

/// Element-wise box loss of the difference `d`.
pub fn box_loss_elementwise(d: &Tensor, kind: BoxLoss) -> Tensor {
    let a = d.abs();
    match kind {
        BoxLoss::SmoothL1 { beta } => {
            let quad = d.square() * (0.5 / beta);
            let lin = &a - 0.5 * beta;
            quad.where_self(&a.le(beta), &lin)
        }
        BoxLoss::Huber { delta } => {
            let quad = d.square() * 0.5;
            let lin = (&a - 0.5 * delta) * delta;
            quad.where_self(&a.le(delta), &lin)
        }
    }
}

/// The loss of class logits `[B, N, C]` and box regressions `[B, N, 4]` against `targets`.
pub fn detection_loss(
    cls_logits: &Tensor,
    regression: &Tensor,
    targets: &Targets,
    params: &LossParams,
) -> LossParts {
    let cls_logits = cls_logits.to_kind(Kind::Float);
    let regression = regression.to_kind(Kind::Float);
    let fl = focal_loss(&cls_logits, &targets.cls, params.gamma, params.alpha);
    let cls_per_image = (fl.sum_dim_intlist(-1, false, Kind::Float) * &targets.cls_mask)
        .sum_dim_intlist(-1, false, Kind::Float); // [B]
    let pos = targets.positive.unsqueeze(-1);
    let d = (&regression - &targets.boxes).where_self(&pos, &regression.zeros_like());
    let box_per_image = (box_loss_elementwise(&d, params.box_loss) * pos.to_kind(Kind::Float))
        .sum_dim_intlist([1, 2].as_slice(), false, Kind::Float); // [B]
    let num_pos = &targets.num_pos;
    let giou_on = params.giou_weight > 0.0;
    let giou_sum = giou_on.then(|| giou_per_image(&regression, targets, &pos));
    let (cls, box_loss, giou) = match params.normaliser {
        Normaliser::PerImage => {
            let cls = (cls_per_image / num_pos.clamp_min(1.0)).mean(Kind::Float);
            let per = box_per_image / (num_pos * 4.0).clamp_min(1.0);
            let giou = giou_sum.map(|g| (g / num_pos.clamp_min(1.0)).mean(Kind::Float));
            (cls, per.mean(Kind::Float), giou)
        }
        Normaliser::BatchPlusOne => {
            let norm = num_pos.sum(Kind::Float) + 1.0;
            let giou = giou_sum.map(|g| g.sum(Kind::Float) / &norm);
            (
                cls_per_image.sum(Kind::Float) / &norm,
                box_per_image.sum(Kind::Float) / (norm * 4.0),
                giou,
            )
        }
    };
    let box_loss = box_loss * params.box_weight;
    match giou {
        // Off: the preset's loss, computed exactly as without the option.
        None => LossParts {
            total: &cls + &box_loss,
            giou: cls.zeros_like(),
            cls,
            box_loss,
        },
        Some(g) => {
            let giou = g * params.giou_weight;
            LossParts {
                total: &cls + &box_loss + &giou,
                cls,
                box_loss,
                giou,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::train::assign::{assign, pad_ground_truth};
    use crate::detector::train::config::LossPreset;
    use tch::Device;

    fn scalar(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn focal_loss_by_hand() {
        let x = Tensor::from_slice(&[0f32, 0., 2., -3., 200., -200.]);
        let t = Tensor::from_slice(&[1f32, 0., 1., 0., 0., 1.]);
        let v = Vec::<f32>::try_from(focal_loss(&x, &t, 2.0, 0.25)).unwrap();
        let ln2 = std::f64::consts::LN_2;
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let want = [
            0.25 * 0.25 * ln2,
            0.75 * 0.25 * ln2,
            0.25 * (1.0 - sig(2.0)).powi(2) * -(sig(2.0).ln()),
            0.75 * sig(-3.0).powi(2) * -((1.0 - sig(-3.0)).ln()),
            0.75 * 1.0 * 200.0, // confidently wrong: finite, ≈ 0.75·x
            0.25 * 1.0 * 200.0,
        ];
        for (a, b) in v.iter().zip(want) {
            assert!(
                ((*a as f64) - b).abs() < 1e-4 * b.max(1.0),
                "{v:?} vs {want:?}"
            );
        }
        // γ = 1.5 on a single value.
        let one = focal_loss(
            &Tensor::from_slice(&[1f32]),
            &Tensor::from_slice(&[1f32]),
            1.5,
            0.25,
        );
        let want = 0.25 * (1.0 - sig(1.0)).powf(1.5) * -(sig(1.0).ln());
        assert!((scalar(&one.sum(Kind::Float)) - want).abs() < 1e-6);
    }

    #[test]
    fn box_losses_by_hand() {
        let d = Tensor::from_slice(&[0.05f32, -0.5, 0.1]);
        let s = Vec::<f32>::try_from(box_loss_elementwise(
            &d,
            BoxLoss::SmoothL1 { beta: 1.0 / 9.0 },
        ))
        .unwrap();
        let want = [0.5 * 9.0 * 0.0025, 0.5 - 0.5 / 9.0, 0.5 * 9.0 * 0.01];
        for (a, b) in s.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{s:?}");
        }
        let h =
            Vec::<f32>::try_from(box_loss_elementwise(&d, BoxLoss::Huber { delta: 0.1 })).unwrap();
        let want = [0.5 * 0.0025, 0.1 * (0.5 - 0.05), 0.5 * 0.01];
        for (a, b) in h.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{h:?}");
        }
    }

    #[test]
    fn whole_loss_by_hand_and_negatives_only_images() {
        // Two anchors; image 0 has one GT equal to anchor 0, image 1 none.
        let anchors = Tensor::from_slice(&[0f32, 0., 10., 10., 50., 50., 60., 60.]).view([2, 4]);
        let (g, c) = pad_ground_truth(
            &[vec![[0., 0., 10., 10.]], vec![]],
            &[vec![0], vec![]],
            Device::Cpu,
        );
        let logits = Tensor::zeros([2, 2, 1], (Kind::Float, Device::Cpu));
        let reg = Tensor::full([2, 2, 4], 0.5, (Kind::Float, Device::Cpu));
        let ln2 = std::f64::consts::LN_2;
        let (pos, neg) = (0.0625 * ln2, 0.1875 * ln2);
        let r = LossPreset::Reference.params();
        let t = assign(&anchors, &g, &c, 1, &r);
        let l = detection_loss(&logits, &reg, &t, &r);
        // Image 0: (pos + neg) / 1; image 1: 2·neg / 1 (not normalised); mean.
        assert!((scalar(&l.cls) - ((pos + neg) + 2.0 * neg) / 2.0).abs() < 1e-6);
        // Target of the matching anchor is 0, d = 0.5: smooth-L1 = 0.5 − 0.5/9 each; mean
        // over 4 coordinates; image 1 contributes 0; ×50.
        let sl1 = 0.5 - 0.5 / 9.0;
        assert!((scalar(&l.box_loss) - 50.0 * sl1 / 2.0).abs() < 1e-4);
        let o = LossPreset::Official.params();
        let t = assign(&anchors, &g, &c, 1, &o);
        let l = detection_loss(&logits, &reg, &t, &o);
        let fl15 = |a: f64| a * 0.5f64.powf(1.5) * ln2;
        assert!((scalar(&l.cls) - (fl15(0.25) + 3.0 * fl15(0.75)) / 2.0).abs() < 1e-6);
        let hub = 0.1 * (0.5 - 0.05);
        assert!((scalar(&l.box_loss) - 50.0 * 4.0 * hub / 8.0).abs() < 1e-5);
        assert!((scalar(&l.total) - scalar(&l.cls) - scalar(&l.box_loss)).abs() < 1e-6);
    }

    fn giou_of(a: [f32; 4], b: [f32; 4]) -> f64 {
        scalar(&giou(&Tensor::from_slice(&a), &Tensor::from_slice(&b)))
    }

    #[test]
    fn giou_of_boxes_by_hand() {
        // Identical: GIoU 1, loss 0.
        assert_eq!(giou_of([0., 0., 1., 1.], [0., 0., 1., 1.]), 1.0);
        assert_eq!(giou_of([3., 4., 10., 7.5], [3., 4., 10., 7.5]), 1.0);
        // Disjoint: IoU 0, union 2, hull (0,0,3,1) area 3 → 0 − 1/3.
        let g = giou_of([0., 0., 1., 1.], [2., 0., 3., 1.]);
        assert!((g + 1.0 / 3.0).abs() < 1e-7, "{g}");
        // Half overlap side by side: inter 1, union 3, hull = union → 1/3.
        let g = giou_of([0., 0., 2., 1.], [1., 0., 3., 1.]);
        assert!((g - 1.0 / 3.0).abs() < 1e-7, "{g}");
        // Diagonal overlap: inter 1, union 7, hull 9 → 1/7 − 2/9 = −5/63.
        let g = giou_of([0., 0., 2., 2.], [1., 1., 3., 3.]);
        assert!((g + 5.0 / 63.0).abs() < 1e-7, "{g}");
        // Symmetric, and broadcasting over rows.
        let a = Tensor::from_slice(&[0f32, 0., 1., 1., 0., 0., 2., 1.]).view([2, 4]);
        let b = Tensor::from_slice(&[2f32, 0., 3., 1.]);
        let v = Vec::<f32>::try_from(giou(&b, &a)).unwrap();
        assert!((f64::from(v[0]) + 1.0 / 3.0).abs() < 1e-7, "{v:?}");
        assert!((f64::from(v[1]) - 0.0).abs() < 1e-7, "{v:?}");
    }

    /// A zero-area prediction (a point, a line, or a point on a point) has a finite GIoU
    /// and a finite gradient.
    #[test]
    fn giou_gradient_is_finite_for_degenerate_boxes() {
        for (p, g) in [
            ([5f32, 5., 5., 5.], [0f32, 0., 10., 10.]),
            ([2., 3., 8., 3.], [0., 0., 10., 10.]),
            ([20., 20., 20., 20.], [0., 0., 10., 10.]),
            ([4., 4., 4., 4.], [4., 4., 4., 4.]),
        ] {
            let pred = Tensor::from_slice(&p).set_requires_grad(true);
            let v = giou(&pred, &Tensor::from_slice(&g));
            assert!(scalar(&v).is_finite(), "{p:?} {g:?}");
            v.backward();
            let grad = Vec::<f32>::try_from(pred.grad()).unwrap();
            assert!(grad.iter().all(|x| x.is_finite()), "{p:?}: {grad:?}");
        }
    }

    /// The two-anchor batch of `whole_loss_by_hand_and_negatives_only_images`.
    fn two_anchor_batch(params: &LossParams) -> (Targets, Tensor) {
        let anchors = Tensor::from_slice(&[0f32, 0., 10., 10., 50., 50., 60., 60.]).view([2, 4]);
        let (g, c) = pad_ground_truth(
            &[vec![[0., 0., 10., 10.]], vec![]],
            &[vec![0], vec![]],
            Device::Cpu,
        );
        (
            assign(&anchors, &g, &c, 1, params),
            Tensor::zeros([2, 2, 1], (Kind::Float, Device::Cpu)),
        )
    }

    /// The GIoU term by hand on the positive anchor; non-positive anchors add nothing and
    /// get no gradient, however wild their regression; the other terms do not change.
    #[test]
    fn giou_term_by_hand_and_only_on_positives() {
        // Anchor 0 (centre 5, 5, side 10) with deltas 0.5: centre 10, side 10·e^0.5.
        let s = 10.0 * 0.5f64.exp();
        let (lo, hi) = (10.0 - s / 2.0, 10.0 + s / 2.0);
        let inter = (10.0 - lo).powi(2);
        let union = s * s + 100.0 - inter;
        let hull = hi * hi;
        let want = 1.0 - (inter / union - (hull - union) / hull);
        for preset in [LossPreset::Official, LossPreset::Reference] {
            let off = preset.params();
            let on = LossParams {
                giou_weight: 2.0,
                ..off
            };
            let (t, logits) = two_anchor_batch(&on);
            // Image 0: anchor 0 positive with deltas 0.5, anchor 1 negative and absurd;
            // image 1 (no boxes): absurd everywhere.
            let reg = Tensor::from_slice(&[
                0.5f32, 0.5, 0.5, 0.5, 1e3, -1e3, 1e3, 1e3, 1e3, 1e3, 1e3, 1e3, -1e3, 1e3, 1e3,
                -1e3,
            ])
            .view([2, 2, 4])
            .set_requires_grad(true);
            let l = detection_loss(&logits, &reg, &t, &on);
            // One positive in the batch: official (1 − GIoU) / (1 + 1), reference the mean
            // over the two images of (1 − GIoU) / 1 and 0.
            assert!(
                (scalar(&l.giou) - 2.0 * want / 2.0).abs() < 1e-5,
                "{preset}: {} vs {want}",
                scalar(&l.giou)
            );
            l.giou.backward();
            let grad = Vec::<f32>::try_from(reg.grad().flatten(0, -1)).unwrap();
            assert!(
                grad[..4].iter().all(|g| g.is_finite() && *g != 0.0),
                "{grad:?}"
            );
            assert!(grad[4..].iter().all(|&g| g == 0.0), "{grad:?}");
            // The class and box terms are those of the preset without GIoU.
            let reg = reg.detach();
            let base = detection_loss(&logits, &reg, &t, &off);
            let with = detection_loss(&logits, &reg, &t, &on);
            assert_eq!(scalar(&base.cls), scalar(&with.cls));
            assert_eq!(scalar(&base.box_loss), scalar(&with.box_loss));
            let sum = scalar(&with.cls) + scalar(&with.box_loss) + scalar(&with.giou);
            assert!((scalar(&with.total) - sum).abs() < 1e-6);
        }
    }

    /// A huge negative size delta (a zero-area decoded box) and a huge positive one
    /// (clamped before `exp`) leave the loss and its gradient finite.
    #[test]
    fn giou_term_is_finite_for_extreme_deltas() {
        let on = LossParams {
            giou_weight: 1.0,
            ..LossPreset::Official.params()
        };
        let (t, logits) = two_anchor_batch(&on);
        for (dh, dw) in [(-200f32, -200f32), (200., 200.), (-200., 200.)] {
            let mut row = vec![0f32; 16];
            row[2] = dh;
            row[3] = dw;
            let reg = Tensor::from_slice(&row)
                .view([2, 2, 4])
                .set_requires_grad(true);
            let l = detection_loss(&logits, &reg, &t, &on);
            assert!(scalar(&l.total).is_finite(), "{dh} {dw}");
            l.total.backward();
            let grad = Vec::<f32>::try_from(reg.grad().flatten(0, -1)).unwrap();
            assert!(grad.iter().all(|g| g.is_finite()), "{dh} {dw}: {grad:?}");
        }
    }

    /// With the GIoU weight 0 (every preset's, the default run's) the loss is the
    /// preset's exactly: the GIoU part is 0 and the total is `cls + box` bit for bit.
    #[test]
    fn giou_off_leaves_the_loss_unchanged() {
        for preset in [LossPreset::Official, LossPreset::Reference] {
            let off = preset.params();
            assert_eq!(off.giou_weight, 0.0);
            let default_run = crate::detector::train::TrainConfig {
                loss: preset,
                ..Default::default()
            };
            assert_eq!(default_run.loss_params(), off);
            let (t, logits) = two_anchor_batch(&off);
            let reg = Tensor::full([2, 2, 4], 0.5, (Kind::Float, Device::Cpu));
            let l = detection_loss(&logits, &reg, &t, &off);
            assert_eq!(scalar(&l.giou), 0.0);
            let old_total = &l.cls + &l.box_loss;
            assert_eq!(scalar(&l.total).to_bits(), scalar(&old_total).to_bits());
        }
    }
}
