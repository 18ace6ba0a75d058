//! The BiFPN's resampling and fusion on channels-last maps.

use super::map::{BufferPool, FeatureMap};
use super::simd::{activate_slice, multiversion};
use crate::detector::model::same_pad::{same_padding, SameMaxPool2d};
use crate::detector::model::Activation;

/// Source index of nearest-neighbour resampling, as libtorch computes it without explicit
/// scales: `min(⌊dst · (in/out)⌋, in − 1)` in f32.
fn nearest_source(dst: usize, input: usize, output: usize) -> usize {
    let scale = input as f32 / output as f32;
    ((dst as f32 * scale).floor() as usize).min(input - 1)
}

/// Nearest-neighbour resampling to `(height, width)` (libtorch's `upsample_nearest2d`).
pub fn upsample_nearest(pool: &BufferPool, x: &FeatureMap, size: (usize, usize)) -> FeatureMap {
    let (oh, ow) = size;
    let c = x.channels;
    let mut out = pool.map(x.batch, oh, ow, c);
    let cols: Vec<usize> = (0..ow).map(|ox| nearest_source(ox, x.width, ow)).collect();
    for (i, row) in out.values_mut().chunks_exact_mut(ow * c).enumerate() {
        let (b, oy) = (i / oh, i % oh);
        let iy = nearest_source(oy, x.height, oh);
        let src = &x.values()[b * x.image_len() + iy * x.width * c..][..x.width * c];
        for (px, &ix) in row.chunks_exact_mut(c).zip(&cols) {
            px.copy_from_slice(&src[ix * c..(ix + 1) * c]);
        }
    }
    out
}

/// Max-pool with TF-SAME **zero** padding, like [`SameMaxPool2d`]: a window that reaches
/// into the padding also sees zeros.
pub fn max_pool_same(pool: &BufferPool, x: &FeatureMap, p: SameMaxPool2d) -> FeatureMap {
    let (kh, kw) = (p.kernel.0 as usize, p.kernel.1 as usize);
    let (sh, sw) = (p.stride.0 as usize, p.stride.1 as usize);
    let (oh, ow) = (x.height.div_ceil(sh), x.width.div_ceil(sw));
    let pt = same_padding(x.height as i64, kh as i64, sh as i64, 1).0 as isize;
    let pl = same_padding(x.width as i64, kw as i64, sw as i64, 1).0 as isize;
    let c = x.channels;
    let mut out = pool.map(x.batch, oh, ow, c);
    for (i, row) in out.values_mut().chunks_exact_mut(ow * c).enumerate() {
        let (b, oy) = (i / oh, i % oh);
        let image = &x.values()[b * x.image_len()..(b + 1) * x.image_len()];
        let iy0 = (oy * sh) as isize - pt;
        for (ox, px) in row.chunks_exact_mut(c).enumerate() {
            let ix0 = (ox * sw) as isize - pl;
            let mut padded = false;
            px.fill(f32::NEG_INFINITY);
            for dy in 0..kh as isize {
                for dx in 0..kw as isize {
                    let (iy, ix) = (iy0 + dy, ix0 + dx);
                    if iy < 0 || ix < 0 || iy >= x.height as isize || ix >= x.width as isize {
                        padded = true;
                        continue;
                    }
                    let src = &image[(iy as usize * x.width + ix as usize) * c..][..c];
                    for (o, v) in px.iter_mut().zip(src) {
                        *o = o.max(*v);
                    }
                }
            }
            if padded {
                px.iter_mut().for_each(|o| *o = o.max(0.0));
            }
        }
    }
    out
}

/// `act(Σ wᵢ · inputᵢ)` (or the plain sum without weights) of equally shaped maps, summed
/// left to right like the reference.
pub fn fuse(
    pool: &BufferPool,
    inputs: &[&FeatureMap],
    weights: Option<&[f32]>,
    act: Activation,
) -> FeatureMap {
    let first = inputs[0];
    let mut out = pool.map(first.batch, first.height, first.width, first.channels);
    let slices: Vec<&[f32]> = inputs.iter().map(|m| m.values()).collect();
    weighted_sum(out.values_mut(), &slices, weights.unwrap_or(&[]), act);
    out
}

multiversion! {
    fn weighted_sum(out: &mut [f32], inputs: &[&[f32]], weights: &[f32], act: Activation) {
        const BLOCK: usize = 1024;
        for (bi, o) in out.chunks_mut(BLOCK).enumerate() {
            let (start, len) = (bi * BLOCK, o.len());
            let src = |i: usize| &inputs[i][start..start + len];
            match weights {
                [] => o.copy_from_slice(src(0)),
                [w0, ..] => o.iter_mut().zip(src(0)).for_each(|(o, x)| *o = w0 * x),
            }
            for i in 1..inputs.len() {
                match weights.get(i) {
                    Some(w) => o.iter_mut().zip(src(i)).for_each(|(o, x)| *o += w * x),
                    None => o.iter_mut().zip(src(i)).for_each(|(o, x)| *o += x),
                }
            }
            activate_slice::<FMA>(act, o);
        }
    }
}
