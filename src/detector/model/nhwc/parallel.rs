//! Splitting a kernel's output rows over the CPU threads.
//!
//! With several threads the engine parallelises only here, on rayon's pool, and keeps
//! libtorch's BLAS sequential inside each block ([`sequential_blas`]): BLAS calls that
//! fan out over OpenMP threads of their own would compete with rayon's workers for the
//! same cores.

use std::cell::Cell;

use rayon::prelude::*;

thread_local! {
    static SEQUENTIAL: Cell<bool> = const { Cell::new(false) };
}

/// Makes libtorch (OpenMP, MKL) single-threaded on the calling thread, once per thread.
/// libtorch's setting is per thread (its process-wide default only seeds threads that
/// have not used it yet, which [`restore_threads`] resets).
pub fn sequential_blas() {
    SEQUENTIAL.with(|done| {
        if !done.get() {
            tch::set_num_threads(1);
            done.set(true);
        }
    });
}

/// Puts libtorch's thread count back to `threads` on the calling thread (and as the
/// default for new threads) after a parallel pass.
pub fn restore_threads(threads: usize) {
    if threads > 1 {
        tch::set_num_threads(threads as i32);
    }
}

/// Outputs smaller than this are computed on one thread: splitting them costs more than
/// it saves.
const MIN_PARALLEL_VALUES: usize = 1 << 14;

/// Blocks per thread: more blocks than threads let rayon's work stealing even out a
/// core that is slower at the moment (this machine's are shared).
const BLOCKS_PER_THREAD: usize = 4;

/// Runs `f(first_row, rows_block)` over `out`, viewed as rows of `row_len` values, in
/// contiguous blocks ([`BLOCKS_PER_THREAD`] per thread) on the current rayon pool — one
/// block, on this thread, when `threads ≤ 1` or the output is small — and returns each
/// block's result in row order.
pub fn for_row_blocks<R: Send>(
    threads: usize,
    out: &mut [f32],
    row_len: usize,
    f: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> Vec<R> {
    let rows = out.len() / row_len.max(1);
    if threads <= 1 || rows < 2 || out.len() < MIN_PARALLEL_VALUES {
        return vec![f(0, out)];
    }
    let block_rows = rows.div_ceil(threads * BLOCKS_PER_THREAD);
    out.par_chunks_mut(block_rows * row_len)
        .enumerate()
        .map(|(i, block)| {
            sequential_blas();
            f(i * block_rows, block)
        })
        .collect()
}
