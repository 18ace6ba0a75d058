//! 1×1 convolutions as matrix products on channels-last maps.
//!
//! In NHWC a 1×1 convolution is `[pixels, C_in] × [C_in, C_out]`, which libtorch's BLAS
//! runs at close to its matmul peak, where its NCHW convolution would reorder the data
//! around the product. The product is taken in row blocks that fit in the L2 cache, and
//! each block's bias, activation and residual are applied while it is still there.

use tch::{Device, Kind, TchError, Tensor};

use super::map::{BufferPool, FeatureMap};
use super::parallel::for_row_blocks;
use super::params;
use super::simd::bias_activation;
use crate::detector::model::same_pad::SameConv2d;
use crate::detector::model::Activation;

/// Output values per row block (256 KiB of f32).
const BLOCK_VALUES: usize = 1 << 16;

/// A 1×1 convolution with bias.
#[derive(Debug)]
pub struct Pointwise {
    /// `[C_in, C_out]`, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
    pub in_channels: usize,
    pub out_channels: usize,
}

impl Pointwise {
    /// From a (BatchNorm-folded) 1×1 `SameConv2d`; a conv without bias gets a zero one.
    pub fn from_conv(conv: &SameConv2d) -> Result<Self, TchError> {
        let size = conv.ws.size();
        Ok(Self {
            // [C_out, C_in, 1, 1] → [C_in, 1, 1, C_out].
            weight: params::weight(conv, [1, 2, 3, 0])?,
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
        let block_rows = (BLOCK_VALUES / n).max(8);
        let mut gated = Vec::new();
        for b in 0..input.batch {
            let weight: &[f32] = match gates {
                Some(g) => {
                    gated.clear();
                    for (row, gate) in self.weight.chunks_exact(n).zip(&g[b * k..(b + 1) * k]) {
                        gated.extend(row.iter().map(|w| w * gate));
                    }
                    &gated
                }
                None => &self.weight,
            };
            let a = &input.values()[b * per_image * k..(b + 1) * per_image * k];
            let o = &mut out.values_mut()[b * per_image * n..(b + 1) * per_image * n];
            let res = residual.map(|r| &r.values()[b * per_image * n..(b + 1) * per_image * n]);
            let bias = &self.bias;
            let results = for_row_blocks(threads, o, n, |first, rows_out| {
                for (i, o_block) in rows_out.chunks_mut(block_rows * n).enumerate() {
                    let start = first + i * block_rows;
                    let rows = o_block.len() / n;
                    matmul_into(&a[start * k..(start + rows) * k], weight, n, o_block)?;
                    let res = res.map(|r| &r[start * n..(start + rows) * n]);
                    bias_activation(o_block, bias, res, act);
                }
                Ok::<(), TchError>(())
            });
            results.into_iter().collect::<Result<(), TchError>>()?;
        }
        Ok(out)
    }

    /// `act(a × W + b)` for a few rows `a` (`[rows, C_in]`) into `out` (`[rows, C_out]`).
    pub fn rows_into(
        &self,
        a: &[f32],
        out: &mut [f32],
        act: Option<Activation>,
    ) -> Result<(), TchError> {
        matmul_into(a, &self.weight, self.out_channels, out)?;
        bias_activation(out, &self.bias, None, act);
        Ok(())
    }
}

/// `out = a × w` for row-major `a` (`[rows, k]`), `w` (`[k, n]`) and `out` (`[rows, n]`),
/// written straight into `out` by libtorch's BLAS (no copies).
pub fn matmul_into(a: &[f32], w: &[f32], n: usize, out: &mut [f32]) -> Result<(), TchError> {
    let k = w.len() / n;
    let rows = out.len() / n;
    assert!(a.len() == rows * k && w.len() == k * n && out.len() == rows * n);
    let view = |data: *const f32, r: usize, c: usize| {
        // SAFETY: `data` points to `r · c` live f32 values (asserted above) that outlive
        // this call; the tensors are dropped before it returns, and libtorch cannot
        // resize a tensor over foreign memory.
        unsafe {
            Tensor::from_blob(
                data as *const u8,
                &[r as i64, c as i64],
                &[c as i64, 1],
                Kind::Float,
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

    #[test]
    fn matmul_writes_into_the_slice() {
        let a: Vec<f32> = (0..6).map(|i| i as f32).collect(); // [3, 2]
        let w = [1.0f32, 2.0, 3.0, 4.0];
        let mut out = vec![0.0f32; 6];
        matmul_into(&a, &w, 2, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0, 11.0, 16.0, 19.0, 28.0]);
    }
}
