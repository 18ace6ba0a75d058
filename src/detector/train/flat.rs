//! Many tensors as one flat buffer: the optimiser's moments and the EMA's averages each
//! live in one, so that an update is a few kernels instead of a few per tensor.

use tch::Tensor;

/// Where each tensor of a list starts in their concatenation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlatLayout {
    offsets: Vec<i64>,
    /// Elements in all.
    pub total: i64,
}

impl FlatLayout {
    pub fn of(tensors: &[Tensor]) -> Self {
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut total = 0i64;
        for t in tensors {
            offsets.push(total);
            total += t.numel() as i64;
        }
        Self { offsets, total }
    }

    /// Start of tensor `i`.
    pub fn offset(&self, i: usize) -> i64 {
        self.offsets[i]
    }

    /// Tensor `i`'s part of `buffer`, shaped like `like` (a view: writes go to `buffer`).
    pub fn view(&self, buffer: &Tensor, i: usize, like: &Tensor) -> Tensor {
        buffer
            .narrow(0, self.offsets[i], like.numel() as i64)
            .view_as(like)
    }
}

/// The tensors flattened and concatenated (one copy).
pub fn concat(tensors: impl Iterator<Item = Tensor>) -> Tensor {
    let flat: Vec<Tensor> = tensors.map(|t| t.reshape([-1])).collect();
    Tensor::cat(&flat, 0)
}
