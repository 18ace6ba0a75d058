//! The stem: a k×k stride-s TF-SAME convolution from the NCHW network input (3 channels)
//! straight into an NHWC map, with bias and activation.
//!
//! Each output pixel broadcasts its k·k·3 input values against the weight rows of all
//! output channels, accumulated in registers, four pixels at a time: one pixel alone is a
//! chain of 27 dependent multiply-adds per register, which ran at a fifth of the FMA
//! units' throughput (the stem took 5.9 ms of D0 at 512; 2.5–3 ms now).

use tch::{Device, Kind, TchError, Tensor};

use super::map::{BufferPool, FeatureMap};
use super::parallel::for_row_blocks;
use super::params;
use super::simd::{activate_slice, channel_blocks, madd, multiversion};
use crate::detector::model::same_pad::{same_padding, SameConv2d};
use crate::detector::model::Activation;

/// The first convolution of the backbone.
#[derive(Debug)]
pub struct Stem {
    /// `[c_in, ky, kx, c_out]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
    in_channels: usize,
    kernel: usize,
    stride: usize,
    act: Activation,
}

/// Geometry of one stem pass.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    in_h: usize,
    in_w: usize,
    in_c: usize,
    out_w: usize,
    kernel: usize,
    stride: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Stem {
    /// From the (BatchNorm-folded) stem conv and the backbone's activation.
    pub fn new(conv: &SameConv2d, act: Activation) -> Result<Self, TchError> {
        Ok(Self {
            weight: params::weight(conv, [1, 2, 3, 0])?,
            bias: params::bias(conv)?,
            in_channels: conv.ws.size()[1] as usize,
            kernel: conv.kernel as usize,
            stride: conv.stride as usize,
            act,
        })
    }

    /// Runs on a `[B, C_in, H, W]` float CPU tensor.
    pub fn run(
        &self,
        pool: &BufferPool,
        xs: &Tensor,
        threads: usize,
    ) -> Result<FeatureMap, TchError> {
        let xs = xs
            .to_device(Device::Cpu)
            .f_to_kind(Kind::Float)?
            .f_contiguous()?;
        let size: Vec<usize> = xs.size().iter().map(|&d| d as usize).collect();
        // Read in place: a copy into a fresh `Vec` each pass (1.2 MB at 320², page-faulted)
        // ran on one thread before the rows are split (Lite0, two threads: 0.56 → 0.40 ms).
        // SAFETY: `xs` is a contiguous float32 CPU tensor of `numel` values, alive and
        // unchanged while `input` is used.
        let input = unsafe { std::slice::from_raw_parts(xs.data_ptr() as *const f32, xs.numel()) };
        let (batch, in_h, in_w) = (size[0], size[2], size[3]);
        let (k, s) = (self.kernel, self.stride);
        let (out_h, out_w) = (in_h.div_ceil(s), in_w.div_ceil(s));
        let g = Geometry {
            in_h,
            in_w,
            in_c: self.in_channels,
            out_w,
            kernel: k,
            stride: s,
            pad_top: same_padding(in_h as i64, k as i64, s as i64, 1).0 as usize,
            pad_left: same_padding(in_w as i64, k as i64, s as i64, 1).0 as usize,
        };
        let cout = self.bias.len();
        let mut out = pool.map(batch, out_h, out_w, cout);
        let image_len = self.in_channels * in_h * in_w;
        let row_len = out_w * cout;
        for b in 0..batch {
            let image = &input[b * image_len..(b + 1) * image_len];
            let o = &mut out.values_mut()[b * out_h * row_len..(b + 1) * out_h * row_len];
            let (weight, bias, act) = (&self.weight, &self.bias, self.act);
            for_row_blocks(threads, o, row_len, |first_row, rows| {
                stem_rows(image, weight, bias, g, first_row, rows, act)
            });
        }
        Ok(out)
    }
}

