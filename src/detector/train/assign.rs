//! Anchor ↔ ground-truth assignment, vectorised over the whole batch in tch.
//!
//! For every image `b`, anchor `n` (`y1, x1, y2, x2`) and ground truth `m` (`x1, y1, x2, y2`,
//! network-input pixels) the IoU is `inter / max(union, 1e-8)`; padded ground-truth rows
//! (class `−1`) get IoU `−1`, so an image without boxes has only negatives. With
//! `IoU_max(n) = max_m IoU(n, m)` and `m*(n)` its argmax:
//! * **reference**: positive if `IoU_max ≥ 0.5`, negative if `IoU_max < 0.4`, ignored in
//!   between; a ground truth whose best IoU is below 0.5 gets no anchor.
//! * **official**: positive if `IoU_max ≥ 0.5`, otherwise negative; in addition every
//!   ground truth claims its best anchor (`argmax_n IoU(n, m)`) as a positive, even below
//!   0.5 (automl's `force_match_for_each_row`).
//!
//! A positive anchor's class target is the one-hot class of `m*(n)`; its box target is
//! `(dy, dx, dh, dw) = ((gcy − acy)/ah, (gcx − acx)/aw, log(gh/ah), log(gw/aw))` with the
//! ground-truth width and height clamped to ≥ 1 px after its centre is taken (the same
//! coding as [`crate::detector::maths::box_coding::encode`]).

use tch::{Device, Kind, Tensor};

use super::config::LossParams;

/// Per-anchor training targets of a batch.
#[derive(Debug)]
pub struct Targets {
    /// One-hot class targets `[B, N, C]` (zero rows for negatives and ignored anchors).
    pub cls: Tensor,
    /// `[B, N]` float: 1 for anchors that count in the class loss, 0 for ignored ones.
    pub cls_mask: Tensor,
    /// `[B, N]` bool: positive anchors.
    pub positive: Tensor,
    /// `[B, N, 4]` box targets `(dy, dx, dh, dw)` (meaningful where `positive`).
    pub boxes: Tensor,
    /// `[B]` float: positives per image.
    pub num_pos: Tensor,
    /// `[N, 4]` the anchors (`y1, x1, y2, x2`) the box targets are relative to, for
    /// decoding predictions ([`decode_boxes`]).
    pub anchors: Tensor,
}

/// Pads per-image boxes `(x1, y1, x2, y2)` and classes to `[B, M, 4]` and `[B, M]`
/// (`M ≥ 1`; padding rows have class `−1`).
pub fn pad_ground_truth(
    boxes: &[Vec<[f32; 4]>],
    classes: &[Vec<i64>],
    device: Device,
) -> (Tensor, Tensor) {
    let b = boxes.len();
    let m = boxes.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat = vec![0f32; b * m * 4];
    let mut cls = vec![-1i64; b * m];
    for (i, (bs, cs)) in boxes.iter().zip(classes).enumerate() {
        for (j, (bx, &c)) in bs.iter().zip(cs).enumerate() {
            flat[(i * m + j) * 4..(i * m + j + 1) * 4].copy_from_slice(bx);
            cls[i * m + j] = c;
        }
    }
    (
        Tensor::from_slice(&flat)
            .view([b as i64, m as i64, 4])
            .to_device(device),
        Tensor::from_slice(&cls)
            .view([b as i64, m as i64])
            .to_device(device),
    )
}

/// IoU of every anchor with every ground truth: `[B, N, M]`; `−1` for padding rows.
pub fn iou_matrix(anchors_yxyx: &Tensor, gt_xyxy: &Tensor, gt_classes: &Tensor) -> Tensor {
    let a = anchors_yxyx.unsqueeze(0).unsqueeze(2); // [1, N, 1, 4]
    let g = gt_xyxy.unsqueeze(1); // [B, 1, M, 4]
    let [ay1, ax1, ay2, ax2] = corners(&a);
    let [gx1, gy1, gx2, gy2] = corners(&g);
    let iw = (ax2.minimum(&gx2) - ax1.maximum(&gx1)).clamp_min(0.0);
    let ih = (ay2.minimum(&gy2) - ay1.maximum(&gy1)).clamp_min(0.0);
    let inter = iw * ih;
    let area_a = (&ay2 - &ay1) * (&ax2 - &ax1);
    let area_g = (&gy2 - &gy1) * (&gx2 - &gx1);
    let union = (area_a + area_g - &inter).clamp_min(1e-8);
    let iou = inter / union;
    let valid = gt_classes.ge(0).unsqueeze(1); // [B, 1, M]
    iou.where_self(&valid, &Tensor::from(-1f32).to_device(iou.device()))
}

/// The four coordinates of boxes `[.., 4]`, each `[..]`, in their stored order.
pub(crate) fn corners(boxes: &Tensor) -> [Tensor; 4] {
    [0, 1, 2, 3].map(|i| boxes.select(-1, i))
}

