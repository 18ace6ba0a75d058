//! Pre-processing geometry: the aspect-preserving "letterbox" into a square network
//! input, bilinear resizing like OpenCV's `INTER_LINEAR`, and per-model normalisation.
//!
//! The image is scaled by `size / max(w, h)` to `round(w·s) × round(h·s)` and placed at the
//! top-left of a `size × size` canvas; the bottom/right padding is zero *after*
//! normalisation (the mean colour), as in Zylo117's training and inference code.
//! Boxes map with the per-axis scales `resized / original` (what the resize does to pixel
//! positions), so [`Letterbox::to_original`] exactly undoes [`Letterbox::to_input`].

use serde::{Deserialize, Serialize};

use crate::geometry::BoxXyxy;

/// Per-channel input normalisation of RGB pixel values `x` (0–255):
/// `y = (x / pixel_scale − mean[c]) / std[c]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub pixel_scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet statistics on `x / 255` (Zylo117 EfficientDet D0–D7x).
    pub const IMAGENET: Self = Self {
        pixel_scale: 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    /// `(x − 127) / 128` (EfficientNet-Lite / EfficientDet-Lite).
    pub const LITE: Self = Self {
        pixel_scale: 1.0,
        mean: [127.0; 3],
        std: [128.0; 3],
    };

    /// Normalises one value of channel `c`.
    #[inline]
    pub fn apply(&self, c: usize, x: f32) -> f32 {
        (x / self.pixel_scale - self.mean[c]) / self.std[c]
    }

    /// Whether every parameter is finite and no divisor is zero.
    pub fn is_valid(&self) -> bool {
        let ok = |v: f32| v.is_finite() && v != 0.0;
        ok(self.pixel_scale)
            && self.std.iter().all(|&s| ok(s))
            && self.mean.iter().all(|m| m.is_finite())
    }
}

/// Where an image of `src_width × src_height` lands in a `size × size` network input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Letterbox {
    pub src_width: u32,
    pub src_height: u32,
    pub size: u32,
    /// `round(src_width · size / max(w, h))`, at least 1.
    pub resized_width: u32,
    pub resized_height: u32,
}

impl Letterbox {
    /// The letterbox of a `src_width × src_height` image (both ≥ 1) into `size × size`.
    pub fn new(src_width: u32, src_height: u32, size: u32) -> Self {
        let (w, h) = (src_width.max(1), src_height.max(1));
        let scale = f64::from(size) / f64::from(w.max(h));
        let fit = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, size.max(1));
        Self {
            src_width: w,
            src_height: h,
            size,
            resized_width: fit(w),
            resized_height: fit(h),
        }
    }

    /// Horizontal scale from original to input pixels.
    pub fn scale_x(&self) -> f64 {
        f64::from(self.resized_width) / f64::from(self.src_width)
    }

    /// Vertical scale from original to input pixels.
    pub fn scale_y(&self) -> f64 {
        f64::from(self.resized_height) / f64::from(self.src_height)
    }

    /// A box in original-image pixels → network-input pixels.
    pub fn to_input(&self, b: &BoxXyxy) -> BoxXyxy {
        let (rw, rh) = (
            f64::from(self.resized_width),
            f64::from(self.resized_height),
        );
        let (sw, sh) = (f64::from(self.src_width), f64::from(self.src_height));
        BoxXyxy::new(
            b.x1 * rw / sw,
            b.y1 * rh / sh,
            b.x2 * rw / sw,
            b.y2 * rh / sh,
        )
    }

    /// A box in network-input pixels → original-image pixels: un-pad (the image sits at
    /// the top-left, so nothing to shift), un-scale, clip to the image.
    pub fn to_original(&self, b: &BoxXyxy) -> BoxXyxy {
        let (rw, rh) = (
            f64::from(self.resized_width),
            f64::from(self.resized_height),
        );
        let (sw, sh) = (f64::from(self.src_width), f64::from(self.src_height));
        BoxXyxy::new(
            b.x1 * sw / rw,
            b.y1 * sh / rh,
            b.x2 * sw / rw,
            b.y2 * sh / rh,
        )
        .clamp_to(sw, sh)
    }
}

