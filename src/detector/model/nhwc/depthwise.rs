//! Depthwise k×k convolutions (TF-SAME padding, any stride) on channels-last maps.
//!
//! Every output pixel is `bias + Σ_taps w[tap] ⊙ x[pixel under tap]` over channel vectors.
//! Blocks of 4 adjacent pixels × 32 channels keep their accumulators in registers across
//! all k² taps, and the activation is applied before the single store. Taps over the
//! padding are skipped (the padding is zero).

use tch::TchError;

use super::map::{BufferPool, FeatureMap};
use super::parallel::for_row_blocks;
use super::params;
use super::simd::{activate_slice, channel_blocks, madd, multiversion};
use crate::detector::model::same_pad::{same_padding, SameConv2d};
use crate::detector::model::Activation;

/// A depthwise convolution with bias.
#[derive(Debug)]
pub struct Depthwise {
    /// `[k·k, C]`: the weights of each tap, channels contiguous.
    weight: Vec<f32>,
    bias: Vec<f32>,
    kernel: usize,
    stride: usize,
}

/// Geometry of one depthwise pass.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    in_h: usize,
    in_w: usize,
    /// Input rows held by the buffer: row `iy` is at `iy % ring` (`in_h` for a whole map,
    /// fewer for a ring of rows computed just in time).
    pub ring: usize,
    pub out_h: usize,
    pub out_w: usize,
    kernel: usize,
    stride: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Depthwise {
    /// From a (BatchNorm-folded) depthwise `SameConv2d`; no bias means a zero one.
    pub fn from_conv(conv: &SameConv2d) -> Result<Self, TchError> {
        Ok(Self {
            // [C, 1, k, k] → [k, k, 1, C].
            weight: params::weight(conv, [2, 3, 1, 0])?,
            bias: params::bias(conv)?,
            kernel: conv.kernel as usize,
            stride: conv.stride as usize,
        })
    }

    /// `act(depthwise(input) + b)`. With `channel_means`, also returns each image's mean of
    /// every output channel (`[batch × C]`, for squeeze-excitation), summed per row in f32
    /// and over rows in f64: a plain f32 running sum over 65,536 positive values drifts by
    /// ~1e-3 relative, which the gates pass on to every later layer.
    pub fn run(
        &self,
        pool: &BufferPool,
        input: &FeatureMap,
        act: Option<Activation>,
        channel_means: bool,
        threads: usize,
    ) -> (FeatureMap, Option<Vec<f32>>) {
        let c = self.bias.len();
        debug_assert_eq!(input.channels, c);
        let geometry = self.geometry(input.height, input.width, input.height);
        let (out_h, out_w) = (geometry.out_h, geometry.out_w);
        let mut out = pool.map(input.batch, out_h, out_w, c);
        let mut means = channel_means.then(|| vec![0.0f32; input.batch * c]);
        let row_len = out_w * c;
        for b in 0..input.batch {
            let image = &input.values()[b * input.image_len()..(b + 1) * input.image_len()];
            let o = &mut out.values_mut()[b * out_h * row_len..(b + 1) * out_h * row_len];
            let sums = for_row_blocks(threads, o, row_len, |first_row, block| {
                let mut sums = vec![0.0f64; if channel_means { c } else { 0 }];
                self.rows_into(image, geometry, first_row, block, act, &mut sums);
                sums
            });
            if let Some(means) = &mut means {
                means_from_sums(sums, out_h * out_w, &mut means[b * c..(b + 1) * c]);
            }
        }
        (out, means)
    }

    /// The geometry of a pass over an `in_h × in_w` input held in a buffer of `ring`
    /// rows.
    pub fn geometry(&self, in_h: usize, in_w: usize, ring: usize) -> Geometry {
        let (k, s) = (self.kernel, self.stride);
        Geometry {
            in_h,
            in_w,
            ring,
            out_h: in_h.div_ceil(s),
            out_w: in_w.div_ceil(s),
            kernel: k,
            stride: s,
            pad_top: same_padding(in_h as i64, k as i64, s as i64, 1).0 as usize,
            pad_left: same_padding(in_w as i64, k as i64, s as i64, 1).0 as usize,
        }
    }

    /// The input rows that output row `row` reads, clamped to the input.
    pub fn input_rows(&self, g: &Geometry, row: usize) -> std::ops::Range<usize> {
        let lo = (row * g.stride).saturating_sub(g.pad_top);
        let hi = (row * g.stride + g.kernel)
            .saturating_sub(g.pad_top)
            .min(g.in_h);
        lo..hi
    }

    /// Output rows `first_row..` (as many as `out` holds) of one image whose input rows
    /// are in `rows` (see [`Geometry::ring`]); adds channel sums to `sums` unless empty.
    pub fn rows_into(
        &self,
        rows: &[f32],
        g: Geometry,
        first_row: usize,
        out: &mut [f32],
        act: Option<Activation>,
        sums: &mut [f64],
    ) {
        depthwise_rows(rows, &self.weight, &self.bias, g, first_row, out, act, sums);
    }

    /// Kernel size (square).
    pub fn kernel(&self) -> usize {
        self.kernel
    }
}

