//! 1×1 convolutions as matrix products on channels-last maps.
//!
//! In NHWC a 1×1 convolution is `[pixels, C_in] × [C_in, C_out]`, which libtorch's BLAS
//! runs at close to its matmul peak, where its NCHW convolution would reorder the data
//! around the product. The product is taken in row blocks that fit in the L2 cache, and
//! each block's bias, activation and residual are applied while it is still there.
//!
//! In [`Precision::Bf16`] the block and the weights are rounded to bfloat16 (nearest,
//! ties to even) and multiplied with float32 accumulation: on AMX tiles by the engine's
//! own kernel ([`super::amx`]), every layer, the products staying float32; on a CPU with
//! AVX512-BF16 but no AMX by oneDNN's bfloat16 kernels, only the layers large enough to
//! pay for its calls, the products coming back as bfloat16 (one more rounding).

use std::cell::RefCell;

use tch::{Device, Kind, TchError, Tensor};

use super::amx::{self, bf16_bits, PackedBf16};
use super::map::{BufferPool, FeatureMap};
use super::parallel::for_row_blocks;
use super::params;
use super::simd::bias_activation;
use crate::detector::model::same_pad::SameConv2d;
use crate::detector::model::Activation;
use crate::detector::precision::Precision;

/// Output values per row block (256 KiB of f32).
const BLOCK_VALUES: usize = 1 << 16;

/// Output values per row block of a bfloat16 product: libtorch's bfloat16 `mm` costs about
/// 40 µs per call on top of the arithmetic (oneDNN's dispatch), so it gets larger blocks.
const BF16_BLOCK_VALUES: usize = 1 << 18;

/// A layer runs its products in bfloat16 only when a product of the rows it is computed in
/// (a row block, or the whole map when smaller; 1024 rows in the fused expansion) has this
/// many multiply-adds: below it the call's overhead eats the gain (measured on one thread:
/// `[256×16]·[16×96]` 4× slower in bfloat16, `[1024×144]·[144×24]` (3.5 M) 1.15× faster,
/// `[100×192]·[192×1152]` 3× faster). The choice depends on the layer and the map size
/// only, never on the thread count, so results do not change with it.
const BF16_MIN_MACS: usize = 1 << 22;

/// Rows per product of the fused expansion.
const RING_ROWS: usize = 256;

/// Rows per product of the fused expansion when it runs in oneDNN's bfloat16.
const BF16_RING_ROWS: usize = 1024;

/// A 1×1 convolution with bias.
#[derive(Debug)]
pub struct Pointwise {
    /// `[C_in, C_out]`, row-major.
    weight: Vec<f32>,
    /// `weight` rounded to bfloat16, when the products run in [`Precision::Bf16`].
    weight_bf16: Option<Bf16Weights>,
    bias: Vec<f32>,
    pub in_channels: usize,
    pub out_channels: usize,
}

impl Pointwise {
    /// From a (BatchNorm-folded) 1×1 `SameConv2d`; a conv without bias gets a zero one.
    /// Its matrix products run in `precision`.
    pub fn from_conv(conv: &SameConv2d, precision: Precision) -> Result<Self, TchError> {
        let size = conv.ws.size();
        // [C_out, C_in, 1, 1] → [C_in, 1, 1, C_out].
        let weight = params::weight(conv, [1, 2, 3, 0])?;
        Ok(Self {
            weight_bf16: (precision == Precision::Bf16).then(|| {
                if amx::available() {
                    Bf16Weights::Tiles(PackedBf16::pack(
                        &weight,
                        size[1] as usize,
                        size[0] as usize,
                    ))
                } else {
                    Bf16Weights::Onednn(to_bf16(&weight))
                }
            }),
            weight,
            bias: params::bias(conv)?,
            in_channels: size[1] as usize,
            out_channels: size[0] as usize,
        })
    }

    /// `x × W + b` for a single pixel `x` (a dense layer).
    pub fn dense(&self, x: &[f32]) -> Vec<f32> {
        let mut y = self.bias.clone();
        for (xi, row) in x.iter().zip(self.weight.chunks_exact(self.out_channels)) {
            for (yj, wj) in y.iter_mut().zip(row) {
                *yj += xi * wj;
            }
        }
        y
    }

