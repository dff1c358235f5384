//! The AMX tiled GEMM for Q4_0/Q8_0 weights × Q8_0 activations, written once against the
//! [`TileUnit`] trait and run on the hardware (inline `asm!`, `amx` ISA) or on the software
//! unit of `amx_emu` (`amx-emu` ISA), so packing, tile configuration and loop structure are
//! tested on every machine.
//!
//! Tile plan (palette 1): C tiles tmm0..tmm3 (16 tokens × 16 weight rows of i32, up to 2×2),
//! A tiles tmm4/tmm5 (16 tokens × one 32-byte activation block, loaded straight from the Q8_0
//! rows), B tiles tmm6/tmm7 (one weight block of 16 rows in VNNI layout: 8 rows of 16×4
//! bytes). K per `tdpbssd` is one block (32), because every block has its own scales: the i32
//! product is stored and scaled per block, `acc += isum * (d_w * d_a)`, the same f32
//! operations in the same order as the scalar reference.
//!
//! Weights are repacked per call, one panel of 16 (or 32) rows at a time, and the packed
//! panel is reused for every token tile; nothing is cached between calls.

use std::ops::Range;

use super::amx_emu::{AmxEmu, TileCfg};
use crate::matrix::{Acts, OutMat, WeightData, WeightMat};
use crate::quant::{BlockQ4_0, BlockQ8_0, QK};
use crate::tile::TileConfig;

/// The tile instructions the GEMM uses. Tile numbers are const generics because hardware
/// encodes them in the instruction.
pub trait TileUnit {
    fn ldtilecfg(&mut self, cfg: &TileCfg);
    fn tilezero<const T: u8>(&mut self);
    /// Loads tile `T` from rows at `stride` bytes in `src` (bounds checked against the
    /// configured shape).
    fn tileloadd<const T: u8>(&mut self, src: &[u8], stride: usize);
    fn tdpbssd<const C: u8, const A: u8, const B: u8>(&mut self);
    fn tilestored<const T: u8>(&mut self, dst: &mut [u8], stride: usize);
    fn tilerelease(&mut self);
}

/// The emulator as a tile unit: a fault is a bug in the algorithm, reported like the #UD/#GP
/// it would be on hardware.
impl TileUnit for AmxEmu {
    fn ldtilecfg(&mut self, cfg: &TileCfg) {
        if let Err(e) = AmxEmu::ldtilecfg(self, cfg) {
            panic!("amx-emu: {e}");
        }
    }
    fn tilezero<const T: u8>(&mut self) {
        if let Err(e) = AmxEmu::tilezero(self, T.into()) {
            panic!("amx-emu: {e}");
        }
    }
    fn tileloadd<const T: u8>(&mut self, src: &[u8], stride: usize) {
        if let Err(e) = AmxEmu::tileloadd(self, T.into(), src, stride) {
            panic!("amx-emu: {e}");
        }
    }
    fn tdpbssd<const C: u8, const A: u8, const B: u8>(&mut self) {
        if let Err(e) = AmxEmu::tdpbssd(self, C.into(), A.into(), B.into()) {
            panic!("amx-emu: {e}");
        }
    }
    fn tilestored<const T: u8>(&mut self, dst: &mut [u8], stride: usize) {
        if let Err(e) = AmxEmu::tilestored(self, T.into(), dst, stride) {
            panic!("amx-emu: {e}");
        }
    }
    fn tilerelease(&mut self) {
        AmxEmu::tilerelease(self)
    }
}

/// Real AMX tiles through inline assembly (stable Rust has no AMX intrinsics).
#[cfg(target_arch = "x86_64")]
pub struct AmxHw {
    cfg: TileCfg,
}

#[cfg(target_arch = "x86_64")]
impl AmxHw {
    /// # Safety
    /// `Isa::Amx.is_available()` holds: the CPU has AMX-TILE/INT8, the OS enabled the tile
    /// state and granted this process permission.
    pub unsafe fn new() -> Self {
        Self {
            cfg: TileCfg::default(),
        }
    }

    /// Bytes tile `t` reads or writes at `stride`, so slices can be checked before the
    /// instruction touches memory.
    fn span(&self, t: u8, stride: usize) -> usize {
        let (r, c) = (
            usize::from(self.cfg.rows[usize::from(t)]),
            usize::from(self.cfg.colsb[usize::from(t)]),
        );
        if r == 0 { 0 } else { (r - 1) * stride + c }
    }
}