multiversion! {
    fn stem_rows(
        image: &[f32],
        weight: &[f32],
        bias: &[f32],
        g: Geometry,
        first_row: usize,
        out: &mut [f32],
        act: Activation,
    ) {
        let cout = bias.len();
        let plane = g.in_h * g.in_w;
        // (input offset from the window's top-left, weight row) of every tap, both
        // increasing.
        let mut all = Vec::with_capacity(g.kernel * g.kernel * g.in_c);
        for c in 0..g.in_c {
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    all.push((c * plane + ky * g.in_w + kx, (c * g.kernel + ky) * g.kernel + kx));
                }
            }
        }
        let mut taps: Vec<(usize, usize)> = Vec::with_capacity(all.len());
        let row_len = g.out_w * cout;
        for (r, out_row) in out.chunks_exact_mut(row_len).enumerate() {
            let iy0 = ((first_row + r) * g.stride) as isize - g.pad_top as isize;
            let rows_inside = iy0 >= 0 && iy0 as usize + g.kernel <= g.in_h;
            let inside = |ox: usize| {
                let ix0 = (ox * g.stride) as isize - g.pad_left as isize;
                rows_inside && ix0 >= 0 && ix0 as usize + g.kernel <= g.in_w
            };
            let mut ox = 0;
            while ox < g.out_w {
                let ix0 = (ox * g.stride) as isize - g.pad_left as isize;
                let px = &mut out_row[ox * cout..];
                if ox + PIXELS <= g.out_w && inside(ox) && inside(ox + PIXELS - 1) {
                    let base = iy0 as usize * g.in_w + ix0 as usize;
                    pixels::<PIXELS, FMA>(image, weight, bias, &all, base, g.stride, px);
                    for p in px[..PIXELS * cout].chunks_exact_mut(cout) {
                        activate_slice::<FMA>(act, p);
                    }
                    ox += PIXELS;
                    continue;
                }
                let interior = inside(ox);
                let base = if interior {
                    iy0 as usize * g.in_w + ix0 as usize
                } else {
                    // Border: only the taps inside the image (the padding is zero).
                    taps.clear();
                    for c in 0..g.in_c {
                        for ky in 0..g.kernel {
                            let iy = iy0 + ky as isize;
                            if iy < 0 || iy >= g.in_h as isize {
                                continue;
                            }
                            for kx in 0..g.kernel {
                                let ix = ix0 + kx as isize;
                                if ix >= 0 && ix < g.in_w as isize {
                                    let at = c * plane + iy as usize * g.in_w + ix as usize;
                                    taps.push((at, (c * g.kernel + ky) * g.kernel + kx));
                                }
                            }
                        }
                    }
                    0
                };
                let taps = if interior { &all } else { &taps };
                pixels::<1, FMA>(image, weight, bias, taps, base, g.stride, px);
                activate_slice::<FMA>(act, &mut px[..cout]);
                ox += 1;
            }
        }
    }
}

/// Adjacent output pixels computed together: their accumulators are independent, so the
/// multiply-adds of one tap overlap instead of waiting on each other.
const PIXELS: usize = 4;

/// Every output channel of `P` adjacent pixels (`stride` input columns apart).
#[inline(always)]
fn pixels<const P: usize, const FMA: bool>(
    image: &[f32],
    weight: &[f32],
    bias: &[f32],
    taps: &[(usize, usize)],
    base: usize,
    stride: usize,
    out: &mut [f32],
) {
    channel_blocks!(bias.len(), |c0, N| channels::<P, N, FMA>(
        image, weight, bias, taps, base, stride, c0, out
    ));
}

/// Output channels `c0..c0+N` of `P` adjacent pixels, from the taps
/// `(base + p · stride + offset, weight row)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn channels<const P: usize, const N: usize, const FMA: bool>(
    image: &[f32],
    weight: &[f32],
    bias: &[f32],
    taps: &[(usize, usize)],
    base: usize,
    stride: usize,
    c0: usize,
    out: &mut [f32],
) {
    let cout = bias.len();
    let bias: [f32; N] = bias[c0..c0 + N].try_into().expect("N channels");
    let mut acc = [bias; P];
    // Taps are in increasing input and weight order, so checking the last one bounds them
    // all and the loop reads without per-load checks.
    if let Some(&(at, row)) = taps.last() {
        assert!(base + (P - 1) * stride + at < image.len() && row * cout + c0 + N <= weight.len());
    }
    for &(at, row) in taps {
        // SAFETY: bounds asserted above; [f32; N] has f32's alignment.
        let w = unsafe { &*(weight.as_ptr().add(row * cout + c0) as *const [f32; N]) };
        for (p, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let v = unsafe { *image.get_unchecked(base + p * stride + at) };
            for j in 0..N {
                acc[j] = madd::<FMA>(v, w[j], acc[j]);
            }
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        out[p * cout + c0..p * cout + c0 + N].copy_from_slice(acc);
    }
}