    /// `act(input × W + b (+ residual))`. With `gates` (`[batch × C_in]`,
    /// squeeze-excitation), each image's input channels are first scaled by its gates —
    /// folded into a per-image copy of `W`, so the gated map is never written.
    pub fn run(
        &self,
        pool: &BufferPool,
        input: &FeatureMap,
        act: Option<Activation>,
        residual: Option<&FeatureMap>,
        gates: Option<&[f32]>,
        threads: usize,
    ) -> Result<FeatureMap, TchError> {
        debug_assert_eq!(input.channels, self.in_channels);
        let mut out = pool.map(input.batch, input.height, input.width, self.out_channels);
        let (k, n) = (self.in_channels, self.out_channels);
        let per_image = input.height * input.width;
        let onednn = matches!(self.weight_bf16, Some(Bf16Weights::Onednn(_)));
        let bf16 = self.bf16_for_rows(per_image.min((BF16_BLOCK_VALUES / n).max(8)));
        let block_values = if bf16 && onednn {
            BF16_BLOCK_VALUES
        } else {
            BLOCK_VALUES
        };
        let block_rows = (block_values / n).max(8);
        let (mut gated, mut gated_bf16) = (Vec::new(), Vec::new());
        for b in 0..input.batch {
            let image_gates = gates.map(|g| &g[b * k..(b + 1) * k]);
            let (weight, row_gates) = match (image_gates, self.weights(bf16)) {
                // The tiles' kernel scales the rows instead of the weights.
                (Some(g), Weights::Tiles(tiles)) => (Weights::Tiles(tiles), Some(g)),
                (Some(g), _) => {
                    gated.clear();
                    for (row, gate) in self.weight.chunks_exact(n).zip(g) {
                        gated.extend(row.iter().map(|w| w * gate));
                    }
                    if bf16 {
                        round_into(&gated, &mut gated_bf16);
                        (Weights::Onednn(&gated_bf16), None)
                    } else {
                        (Weights::F32(&gated), None)
                    }
                }
                (None, weights) => (weights, None),
            };
            let a = &input.values()[b * per_image * k..(b + 1) * per_image * k];
            let o = &mut out.values_mut()[b * per_image * n..(b + 1) * per_image * n];
            let res = residual.map(|r| &r.values()[b * per_image * n..(b + 1) * per_image * n]);
            let results = for_row_blocks(threads, o, n, |first, rows_out| {
                for (i, o_block) in rows_out.chunks_mut(block_rows * n).enumerate() {
                    let start = first + i * block_rows;
                    let rows = o_block.len() / n;
                    let epilogue = Epilogue {
                        bias: &self.bias,
                        residual: res.map(|r| &r[start * n..(start + rows) * n]),
                        act,
                    };
                    let a = &a[start * k..(start + rows) * k];
                    weight.product_into(a, row_gates, n, o_block, epilogue)?;
                }
                Ok::<(), TchError>(())
            });
            results.into_iter().collect::<Result<(), TchError>>()?;
        }
        Ok(out)
    }

    /// `act(a × W + b (+ residual))` for a few rows `a` (`[rows, C_in]`) into `out`
    /// (`[rows, C_out]`), in bfloat16 when `bf16` (and the layer has bfloat16 weights).
    pub fn rows_into(
        &self,
        a: &[f32],
        out: &mut [f32],
        act: Option<Activation>,
        residual: Option<&[f32]>,
        bf16: bool,
    ) -> Result<(), TchError> {
        let epilogue = Epilogue {
            bias: &self.bias,
            residual,
            act,
        };
        self.weights(bf16)
            .product_into(a, None, self.out_channels, out, epilogue)
    }

    /// Whether this layer's products of `rows` rows run in bfloat16: in
    /// [`Precision::Bf16`], always on AMX tiles, through oneDNN when they are large enough
    /// ([`BF16_MIN_MACS`]).
    pub fn bf16_for_rows(&self, rows: usize) -> bool {
        match self.weight_bf16 {
            Some(Bf16Weights::Tiles(_)) => true,
            Some(Bf16Weights::Onednn(_)) => {
                rows * self.in_channels * self.out_channels >= BF16_MIN_MACS
            }
            None => false,
        }
    }