/// Box targets `(dy, dx, dh, dw)` of `gt` (`[.., 4]` xyxy) against `anchors` (`[.., 4]`
/// yxyx), broadcasting.
pub fn encode_boxes(anchors_yxyx: &Tensor, gt_xyxy: &Tensor) -> Tensor {
    let [ay1, ax1, ay2, ax2] = corners(anchors_yxyx);
    let (ha, wa) = (&ay2 - &ay1, &ax2 - &ax1);
    let (cya, cxa) = (&ay1 + &ha * 0.5, &ax1 + &wa * 0.5);
    let [gx1, gy1, gx2, gy2] = corners(gt_xyxy);
    let (gw, gh) = (&gx2 - &gx1, &gy2 - &gy1);
    let (gcx, gcy) = (&gx1 + &gw * 0.5, &gy1 + &gh * 0.5);
    let (gw, gh) = (gw.clamp_min(1.0), gh.clamp_min(1.0));
    Tensor::stack(
        &[
            (gcy - cya) / &ha,
            (gcx - cxa) / &wa,
            (gh / &ha).log(),
            (gw / &wa).log(),
        ],
        -1,
    )
}

/// Boxes `(x1, y1, x2, y2)` of regressions `(dy, dx, dh, dw)` (`[.., 4]`) against `anchors`
/// (`[.., 4]` yxyx), broadcasting: the decode of inference
/// ([`crate::detector::maths::box_coding::decode`], f32 operations in the same order, no
/// clamp), on tensors so that gradients flow through it; the inverse of [`encode_boxes`].
pub fn decode_boxes(anchors_yxyx: &Tensor, deltas: &Tensor) -> Tensor {
    let [ay1, ax1, ay2, ax2] = corners(anchors_yxyx);
    let cya = (&ay1 + &ay2) / 2.0;
    let cxa = (&ax1 + &ax2) / 2.0;
    let ha = &ay2 - &ay1;
    let wa = &ax2 - &ax1;
    let [dy, dx, dh, dw] = corners(deltas);
    let w = dw.exp() * &wa;
    let h = dh.exp() * &ha;
    let cy = dy * &ha + cya;
    let cx = dx * &wa + cxa;
    let (hw, hh) = (&w / 2.0, &h / 2.0);
    Tensor::stack(&[&cx - &hw, &cy - &hh, &cx + &hw, &cy + &hh], -1)
}

