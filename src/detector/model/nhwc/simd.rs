//! Instruction-set dispatch and the element-wise maths of the NHWC kernels.
//!
//! The kernels are plain Rust loops over contiguous channels, written so that LLVM
//! vectorises them. [`multiversion!`] compiles such a loop three times — for AVX-512,
//! for AVX2 + FMA and for the x86-64 baseline — and picks the best one the CPU supports at
//! run time, so the release binary stays portable while using the wide vectors where they
//! exist.

/// Defines `fn $name(args)` that runs `$body` compiled for the best available instruction
/// set. Inside the body, the constant `FMA: bool` says whether fused multiply-add is
/// available (use [`madd`]).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<const FMA: bool>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) { body::<true>($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) { body::<true>($($arg),*) }
                if $crate::detector::model::nhwc::simd::has_avx512() {
                    // SAFETY: the CPU supports the features this copy was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::detector::model::nhwc::simd::has_avx2_fma() {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body::<false>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Runs `$body` over channel blocks of 32, then 8, then 1 covering `0..$channels`, with
/// the block's first channel in `$c0` and its width in the constant `$n` (so that the body
/// can pass it as a const generic: register blocks of the kernels).
macro_rules! channel_blocks {
    ($channels:expr, |$c0:ident, $n:ident| $body:expr) => {{
        let channels = $channels;
        let mut $c0 = 0;
        while $c0 + 32 <= channels {
            const $n: usize = 32;
            $body;
            $c0 += $n;
        }
        while $c0 + 8 <= channels {
            const $n: usize = 8;
            $body;
            $c0 += $n;
        }
        while $c0 < channels {
            const $n: usize = 1;
            $body;
            $c0 += $n;
        }
    }};
}
pub(crate) use channel_blocks;

use crate::detector::model::Activation;

/// Whether the CPU has AVX-512 F/VL (checked once, cached by std).
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// Whether the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// `a·b + c`, fused when the instruction exists (a libm call otherwise would be slow).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `eˣ` for f32 with a relative error below 2e-7 (Cephes' `expf`: range reduction by
/// `ln 2`, a degree-6 polynomial on `[−ln2/2, ln2/2]`, and the power of two built in the
/// exponent bits). Branch-free, so loops over it vectorise. Inputs are clamped to
/// `[−87, 88]`, where the result is finite and normal.
#[inline(always)]
pub fn exp<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in f32 and the rest (Cody–Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = madd::<FMA>(x, LOG2E, 0.5).floor();
    let r = madd::<FMA>(n, -LN2_LO, madd::<FMA>(n, -LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 0.5);
    let y = madd::<FMA>(p, r * r, r + 1.0);
    // SAFETY: n is an integer in [−126, 127] after the clamp (so also a normal biased
    // exponent). The unchecked conversion is one instruction; `as` would add the
    // saturation handling, which LLVM does not vectorise well (4× slower here).
    let n = unsafe { n.to_int_unchecked::<i32>() };
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    y * scale
}

/// Swish `x·σ(x) = x / (1 + e⁻ˣ)`.
#[inline(always)]
pub fn swish<const FMA: bool>(x: f32) -> f32 {
    x / (1.0 + exp::<FMA>(-x))
}

/// Applies `act` to every value of `xs` (kept as its own loop so that it vectorises).
/// Swish uses [`avx512::swish_slice`] where the CPU has AVX-512.
#[inline(always)]
pub fn activate_slice<const FMA: bool>(act: Activation, xs: &mut [f32]) {
    match act {
        Activation::Swish => {
            #[cfg(target_arch = "x86_64")]
            if FMA && has_avx512() {
                // SAFETY: the CPU has AVX-512 F.
                unsafe { avx512::swish_slice(xs) };
                return;
            }
            xs.iter_mut().for_each(|x| *x = swish::<FMA>(*x))
        }
        Activation::Relu6 => xs.iter_mut().for_each(|x| *x = x.clamp(0.0, 6.0)),
    }
}

/// Activations in AVX-512: on registers for kernels written in intrinsics
/// ([`avx512::activate16`]), and swish over slices with AVX-512's exponent instructions,
/// about 1.5× faster than the portable [`swish`] loop, which matters because swish runs on
/// every expanded map of the backbone (about 36 million values per D0 pass at 512).
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use crate::detector::model::Activation;

    /// `act(x)` for 16 values in a register.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub fn activate16(act: Option<Activation>, x: __m512) -> __m512 {
        match act {
            None => x,
            Some(Activation::Relu6) => {
                _mm512_min_ps(_mm512_max_ps(x, _mm512_setzero_ps()), _mm512_set1_ps(6.0))
            }
            Some(Activation::Swish) => swish16(x),
        }
    }

    /// `x / (1 + e⁻ˣ)` for 16 values. `e⁻ˣ = 2ᵗ` with `t = −x·log₂e` split into an
    /// integer `n` and `f ∈ [−½, ½]`: adding 1.5·2²³ rounds `t` to an integer in the
    /// mantissa (one FMA, where a rounding instruction costs two µops), and `f` is taken
    /// with a single rounding by a second FMA. `2ᶠ` is a degree-5 minimax polynomial
    /// (relative error 2.3e-7) and `vscalefps` multiplies by `2ⁿ`, saturating to 0 or ∞
    /// without a clamp (beyond |t| ≈ 2²², where the rounding is inexact, `2ᵗ` is 0 or ∞
    /// anyway). Relative error of the result: below 1e-6.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn swish16(x: __m512) -> __m512 {
        const P: [f32; 6] = [
            1.327_647_1e-3,
            9.675_541e-3,
            5.550_713e-2,
            2.402_212e-1,
            6.931_469_4e-1,
            1.000_000_1,
        ];
        let shifter = _mm512_set1_ps(1.5 * (1u32 << 23) as f32);
        let minus_log2e = _mm512_set1_ps(-std::f32::consts::LOG2_E);
        let n = _mm512_sub_ps(_mm512_fmadd_ps(x, minus_log2e, shifter), shifter);
        let f = _mm512_fmsub_ps(x, minus_log2e, n);
        let mut p = _mm512_set1_ps(P[0]);
        for c in &P[1..] {
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(*c));
        }
        let e = _mm512_scalef_ps(p, n);
        _mm512_div_ps(x, _mm512_add_ps(e, _mm512_set1_ps(1.0)))
    }

    /// Swish in place, 16 values at a time (the tail masked).
    #[target_feature(enable = "avx512f")]
    pub fn swish_slice(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: `c` holds 16 values.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), swish16(_mm512_loadu_ps(c.as_ptr()))) };
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let mask = ((1u32 << tail.len()) - 1) as __mmask16;
            // SAFETY: the mask covers the tail's values only.
            unsafe {
                let x = _mm512_maskz_loadu_ps(mask, tail.as_ptr());
                _mm512_mask_storeu_ps(tail.as_mut_ptr(), mask, swish16(x));
            }
        }
    }
}