    /// Rows per product of the fused expansion, and whether those products run in
    /// bfloat16 (pass it to [`Pointwise::rows_into`]).
    pub fn ring_rows(&self) -> (usize, bool) {
        match self.weight_bf16 {
            Some(Bf16Weights::Onednn(_)) if self.bf16_for_rows(BF16_RING_ROWS) => {
                (BF16_RING_ROWS, true)
            }
            _ => (RING_ROWS, self.bf16_for_rows(RING_ROWS)),
        }
    }

    /// The weights in bfloat16 or float32.
    fn weights(&self, bf16: bool) -> Weights<'_> {
        match &self.weight_bf16 {
            Some(Bf16Weights::Tiles(w)) if bf16 => Weights::Tiles(w),
            Some(Bf16Weights::Onednn(w)) if bf16 => Weights::Onednn(w),
            _ => Weights::F32(&self.weight),
        }
    }
}

/// A layer's weights in bfloat16.
#[derive(Debug)]
enum Bf16Weights {
    /// Packed for the engine's AMX kernel.
    Tiles(PackedBf16),
    /// `[C_in, C_out]` bit patterns for oneDNN (a CPU with AVX512-BF16 but no AMX).
    Onednn(Vec<u16>),
}

/// A `[C_in, C_out]` weight matrix in the precision its products run in.
#[derive(Clone, Copy)]
enum Weights<'a> {
    F32(&'a [f32]),
    /// Bfloat16 bit patterns, multiplied by oneDNN.
    Onednn(&'a [u16]),
    /// Bfloat16 AMX tiles, multiplied by the engine's kernel.
    Tiles(&'a PackedBf16),
}

thread_local! {
    /// Each thread's bfloat16 copies of a block's input and products (one block each,
    /// reused across calls).
    static BF16_SCRATCH: RefCell<(Vec<u16>, Vec<u16>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Weights<'_> {
    /// `out = epilogue(a × W)` (row-major `a`: `[rows, k]`, `out`: `[rows, n]`); `gates`
    /// (`[k]`) scale `a`'s columns first, and only the tiles take them. The tiles apply
    /// the epilogue to each 32 rows as they come out of the kernel, the others to the
    /// whole product.
    fn product_into(
        self,
        a: &[f32],
        gates: Option<&[f32]>,
        n: usize,
        out: &mut [f32],
        epilogue: Epilogue<'_>,
    ) -> Result<(), TchError> {
        debug_assert!(gates.is_none() || matches!(self, Weights::Tiles(_)));
        match self {
            Weights::Tiles(w) => {
                w.product_into(a, gates, out, |rows, first| epilogue.apply(rows, first))
            }
            Weights::F32(w) => {
                matmul_into(a, w, n, out)?;
                epilogue.apply(out, 0);
            }
            Weights::Onednn(w) => {
                BF16_SCRATCH.with_borrow_mut(|(a16, out16)| {
                    round_into(a, a16);
                    out16.resize(out.len(), 0);
                    matmul_bf16_into(a16, w, n, out16)?;
                    for (o, &h) in out.iter_mut().zip(out16.iter()) {
                        *o = f32::from_bits(u32::from(h) << 16);
                    }
                    Ok::<(), TchError>(())
                })?;
                epilogue.apply(out, 0);
            }
        }
        Ok(())
    }
}

/// Bias, residual and activation, applied to a product's rows.
#[derive(Clone, Copy)]
struct Epilogue<'a> {
    bias: &'a [f32],
    /// The residual of the whole product (`[rows, n]`).
    residual: Option<&'a [f32]>,
    act: Option<Activation>,
}

impl Epilogue<'_> {
    /// `rows` (the product's rows from `first` on) ← `act(rows + bias (+ residual))`.
    fn apply(&self, rows: &mut [f32], first: usize) {
        let n = self.bias.len();
        let residual = self.residual.map(|r| &r[first * n..first * n + rows.len()]);
        bias_activation(rows, self.bias, residual, self.act);
    }
}

/// `values` rounded to bfloat16 into `out` (resized to fit).
fn round_into(values: &[f32], out: &mut Vec<u16>) {
    out.clear();
    out.extend(values.iter().map(|&x| bf16_bits(x)));
}

/// `values` rounded to bfloat16.
fn to_bf16(values: &[f32]) -> Vec<u16> {
    let mut out = Vec::with_capacity(values.len());
    round_into(values, &mut out);
    out
}

/// `out = a × w` for row-major `a` (`[rows, k]`), `w` (`[k, n]`) and `out` (`[rows, n]`),
/// written straight into `out` by libtorch's BLAS (no copies).
pub fn matmul_into(a: &[f32], w: &[f32], n: usize, out: &mut [f32]) -> Result<(), TchError> {
    mm_views(a, w, n, out, Kind::Float)
}

/// [`matmul_into`] on bfloat16 bit patterns: oneDNN's bfloat16 product, accumulated in
/// float32 and rounded to bfloat16 into `out`.
fn matmul_bf16_into(a: &[u16], w: &[u16], n: usize, out: &mut [u16]) -> Result<(), TchError> {
    mm_views(a, w, n, out, Kind::BFloat16)
}

/// `out = a × w` on row-major slices whose elements are `kind` values.
fn mm_views<T>(a: &[T], w: &[T], n: usize, out: &mut [T], kind: Kind) -> Result<(), TchError> {
    let k = w.len() / n;
    let rows = out.len() / n;
    assert!(a.len() == rows * k && w.len() == k * n && out.len() == rows * n);
    assert_eq!(std::mem::size_of::<T>(), kind.elt_size_in_bytes());
    let view = |data: *const T, r: usize, c: usize| {
        // SAFETY: `data` points to `r · c` live values of `kind`'s size (asserted above)
        // that outlive this call; the tensors are dropped before it returns, and libtorch
        // cannot resize a tensor over foreign memory.
        unsafe {
            Tensor::from_blob(
                data as *const u8,
                &[r as i64, c as i64],
                &[c as i64, 1],
                kind,
                Device::Cpu,
            )
        }
    };
    let (a_t, w_t, out_t) = (
        view(a.as_ptr(), rows, k),
        view(w.as_ptr(), k, n),
        view(out.as_mut_ptr(), rows, n),
    );
    let _ = a_t.f_mm_out(&out_t, &w_t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::model::nhwc::tests::scattered;

    #[test]
    fn matmul_writes_into_the_slice() {
        let a: Vec<f32> = (0..6).map(|i| i as f32).collect(); // [3, 2]
        let w = [1.0f32, 2.0, 3.0, 4.0];
        let mut out = vec![0.0f32; 6];
        matmul_into(&a, &w, 2, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0, 11.0, 16.0, 19.0, 28.0]);
    }

    /// A zero bias and nothing else: the bare product.
    fn no_epilogue(n: usize) -> Epilogue<'static> {
        Epilogue {
            bias: Vec::leak(vec![0.0; n]),
            residual: None,
            act: None,
        }
    }

    #[test]
    fn bfloat16_products_are_close_to_float32() {
        // Exact in bfloat16 (small integers), so the products must match exactly.
        let a: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let w = [1.0f32, 2.0, 3.0, 4.0];
        let mut out = vec![0.0f32; 6];
        Weights::Onednn(&to_bf16(&w))
            .product_into(&a, None, 2, &mut out, no_epilogue(2))
            .unwrap();
        assert_eq!(out, [3.0, 4.0, 11.0, 16.0, 19.0, 28.0]);
        // Random values: within bfloat16's rounding of the inputs and the product.
        let (rows, k, n) = (37, 64, 24);
        let a = scattered(rows * k, 7919, 101, 50.0, 1.0);
        let w = scattered(k * n, 104_729, 97, 48.0, 1.0);
        let (mut exact, mut low) = (vec![0.0f32; rows * n], vec![0.0f32; rows * n]);
        matmul_into(&a, &w, n, &mut exact).unwrap();
        Weights::Onednn(&to_bf16(&w))
            .product_into(&a, None, n, &mut low, no_epilogue(n))
            .unwrap();
        let scale = exact.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = exact
            .iter()
            .zip(&low)
            .map(|(e, l)| (e - l).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst > 0.0 && worst < 0.03 * scale,
            "worst {worst}, scale {scale}"
        );
    }
}