/// Channel means over `count` pixels from the f64 channel sums of several row blocks.
pub fn means_from_sums(blocks: Vec<Vec<f64>>, count: usize, means: &mut [f32]) {
    let mut total = vec![0.0f64; means.len()];
    for block in blocks {
        for (t, s) in total.iter_mut().zip(block) {
            *t += s;
        }
    }
    for (m, t) in means.iter_mut().zip(total) {
        *m = (t / count as f64) as f32;
    }
}

multiversion! {
    /// Output rows `first_row..` of one image into `out`; adds each output channel's sum
    /// into `sums` when it is not empty.
    fn depthwise_rows(
        image: &[f32],
        weight: &[f32],
        bias: &[f32],
        g: Geometry,
        first_row: usize,
        out: &mut [f32],
        act: Option<Activation>,
        sums: &mut [f64],
    ) {
        let c = bias.len();
        assert!(g.ring >= 1 && image.len() >= g.ring * g.in_w * c && g.kernel <= MAX_KERNEL);
        // Output columns whose k taps all lie inside the input row.
        let interior_lo = g.pad_left.div_ceil(g.stride);
        let interior_hi = if g.in_w + g.pad_left >= g.kernel {
            ((g.in_w + g.pad_left - g.kernel) / g.stride + 1).min(g.out_w)
        } else {
            0
        };
        let wide = wide::supports(FMA, c, g);
        let mut row_sums = vec![0.0f32; sums.len()];
        for (r, out_row) in out.chunks_exact_mut(g.out_w * c).enumerate() {
            let iy0 = ((first_row + r) * g.stride) as isize - g.pad_top as isize;
            let ky = tap_range(iy0, g.kernel, g.in_h);
            let mut row_start = [0usize; MAX_KERNEL];
            for k in ky.clone() {
                row_start[k] = ((iy0 + k as isize) as usize % g.ring) * g.in_w * c;
            }
            let rows = Rows {
                image,
                weight,
                bias,
                c,
                g,
                row_start,
                ky,
                act,
                wide,
            };
            rows.row::<FMA>(interior_lo, interior_hi, out_row);
            if !sums.is_empty() {
                for px in out_row.chunks_exact(c) {
                    for (s, v) in row_sums.iter_mut().zip(px) {
                        *s += v;
                    }
                }
                for (s, r) in sums.iter_mut().zip(row_sums.iter_mut()) {
                    *s += f64::from(*r);
                    *r = 0.0;
                }
            }
        }
    }
}

/// Adjacent output pixels computed together, sharing each tap's weight registers.
const PIXELS: usize = 4;

/// One output row's view of the input: the rows under its taps.
struct Rows<'a> {
    image: &'a [f32],
    weight: &'a [f32],
    bias: &'a [f32],
    c: usize,
    g: Geometry,
    /// Offset in `image` of the input row under each kernel row.
    row_start: [usize; MAX_KERNEL],
    ky: std::ops::Range<usize>,
    act: Option<Activation>,
    /// Whether the row runs [`wide::group`] (AVX-512, channels in multiples of 16, a
    /// kernel it is compiled for).
    wide: bool,
}

/// Largest supported kernel (EfficientNets use 3 and 5).
const MAX_KERNEL: usize = 9;

