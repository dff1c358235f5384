//! Q4_0 and Q8_0 weights repacked at load sixteen rows at a time, in the order a 512-bit
//! `vpdpbusd` and an AMX `tdpbssd` B tile consume them (the "x16" layout).
//!
//! One *group* is 16 consecutive weight rows. Per group and block position `b` the layout
//! holds the quants of all 16 rows in VNNI order: byte `64 c + 4 r + t` is quant byte
//! `4 c + t` of row `r`, so one 64-byte load is one register with four consecutive K values
//! of each of the 16 rows in its 16 dword lanes, which is also row `c` of an AMX B tile (K/4
//! rows of 16 columns × 4 bytes).
//!
//! - Q4_0: 4 × 64 bytes per block; the low nibble of byte `64 c + 4 r + t` is element
//!   `4 c + t`, the high nibble element `16 + 4 c + t` (unsigned, the weight plus 8, as in
//!   the file).
//! - Q8_0: 8 × 64 bytes per block; byte `64 c + 4 r + t` is element `4 c + t` with its sign
//!   bit flipped (`w ^ 0x80 = w + 128`, unsigned), so `vpdpbusd` takes the weights as its
//!   unsigned operand directly.
//!
//! After a group's `nb` quant blocks come its `nb × 16` f16 scales (block-major: the 16 rows'
//! scales of block `b` at `32 b`), and the group is padded to a multiple of 64 bytes, so
//! every quant register load is cache-line aligned. The layout holds exactly the bytes of
//! the original (plus at most 32 bytes per group), so a repacked matrix can replace its
//! original in memory instead of sitting beside it.

use half::f16;

use super::{BlockQ4_0, BlockQ8_0, GgmlType, QK};

/// Rows per group.
pub const GROUP: usize = 16;

/// A 64-byte aligned cache line: the unit the layout is allocated in.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Line(pub [u8; 64]);

/// A Q4_0 or Q8_0 matrix of `n` rows (a multiple of 16) of `k` elements in the x16 layout.
#[derive(Clone, Debug)]
pub struct Packed16 {
    ty: GgmlType,
    n: usize,
    k: usize,
    lines: Vec<Line>,
}

