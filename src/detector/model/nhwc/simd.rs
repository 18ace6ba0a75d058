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

/// Applies `act` to one value.
#[inline(always)]
pub fn activate<const FMA: bool>(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Swish => swish::<FMA>(x),
        Activation::Relu6 => x.clamp(0.0, 6.0),
    }
}

/// Applies `act` to every value of `xs` (kept as its own loop so that it vectorises).
#[inline(always)]
pub fn activate_slice<const FMA: bool>(act: Activation, xs: &mut [f32]) {
    match act {
        Activation::Swish => xs.iter_mut().for_each(|x| *x = swish::<FMA>(*x)),
        Activation::Relu6 => xs.iter_mut().for_each(|x| *x = x.clamp(0.0, 6.0)),
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
                        *x = swish::<FMA>(*x + b);
                    }
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
                        *x = activate::<FMA>(a, *x + b + r);
                    }
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