impl Rows<'_> {
    /// The whole output row: with [`Rows::wide`], groups of 8 pixels (4, 2, 1 at the end)
    /// by [`wide::group`], borders included; otherwise groups of [`PIXELS`] where all taps
    /// are inside the input and single pixels at the borders. Channel blocks innermost,
    /// so that a group's input pixels are read front to back.
    #[inline(always)]
    fn row<const FMA: bool>(&self, interior_lo: usize, interior_hi: usize, out_row: &mut [f32]) {
        let g = self.g;
        let mut ox = 0;
        while ox < g.out_w {
            let ix0 = (ox * g.stride) as isize - g.pad_left as isize;
            let px = &mut out_row[ox * self.c..];
            if self.wide {
                let step = match g.out_w - ox {
                    8.. => self.wide_group::<8>(ix0, px),
                    4..=7 => self.wide_group::<4>(ix0, px),
                    2..=3 => self.wide_group::<2>(ix0, px),
                    _ => self.wide_group::<1>(ix0, px),
                };
                ox += step;
            } else if ox >= interior_lo && ox + PIXELS <= interior_hi {
                channel_blocks!(self.c, |c0, N| self.block::<PIXELS, N, FMA>(
                    ix0,
                    0..g.kernel,
                    c0,
                    px
                ));
                ox += PIXELS;
            } else {
                let kx = tap_range(ix0, g.kernel, g.in_w);
                channel_blocks!(self.c, |c0, N| self.block::<1, N, FMA>(
                    ix0,
                    kx.clone(),
                    c0,
                    px
                ));
                ox += 1;
            }
        }
    }

    /// All channels of `P` adjacent output pixels whose first tap is over input column
    /// `ix0`, with [`wide::group`] (only when [`Rows::wide`]); returns `P`.
    #[inline(always)]
    fn wide_group<const P: usize>(&self, ix0: isize, out: &mut [f32]) -> usize {
        let (c, g) = (self.c, self.g);
        assert!(self.wide && out.len() >= P * c && self.ky.end * g.kernel * c <= self.weight.len());
        // The group's columns that are inside the input (the rest is zero padding).
        let cols = (-ix0).max(0) as usize..(g.in_w as isize - ix0).max(0) as usize;
        let mut c0 = 0;
        while c0 < c {
            // Blocks of 32 channels, and one of 16 for an odd remainder.
            let halves = if c0 + 32 <= c { 2 } else { 1 };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512 is available (`wide`); the reads are within the input's
            // columns, rows within the ring (`depthwise_rows`) and weights within the bounds
            // asserted above, and so are the writes.
            unsafe {
                let cols = cols.clone();
                match (g.kernel, g.stride, halves) {
                    (3, 1, 2) => wide::group::<P, 3, 1, 2>(self, ix0, cols, c0, out),
                    (3, 2, 2) => wide::group::<P, 3, 2, 2>(self, ix0, cols, c0, out),
                    (5, 1, 2) => wide::group::<P, 5, 1, 2>(self, ix0, cols, c0, out),
                    (5, 2, 2) => wide::group::<P, 5, 2, 2>(self, ix0, cols, c0, out),
                    (3, 1, _) => wide::group::<P, 3, 1, 1>(self, ix0, cols, c0, out),
                    (3, 2, _) => wide::group::<P, 3, 2, 1>(self, ix0, cols, c0, out),
                    (5, 1, _) => wide::group::<P, 5, 1, 1>(self, ix0, cols, c0, out),
                    _ => wide::group::<P, 5, 2, 1>(self, ix0, cols, c0, out),
                }
            }
            c0 += 16 * halves;
        }
        P
    }

    /// Channels `c0..c0+N` of `P` adjacent output pixels, accumulated in registers.
    #[inline(always)]
    fn block<const P: usize, const N: usize, const FMA: bool>(
        &self,
        ix0: isize,
        kx: std::ops::Range<usize>,
        c0: usize,
        out: &mut [f32],
    ) {
        let (c, g) = (self.c, self.g);
        let bias: &[f32; N] = self.bias[c0..c0 + N].try_into().expect("N channels");
        let mut acc = [*bias; P];
        if !self.ky.is_empty() && !kx.is_empty() {
            // The furthest column and weight this block reads (indices grow with kx and p;
            // tap ranges keep them ≥ 0, rows map into the ring checked in
            // `depthwise_rows`): checking them once lets the tap loop index without
            // per-load bounds checks.
            let ix_last = (ix0 + kx.end as isize - 1) as usize + (P - 1) * g.stride;
            assert!(ix_last < g.in_w && c0 + N <= c);
            assert!(((self.ky.end - 1) * g.kernel + kx.end - 1) * c + c0 + N <= self.weight.len());
        }
        let (image, weight) = (self.image.as_ptr(), self.weight.as_ptr());
        for ky in self.ky.clone() {
            let row_start = self.row_start[ky];
            for kx in kx.clone() {
                let ix = (ix0 + kx as isize) as usize;
                // SAFETY: within the bounds asserted above; [f32; N] has f32's alignment.
                let w = unsafe { &*(weight.add((ky * g.kernel + kx) * c + c0) as *const [f32; N]) };
                let base = row_start + ix * c + c0;
                for (p, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let x = unsafe { &*(image.add(base + p * g.stride * c) as *const [f32; N]) };
                    for j in 0..N {
                        acc[j] = madd::<FMA>(x[j], w[j], acc[j]);
                    }
                }
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            let dst = &mut out[p * c + c0..p * c + c0 + N];
            dst.copy_from_slice(acc);
            if let Some(a) = self.act {
                activate_slice::<FMA>(a, dst);
            }
        }
    }
}