#[cfg(target_arch = "x86_64")]
impl TileUnit for AmxHw {
    fn ldtilecfg(&mut self, cfg: &TileCfg) {
        self.cfg = *cfg;
        // SAFETY: AMX is enabled for this process (constructor contract); `cfg` is a valid
        // 64-byte palette-1 configuration (the algorithm's, tested through the emulator).
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &self.cfg as *const TileCfg, options(nostack));
        }
    }
    fn tilezero<const T: u8>(&mut self) {
        // SAFETY: as in ldtilecfg; tile T is configured.
        unsafe { std::arch::asm!("tilezero tmm{t}", t = const T, options(nostack, nomem)) }
    }
    fn tileloadd<const T: u8>(&mut self, src: &[u8], stride: usize) {
        assert!(
            self.span(T, stride) <= src.len(),
            "tileloadd past the end of its source"
        );
        // SAFETY: the configured rows × colsb at `stride` lie inside `src` (checked above).
        unsafe {
            std::arch::asm!(
                "tileloadd tmm{t}, [{base} + {stride} * 1]",
                t = const T, base = in(reg) src.as_ptr(), stride = in(reg) stride,
                options(nostack, readonly)
            )
        }
    }
    fn tdpbssd<const C: u8, const A: u8, const B: u8>(&mut self) {
        // SAFETY: as in ldtilecfg; shapes agree (the same algorithm passes the emulator's
        // checks).
        unsafe {
            std::arch::asm!(
                "tdpbssd tmm{c}, tmm{a}, tmm{b}",
                c = const C, a = const A, b = const B,
                options(nostack, nomem)
            )
        }
    }
    fn tilestored<const T: u8>(&mut self, dst: &mut [u8], stride: usize) {
        assert!(
            self.span(T, stride) <= dst.len(),
            "tilestored past the end of its target"
        );
        // SAFETY: the configured rows × colsb at `stride` lie inside `dst` (checked above).
        unsafe {
            std::arch::asm!(
                "tilestored [{base} + {stride} * 1], tmm{t}",
                t = const T, base = in(reg) dst.as_mut_ptr(), stride = in(reg) stride,
                options(nostack)
            )
        }
    }
    fn tilerelease(&mut self) {
        // SAFETY: releasing the tile state is always allowed once AMX is enabled.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) }
    }
}

/// Quantized GEMM on hardware tiles; anything else goes to the scalar kernel (the dispatch
/// table routes GEMV and float matmuls to the fallback ISA before they get here).
///
/// # Safety
/// `Isa::Amx` is available; otherwise the contract of [`super::scalar::matmul`].
#[cfg(target_arch = "x86_64")]
pub unsafe fn matmul_amx(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    // SAFETY: forwarded from the caller.
    let mut unit = unsafe { AmxHw::new() };
    unsafe { matmul_on(&mut unit, w, acts, out, cols, tile) }
}

/// Quantized GEMM on the emulated tile unit.
///
/// # Safety
/// The contract of [`super::scalar::matmul`].
pub unsafe fn matmul_emu(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    let mut unit = AmxEmu::new();
    // SAFETY: forwarded from the caller.
    unsafe { matmul_on(&mut unit, w, acts, out, cols, tile) }
}

/// # Safety
/// The contract of [`super::scalar::matmul`].
unsafe fn matmul_on<U: TileUnit>(
    unit: &mut U,
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    let mt = (tile.m / 16).clamp(1, 2);
    let nt = (tile.n / 16).clamp(1, 2);
    match (w.data(), acts) {
        (WeightData::Q4_0(wd), Acts::Q8_0(ad)) => {
            // SAFETY: forwarded from the caller.
            unsafe { gemm(unit, &Q4Rows(wd), w.k() / QK, ad, out, cols, mt, nt) }
        }
        (WeightData::Q8_0(wd), Acts::Q8_0(ad)) => {
            // SAFETY: forwarded from the caller.
            unsafe { gemm(unit, &Q8Rows(wd), w.k() / QK, ad, out, cols, mt, nt) }
        }
        // SAFETY: forwarded from the caller.
        _ => unsafe { super::scalar::matmul(w, acts, out, cols, tile) },
    }
}

/// Quantized weights as the packer sees them: a block's scale and its 32 signed values.
trait QuantRows {
    fn scale(&self, block: usize) -> f32;
    fn values(&self, block: usize) -> [i8; QK];
}

struct Q4Rows<'a>(&'a [BlockQ4_0]);
struct Q8Rows<'a>(&'a [BlockQ8_0]);

impl QuantRows for Q4Rows<'_> {
    fn scale(&self, b: usize) -> f32 {
        self.0[b].d.to_f32()
    }
    fn values(&self, b: usize) -> [i8; QK] {
        let q = &self.0[b].qs;
        std::array::from_fn(|j| {
            let nib = if j < QK / 2 {
                q[j] & 15
            } else {
                q[j - QK / 2] >> 4
            };
            nib as i8 - 8
        })
    }
}

