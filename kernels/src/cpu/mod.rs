//! CPU kernels, one file per ISA with the same function names in each, plus the loop nest
//! they share and the CPU feature detection that decides which of them may run.

/// Calls `$call` with `const MR` and `const NR` set to the register tile of `$tile` (every
/// shape in `SIMD_TILE_MS` × `SIMD_TILE_NS` has its own monomorphised micro-kernel), or
/// evaluates `$else` for a shape without one.
#[cfg(target_arch = "x86_64")]
macro_rules! by_tile {
    ($tile:expr, $call:expr, $else:expr) => {
        by_tile!(@arms $tile, $call, $else;
            (1, 1) (1, 2) (1, 4) (1, 8) (2, 1) (2, 2) (2, 4) (2, 8) (4, 1) (4, 2) (4, 4) (4, 8))
    };
    (@arms $tile:expr, $call:expr, $else:expr; $(($m:literal, $n:literal))*) => {
        match ($tile.m, $tile.n) {
            $(($m, $n) => {
                const MR: usize = $m;
                const NR: usize = $n;
                $call
            })*
            _ => $else,
        }
    };
}

/// Declares the unit struct `$isa` and implements [`MicroKernels`] for it with the `tile_q`
/// and `tile_f` functions of the module that invokes it (each ISA file has both, with the
/// trait's signatures and contracts).
#[cfg(target_arch = "x86_64")]
macro_rules! micro_kernels {
    ($isa:ident) => {
        /// This file's micro-kernels, for [`super::simd_matmul`].
        struct $isa;

        impl super::MicroKernels for $isa {
            unsafe fn tile_q<const MR: usize, const NR: usize, const Q4: bool>(
                w: *const u8,
                wrow: usize,
                a: *const crate::quant::BlockQ8_0,
                nb: usize,
                out: &crate::matrix::OutMat,
                j: super::TileJob,
            ) {
                // SAFETY: the trait's contract is the function's.
                unsafe { tile_q::<MR, NR, Q4>(w, wrow, a, nb, out, j) }
            }

            unsafe fn tile_f<const MR: usize, const NR: usize, const H: bool>(
                w: *const u8,
                a: *const u8,
                k: usize,
                out: &crate::matrix::OutMat,
                j: super::TileJob,
            ) {
                // SAFETY: the trait's contract is the function's.
                unsafe { tile_f::<MR, NR, H>(w, a, k, out, j) }
            }
        }
    };
}

pub mod amx;
pub mod amx_emu;
#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::ops::Range;

/// One register tile's worth of work handed to an ISA's micro-kernel: output rows
/// `m0..m0+m_valid`, weight rows `n0..n0+n_valid`, reduction items `k0..k1` (blocks for the
/// quantized formats, elements otherwise). `accumulate` is false on the first k pass, which
/// writes the output instead of adding to it.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct TileJob {
    pub m0: usize,
    pub m_valid: usize,
    pub n0: usize,
    pub n_valid: usize,
    pub k0: usize,
    pub k1: usize,
    pub accumulate: bool,
}

/// The loop nest every SIMD ISA shares: k in passes of `k_step` items (so the `m × k_step`
/// activation panel stays in cache), then `nr` weight rows at a time, then `mr` tokens at a
/// time. Inside one k pass the unpacked weights of a register tile are reused for every
/// token tile, which is the point of GEMM over repeated GEMV.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn drive(
    m: usize,
    cols: Range<usize>,
    row_items: usize,
    k_step: usize,
    mr: usize,
    nr: usize,
    mut f: impl FnMut(TileJob),
) {
    let k_step = k_step.clamp(1, row_items.max(1));
    let mut k0 = 0;
    while k0 < row_items {
        let k1 = (k0 + k_step).min(row_items);
        let mut n0 = cols.start;
        while n0 < cols.end {
            let n_valid = nr.min(cols.end - n0);
            let mut m0 = 0;
            while m0 < m {
                let m_valid = mr.min(m - m0);
                f(TileJob {
                    m0,
                    m_valid,
                    n0,
                    n_valid,
                    k0,
                    k1,
                    accumulate: k0 > 0,
                });
                m0 += m_valid;
            }
            n0 += n_valid;
        }
        k0 = k1;
    }
}

