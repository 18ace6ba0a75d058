//! 1×1 convolutions as matrix products on channels-last maps.
//!
//! In NHWC a 1×1 convolution is `[pixels, C_in] × [C_in, C_out]`, which libtorch's BLAS
//! runs at close to its matmul peak, where its NCHW convolution would reorder the data
//! around the product. The product is taken in row blocks that fit in the L2 cache, and
//! each block's bias, activation and residual are applied while it is still there.

use tch::{Device, Kind, TchError, Tensor};

use super::map::{BufferPool, FeatureMap};
use super::parallel::for_row_blocks;
use super::simd::bias_activation;
use crate::detector::model::same_pad::SameConv2d;
use crate::detector::model::Activation;

/// Output values per row block (256 KiB of f32).
const BLOCK_VALUES: usize = 1 << 16;

/// A 1×1 convolution with bias.
#[derive(Debug)]
pub struct Pointwise {
    /// `[C_in, C_out]`, contiguous.
    weight: Tensor,
    bias: Vec<f32>,
    pub in_channels: usize,
    pub out_channels: usize,
}

impl Pointwise {
    /// From a (BatchNorm-folded) 1×1 `SameConv2d`; a conv without bias gets a zero one.
    pub fn from_conv(conv: &SameConv2d) -> Result<Self, TchError> {
        let size = conv.ws.size();
        let (cout, cin) = (size[0], size[1]);
        let weight = tch::no_grad(|| {
            conv.ws
                .detach()
                .to_kind(Kind::Float)
                .view([cout, cin])
                .transpose(0, 1)
                .contiguous()
        });
        let bias = match &conv.bs {
            Some(b) => Vec::<f32>::try_from(b.detach().to_kind(Kind::Float).flatten(0, -1))?,
            None => vec![0.0; cout as usize],
        };
        Ok(Self {
            weight,
            bias,
            in_channels: cin as usize,
            out_channels: cout as usize,
        })
    }

    /// `act(input × W + b (+ residual))`. With `gates` (`[batch, C_in]`, squeeze-excitation),
    /// each image's input channels are first scaled by its gates — folded into a per-image
    /// copy of `W`, so the gated map is never written.
    pub fn run(
        &self,
        pool: &BufferPool,
        input: &FeatureMap,
        act: Option<Activation>,
        residual: Option<&FeatureMap>,
        gates: Option<&Tensor>,
        threads: usize,
    ) -> Result<FeatureMap, TchError> {
        debug_assert_eq!(input.channels, self.in_channels);
        let mut out = pool.map(input.batch, input.height, input.width, self.out_channels);
        let (k, n) = (self.in_channels, self.out_channels);
        let per_image = input.height * input.width;
        let block_rows = (BLOCK_VALUES / n).max(8);
        for b in 0..input.batch {
            let weight = match gates {
                Some(g) => &self.weight * g.get(b as i64).view([-1, 1]),
                None => self.weight.shallow_clone(),
            };
            let a = &input.values()[b * per_image * k..(b + 1) * per_image * k];
            let o = &mut out.values_mut()[b * per_image * n..(b + 1) * per_image * n];
            let res = residual.map(|r| &r.values()[b * per_image * n..(b + 1) * per_image * n]);
            if threads > 1 {
                // libtorch splits the product over its threads; the epilogue over ours.
                matmul_into(a, k, &weight, n, o)?;
                let bias = &self.bias;
                for_row_blocks(threads, o, n, |row, block| {
                    let res = res.map(|r| &r[row * n..row * n + block.len()]);
                    bias_activation(block, bias, res, act);
                });
            } else {
                for (i, o_block) in o.chunks_mut(block_rows * n).enumerate() {
                    let rows = o_block.len() / n;
                    let start = i * block_rows;
                    matmul_into(&a[start * k..(start + rows) * k], k, &weight, n, o_block)?;
                    let res = res.map(|r| &r[start * n..(start + rows) * n]);
                    bias_activation(o_block, &self.bias, res, act);
                }
            }
        }
        Ok(out)
    }
}

impl Pointwise {
    /// `act(a × W + b)` for a few rows `a` (`[rows, C_in]`) into `out` (`[rows, C_out]`).
    pub fn rows_into(
        &self,
        a: &[f32],
        out: &mut [f32],
        act: Option<Activation>,
    ) -> Result<(), TchError> {
        matmul_into(a, self.in_channels, &self.weight, self.out_channels, out)?;
        bias_activation(out, &self.bias, None, act);
        Ok(())
    }
}

/// `out = a × w` for a row-major `a` of `k` columns and a `[k, n]` tensor `w`, written
/// straight into `out` by libtorch's BLAS (no copies).
pub fn matmul_into(
    a: &[f32],
    k: usize,
    w: &Tensor,
    n: usize,
    out: &mut [f32],
) -> Result<(), TchError> {
    let rows = a.len() / k;
    debug_assert_eq!(out.len(), rows * n);
    // SAFETY: both tensors view live, correctly sized, contiguous f32 slices and are
    // dropped before this function returns; `out` is exclusively borrowed. libtorch cannot
    // resize a tensor over foreign memory, so a shape mistake is an error, not a write out
    // of bounds.
    let (a_t, out_t) = unsafe {
        (
            Tensor::from_blob(
                a.as_ptr() as *const u8,
                &[rows as i64, k as i64],
                &[k as i64, 1],
                Kind::Float,
                Device::Cpu,
            ),
            Tensor::from_blob(
                out.as_mut_ptr() as *const u8,
                &[rows as i64, n as i64],
                &[n as i64, 1],
                Kind::Float,
                Device::Cpu,
            ),
        )
    };
    let _ = a_t.f_mm_out(&out_t, w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_writes_into_the_slice() {
        let a: Vec<f32> = (0..6).map(|i| i as f32).collect(); // [3, 2]
        let w = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let mut out = vec![0.0f32; 6];
        matmul_into(&a, 2, &w, 2, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0, 11.0, 16.0, 19.0, 28.0]);
    }
}
