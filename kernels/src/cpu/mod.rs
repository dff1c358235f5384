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
