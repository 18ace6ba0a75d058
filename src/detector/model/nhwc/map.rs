//! Channels-last feature maps and the pool their buffers come from.

use std::sync::Mutex;

use tch::Tensor;

/// A `[batch, height, width, channels]` float map, channels contiguous.
#[derive(Debug)]
pub struct FeatureMap {
    /// A pooled buffer of at least `len` values (never shortened, so that returning it to
    /// the pool costs nothing).
    buffer: Vec<f32>,
    len: usize,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl FeatureMap {
    /// The map's values.
    pub fn values(&self) -> &[f32] {
        &self.buffer[..self.len]
    }

    /// The map's values, mutably.
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }

    /// Values of one image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// `(height, width)`.
    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// A copy as a `[B, C, H, W]` tensor (a permuted view of NHWC data).
    pub fn to_nchw(&self) -> Tensor {
        let shape = [self.batch, self.height, self.width, self.channels].map(|d| d as i64);
        Tensor::from_slice(self.values())
            .view(shape)
            .permute([0, 3, 1, 2])
    }
}

/// Recycles map buffers between layers and between forward passes.
///
/// Fresh allocations of multi-megabyte buffers are page-faulted and zeroed by the kernel on
/// first touch, which costs as much as a pass of a kernel over them; reusing them makes
/// that a one-time cost per process.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<f32>>>,
}

impl BufferPool {
    /// A map of the given shape with unspecified contents (every kernel overwrites its
    /// whole output): the smallest free buffer that is large enough, or a new one.
    pub fn map(&self, batch: usize, height: usize, width: usize, channels: usize) -> FeatureMap {
        let len = batch * height * width * channels;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        let buffer = match best {
            Some(i) => free.swap_remove(i),
            None => vec![0.0; len],
        };
        FeatureMap {
            buffer,
            len,
            batch,
            height,
            width,
            channels,
        }
    }

    /// Returns a map's buffer to the pool.
    pub fn give(&self, map: FeatureMap) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push(map.buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_smallest_first() {
        let pool = BufferPool::default();
        let big = pool.map(1, 10, 10, 10);
        let small = pool.map(1, 10, 10, 1);
        let (big_ptr, small_ptr) = (big.values().as_ptr(), small.values().as_ptr());
        pool.give(big);
        pool.give(small);
        let again = pool.map(1, 5, 10, 1);
        assert_eq!(again.values().as_ptr(), small_ptr);
        assert_eq!(again.values().len(), 50);
        let again_big = pool.map(1, 5, 10, 10);
        assert_eq!(again_big.values().as_ptr(), big_ptr);
        assert_eq!(pool.map(2, 10, 10, 10).values().len(), 2000);
    }
}