/// Assigns anchors (`[N, 4]` yxyx) to the padded ground truth of a batch (see the
/// module docs for the rules).
pub fn assign(
    anchors_yxyx: &Tensor,
    gt_xyxy: &Tensor,
    gt_classes: &Tensor,
    num_classes: i64,
    params: &LossParams,
) -> Targets {
    let (b, m) = (gt_classes.size()[0], gt_classes.size()[1]);
    let n = anchors_yxyx.size()[0];
    let device = anchors_yxyx.device();
    let iou = iou_matrix(anchors_yxyx, gt_xyxy, gt_classes);
    let (iou_max, mut matched) = iou.max_dim(2, false); // [B, N]
    let mut positive = iou_max.ge(params.pos_iou);
    let mut negative = iou_max.lt(params.neg_iou);
    if params.force_match {
        let (best_iou, best_anchor) = iou.max_dim(1, false); // [B, M]
        let valid = gt_classes.ge(0).logical_and(&best_iou.gt(0.0));
        // Invalid rows scatter into a dummy column N that is dropped afterwards.
        let dummy = Tensor::full([b, m], n, (Kind::Int64, device));
        let idx = best_anchor.where_self(&valid, &dummy);
        let forced = Tensor::zeros([b, n + 1], (Kind::Bool, device))
            .scatter_value(1, &idx, 1)
            .narrow(1, 0, n);
        let gt_ids = Tensor::arange(m, (Kind::Int64, device))
            .unsqueeze(0)
            .expand([b, m], false);
        matched = Tensor::cat(&[matched, Tensor::zeros([b, 1], (Kind::Int64, device))], 1)
            .scatter(1, &idx, &gt_ids)
            .narrow(1, 0, n);
        positive = positive.logical_or(&forced);
        negative = negative.logical_and(&forced.logical_not());
    }
    let matched_class = gt_classes.gather(1, &matched, false).clamp_min(0);
    let pos_f = positive.to_kind(Kind::Float);
    let cls = matched_class.one_hot(num_classes).to_kind(Kind::Float) * pos_f.unsqueeze(-1);
    let cls_mask = positive.logical_or(&negative).to_kind(Kind::Float);
    let matched_boxes = gt_xyxy.gather(1, &matched.unsqueeze(-1).expand([b, n, 4], false), false);
    let boxes = encode_boxes(&anchors_yxyx.unsqueeze(0), &matched_boxes);
    let num_pos = pos_f.sum_dim_intlist(1, false, Kind::Float);
    Targets {
        cls,
        cls_mask,
        positive,
        boxes,
        num_pos,
        anchors: anchors_yxyx.shallow_clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::maths::box_coding::{decode, encode, BoxDelta, YxyxBox};
    use crate::detector::train::config::LossPreset;
    use crate::geometry::BoxXyxy;

    fn anchors() -> Tensor {
        // y1, x1, y2, x2
        Tensor::from_slice(&[
            0f32, 0., 10., 10., // 0: same as GT a
            0., 0., 10., 20., // 1: IoU 0.5 with GT a
            0., 0., 10., 22.5, // 2: IoU 0.444 with GT a (band)
            50., 50., 60., 60., // 3: far away
            100., 100., 110., 110., // 4: IoU 0.3 with GT b
        ])
        .view([5, 4])
    }

    fn gts() -> (Tensor, Tensor) {
        // image 0: GT a (class 1) and GT b (class 0, best IoU 0.3); image 1: no boxes.
        pad_ground_truth(
            &[vec![[0., 0., 10., 10.], [100., 100., 103., 110.]], vec![]],
            &[vec![1, 0], vec![]],
            Device::Cpu,
        )
    }

    fn vec_f(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1).to_kind(Kind::Float)).unwrap()
    }

    #[test]
    fn iou_values_by_hand() {
        let (g, c) = gts();
        let iou = iou_matrix(&anchors(), &g, &c);
        assert_eq!(iou.size(), [2, 5, 2]);
        let v = vec_f(&iou.get(0));
        let want = [1.0, 0.0, 0.5, 0.0, 100.0 / 225.0, 0.0, 0.0, 0.0, 0.0, 0.3];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
        assert!(vec_f(&iou.get(1)).iter().all(|&x| x == -1.0));
    }

    #[test]
    fn reference_rule_has_an_ignore_band_and_no_forced_match() {
        let p = LossPreset::Reference.params();
        let (g, c) = gts();
        let t = assign(&anchors(), &g, &c, 2, &p);
        assert_eq!(vec_f(&t.positive.get(0)), [1., 1., 0., 0., 0.]);
        assert_eq!(vec_f(&t.cls_mask.get(0)), [1., 1., 0., 1., 1.]);
        assert_eq!(vec_f(&t.num_pos), [2., 0.]);
        // Class 1 one-hot on the positives.
        assert_eq!(vec_f(&t.cls.get(0).get(1)), [0., 1.]);
        // Image without boxes: every anchor a negative.
        assert_eq!(vec_f(&t.cls_mask.get(1)), [1.; 5]);
        assert_eq!(vec_f(&t.cls.get(1)).iter().sum::<f32>(), 0.0);
        // Box target of anchor 1 equals the scalar encoder's.
        let want = encode(
            YxyxBox::from_row([0., 0., 10., 20.]),
            &BoxXyxy::new(0., 0., 10., 10.),
        );
        let got = vec_f(&t.boxes.get(0).get(1));
        let want = [want.dy, want.dx, want.dh, want.dw];
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    /// The tensor decode is inference's scalar one, and inverts the tensor encode.
    #[test]
    fn decode_boxes_matches_inference_and_inverts_encode() {
        let a = anchors();
        let d = Tensor::from_slice(&[
            0f32, 0., 0., 0., 0.5, -0.25, 0.7, 0., -1., 2., -3., 1.5, 0.1, 0.2, 0.3, 0.4, 0., 0.,
            -40., 0.,
        ])
        .view([5, 4]);
        let got = decode_boxes(&a, &d);
        let (ar, dr) = (vec_f(&a), vec_f(&d));
        let gv = vec_f(&got);
        for i in 0..5 {
            let row = |v: &[f32]| [v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]];
            let want = decode(YxyxBox::from_row(row(&ar)), BoxDelta::from_row(row(&dr)));
            let want = [want.x1, want.y1, want.x2, want.y2];
            for (x, y) in row(&gv).into_iter().zip(want) {
                assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "row {i}: {gv:?}");
            }
        }
        let (g, c) = gts();
        let t = assign(&a, &g, &c, 2, &LossPreset::Official.params());
        let back = vec_f(&decode_boxes(&t.anchors.get(0), &t.boxes.get(0).get(0)));
        for (x, y) in back.iter().zip([0f32, 0., 10., 10.]) {
            assert!((x - y).abs() < 1e-5, "{back:?}");
        }
    }

    #[test]
    fn official_rule_forces_a_match_for_every_ground_truth() {
        let p = LossPreset::Official.params();
        let (g, c) = gts();
        let t = assign(&anchors(), &g, &c, 2, &p);
        // Anchor 4 (IoU 0.3) is forced onto GT b (class 0); the band is negative.
        assert_eq!(vec_f(&t.positive.get(0)), [1., 1., 0., 0., 1.]);
        assert_eq!(vec_f(&t.cls_mask.get(0)), [1.; 5]);
        assert_eq!(vec_f(&t.cls.get(0).get(4)), [1., 0.]);
        assert_eq!(vec_f(&t.num_pos), [3., 0.]);
        assert_eq!(vec_f(&t.positive.get(1)), [0.; 5]);
    }
}