/// The register-tile micro-kernels of one SIMD ISA; [`simd_matmul`] runs them over the
/// shared loop nest, so the ISAs differ only in what they compute per tile.
#[cfg(target_arch = "x86_64")]
pub(crate) trait MicroKernels {
    /// One `MR × NR` tile of a Q4_0 (`Q4`) or Q8_0 weight × Q8_0 activation product over
    /// blocks `j.k0..j.k1`.
    ///
    /// # Safety
    /// The ISA's CPU features are present; `w` points at weight rows of `wrow` bytes (blocks
    /// of 18 bytes for `Q4`, else 34) with rows `j.n0..j.n0+j.n_valid` and blocks
    /// `j.k0..j.k1` inside; `a` at token rows of `nb` blocks with rows
    /// `j.m0..j.m0+j.m_valid` inside; the tile's output cells belong to this thread.
    unsafe fn tile_q<const MR: usize, const NR: usize, const Q4: bool>(
        w: *const u8,
        wrow: usize,
        a: *const crate::quant::BlockQ8_0,
        nb: usize,
        out: &crate::matrix::OutMat,
        j: TileJob,
    );

    /// One `MR × NR` tile of an f16 × f16 (`H`) or f32 × f32 product over elements
    /// `j.k0..j.k1`, accumulated in f32.
    ///
    /// # Safety
    /// The ISA's CPU features are present; `w` and `a` point at rows of `k` elements (2
    /// bytes each for `H`, else 4) with the tile's rows inside; the output cells are this
    /// thread's.
    unsafe fn tile_f<const MR: usize, const NR: usize, const H: bool>(
        w: *const u8,
        a: *const u8,
        k: usize,
        out: &crate::matrix::OutMat,
        j: TileJob,
    );
}

/// Tiled matmul over output columns `cols` with the micro-kernels of `K` (same contract as
/// [`scalar::matmul`]); formats and tiles without a micro-kernel run the scalar reference.
///
/// # Safety
/// The CPU has `K`'s features; no other thread writes `out` in `cols`; `acts` holds
/// `out.m()` rows of `w.k()` elements in the form `w.act_kind()`; `cols.end <= w.n()`.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn simd_matmul<K: MicroKernels>(
    w: &crate::matrix::WeightMat,
    acts: crate::matrix::Acts,
    out: &crate::matrix::OutMat,
    cols: Range<usize>,
    tile: crate::tile::TileConfig,
) {
    use crate::matrix::{Acts, WeightData};
    use crate::quant::QK;
    let (m, k) = (out.m(), w.k());
    let nb = k / QK;
    // SAFETY (every micro-kernel call below): the activations and weights were checked to
    // hold the rows and blocks `drive` hands out (it stays inside `0..m`, `cols`, `0..nb`
    // or `0..k`); the caller owns `cols`; the CPU has `K`'s features.
    let done = match (w.data(), acts) {
        (WeightData::Q4_0(wd), Acts::Q8_0(ad)) => {
            assert!(ad.len() >= m * nb && cols.end <= w.n() && wd.len() >= w.n() * nb);
            unsafe { quant_tiles::<K, true>(wd.as_ptr().cast(), ad, nb, out, &cols, tile) }
        }
        (WeightData::Q8_0(wd), Acts::Q8_0(ad)) => {
            assert!(ad.len() >= m * nb && cols.end <= w.n() && wd.len() >= w.n() * nb);
            unsafe { quant_tiles::<K, false>(wd.as_ptr().cast(), ad, nb, out, &cols, tile) }
        }
        (WeightData::F16(wd), Acts::F16(ad)) => {
            assert!(ad.len() >= m * k && cols.end <= w.n() && wd.len() >= w.n() * k);
            let (wp, ap) = (wd.as_ptr().cast(), ad.as_ptr().cast());
            unsafe { float_tiles::<K, true>(wp, ap, k, out, &cols, tile) }
        }
        (WeightData::F32(wd), Acts::F32(ad)) => {
            assert!(ad.len() >= m * k && cols.end <= w.n() && wd.len() >= w.n() * k);
            let (wp, ap) = (wd.as_ptr().cast(), ad.as_ptr().cast());
            unsafe { float_tiles::<K, false>(wp, ap, k, out, &cols, tile) }
        }
        _ => false,
    };
    if !done {
        // SAFETY: forwarded from the caller.
        unsafe { scalar::matmul(w, acts, out, cols, tile) }
    }
}