impl Packed16 {
    /// Quant bytes per block and group: 256 for Q4_0, 512 for Q8_0.
    pub fn block_bytes(ty: GgmlType) -> usize {
        if ty == GgmlType::Q4_0 { 256 } else { 512 }
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn k(&self) -> usize {
        self.k
    }
    /// Blocks per row.
    pub fn nb(&self) -> usize {
        self.k / QK
    }

    /// Bytes from one group to the next.
    pub fn group_stride(&self) -> usize {
        (self.nb() * (Self::block_bytes(self.ty) + 2 * GROUP)).next_multiple_of(64)
    }

    /// Offset of group `g`'s scales from the group's start.
    pub fn scales_offset(&self) -> usize {
        self.nb() * Self::block_bytes(self.ty)
    }

    /// The whole layout as bytes.
    pub fn bytes(&self) -> &[u8] {
        line_bytes(&self.lines)
    }

    /// Bytes of group `g` (quants, then scales).
    pub fn group(&self, g: usize) -> &[u8] {
        let gs = self.group_stride();
        &self.bytes()[g * gs..(g + 1) * gs]
    }

    /// Heap bytes this matrix holds.
    pub fn size_bytes(&self) -> usize {
        self.lines.len() * 64
    }

    /// Scale of row `row`, block `b`.
    pub fn scale(&self, row: usize, b: usize) -> f16 {
        let g = self.group(row / GROUP);
        let at = self.scales_offset() + 32 * b + 2 * (row % GROUP);
        f16::from_le_bytes([g[at], g[at + 1]])
    }

    /// Row `row`'s block `b` back in the plain Q4_0 layout (a Q4_0 matrix only).
    pub fn q4_block(&self, row: usize, b: usize) -> BlockQ4_0 {
        debug_assert_eq!(self.ty, GgmlType::Q4_0);
        let g = self.group(row / GROUP);
        let q = &g[b * 256..(b + 1) * 256];
        let r = row % GROUP;
        BlockQ4_0 {
            d: self.scale(row, b),
            qs: std::array::from_fn(|j| q[64 * (j / 4) + 4 * r + j % 4]),
        }
    }

    /// Row `row`'s block `b` back in the plain Q8_0 layout (a Q8_0 matrix only).
    pub fn q8_block(&self, row: usize, b: usize) -> BlockQ8_0 {
        debug_assert_eq!(self.ty, GgmlType::Q8_0);
        let g = self.group(row / GROUP);
        let q = &g[b * 512..(b + 1) * 512];
        let r = row % GROUP;
        BlockQ8_0 {
            d: self.scale(row, b),
            qs: std::array::from_fn(|j| (q[64 * (j / 4) + 4 * r + j % 4] ^ 0x80) as i8),
        }
    }

    /// Repacks Q4_0 rows (`n` a multiple of 16); `None` otherwise.
    pub fn from_q4_0(d: &[BlockQ4_0], n: usize, k: usize) -> Option<Self> {
        let nb = k / QK;
        if !n.is_multiple_of(GROUP) || !k.is_multiple_of(QK) || d.len() != n * nb {
            return None;
        }
        Some(Self::build(GgmlType::Q4_0, n, k, |row, b, q| {
            let blk = &d[row * nb + b];
            let r = row % GROUP;
            for (j, &v) in blk.qs.iter().enumerate() {
                q[64 * (j / 4) + 4 * r + j % 4] = v;
            }
            blk.d
        }))
    }

    /// Repacks Q8_0 rows (`n` a multiple of 16); `None` otherwise.
    pub fn from_q8_0(d: &[BlockQ8_0], n: usize, k: usize) -> Option<Self> {
        let nb = k / QK;
        if !n.is_multiple_of(GROUP) || !k.is_multiple_of(QK) || d.len() != n * nb {
            return None;
        }
        Some(Self::build(GgmlType::Q8_0, n, k, |row, b, q| {
            let blk = &d[row * nb + b];
            let r = row % GROUP;
            for (j, &v) in blk.qs.iter().enumerate() {
                q[64 * (j / 4) + 4 * r + j % 4] = (v as u8) ^ 0x80;
            }
            blk.d
        }))
    }

    /// Fills the layout from `put(row, block, quants of the block-group) -> scale`.
    fn build(
        ty: GgmlType,
        n: usize,
        k: usize,
        mut put: impl FnMut(usize, usize, &mut [u8]) -> f16,
    ) -> Self {
        let mut p = Self {
            ty,
            n,
            k,
            lines: Vec::new(),
        };
        let (gs, bb, so, nb) = (
            p.group_stride(),
            Self::block_bytes(ty),
            p.scales_offset(),
            p.nb(),
        );
        p.lines = vec![Line([0; 64]); n / GROUP * gs / 64];
        let bytes = line_bytes_mut(&mut p.lines);
        for (g, grp) in bytes.chunks_exact_mut(gs).enumerate() {
            let (quants, scales) = grp.split_at_mut(so);
            for b in 0..nb {
                for r in 0..GROUP {
                    let d = put(g * GROUP + r, b, &mut quants[b * bb..(b + 1) * bb]);
                    scales[32 * b + 2 * r..32 * b + 2 * r + 2].copy_from_slice(&d.to_le_bytes());
                }
            }
        }
        p
    }
}

/// Lines as the bytes they hold.
pub fn line_bytes(l: &[Line]) -> &[u8] {
    // SAFETY: `Line` is 64 plain bytes with no padding; the slice covers exactly them.
    unsafe { std::slice::from_raw_parts(l.as_ptr().cast(), l.len() * 64) }
}

/// Lines as the bytes they hold, writable.
pub fn line_bytes_mut(l: &mut [Line]) -> &mut [u8] {
    // SAFETY: as for `line_bytes`, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(l.as_mut_ptr().cast(), l.len() * 64) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q4(n: usize, nb: usize) -> Vec<BlockQ4_0> {
        (0..n * nb)
            .map(|i| BlockQ4_0 {
                d: f16::from_f32(i as f32 * 0.5 + 1.0),
                qs: std::array::from_fn(|j| (i * 7 + j * 13) as u8),
            })
            .collect()
    }

    #[test]
    fn q4_0_blocks_read_back_and_sit_in_vnni_order() {
        let (n, nb) = (32, 3);
        let d = q4(n, nb);
        let p = Packed16::from_q4_0(&d, n, nb * QK).unwrap();
        for row in 0..n {
            for b in 0..nb {
                assert_eq!(p.q4_block(row, b), d[row * nb + b], "row {row} block {b}");
            }
        }
        // Group 1, block 2, register c = 3, row 5: bytes 12..16 of row 21's block 2.
        let g = p.group(1);
        let at = 2 * 256 + 64 * 3 + 4 * 5;
        assert_eq!(&g[at..at + 4], &d[21 * nb + 2].qs[12..16]);
        // Odd block count: the group is padded to whole lines.
        assert_eq!(p.group_stride(), (3 * 288usize).next_multiple_of(64));
        assert_eq!(p.size_bytes(), 2 * p.group_stride());
        assert!(Packed16::from_q4_0(&d[..nb * 8], 8, nb * QK).is_none());
    }

    #[test]
    fn q8_0_bytes_are_offset_by_128() {
        let (n, nb) = (16, 2);
        let d: Vec<BlockQ8_0> = (0..n * nb)
            .map(|i| BlockQ8_0 {
                d: f16::from_f32(i as f32),
                qs: std::array::from_fn(|j| (i as i32 * 3 - j as i32 * 5).clamp(-128, 127) as i8),
            })
            .collect();
        let p = Packed16::from_q8_0(&d, n, nb * QK).unwrap();
        for row in 0..n {
            for b in 0..nb {
                assert_eq!(p.q8_block(row, b), d[row * nb + b]);
            }
        }
        let g = p.group(0);
        assert_eq!(
            g[512 + 64 * 7 + 4 * 3 + 1],
            (d[3 * nb + 1].qs[29] as u8) ^ 0x80
        );
        assert_eq!(p.size_bytes(), n * nb * 34);
    }
}
