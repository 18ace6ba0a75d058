//! Bfloat16 matrix products on Intel AMX tiles, for the 1×1 convolutions in
//! [`Precision::Bf16`](crate::detector::precision::Precision::Bf16).
//!
//! An AMX tile holds 16 rows of 64 bytes; `tdpbf16ps` multiplies a 16×32 bfloat16 tile of
//! `A` by a 32×16 tile of `B` (stored as 16 rows of interleaved `k` pairs) into a 16×16
//! float32 tile, 16,384 multiply-adds in one instruction, accumulated in float32. The
//! kernel keeps a 32×32 block of the product in four tiles and streams `A`'s and `B`'s
//! tiles over `k`. `B` (the layer's weights) is packed into tiles once; `A` (the map's
//! rows) is rounded to bfloat16 per call, with the squeeze-excitation gates applied on
//! the way. The products stay float32: one rounding per input, none per output.
//!
//! libtorch's bfloat16 `mm` reaches the same hardware through oneDNN, but its dispatch
//! costs about 40 µs a call, more than most of this network's products take on AMX
//! (`[1024×144]·[144×24]`: 16 µs). Rust's AMX intrinsics are not stable, so the tile
//! instructions are inline assembly; everything else is AVX-512.
//!
//! Linux hands AMX's 8 KiB tile state to a process only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); [`available`] asks once and says whether it may.

use std::cell::RefCell;
use std::sync::OnceLock;

/// `k` values per `A` tile row (64 bytes of bfloat16), and `k` rows per `B` tile.
const TILE_K: usize = 32;
/// Rows of an `A` or output tile, and columns of a `B` or output tile.
const TILE: usize = 16;
/// Rows of the kernel's output block (2 × 2 tiles, or 2 × 1 at an odd last column).
const BLOCK: usize = 2 * TILE;

