//! Q4_0 weights repacked at load eight rows at a time (the "x8" layout the AVX2 kernels
//! read): the format itself, beside the plain Q4_0 block it is made of. Which matrices are
//! repacked, and the set that holds them, is `matrix::Repacked`'s business; this file only
//! knows how eight blocks interleave and come apart again.

use half::f16;

use super::BlockQ4_0;

/// Eight Q4_0 rows at one block position, interleaved so that one 32-byte load holds four
/// consecutive quants of each of the eight rows: a SIMD kernel then produces the dot
/// products of 8 rows in the 8 lanes of one register, with no horizontal sums and one
/// vector conversion for the 8 scales (llama.cpp's AVX2 repack follows the same idea).
///
/// `qs[32 c + 4 r + t]` is byte `4 c + t` of row `r`'s Q4_0 block: its low nibble is element
/// `4 c + t`, its high nibble element `16 + 4 c + t`. `d[r]` is row `r`'s scale.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockQ4_0x8 {
    pub d: [f16; 8],
    pub qs: [u8; 128],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_0x8>() == 144);

impl BlockQ4_0x8 {
    /// Interleaves one block of each of eight rows.
    pub fn pack(rows: [&BlockQ4_0; 8]) -> Self {
        let mut b = Self {
            d: [f16::ZERO; 8],
            qs: [0; 128],
        };
        for (r, row) in rows.iter().enumerate() {
            b.d[r] = row.d;
            for (j, &q) in row.qs.iter().enumerate() {
                b.qs[32 * (j / 4) + 4 * r + j % 4] = q;
            }
        }
        b
    }

    /// Row `r`'s block back in the plain Q4_0 layout.
    pub fn row(&self, r: usize) -> BlockQ4_0 {
        BlockQ4_0 {
            d: self.d[r],
            qs: std::array::from_fn(|j| self.qs[32 * (j / 4) + 4 * r + j % 4]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_row_gives_every_block_back() {
        let rows: Vec<BlockQ4_0> = (0..8)
            .map(|r| BlockQ4_0 {
                d: f16::from_f32(r as f32 + 0.5),
                qs: std::array::from_fn(|j| (r * 31 + j * 7) as u8),
            })
            .collect();
        let b = BlockQ4_0x8::pack(std::array::from_fn(|r| &rows[r]));
        for (r, row) in rows.iter().enumerate() {
            assert_eq!(b.row(r), *row, "row {r}");
        }
        // Byte 4c+t of row r sits at 32c+4r+t: row 3's byte 5 (c=1, t=1) is at 32+12+1.
        assert_eq!(b.qs[45], rows[3].qs[5]);
    }
}
