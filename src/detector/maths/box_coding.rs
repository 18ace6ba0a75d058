//! EfficientDet box coding: regression `(dy, dx, dh, dw)` relative to an anchor in the
//! reference's `(y1, x1, y2, x2)` order ⇄ a box in `(x1, y1, x2, y2)` pixels.
//!
//! With anchor centre `(cya, cxa)` and size `(ha, wa)`:
//! decode `cy = dy·ha + cya`, `cx = dx·wa + cxa`, `h = e^dh·ha`, `w = e^dw·wa`
//! (Zylo117 `BBoxTransform`, no clamp before `exp`, f32 arithmetic in the same order);
//! encode is its inverse (Zylo117 `FocalLoss` targets: the ground-truth size is clamped
//! to ≥ 1 px after its centre is taken; no scale factors).
//!
//! The anchor and delta orders are their own types, so a yxyx anchor cannot be passed
//! where an xyxy box is meant (the bug of Zylo117 commit 8e69527).

use crate::geometry::BoxXyxy;

/// An anchor box in the reference's `(y1, x1, y2, x2)` order, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YxyxBox {
    pub y1: f32,
    pub x1: f32,
    pub y2: f32,
    pub x2: f32,
}

/// A box regression in the reference's `(dy, dx, dh, dw)` order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxDelta {
    pub dy: f32,
    pub dx: f32,
    pub dh: f32,
    pub dw: f32,
}

impl YxyxBox {
    /// From a row `[y1, x1, y2, x2]` of an anchors tensor `[N, 4]`.
    pub const fn from_row(r: [f32; 4]) -> Self {
        Self {
            y1: r[0],
            x1: r[1],
            y2: r[2],
            x2: r[3],
        }
    }
}

impl BoxDelta {
    /// From a row `[dy, dx, dh, dw]` of a regression tensor `[N, 4]`.
    pub const fn from_row(r: [f32; 4]) -> Self {
        Self {
            dy: r[0],
            dx: r[1],
            dh: r[2],
            dw: r[3],
        }
    }

    pub const fn to_row(self) -> [f32; 4] {
        [self.dy, self.dx, self.dh, self.dw]
    }
}

/// A flat `[N·4]` buffer of anchors, read as `(y1, x1, y2, x2)` rows.
#[derive(Clone, Copy, Debug)]
pub struct YxyxRows<'a>(&'a [[f32; 4]]);

/// A flat `[N·4]` buffer of regressions, read as `(dy, dx, dh, dw)` rows.
#[derive(Clone, Copy, Debug)]
pub struct DeltaRows<'a>(&'a [[f32; 4]]);

macro_rules! rows_impl {
    ($t:ident, $item:ident) => {
        impl<'a> $t<'a> {
            /// Wraps rows of 4.
            pub fn new(rows: &'a [[f32; 4]]) -> Self {
                Self(rows)
            }

            /// Wraps a flat buffer; `None` unless its length is a multiple of 4.
            pub fn from_flat(flat: &'a [f32]) -> Option<Self> {
                let (rows, rest) = flat.as_chunks::<4>();
                rest.is_empty().then_some(Self(rows))
            }

            pub fn len(&self) -> usize {
                self.0.len()
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Row `i`; panics if out of range, like slice indexing.
            pub fn get(&self, i: usize) -> $item {
                $item::from_row(self.0[i])
            }
        }
    };
}
rows_impl!(YxyxRows, YxyxBox);
rows_impl!(DeltaRows, BoxDelta);

/// A decoded box in `(x1, y1, x2, y2)` order, kept in `f32` as the network computes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct XyxyF32 {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl XyxyF32 {
    /// Zylo117 `ClipBoxes`: `x1, y1 ≥ 0`, `x2 ≤ width − 1`, `y2 ≤ height − 1` of the network input.
    pub fn clip_to_input(self, width: f32, height: f32) -> Self {
        Self {
            x1: self.x1.max(0.0),
            y1: self.y1.max(0.0),
            x2: self.x2.min(width - 1.0),
            y2: self.y2.min(height - 1.0),
        }
    }

    /// Widened to the `f64` box type of the rest of detlab.
    pub fn to_box(self) -> BoxXyxy {
        BoxXyxy::new(
            f64::from(self.x1),
            f64::from(self.y1),
            f64::from(self.x2),
            f64::from(self.y2),
        )
    }
}

/// Decodes a regression against its anchor into an xyxy box (not clipped).
pub fn decode(anchor: YxyxBox, d: BoxDelta) -> XyxyF32 {
    let cya = (anchor.y1 + anchor.y2) / 2.0;
    let cxa = (anchor.x1 + anchor.x2) / 2.0;
    let ha = anchor.y2 - anchor.y1;
    let wa = anchor.x2 - anchor.x1;
    let w = d.dw.exp() * wa;
    let h = d.dh.exp() * ha;
    let cy = d.dy * ha + cya;
    let cx = d.dx * wa + cxa;
    XyxyF32 {
        x1: cx - w / 2.0,
        y1: cy - h / 2.0,
        x2: cx + w / 2.0,
        y2: cy + h / 2.0,
    }
}