/// [`simd_matmul`] for Q4_0 (`Q4`) or Q8_0 weights at `wp` (rows of `nb` blocks); false,
/// with nothing computed, when `tile` has no micro-kernel.
///
/// # Safety
/// As for [`simd_matmul`], with the shapes checked by it.
#[cfg(target_arch = "x86_64")]
unsafe fn quant_tiles<K: MicroKernels, const Q4: bool>(
    wp: *const u8,
    ad: &[crate::quant::BlockQ8_0],
    nb: usize,
    out: &crate::matrix::OutMat,
    cols: &Range<usize>,
    tile: crate::tile::TileConfig,
) -> bool {
    let wrow = nb * if Q4 { 18 } else { 34 };
    let k_step = tile.k / crate::quant::QK;
    by_tile!(
        tile,
        {
            // SAFETY: `drive` stays inside `0..m`, `cols` and `0..nb`, which the caller
            // checked the operands hold.
            drive(out.m(), cols.clone(), nb, k_step, MR, NR, |j| unsafe {
                K::tile_q::<MR, NR, Q4>(wp, wrow, ad.as_ptr(), nb, out, j)
            });
            true
        },
        false
    )
}

/// [`simd_matmul`] for f16 (`H`) or f32 weights at `wp` and activations at `ap`, rows of `k`
/// elements; false, with nothing computed, when `tile` has no micro-kernel.
///
/// # Safety
/// As for [`simd_matmul`], with the shapes checked by it.
#[cfg(target_arch = "x86_64")]
unsafe fn float_tiles<K: MicroKernels, const H: bool>(
    wp: *const u8,
    ap: *const u8,
    k: usize,
    out: &crate::matrix::OutMat,
    cols: &Range<usize>,
    tile: crate::tile::TileConfig,
) -> bool {
    by_tile!(
        tile,
        {
            // SAFETY: `drive` stays inside `0..m`, `cols` and `0..k`, which the caller
            // checked the operands hold.
            drive(out.m(), cols.clone(), k, tile.k, MR, NR, |j| unsafe {
                K::tile_f::<MR, NR, H>(wp, ap, k, out, j)
            });
            true
        },
        false
    )
}

/// Writes (first k pass) or adds (later passes) one register tile's sums.
///
/// # Safety
/// The tile's cells (`j.m0..+m_valid` × `j.n0..+n_valid`) are inside `out` and this
/// thread's alone.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) unsafe fn store_tile<const MR: usize, const NR: usize>(
    out: &crate::matrix::OutMat,
    j: TileJob,
    sums: &[[f32; NR]; MR],
) {
    for (i, row) in sums.iter().enumerate().take(j.m_valid) {
        for (r, &v) in row.iter().enumerate().take(j.n_valid) {
            // SAFETY: inside this call's rows and columns, this thread's (the contract).
            unsafe {
                if j.accumulate {
                    out.add(j.m0 + i, j.n0 + r, v)
                } else {
                    out.write(j.m0 + i, j.n0 + r, v)
                }
            }
        }
    }
}

/// Register-tile shapes (`m`, `n`) the SIMD ISAs are compiled for; every one has its own
/// monomorphised micro-kernel.
pub const SIMD_TILE_MS: [usize; 3] = [1, 2, 4];
pub const SIMD_TILE_NS: [usize; 4] = [1, 2, 4, 8];
/// k passes offered to every ISA (elements; 4096 covers whole rows of every preset but
/// ffn_down of 1b/8b).
pub const TILE_KS: [usize; 3] = [256, 1024, 4096];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_covers_every_cell_and_k_item_once() {
        for (m, cols, items, ks, mr, nr) in [
            (5, 3..17, 7, 3, 2, 4),
            (1, 0..1, 1, 8, 4, 8),
            (9, 2..9, 32, 32, 4, 1),
        ] {
            let mut seen = vec![0u32; m * 20 * items];
            let mut first = vec![None; m * 20];
            drive(m, cols.clone(), items, ks, mr, nr, |j| {
                assert!(j.m_valid <= mr && j.n_valid <= nr && j.k1 > j.k0);
                for i in j.m0..j.m0 + j.m_valid {
                    for n in j.n0..j.n0 + j.n_valid {
                        let cell = i * 20 + n;
                        // The first pass over a cell must write, later ones accumulate.
                        if first[cell].is_none() {
                            assert!(!j.accumulate);
                            first[cell] = Some(());
                        } else {
                            assert!(j.accumulate);
                        }
                        for k in j.k0..j.k1 {
                            seen[cell * items + k] += 1;
                        }
                    }
                }
            });
            for i in 0..m {
                for n in 0..20 {
                    for k in 0..items {
                        let want = u32::from(cols.contains(&n));
                        assert_eq!(seen[(i * 20 + n) * items + k], want, "m{i} n{n} k{k}");
                    }
                }
            }
        }
    }
}
