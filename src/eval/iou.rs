//! Box IoU exactly as `maskApi.c::bbIou` computes it.
//!
//! Boxes are continuous `[x, y, w, h]` (no "+1 pixel"). The overlap width is
//! `min(x1 + w1, x2 + w2) - max(x1, x2)`; if it is `<= 0` the IoU is 0, and likewise the
//! height, so edge-touching and zero-size boxes score 0. With `i = w * h`:
//! * ordinary GT: `i / ((area_dt + area_gt) - i)`,
//! * crowd GT: `i / area_dt` (how much of the detection lies inside the crowd region),
//!
//! where both areas are `w * h` of the boxes (not the GT `area` field). All in `f64`,
//! with no fused multiply-add, so the bits match the C code.

/// IoU of detection box `d` against GT box `g`; `crowd` selects the crowd formula.
#[inline]
pub fn bbox_iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let da = d[2] * d[3];
    let union = if crowd {
        da
    } else {
        (da + g[2] * g[3]) - inter
    };
    inter / union
}

#[cfg(test)]
mod tests {
    use super::bbox_iou;

    #[test]
    fn basic_overlap() {
        let a = [0.0, 0.0, 10.0, 10.0];
        let b = [5.0, 0.0, 10.0, 10.0];
        assert_eq!(bbox_iou(&a, &b, false), 50.0 / 150.0);
        assert_eq!(bbox_iou(&a, &a, false), 1.0);
    }

    #[test]
    fn edge_touching_and_degenerate_are_zero() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(bbox_iou(&a, &[10.0, 0.0, 5.0, 5.0], false), 0.0);
        assert_eq!(bbox_iou(&a, &[0.0, 10.0, 5.0, 5.0], false), 0.0);
        assert_eq!(bbox_iou(&[2.0, 2.0, 0.0, 5.0], &a, false), 0.0);
    }

    #[test]
    fn crowd_divides_by_detection_area() {
        let crowd = [0.0, 0.0, 100.0, 100.0];
        let d = [10.0, 10.0, 10.0, 10.0];
        assert_eq!(bbox_iou(&d, &crowd, true), 1.0);
        let half_out = [95.0, 0.0, 10.0, 10.0];
        assert_eq!(bbox_iou(&half_out, &crowd, true), 0.5);
    }
}