/// Applies `act` to every value of `xs` (for small vectors; not multiversioned).
pub fn activate_in_place(act: Activation, xs: &mut [f32]) {
    activate_slice::<false>(act, xs);
}

multiversion! {
    /// `xs[i] = act(xs[i] + bias[i % C] (+ residual[i]))` over rows of `C = bias.len()`
    /// values: the epilogue of a 1×1 convolution computed as a matrix product.
    pub fn bias_activation(
        xs: &mut [f32],
        bias: &[f32],
        residual: Option<&[f32]>,
        act: Option<Activation>,
    ) {
        let c = bias.len();
        match (residual, act) {
            (None, None) => {
                for row in xs.chunks_exact_mut(c) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x += b;
                    }
                }
            }
            (Some(res), None) => {
                for (row, res) in xs.chunks_exact_mut(c).zip(res.chunks_exact(c)) {
                    for ((x, b), r) in row.iter_mut().zip(bias).zip(res) {
                        *x += b + r;
                    }
                }
            }
            (None, Some(Activation::Swish)) => {
                for row in xs.chunks_exact_mut(c) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x += b;
                    }
                    activate_slice::<FMA>(Activation::Swish, row);
                }
            }
            (None, Some(Activation::Relu6)) => {
                for row in xs.chunks_exact_mut(c) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x = (*x + b).clamp(0.0, 6.0);
                    }
                }
            }
            (Some(res), Some(a)) => {
                for (row, res) in xs.chunks_exact_mut(c).zip(res.chunks_exact(c)) {
                    for ((x, b), r) in row.iter_mut().zip(bias).zip(res) {
                        *x += b + r;
                    }
                    activate_slice::<FMA>(a, row);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_to_float_precision() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let want = (x as f64).exp();
            for got in [exp::<true>(x), exp::<false>(x)] {
                worst = worst.max(((got as f64 - want) / want).abs());
            }
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(exp::<false>(-1000.0) > 0.0 && exp::<false>(1000.0).is_finite());
    }

    #[test]
    fn swish_is_accurate_on_every_path_and_slice_length() {
        let swish64 = |x: f64| x / (1.0 + (-x).exp());
        // Every length up to 40 (whole vectors and masked tails), values over [-95, 95]
        // and the extremes, where e⁻ˣ over- or underflows.
        for len in 0..=40 {
            let xs: Vec<f32> = (0..len)
                .map(|i| match i {
                    0 => -1e4,
                    1 => 1e4,
                    _ => (i as f32 * 37.3) % 190.0 - 95.0,
                })
                .collect();
            let mut vector = xs.clone();
            activate_slice::<true>(Activation::Swish, &mut vector); // AVX-512 where present
            let mut portable = xs.clone();
            portable.iter_mut().for_each(|x| *x = swish::<false>(*x));
            for (i, &x) in xs.iter().enumerate() {
                let want = swish64(x as f64);
                for got in [vector[i], portable[i]] {
                    let err = (got as f64 - want).abs() / want.abs().max(1e-6);
                    assert!(
                        got.is_finite() && err < 2e-6,
                        "swish({x}) = {got}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn epilogue_matches_the_formula_on_every_path() {
        let bias = [0.5f32, -1.0, 2.0];
        let xs: Vec<f32> = (0..12).map(|i| i as f32 * 0.7 - 4.0).collect();
        let res: Vec<f32> = (0..12).map(|i| (i as f32).sin()).collect();
        for act in [None, Some(Activation::Swish), Some(Activation::Relu6)] {
            for residual in [None, Some(res.as_slice())] {
                let mut got = xs.clone();
                bias_activation(&mut got, &bias, residual, act);
                for (i, g) in got.iter().enumerate() {
                    let v =
                        xs[i] as f64 + bias[i % 3] as f64 + residual.map_or(0.0, |r| r[i] as f64);
                    let want = match act {
                        None => v,
                        Some(Activation::Swish) => v / (1.0 + (-v).exp()),
                        Some(Activation::Relu6) => v.clamp(0.0, 6.0),
                    };
                    assert!(
                        (*g as f64 - want).abs() < 1e-5,
                        "{act:?} {i}: {g} vs {want}"
                    );
                }
            }
        }
    }
}
