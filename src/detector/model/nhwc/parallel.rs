//! Splitting a kernel's output rows over the CPU threads.

use rayon::prelude::*;

/// Runs `f(first_row, rows_block)` over `out`, viewed as rows of `row_len` values, in
/// `threads` contiguous blocks (one block, on this thread, when `threads ≤ 1`), and returns
/// each block's result in row order.
pub fn for_row_blocks<R: Send>(
    threads: usize,
    out: &mut [f32],
    row_len: usize,
    f: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> Vec<R> {
    let rows = out.len() / row_len.max(1);
    if threads <= 1 || rows < 2 {
        return vec![f(0, out)];
    }
    let block_rows = rows.div_ceil(threads);
    out.par_chunks_mut(block_rows * row_len)
        .enumerate()
        .map(|(i, block)| f(i * block_rows, block))
        .collect()
}