impl QuantRows for Q8Rows<'_> {
    fn scale(&self, b: usize) -> f32 {
        self.0[b].d.to_f32()
    }
    fn values(&self, b: usize) -> [i8; QK] {
        self.0[b].qs
    }
}

/// Bytes of one packed B tile: 8 rows (32 K values / 4) of 16 columns × 4 bytes.
const B_TILE: usize = 8 * 64;
/// Bytes per Q8_0 block and offset of its values.
const Q8_BYTES: usize = 34;
const Q8_QS: usize = 2;

/// The tile configuration of the plan in the module docs.
fn plan_cfg() -> TileCfg {
    let mut cfg = TileCfg::default();
    for c in 0..4 {
        cfg.set(c, 16, 64); // C: 16 × 16 i32
    }
    cfg.set(4, 16, 32).set(5, 16, 32); // A: 16 tokens × one block
    cfg.set(6, 8, 64).set(7, 8, 64); // B: one block of 16 rows, VNNI
    cfg
}

/// Packs weight rows `n0..n0+16*nt` (rows past `n_end` zero) into VNNI B tiles, one per
/// (block, 16-row group), and their scales.
fn pack_panel<W: QuantRows>(
    w: &W,
    nb: usize,
    n0: usize,
    n_end: usize,
    nt: usize,
    packed: &mut Vec<u8>,
    scales: &mut Vec<f32>,
) {
    packed.clear();
    packed.resize(nb * nt * B_TILE, 0);
    scales.clear();
    scales.resize(nb * nt * 16, 0.0);
    for s in 0..nt {
        for jj in 0..16 {
            let row = n0 + 16 * s + jj;
            if row >= n_end {
                continue;
            }
            for b in 0..nb {
                let v = w.values(row * nb + b);
                let tile = &mut packed[(b * nt + s) * B_TILE..(b * nt + s + 1) * B_TILE];
                for g in 0..QK / 4 {
                    for q in 0..4 {
                        tile[g * 64 + jj * 4 + q] = v[4 * g + q] as u8;
                    }
                }
                scales[(b * nt + s) * 16 + jj] = w.scale(row * nb + b);
            }
        }
    }
}

/// The loop nest: per panel of `16*nt` weight rows (packed once), per tile of `16*mt`
/// tokens, per block: load A and B tiles, `tdpbssd` into zeroed C tiles, store, scale.
///
/// # Safety
/// The contract of [`super::scalar::matmul`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<U: TileUnit, W: QuantRows>(
    unit: &mut U,
    w: &W,
    nb: usize,
    acts: &[BlockQ8_0],
    out: &OutMat,
    cols: Range<usize>,
    mt: usize,
    nt: usize,
) {
    let m = out.m();
    assert!(acts.len() >= m * nb, "activations hold fewer than m rows");
    let abytes: &[u8] = bytemuck::cast_slice(acts);
    let astride = nb * Q8_BYTES;
    let (mut packed, mut wscale) = (Vec::new(), Vec::new());
    // A padded copy of a partial token tile: 16 rows × nb blocks × 32 bytes.
    let mut apad = vec![0u8; 16 * nb * QK];
    let mut c = vec![0u8; 4 * 16 * 64];
    let mut acc = vec![0.0f32; 32 * 32];
    unit.ldtilecfg(&plan_cfg());
    let mut n0 = cols.start;
    while n0 < cols.end {
        let n_valid = (16 * nt).min(cols.end - n0);
        pack_panel(w, nb, n0, n0 + n_valid, nt, &mut packed, &mut wscale);
        let mut m0 = 0;
        while m0 < m {
            let m_valid = (16 * mt).min(m - m0);
            acc.fill(0.0);
            for b in 0..nb {
                load_b(unit, &packed[b * nt * B_TILE..(b + 1) * nt * B_TILE], nt);
                for t in 0..mt {
                    let r0 = m0 + 16 * t;
                    let rows = 16.min(m.saturating_sub(r0));
                    if rows == 16 {
                        let src = &abytes[r0 * astride + b * Q8_BYTES + Q8_QS..];
                        load_a(unit, t, src, astride);
                    } else {
                        // A partial (or empty) tile reads a zero-padded copy: the hardware
                        // would read past the activations otherwise.
                        apad.fill(0);
                        for r in 0..rows {
                            let at = (r0 + r) * astride + b * Q8_BYTES + Q8_QS;
                            apad[r * QK..(r + 1) * QK].copy_from_slice(&abytes[at..at + QK]);
                        }
                        load_a(unit, t, &apad, QK);
                    }
                }
                products(unit, &mut c, mt, nt);
                for t in 0..mt {
                    for s in 0..nt {
                        let ct = &c[(2 * t + s) * 1024..(2 * t + s + 1) * 1024];
                        for r in 0..16 {
                            let tok = m0 + 16 * t + r;
                            if tok >= m {
                                break;
                            }
                            let da = acts[tok * nb + b].d.to_f32();
                            for jj in 0..16 {
                                let at = r * 64 + jj * 4;
                                let isum = i32::from_le_bytes([
                                    ct[at],
                                    ct[at + 1],
                                    ct[at + 2],
                                    ct[at + 3],
                                ]);
                                let dw = wscale[(b * nt + s) * 16 + jj];
                                acc[(16 * t + r) * 32 + 16 * s + jj] += dw * da * isum as f32;
                            }
                        }
                    }
                }
            }
            for i in 0..m_valid {
                for jn in 0..n_valid {
                    // SAFETY: row < m and column < cols.end, ours alone by the contract.
                    unsafe { out.write(m0 + i, n0 + jn, acc[i * 32 + jn]) };
                }
            }
            m0 += m_valid;
        }
        n0 += n_valid;
    }
    unit.tilerelease();
}