/// Encodes a ground-truth box (xyxy pixels) as the regression target of `anchor`.
/// Width and height are clamped to ≥ 1 px after the centre is computed (Zylo117).
pub fn encode(anchor: YxyxBox, gt: &BoxXyxy) -> BoxDelta {
    let (ay1, ax1, ay2, ax2) = (
        f64::from(anchor.y1),
        f64::from(anchor.x1),
        f64::from(anchor.y2),
        f64::from(anchor.x2),
    );
    let (ha, wa) = (ay2 - ay1, ax2 - ax1);
    let (cya, cxa) = (ay1 + 0.5 * ha, ax1 + 0.5 * wa);
    let (gw, gh) = (gt.x2 - gt.x1, gt.y2 - gt.y1);
    let (gcx, gcy) = (gt.x1 + 0.5 * gw, gt.y1 + 0.5 * gh);
    let (gw, gh) = (gw.max(1.0), gh.max(1.0));
    BoxDelta {
        dy: ((gcy - cya) / ha) as f32,
        dx: ((gcx - cxa) / wa) as f32,
        dh: (gh / ha).ln() as f32,
        dw: (gw / wa).ln() as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHOR: YxyxBox = YxyxBox {
        y1: -12.0,
        x1: -7.2,
        y2: 20.0,
        x2: 26.4,
    };

    #[test]
    fn zero_delta_decodes_to_the_anchor_in_xyxy() {
        let b = decode(ANCHOR, BoxDelta::from_row([0.0; 4]));
        let want = [-7.2, -12.0, 26.4, 20.0];
        for (g, w) in [b.x1, b.y1, b.x2, b.y2].into_iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{b:?}");
        }
    }

    #[test]
    fn decode_follows_the_formula() {
        // Anchor centre (4, 9.6), size h 32, w 33.6.
        let d = BoxDelta {
            dy: 0.5,
            dx: -0.25,
            dh: 2f32.ln(),
            dw: 0.0,
        };
        let b = decode(ANCHOR, d);
        let (cy, cx, h, w) = (4.0 + 16.0, 9.6 - 8.4, 64.0, 33.6);
        for (got, want) in [
            (b.x1, cx - w / 2.0),
            (b.y1, cy - h / 2.0),
            (b.x2, cx + w / 2.0),
            (b.y2, cy + h / 2.0),
        ] {
            assert!((f64::from(got) - want).abs() < 1e-4, "{b:?}");
        }
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for gt in [
            BoxXyxy::new(10.0, 20.0, 50.0, 130.0),
            BoxXyxy::new(-3.0, 0.5, 4.0, 2.0),
            BoxXyxy::new(100.0, 7.0, 400.0, 8.5),
        ] {
            let b = decode(ANCHOR, encode(ANCHOR, &gt)).to_box();
            for (g, w) in [(b.x1, gt.x1), (b.y1, gt.y1), (b.x2, gt.x2), (b.y2, gt.y2)] {
                assert!((g - w).abs() < 1e-4, "{b:?} vs {gt:?}");
            }
        }
    }

    #[test]
    fn encode_clamps_tiny_boxes_to_one_pixel() {
        let gt = BoxXyxy::new(10.0, 10.0, 10.2, 10.0);
        let b = decode(ANCHOR, encode(ANCHOR, &gt)).to_box();
        assert!((b.width() - 1.0).abs() < 1e-5 && (b.height() - 1.0).abs() < 1e-5);
        assert!((b.center().0 - 10.1).abs() < 1e-5 && (b.center().1 - 10.0).abs() < 1e-5);
    }

    #[test]
    fn clip_matches_clipboxes() {
        let b = XyxyF32 {
            x1: -5.0,
            y1: 3.0,
            x2: 600.0,
            y2: 511.5,
        }
        .clip_to_input(512.0, 512.0);
        assert_eq!(
            b,
            XyxyF32 {
                x1: 0.0,
                y1: 3.0,
                x2: 511.0,
                y2: 511.0
            }
        );
    }

    #[test]
    fn rows_from_flat_need_multiples_of_four() {
        assert!(YxyxRows::from_flat(&[0.0; 7]).is_none());
        let flat = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            YxyxRows::from_flat(&flat).unwrap().get(0),
            YxyxBox {
                y1: 1.0,
                x1: 2.0,
                y2: 3.0,
                x2: 4.0
            }
        );
    }
}
