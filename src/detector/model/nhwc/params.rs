//! Reading a convolution's parameters out of libtorch into the engine's layouts.

use tch::{Kind, TchError, Tensor};

use crate::detector::model::same_pad::SameConv2d;

/// A tensor's values as f32, in row-major order.
pub fn values(t: &Tensor) -> Result<Vec<f32>, TchError> {
    tch::no_grad(|| {
        Vec::<f32>::try_from(t.detach().to_kind(Kind::Float).contiguous().flatten(0, -1))
    })
}

/// The conv's `[C_out, C_in, kh, kw]` weight with its axes in the order `axes`.
pub fn weight(conv: &SameConv2d, axes: [i64; 4]) -> Result<Vec<f32>, TchError> {
    values(&conv.ws.permute(axes))
}

/// The conv's bias; zeros when it has none.
pub fn bias(conv: &SameConv2d) -> Result<Vec<f32>, TchError> {
    match &conv.bs {
        Some(b) => values(b),
        None => Ok(vec![0.0; conv.out_channels() as usize]),
    }
}
