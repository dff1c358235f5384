//! A software AMX tile unit: 8 tile registers of up to 16 rows × 64 bytes, the 64-byte
//! palette-1 tile configuration, and `ldtilecfg`, `tileloadd`, `tdpbssd`/`tdpbusd`,
//! `tilestored`, `tilezero`, `tilerelease` with the architectural limit checks, so the AMX
//! algorithm (packing, tile configuration, loop structure) runs and is tested on any CPU.
//!
//! Where hardware would fault (#GP on a bad configuration, #UD on an instruction that uses an
//! unconfigured tile or mismatched shapes), the inherent methods return a [`TileFault`]; the
//! [`TileUnit`](super::amx::TileUnit) implementation panics with it, as the CPU would kill
//! the process. Faults can only come from a bug in the algorithm, never from user input.

/// Tile registers in palette 1.
pub const TILES: usize = 8;
/// Architectural limits of palette 1.
pub const MAX_ROWS: usize = 16;
pub const MAX_COLSB: usize = 64;

/// The 64-byte operand of `ldtilecfg`, byte for byte (offsets 0, 1, 2, 16, 48).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileCfg {
    pub palette_id: u8,
    pub start_row: u8,
    pub reserved: [u8; 14],
    pub colsb: [u16; 16],
    pub rows: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<TileCfg>() == 64);
const _: () = assert!(std::mem::offset_of!(TileCfg, colsb) == 16);
const _: () = assert!(std::mem::offset_of!(TileCfg, rows) == 48);

impl Default for TileCfg {
    fn default() -> Self {
        Self {
            palette_id: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        }
    }
}

impl TileCfg {
    /// Sets tile `t` to `rows` rows of `colsb` bytes.
    pub fn set(&mut self, t: usize, rows: u8, colsb: u16) -> &mut Self {
        self.rows[t] = rows;
        self.colsb[t] = colsb;
        self
    }
}