/// Source taps of one output coordinate: `v = (1 − w)·src[i0] + w·src[i1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tap {
    i0: usize,
    i1: usize,
    w: f32,
}

/// OpenCV `INTER_LINEAR` taps: centre `(d + 0.5)·(src/dst) − 0.5`, clamped at the borders
/// (the weight becomes 0 at or beyond either edge); no antialiasing when shrinking.
fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            let (mut i0, mut w) = (s as i64, f - s);
            if i0 < 0 {
                i0 = 0;
                w = 0.0;
            }
            if i0 >= src as i64 - 1 {
                i0 = src as i64 - 1;
                w = 0.0;
            }
            let i0 = i0 as usize;
            Tap {
                i0,
                i1: (i0 + 1).min(src - 1),
                w,
            }
        })
        .collect()
}

/// Bilinear resize of an interleaved `u8` image (`channels` per pixel, row-major) to
/// `dst_w × dst_h`, returning interleaved `f32` values (not rounded to integers).
/// Empty input or output sizes give an empty result.
pub fn resize_bilinear(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    channels: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<f32> {
    if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 || src.len() < src_w * src_h * channels
    {
        return Vec::new();
    }
    let (xt, yt) = (taps(src_w, dst_w), taps(src_h, dst_h));
    // Horizontal pass for one source row, cached for the two rows each output row needs.
    let hrow = |y: usize, out: &mut Vec<f32>| {
        out.clear();
        let row = &src[y * src_w * channels..(y + 1) * src_w * channels];
        for t in &xt {
            for c in 0..channels {
                let (a, b) = (
                    f32::from(row[t.i0 * channels + c]),
                    f32::from(row[t.i1 * channels + c]),
                );
                out.push(a * (1.0 - t.w) + b * t.w);
            }
        }
    };
    let mut out = Vec::with_capacity(dst_w * dst_h * channels);
    // Two cached horizontally-resized source rows: (source row index, values).
    let mut slots: [(usize, Vec<f32>); 2] = [(usize::MAX, Vec::new()), (usize::MAX, Vec::new())];
    for t in &yt {
        for (need, other) in [(t.i0, t.i1), (t.i1, t.i0)] {
            if slots[0].0 != need && slots[1].0 != need {
                let victim = usize::from(slots[0].0 == other);
                hrow(need, &mut slots[victim].1);
                slots[victim].0 = need;
            }
        }
        let row = |i: usize| {
            if slots[0].0 == i {
                &slots[0].1
            } else {
                &slots[1].1
            }
        };
        let (a, b) = (row(t.i0), row(t.i1));
        out.extend(a.iter().zip(b).map(|(&a, &b)| a * (1.0 - t.w) + b * t.w));
    }
    out
}

/// The network input of one RGB image: letterboxed, normalised, zero-padded,
/// **channel-major** `[3, size, size]` (ready for `Tensor::from_slice(..).view([1, 3, s, s])`).
/// `rgb` is interleaved `u8` RGB, `width × height`.
pub fn letterbox_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    size: u32,
    norm: &Normalization,
) -> (Vec<f32>, Letterbox) {
    let lb = Letterbox::new(width, height, size);
    let (s, rw, rh) = (
        size as usize,
        lb.resized_width as usize,
        lb.resized_height as usize,
    );
    let resized = resize_bilinear(rgb, width as usize, height as usize, 3, rw, rh);
    let mut out = vec![0f32; 3 * s * s];
    if resized.len() == rw * rh * 3 {
        for (c, plane) in out.chunks_exact_mut(s * s).enumerate() {
            for y in 0..rh {
                let src_row = &resized[y * rw * 3..(y + 1) * rw * 3];
                for (x, v) in plane[y * s..y * s + rw].iter_mut().enumerate() {
                    *v = norm.apply(c, src_row[x * 3 + c]);
                }
            }
        }
    }
    (out, lb)
}

#[cfg(test)]
mod tests;
