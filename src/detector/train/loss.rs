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
//! **Normalisation**: reference per image (class sum / `max(num_pos, 1)`, box sum /
//! `4·num_pos` or 0), then the batch mean; official over the batch (class sum /
//! `(Σ num_pos + 1)`, box sum / `4·(Σ num_pos + 1)`). Images without boxes therefore
//! train as pure negatives.

use tch::{Kind, Tensor};

use super::assign::Targets;
use super::config::{BoxLoss, LossParams, Normaliser};

/// The loss of a batch, as scalar tensors (`total = cls + box_loss`).
#[derive(Debug)]
pub struct LossParts {
    pub total: Tensor,
    pub cls: Tensor,
    pub box_loss: Tensor,
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
    let (cls, box_loss) = match params.normaliser {
        Normaliser::PerImage => {
            let cls = (cls_per_image / num_pos.clamp_min(1.0)).mean(Kind::Float);
            let per = box_per_image / (num_pos * 4.0).clamp_min(1.0);
            (cls, per.mean(Kind::Float))
        }
        Normaliser::BatchPlusOne => {
            let norm = num_pos.sum(Kind::Float) + 1.0;
            (
                cls_per_image.sum(Kind::Float) / &norm,
                box_per_image.sum(Kind::Float) / (norm * 4.0),
            )
        }
    };
    let box_loss = box_loss * params.box_weight;
    LossParts {
        total: &cls + &box_loss,
        cls,
        box_loss,
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
}