/// What the hardware would fault on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileFault {
    #[error("#GP: ldtilecfg: {0}")]
    BadConfig(String),
    #[error("#UD: {op}: tile tmm{tile} is not configured (rows or colsb is 0, or no ldtilecfg)")]
    Unconfigured { op: &'static str, tile: usize },
    #[error("#UD: {op}: tile shapes disagree: {why}")]
    Shape { op: &'static str, why: String },
    #[error("{op}: memory operand of {need} bytes does not fit in {have} bytes")]
    OutOfBounds {
        op: &'static str,
        need: usize,
        have: usize,
    },
}

/// The emulated unit: a configuration (none until `ldtilecfg`) and 8 tile registers.
#[derive(Clone)]
pub struct AmxEmu {
    cfg: Option<TileCfg>,
    tiles: [[u8; MAX_ROWS * MAX_COLSB]; TILES],
}

impl Default for AmxEmu {
    fn default() -> Self {
        Self::new()
    }
}

impl AmxEmu {
    /// A unit in the init state: unconfigured, tiles zero.
    pub fn new() -> Self {
        Self {
            cfg: None,
            tiles: [[0; MAX_ROWS * MAX_COLSB]; TILES],
        }
    }

    /// Loads the configuration (palette 0 releases, as hardware does); zeroes every tile.
    pub fn ldtilecfg(&mut self, cfg: &TileCfg) -> Result<(), TileFault> {
        let bad = |s: String| Err(TileFault::BadConfig(s));
        match cfg.palette_id {
            0 => {
                self.tilerelease();
                return Ok(());
            }
            1 => {}
            p => return bad(format!("palette {p} is not supported (0 or 1)")),
        }
        if cfg.reserved.iter().any(|&b| b != 0) {
            return bad("reserved bytes 2..16 must be zero".into());
        }
        for t in 0..16 {
            let (r, c) = (usize::from(cfg.rows[t]), usize::from(cfg.colsb[t]));
            if t >= TILES && (r != 0 || c != 0) {
                return bad(format!(
                    "tile {t} does not exist in palette 1 (rows {r}, colsb {c})"
                ));
            }
            if r > MAX_ROWS || c > MAX_COLSB {
                return bad(format!(
                    "tile {t}: {r} rows x {c} bytes exceeds {MAX_ROWS} x {MAX_COLSB}"
                ));
            }
            if (r == 0) != (c == 0) {
                return bad(format!(
                    "tile {t}: rows {r} and colsb {c} must be both zero or both set"
                ));
            }
        }
        if cfg.start_row != 0 {
            return bad(format!(
                "start_row {} must be 0 outside a restart",
                cfg.start_row
            ));
        }
        self.cfg = Some(*cfg);
        self.tiles = [[0; MAX_ROWS * MAX_COLSB]; TILES];
        Ok(())
    }

    /// The configured (rows, colsb) of tile `t`.
    fn shape(&self, op: &'static str, t: usize) -> Result<(usize, usize), TileFault> {
        let cfg = self.cfg.as_ref().filter(|_| t < TILES);
        match cfg.map(|c| (usize::from(c.rows[t]), usize::from(c.colsb[t]))) {
            Some((r, c)) if r > 0 && c > 0 => Ok((r, c)),
            _ => Err(TileFault::Unconfigured { op, tile: t }),
        }
    }

    /// Rows of `colsb` bytes from `src` at `stride`; bytes past `colsb` in each row and rows
    /// past `rows` become zero, as on hardware.
    pub fn tileloadd(&mut self, t: usize, src: &[u8], stride: usize) -> Result<(), TileFault> {
        let (rows, colsb) = self.shape("tileloadd", t)?;
        let need = (rows - 1) * stride + colsb;
        if need > src.len() {
            return Err(TileFault::OutOfBounds {
                op: "tileloadd",
                need,
                have: src.len(),
            });
        }
        let tile = &mut self.tiles[t];
        tile.fill(0);
        for r in 0..rows {
            tile[r * MAX_COLSB..r * MAX_COLSB + colsb]
                .copy_from_slice(&src[r * stride..r * stride + colsb]);
        }
        Ok(())
    }

    pub fn tilestored(&self, t: usize, dst: &mut [u8], stride: usize) -> Result<(), TileFault> {
        let (rows, colsb) = self.shape("tilestored", t)?;
        let need = (rows - 1) * stride + colsb;
        if need > dst.len() {
            return Err(TileFault::OutOfBounds {
                op: "tilestored",
                need,
                have: dst.len(),
            });
        }
        for r in 0..rows {
            dst[r * stride..r * stride + colsb]
                .copy_from_slice(&self.tiles[t][r * MAX_COLSB..r * MAX_COLSB + colsb]);
        }
        Ok(())
    }

    pub fn tilezero(&mut self, t: usize) -> Result<(), TileFault> {
        self.shape("tilezero", t)?;
        self.tiles[t].fill(0);
        Ok(())
    }

    /// Back to the init state: no configuration, tiles zero.
    pub fn tilerelease(&mut self) {
        self.cfg = None;
        self.tiles = [[0; MAX_ROWS * MAX_COLSB]; TILES];
    }

    /// `C (M×N i32) += A (M×K i8) · B`, B in VNNI layout (K/4 rows of N×4 bytes).
    pub fn tdpbssd(&mut self, c: usize, a: usize, b: usize) -> Result<(), TileFault> {
        self.dot("tdpbssd", c, a, b, |x| i32::from(x as i8))
    }

    /// As `tdpbssd` with A unsigned.
    pub fn tdpbusd(&mut self, c: usize, a: usize, b: usize) -> Result<(), TileFault> {
        self.dot("tdpbusd", c, a, b, i32::from)
    }

    fn dot(
        &mut self,
        op: &'static str,
        c: usize,
        a: usize,
        b: usize,
        a_val: impl Fn(u8) -> i32,
    ) -> Result<(), TileFault> {
        let (cr, cc) = self.shape(op, c)?;
        let (ar, ac) = self.shape(op, a)?;
        let (br, bc) = self.shape(op, b)?;
        let shape = |why: String| Err(TileFault::Shape { op, why });
        if c == a || c == b || a == b {
            return shape(format!("tiles must differ (tmm{c}, tmm{a}, tmm{b})"));
        }
        if cc % 4 != 0 || ac % 4 != 0 || bc % 4 != 0 {
            return shape(format!(
                "colsb of C {cc}, A {ac}, B {bc} must be multiples of 4"
            ));
        }
        if cr != ar {
            return shape(format!("C has {cr} rows, A has {ar}"));
        }
        if cc != bc {
            return shape(format!("C has {cc} bytes per row, B has {bc}"));
        }
        if ac / 4 != br {
            return shape(format!(
                "A has {} 4-byte groups per row, B has {br} rows",
                ac / 4
            ));
        }
        let (m, n, kg) = (cr, cc / 4, br);
        let (ta, tb) = (self.tiles[a], self.tiles[b]);
        let tc = &mut self.tiles[c];
        for i in 0..m {
            for j in 0..n {
                let at = i * MAX_COLSB + 4 * j;
                let mut acc = i32::from_le_bytes([tc[at], tc[at + 1], tc[at + 2], tc[at + 3]]);
                for g in 0..kg {
                    for q in 0..4 {
                        let x = a_val(ta[i * MAX_COLSB + 4 * g + q]);
                        let y = i32::from(tb[g * MAX_COLSB + 4 * j + q] as i8);
                        acc = acc.wrapping_add(x * y);
                    }
                }
                tc[at..at + 4].copy_from_slice(&acc.to_le_bytes());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(shapes: &[(usize, u8, u16)]) -> TileCfg {
        let mut c = TileCfg::default();
        for &(t, r, b) in shapes {
            c.set(t, r, b);
        }
        c
    }

    fn i32s(bytes: &[u8]) -> Vec<i32> {
        bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn tdpbssd_matches_a_hand_computed_product() {
        // C 2x2 i32, A 2x8 i8 (K = 8), B in VNNI layout: 2 rows of 2 columns x 4 bytes.
        let mut u = AmxEmu::new();
        u.ldtilecfg(&cfg(&[(0, 2, 8), (1, 2, 8), (2, 2, 8)]))
            .unwrap();
        let a: [i8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, 0, 0, 0, 100];
        // B[k][n]: column 0 is all ones, column 1 is k (0..8) with k = 7 negative.
        let bk = |k: usize, n: usize| -> i8 {
            if n == 0 {
                1
            } else if k == 7 {
                -7
            } else {
                k as i8
            }
        };
        let mut b = [0u8; 16];
        for g in 0..2 {
            for n in 0..2 {
                for q in 0..4 {
                    b[g * 8 + n * 4 + q] = bk(4 * g + q, n) as u8;
                }
            }
        }
        u.tileloadd(1, &a.map(|v| v as u8), 8).unwrap();
        u.tileloadd(2, &b, 8).unwrap();
        u.tilezero(0).unwrap();
        u.tdpbssd(0, 1, 2).unwrap();
        u.tdpbssd(0, 1, 2).unwrap(); // accumulates
        let mut c = [0u8; 16];
        u.tilestored(0, &mut c, 8).unwrap();
        // Row 0: sum = 36; sum k*a = 0+2+6+12+20+30+42-56 = 56.
        // Row 1: sum = -10+100 = 90; k*a = 0-2-6-12+0+0+0-700 = -720.
        assert_eq!(i32s(&c), vec![72, 112, 180, -1440]);
    }

    #[test]
    fn tdpbusd_treats_a_as_unsigned() {
        let mut u = AmxEmu::new();
        u.ldtilecfg(&cfg(&[(0, 1, 4), (1, 1, 4), (2, 1, 4)]))
            .unwrap();
        u.tileloadd(1, &[255, 128, 1, 0], 4).unwrap();
        u.tileloadd(2, &[1, 1, 0xFF, 7], 4).unwrap(); // 1, 1, -1, 7
        u.tdpbusd(0, 1, 2).unwrap();
        let mut c = [0u8; 4];
        u.tilestored(0, &mut c, 4).unwrap();
        assert_eq!(i32s(&c), vec![255 + 128 - 1]);
        u.tilezero(0).unwrap();
        u.tdpbssd(0, 1, 2).unwrap();
        u.tilestored(0, &mut c, 4).unwrap();
        assert_eq!(i32s(&c), vec![-1 - 128 - 1]);
    }

    #[test]
    fn load_pads_with_zeros_and_store_respects_stride() {
        let mut u = AmxEmu::new();
        u.ldtilecfg(&cfg(&[(3, 2, 3)])).unwrap();
        let src = [1u8, 2, 3, 99, 4, 5, 6];
        u.tileloadd(3, &src, 4).unwrap();
        let mut dst = [7u8; 10];
        u.tilestored(3, &mut dst, 5).unwrap();
        assert_eq!(dst, [1, 2, 3, 7, 7, 4, 5, 6, 7, 7]);
        // Only rows x colsb was loaded: the register's other bytes are zero.
        assert!(u.tiles[3][3..MAX_COLSB].iter().all(|&b| b == 0));
    }

    #[test]
    fn config_limits_fault_like_hardware() {
        let mut u = AmxEmu::new();
        let e = |c: TileCfg| AmxEmu::new().ldtilecfg(&c).unwrap_err().to_string();
        assert!(e(cfg(&[(0, 17, 64)])).contains("17 rows"));
        assert!(e(cfg(&[(0, 16, 65)])).contains("65 bytes"));
        assert!(e(cfg(&[(8, 1, 4)])).contains("tile 8 does not exist"));
        assert!(e(cfg(&[(0, 1, 0)])).contains("both zero"));
        let p2 = TileCfg {
            palette_id: 2,
            ..TileCfg::default()
        };
        assert!(e(p2).contains("palette 2"));
        let r = TileCfg {
            reserved: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ..TileCfg::default()
        };
        assert!(e(r).contains("reserved"));
        // Unconfigured tiles and a released unit fault on use.
        assert!(matches!(
            u.tilezero(0),
            Err(TileFault::Unconfigured { tile: 0, .. })
        ));
        u.ldtilecfg(&cfg(&[(0, 1, 4)])).unwrap();
        u.tilezero(0).unwrap();
        u.tilerelease();
        assert!(u.tilezero(0).is_err());
    }

    #[test]
    fn mismatched_shapes_and_short_buffers_fault() {
        let mut u = AmxEmu::new();
        u.ldtilecfg(&cfg(&[(0, 2, 8), (1, 2, 8), (2, 3, 8), (3, 1, 8)]))
            .unwrap();
        // A has 2 groups per row, B (tile 2) 3 rows.
        assert!(
            u.tdpbssd(0, 1, 2)
                .unwrap_err()
                .to_string()
                .contains("B has 3 rows")
        );
        // C 2 rows vs A 1 row.
        assert!(
            u.tdpbssd(0, 3, 1)
                .unwrap_err()
                .to_string()
                .contains("C has 2 rows")
        );
        assert!(
            u.tdpbssd(0, 0, 1)
                .unwrap_err()
                .to_string()
                .contains("differ")
        );
        let e = u.tileloadd(1, &[0; 10], 8).unwrap_err();
        assert_eq!(
            e,
            TileFault::OutOfBounds {
                op: "tileloadd",
                need: 16,
                have: 10
            }
        );
    }
}