/// Whether this CPU and kernel run AMX bfloat16 products, and this process may use them.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use crate::detector::precision::cpu_has_bf16;
    use std::arch::x86_64::__cpuid_count;
    let (max_leaf, leaf7) = (__cpuid_count(0, 0).eax, __cpuid_count(7, 0));
    let (amx_bf16, amx_tile) = (1 << 22, 1 << 24);
    // The rounding pass needs AVX512-BF16 (which implies AVX-512F) besides the tiles.
    if max_leaf < 7 || leaf7.edx & (amx_bf16 | amx_tile) != amx_bf16 | amx_tile || !cpu_has_bf16() {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call; it fails (non-zero) on kernels without AMX support.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// A `[k, n]` weight matrix in bfloat16 `B` tiles: `k` padded with zeros to a multiple
/// of 32, `n` to a multiple of 16. Tile `(column block j, k block c)` starts at
/// `(j · k_blocks + c) · 512` and its row `r` holds, for each of its 16 columns, the pair
/// `(W[32c + 2r, ·], W[32c + 2r + 1, ·])`.
#[derive(Debug)]
pub struct PackedBf16 {
    tiles: Vec<u16>,
    k: usize,
    n: usize,
    k_pad: usize,
    n_pad: usize,
}

impl PackedBf16 {
    /// `w` (`[k, n]`, row-major float32) rounded to bfloat16 and packed.
    pub fn pack(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n);
        let (k_pad, n_pad) = (k.div_ceil(TILE_K) * TILE_K, n.div_ceil(TILE) * TILE);
        let k_blocks = k_pad / TILE_K;
        let mut tiles = vec![0u16; k_pad * n_pad];
        for (kk, row) in w.chunks_exact(n).enumerate() {
            let (c, pair_row, half) = (kk / TILE_K, (kk % TILE_K) / 2, kk % 2);
            for (nn, &x) in row.iter().enumerate() {
                let (j, col) = (nn / TILE, nn % TILE);
                let tile = (j * k_blocks + c) * TILE * TILE_K;
                tiles[tile + pair_row * TILE_K + col * 2 + half] = bf16_bits(x);
            }
        }
        Self {
            tiles,
            k,
            n,
            k_pad,
            n_pad,
        }
    }

    /// `out = (a ∘ gates) × W`: `a` is `[rows, k]`, `out` `[rows, n]` (row-major float32),
    /// `gates` (`[k]`) scale `a`'s columns first. `epilogue(rows, first)` is called on each
    /// 32 rows of `out` (from row `first`) as soon as they are computed, while they are
    /// in cache. Must only be called when [`available`].
    pub fn product_into(
        &self,
        a: &[f32],
        gates: Option<&[f32]>,
        out: &mut [f32],
        mut epilogue: impl FnMut(&mut [f32], usize),
    ) {
        let (k, n) = (self.k, self.n);
        let rows = out.len() / n;
        assert!(a.len() == rows * k && out.len() == rows * n && available());
        assert!(gates.is_none_or(|g| g.len() == k));
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.a.resize(BLOCK * self.k_pad, 0);
            scratch.c.resize(BLOCK * self.n_pad, 0.0);
            let config = TileConfig::all_full();
            // SAFETY: AMX is available (asserted); the configuration is a valid palette 1.
            unsafe {
                std::arch::asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly))
            };
            for first in (0..rows).step_by(BLOCK) {
                let group = BLOCK.min(rows - first);
                // SAFETY: `available` checked AVX-512 and AVX512-BF16; `scratch.a` holds
                // 32 rows of `k_pad`.
                unsafe {
                    round_rows(
                        &a[first * k..(first + group) * k],
                        k,
                        gates,
                        &mut scratch.a,
                        self.k_pad,
                    )
                };
                scratch.a[group * self.k_pad..].fill(0);
                let out_rows = &mut out[first * n..(first + group) * n];
                if group == BLOCK && n == self.n_pad {
                    // SAFETY: the tiles are configured; `out_rows` is 32 rows of `n_pad`.
                    unsafe { self.block(&scratch.a, out_rows.as_mut_ptr(), n) };
                } else {
                    // SAFETY: as above, into the 32 rows of `n_pad` of `scratch.c`.
                    unsafe { self.block(&scratch.a, scratch.c.as_mut_ptr(), self.n_pad) };
                    for (dst, src) in out_rows
                        .chunks_exact_mut(n)
                        .zip(scratch.c.chunks_exact(self.n_pad))
                    {
                        dst.copy_from_slice(&src[..n]);
                    }
                }
                epilogue(out_rows, first);
            }
            // SAFETY: releases the tiles configured above.
            unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
        });
    }

    /// `c[0..32, 0..n_pad] = a[0..32, ..] × W` on AMX tiles, `c`'s rows `ldc` floats
    /// apart.
    ///
    /// # Safety
    /// The tiles must be configured by [`TileConfig::all_full`]; `a` holds 32 rows of
    /// `k_pad` values and `c` points to 32 writable rows of `ldc ≥ n_pad` floats.
    unsafe fn block(&self, a: &[u16], c: *mut f32, ldc: usize) {
        debug_assert!(a.len() >= BLOCK * self.k_pad && ldc >= self.n_pad);
        let k_blocks = self.k_pad / TILE_K;
        let (a_stride, b_stride, c_stride) = (self.k_pad * 2, TILE_K * 2, ldc * 4);
        let b = self.tiles.as_ptr();
        let column_tiles = self.n_pad / TILE;
        for j in (0..column_tiles).step_by(2) {
            // Two column tiles, or the last one alone when their number is odd.
            let pair = j + 1 < column_tiles;
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for kb in 0..k_blocks {
                let a0 = a.as_ptr().add(kb * TILE_K);
                let a1 = a0.add(TILE * self.k_pad);
                let b0 = b.add((j * k_blocks + kb) * TILE * TILE_K);
                if pair {
                    let b1 = b0.add(k_blocks * TILE * TILE_K);
                    std::arch::asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tileloadd tmm6, [{b0} + {sb}*1]",
                        "tileloadd tmm7, [{b1} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0,
                        a1 = in(reg) a1,
                        b0 = in(reg) b0,
                        b1 = in(reg) b1,
                        sa = in(reg) a_stride,
                        sb = in(reg) b_stride,
                        options(nostack, readonly)
                    );
                } else {
                    std::arch::asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tileloadd tmm6, [{b0} + {sb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        a0 = in(reg) a0,
                        a1 = in(reg) a1,
                        b0 = in(reg) b0,
                        sa = in(reg) a_stride,
                        sb = in(reg) b_stride,
                        options(nostack, readonly)
                    );
                }
            }
            let c0 = c.add(j * TILE);
            let c2 = c0.add(TILE * ldc);
            std::arch::asm!(
                "tilestored [{c0} + {sc}*1], tmm0",
                "tilestored [{c2} + {sc}*1], tmm2",
                c0 = in(reg) c0,
                c2 = in(reg) c2,
                sc = in(reg) c_stride,
                options(nostack)
            );
            if pair {
                std::arch::asm!(
                    "tilestored [{c1} + {sc}*1], tmm1",
                    "tilestored [{c3} + {sc}*1], tmm3",
                    c1 = in(reg) c0.add(TILE),
                    c3 = in(reg) c2.add(TILE),
                    sc = in(reg) c_stride,
                    options(nostack)
                );
            }
        }
    }
}

/// The 64-byte operand of `ldtilecfg`: palette 1, and each tile's rows and bytes per row.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