fn load_b<U: TileUnit>(unit: &mut U, tiles: &[u8], nt: usize) {
    unit.tileloadd::<6>(&tiles[..B_TILE], 64);
    if nt == 2 {
        unit.tileloadd::<7>(&tiles[B_TILE..], 64);
    }
}

fn load_a<U: TileUnit>(unit: &mut U, t: usize, src: &[u8], stride: usize) {
    if t == 0 {
        unit.tileloadd::<4>(src, stride)
    } else {
        unit.tileloadd::<5>(src, stride)
    }
}

/// C(t, s) = A_t · B_s for the active tiles, stored to `c` (1 KiB per C tile).
fn products<U: TileUnit>(unit: &mut U, c: &mut [u8], mt: usize, nt: usize) {
    let (c0, rest) = c.split_at_mut(1024);
    let (c1, rest) = rest.split_at_mut(1024);
    let (c2, c3) = rest.split_at_mut(1024);
    unit.tilezero::<0>();
    unit.tdpbssd::<0, 4, 6>();
    unit.tilestored::<0>(c0, 64);
    if nt == 2 {
        unit.tilezero::<1>();
        unit.tdpbssd::<1, 4, 7>();
        unit.tilestored::<1>(c1, 64);
    }
    if mt == 2 {
        unit.tilezero::<2>();
        unit.tdpbssd::<2, 5, 6>();
        unit.tilestored::<2>(c2, 64);
        if nt == 2 {
            unit.tilezero::<3>();
            unit.tdpbssd::<3, 5, 7>();
            unit.tilestored::<3>(c3, 64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_four_k_values_of_one_column_together() {
        let mut blocks = vec![BlockQ8_0::default(); 3];
        for (r, b) in blocks.iter_mut().enumerate() {
            b.qs = std::array::from_fn(|j| (r * 40 + j) as i8);
            b.d = half::f16::from_f32(r as f32 + 1.0);
        }
        let (mut p, mut s) = (Vec::new(), Vec::new());
        // 3 rows of one block; rows 3..16 are padding.
        pack_panel(&Q8Rows(&blocks), 1, 0, 3, 1, &mut p, &mut s);
        assert_eq!(p.len(), B_TILE);
        // Row g of the tile, column jj: K values 4g..4g+4 of weight row jj.
        let at = 64 * 2 + 4; // tile row 2 (K 8..12), column 1 (weight row 1)
        assert_eq!(&p[at..at + 4], &[48, 49, 50, 51]);
        assert_eq!(p[64 * 7 + 4 * 2 + 3], 80 + 31);
        assert!(p[64 * 7 + 4 * 3..64 * 8].iter().all(|&b| b == 0));
        assert_eq!(&s[..4], &[1.0, 2.0, 3.0, 0.0]);
    }

    #[test]
    fn q4_values_are_signed_nibbles_in_element_order() {
        let b = BlockQ4_0 {
            d: half::f16::ONE,
            qs: std::array::from_fn(|j| (j as u8) | ((15 - j as u8) << 4)),
        };
        let v = Q4Rows(std::slice::from_ref(&b)).values(0);
        assert_eq!(v[0], -8);
        assert_eq!(v[15], 7);
        assert_eq!(v[16], 7);
        assert_eq!(v[31], -8);
    }

    #[test]
    fn the_plan_is_a_valid_configuration() {
        AmxEmu::new().ldtilecfg(&plan_cfg()).unwrap();
    }
}