/// A depthwise row in AVX-512 intrinsics: 8 (or 4, 2, 1 at its end) output pixels × 32
/// channels (16 for an odd last block) in registers, each kernel row's weights in
/// registers, and each input column under the group loaded once and multiplied into every
/// pixel whose taps cover it — `(P−1)·S + K` loads per kernel row instead of `P·K`, so the
/// loop is bound by multiply-adds. The loops are unrolled by a macro (LLVM keeps the accumulators in
/// registers only when every index is a constant, and did not unroll them itself: the
/// portable version of this spilled them and ran slower than the 4-pixel kernel).
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    use super::{Geometry, Rows};
    use crate::detector::model::nhwc::simd::{avx512::activate16, has_avx512};

    /// Whether [`group`] runs a pass of `c` channels with geometry `g` (`fma`: the
    /// caller's copy was compiled with fused multiply-add).
    pub fn supports(fma: bool, c: usize, g: Geometry) -> bool {
        fma && has_avx512()
            && c.is_multiple_of(16)
            && matches!((g.kernel, g.stride), (3 | 5, 1 | 2))
    }

    /// `$body` once for each listed value of the constant `$i`.
    macro_rules! unroll {
        ($i:ident in [$($n:literal),*] $body:block) => {
            $({
                const $i: usize = $n;
                $body
            })*
        };
    }

    /// Channels `c0..c0+16·H` (`H` ≤ 2) of `P` (≤ 8) adjacent output pixels of a `K×K`
    /// (≤ 5), stride `S` (≤ 2) convolution, input column `ix0` under the first pixel's
    /// first tap; only the group's columns `cols` (relative to `ix0`) are read, the others
    /// being the zero padding.
    ///
    /// # Safety
    /// AVX-512 F is available; the columns `ix0 + cols` of the rows in `rows.ky`, their
    /// weights and channels `c0..c0+16·H`, and `P` pixels of `out`, are in bounds.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn group<const P: usize, const K: usize, const S: usize, const H: usize>(
        rows: &Rows<'_>,
        ix0: isize,
        cols: std::ops::Range<usize>,
        c0: usize,
        out: &mut [f32],
    ) {
        let c = rows.c;
        let (image, weight) = (rows.image.as_ptr(), rows.weight.as_ptr().wrapping_add(c0));
        let bias = rows.bias.as_ptr().wrapping_add(c0);
        // SAFETY (all the loads and stores below): in bounds by the caller's contract.
        let mut acc = [[_mm512_setzero_ps(); H]; P];
        unroll!(HH in [0, 1] {
            if HH < H {
                let b = unsafe { _mm512_loadu_ps(bias.add(16 * HH)) };
                acc.iter_mut().for_each(|a| a[HH] = b);
            }
        });
        for ky in rows.ky.clone() {
            let mut w = [[_mm512_setzero_ps(); H]; K];
            unroll!(KX in [0, 1, 2, 3, 4] {
                unroll!(HH in [0, 1] {
                    if KX < K && HH < H {
                        w[KX][HH] =
                            unsafe { _mm512_loadu_ps(weight.add((ky * K + KX) * c + 16 * HH)) };
                    }
                });
            });
            let base = image.wrapping_offset((rows.row_start[ky] + c0) as isize + ix0 * c as isize);
            unroll!(COL in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18] {
                if COL < (P - 1) * S + K && cols.contains(&COL) {
                    unroll!(HH in [0, 1] {
                        if HH < H {
                            let x = unsafe { _mm512_loadu_ps(base.add(COL * c + 16 * HH)) };
                            unroll!(PX in [0, 1, 2, 3, 4, 5, 6, 7] {
                                let kx = COL.wrapping_sub(PX * S);
                                if PX < P && kx < K {
                                    acc[PX][HH] = _mm512_fmadd_ps(x, w[kx][HH], acc[PX][HH]);
                                }
                            });
                        }
                    });
                }
            });
        }
        for (p, acc) in acc.iter().enumerate() {
            for (h, acc) in acc.iter().enumerate() {
                let y = activate16(rows.act, *acc);
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(p * c + c0 + 16 * h), y) };
            }
        }
    }
}

/// Elsewhere the portable kernel runs every group.
#[cfg(not(target_arch = "x86_64"))]
mod wide {
    pub fn supports(_fma: bool, _c: usize, _g: super::Geometry) -> bool {
        false
    }
}

/// Kernel offsets `k` with `0 ≤ start + k < size`.
#[inline(always)]
fn tap_range(start: isize, kernel: usize, size: usize) -> std::ops::Range<usize> {
    let lo = (-start).max(0) as usize;
    let hi = (size as isize - start).clamp(0, kernel as isize) as usize;
    lo.min(hi)..hi
}