impl TileConfig {
    /// Tiles 0–7 at their full 16 rows × 64 bytes.
    fn all_full() -> Self {
        let mut config = Self {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        config.bytes_per_row[..8].fill(64);
        config.rows[..8].fill(TILE as u8);
        config
    }
}

/// Each thread's bfloat16 rows of `A` and float32 output rows, reused across calls.
#[derive(Default)]
struct Scratch {
    a: Vec<u16>,
    c: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `x` rounded to the nearest bfloat16 (ties to even), as bit patterns. NaN stays NaN.
pub fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// Each row of `a` (`k` values, times `gates` when given) rounded to bfloat16 into a row
/// of `out` of `k_pad` values, zero-filled past `k`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16; `out` holds at least
/// `a.len() / k · k_pad` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_rows(a: &[f32], k: usize, gates: Option<&[f32]>, out: &mut [u16], k_pad: usize) {
    use std::arch::x86_64::*;
    // Per 16 columns: which of them lie inside `k`, and the gates (1 without them).
    let chunks = k_pad / 16;
    let masks: Vec<__mmask16> = (0..chunks)
        .map(|i| ((1u32 << k.saturating_sub(16 * i).min(16)) - 1) as __mmask16)
        .collect();
    let scales: Vec<__m512> = match gates {
        Some(g) => (0..chunks)
            // SAFETY: the mask enables only the gates inside `g` (`k` of them).
            .map(|i| unsafe { _mm512_maskz_loadu_ps(masks[i], g.as_ptr().wrapping_add(16 * i)) })
            .collect(),
        None => Vec::new(),
    };
    for (row, dst) in a.chunks_exact(k).zip(out.chunks_exact_mut(k_pad)) {
        for i in (0..chunks).step_by(2) {
            let at = 16 * i;
            // SAFETY: the masks enable only the values inside `row`.
            let (mut lo, mut hi) = unsafe {
                (
                    _mm512_maskz_loadu_ps(masks[i], row.as_ptr().wrapping_add(at)),
                    _mm512_maskz_loadu_ps(masks[i + 1], row.as_ptr().wrapping_add(at + 16)),
                )
            };
            if !scales.is_empty() {
                lo = _mm512_mul_ps(lo, scales[i]);
                hi = _mm512_mul_ps(hi, scales[i + 1]);
            }
            let packed = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(
                dst.as_mut_ptr().add(at).cast(),
                std::mem::transmute::<__m512bh, __m512i>(packed),
            );
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn round_rows(_: &[f32], _: usize, _: Option<&[f32]>, _: &mut [u16], _: usize) {
    unreachable!("AMX exists only on x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::model::nhwc::tests::scattered;

    fn widen(h: u16) -> f64 {
        f64::from(f32::from_bits(u32::from(h) << 16))
    }

    /// The product against an exact float64 one of the bfloat16-rounded inputs, for shapes
    /// with and without padding in every dimension.
    #[test]
    fn amx_products_are_exact_sums_of_the_rounded_inputs() {
        if !available() {
            eprintln!("skipped: this CPU or kernel offers no AMX bfloat16 tiles");
            return;
        }
        for (rows, k, n, gated) in [
            (1, 3, 5, false),
            (32, 32, 32, false),
            (70, 40, 24, true),
            (64, 24, 48, false),
            (33, 40, 40, true),
            (64, 144, 64, false),
            (100, 192, 1152, true),
        ] {
            let a = scattered(rows * k, 7919, 101, 37.0, 1.3);
            let w = scattered(k * n, 104_729, 97, 41.0, 1.1);
            let gates: Vec<f32> = (0..k).map(|i| 0.25 + (i % 7) as f32 / 8.0).collect();
            let gates = gated.then_some(&gates[..]);
            let mut out = vec![f32::NAN; rows * n];
            let mut seen = Vec::new();
            PackedBf16::pack(&w, k, n).product_into(&a, gates, &mut out, |part, first| {
                seen.push((first, part.len() / n))
            });
            let groups = (0..rows).step_by(32).map(|f| (f, 32.min(rows - f)));
            assert_eq!(seen, groups.collect::<Vec<_>>());
            for r in 0..rows {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|t| {
                            let x = a[r * k + t] * gates.map_or(1.0, |g| g[t]);
                            widen(bf16_bits(x)) * widen(bf16_bits(w[t * n + j]))
                        })
                        .sum();
                    let got = f64::from(out[r * n + j]);
                    assert!(
                        (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()) * k as f64,
                        "[{rows}×{k}]·[{k}×{n}] at ({r}, {j}): {got} against {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn bfloat16_rounds_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even 1.
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_bits(-2.5), 0xc020);
        assert!(f32::from_bits(u32::from(bf16_bits(f32::NAN)) << 16).is_nan());
    }
}
