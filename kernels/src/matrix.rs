//! The operands of a matmul: a weight matrix in one of the computable formats, activations
//! already converted to the form that format is dotted with, and an output that several
//! threads may fill in disjoint column ranges.

use std::collections::HashMap;
use std::marker::PhantomData;

use half::f16;

pub use crate::quant::BlockQ4_0x8;
use crate::quant::{BlockQ4_0, BlockQ8_0, GgmlType, Packed16, QK};

/// A weight matrix of `n` rows of `k` elements (ggml `[ne0 = k, ne1 = n]`).
#[derive(Clone, Copy, Debug)]
pub struct WeightMat<'a> {
    data: WeightData<'a>,
    n: usize,
    k: usize,
}

#[derive(Clone, Copy, Debug)]
pub enum WeightData<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Q8_0(&'a [BlockQ8_0]),
    Q4_0(&'a [BlockQ4_0]),
    /// Q4_0 repacked eight rows at a time ([`BlockQ4_0x8`]): group `g` (rows `8g..8g+8`)
    /// holds its `k / 32` blocks at `g * k / 32 ..`.
    Q4_0x8(&'a [BlockQ4_0x8]),
    /// Q4_0 or Q8_0 repacked sixteen rows at a time for 512-bit registers and AMX tiles
    /// ([`Packed16`]).
    X16(&'a Packed16),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("row length {k} of a {ty} matrix is not a multiple of {block}")]
    RaggedRow {
        ty: GgmlType,
        k: usize,
        block: usize,
    },
    #[error("{ty} matrix of {n}x{k} needs {expected} items, got {found}")]
    Length {
        ty: GgmlType,
        n: usize,
        k: usize,
        expected: usize,
        found: usize,
    },
    #[error("a matrix repacked 8 rows at a time needs a multiple of 8 rows, got {n}")]
    RaggedGroup { n: usize },
}

impl WeightData<'_> {
    pub fn ty(&self) -> GgmlType {
        match self {
            Self::F32(_) => GgmlType::F32,
            Self::F16(_) => GgmlType::F16,
            Self::Q8_0(_) => GgmlType::Q8_0,
            Self::Q4_0(_) | Self::Q4_0x8(_) => GgmlType::Q4_0,
            Self::X16(p) => p.ty(),
        }
    }

    fn items(&self) -> usize {
        match self {
            Self::F32(d) => d.len(),
            Self::F16(d) => d.len(),
            Self::Q8_0(d) => d.len(),
            Self::Q4_0(d) => d.len(),
            Self::Q4_0x8(d) => d.len(),
            Self::X16(p) => p.n() * p.nb(),
        }
    }
}

impl<'a> WeightMat<'a> {
    pub fn new(data: WeightData<'a>, n: usize, k: usize) -> Result<Self, ShapeError> {
        let ty = data.ty();
        let block = ty.block_size();
        if !k.is_multiple_of(block) {
            return Err(ShapeError::RaggedRow { ty, k, block });
        }
        let expected = match data {
            WeightData::Q4_0x8(_) if !n.is_multiple_of(8) => {
                return Err(ShapeError::RaggedGroup { n });
            }
            WeightData::Q4_0x8(_) => n / 8 * (k / block),
            WeightData::X16(p) if p.n() != n || p.k() != k => {
                return Err(ShapeError::Length {
                    ty,
                    n,
                    k,
                    expected: n * (k / block),
                    found: p.n() * p.nb(),
                });
            }
            _ => n * (k / block),
        };
        if data.items() != expected {
            return Err(ShapeError::Length {
                ty,
                n,
                k,
                expected,
                found: data.items(),
            });
        }
        Ok(Self { data, n, k })
    }

    pub fn data(&self) -> WeightData<'a> {
        self.data
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn ty(&self) -> GgmlType {
        self.data.ty()
    }

    /// Bytes of the matrix in the layout it is stored in (what one pass over it reads).
    pub fn bytes(&self) -> usize {
        match self.data {
            WeightData::F32(d) => std::mem::size_of_val(d),
            WeightData::F16(d) => std::mem::size_of_val(d),
            WeightData::Q8_0(d) => std::mem::size_of_val(d),
            WeightData::Q4_0(d) => std::mem::size_of_val(d),
            WeightData::Q4_0x8(d) => std::mem::size_of_val(d),
            WeightData::X16(p) => p.size_bytes(),
        }
    }

    /// Evicts the matrix from every cache level (x86: `clflush` of each line it spans;
    /// elsewhere nothing), so the next product reads it from DRAM, as a generation step
    /// over a model larger than the caches does. A measuring aid (the calibration).
    pub fn flush_from_caches(&self) {
        let start = match self.data {
            WeightData::F32(d) => d.as_ptr().cast::<u8>(),
            WeightData::F16(d) => d.as_ptr().cast::<u8>(),
            WeightData::Q8_0(d) => d.as_ptr().cast::<u8>(),
            WeightData::Q4_0(d) => d.as_ptr().cast::<u8>(),
            WeightData::Q4_0x8(d) => d.as_ptr().cast::<u8>(),
            WeightData::X16(p) => p.bytes().as_ptr(),
        };
        #[cfg(target_arch = "x86_64")]
        for off in (0..self.bytes()).step_by(64) {
            // SAFETY: clflush takes any address inside this live allocation and reads
            // nothing; SSE2 is part of x86_64.
            unsafe { std::arch::x86_64::_mm_clflush(start.add(off)) };
        }
        // The flushes are weakly ordered: fence so none is still in flight when the caller
        // starts its clock. SAFETY: mfence has no operands; SSE2 is part of x86_64.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::x86_64::_mm_mfence()
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = start;
    }

    /// The form activations must take to be dotted with this matrix.
    pub fn act_kind(&self) -> ActKind {
        match self.data {
            WeightData::F32(_) => ActKind::F32,
            WeightData::F16(_) => ActKind::F16,
            WeightData::Q8_0(_)
            | WeightData::Q4_0(_)
            | WeightData::Q4_0x8(_)
            | WeightData::X16(_) => ActKind::Q8_0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    F32,
    F16,
    Q8_0,
}

/// `m` activation rows of `k` elements in the form the weights need.
#[derive(Clone, Copy, Debug)]
pub enum Acts<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Q8_0(&'a [BlockQ8_0]),
}

/// Reusable storage for converted activations, so the token loop does not allocate.
#[derive(Default, Debug)]
pub struct ActBuf {
    f16: Vec<f16>,
    q8: Vec<BlockQ8_0>,
}

impl ActBuf {
    /// Storage for up to `m * k` activations in every form (`k` a multiple of 32).
    pub fn with_capacity(m: usize, k: usize) -> Self {
        Self {
            f16: Vec::with_capacity(m * k),
            q8: Vec::with_capacity(m * k / QK),
        }
    }

    /// Converts `x` (rows of `k`) to `kind` with the reference conversions
    /// (`quant::q8_0::quantize_row`, `f16::from_f32`); F32 needs no conversion. The engine
    /// converts with the kernel table it runs ([`crate::Kernels::convert`]: the same bits,
    /// that table's ISA, recorded); this is for tests and benchmarks that need none.
    pub fn convert(&mut self, kind: ActKind, x: &[f32], k: usize) {
        match kind {
            ActKind::F32 => {}
            ActKind::F16 => {
                for (o, v) in self.f16_mut(x.len()).iter_mut().zip(x) {
                    *o = f16::from_f32(*v);
                }
            }
            ActKind::Q8_0 => {
                assert_eq!(k % QK, 0, "quantized activations need rows of whole blocks");
                crate::quant::q8_0::quantize_row(x, self.q8_mut(x.len() / QK));
            }
        }
    }

    /// Storage for `len` f16 activations, resized (contents unspecified), which
    /// [`ActBuf::view`] with `ActKind::F16` then shows.
    pub fn f16_mut(&mut self, len: usize) -> &mut [f16] {
        self.f16.resize(len, f16::ZERO);
        &mut self.f16[..len]
    }

    /// Storage for `blocks` Q8_0 blocks, resized (contents unspecified): for callers that
    /// quantize rows themselves, e.g. in parallel with [`crate::Kernels::quantize_q8_0`].
    /// [`ActBuf::view`] with `ActKind::Q8_0` then shows them.
    pub fn q8_mut(&mut self, blocks: usize) -> &mut [BlockQ8_0] {
        self.q8.resize(blocks, BlockQ8_0::default());
        &mut self.q8[..blocks]
    }

    /// The activations last converted to `kind` (`x` itself for F32).
    pub fn view<'b>(&'b self, kind: ActKind, x: &'b [f32]) -> Acts<'b> {
        match kind {
            ActKind::F32 => Acts::F32(x),
            ActKind::F16 => Acts::F16(&self.f16),
            ActKind::Q8_0 => Acts::Q8_0(&self.q8),
        }
    }
}

/// Output `[m][n]` (token-major) that threads fill in disjoint column ranges.
#[derive(Debug)]
pub struct OutMat<'a> {
    ptr: *mut f32,
    m: usize,
    n: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: an OutMat is only written through `write`, whose contract requires callers on
// different threads to write disjoint (row, column) cells.
unsafe impl Send for OutMat<'_> {}
unsafe impl Sync for OutMat<'_> {}

impl<'a> OutMat<'a> {
    pub fn new(out: &'a mut [f32], m: usize, n: usize) -> Self {
        assert_eq!(out.len(), m * n, "output must hold m*n values");
        Self {
            ptr: out.as_mut_ptr(),
            m,
            n,
            _borrow: PhantomData,
        }
    }

    pub fn m(&self) -> usize {
        self.m
    }
    pub fn n(&self) -> usize {
        self.n
    }

    /// # Safety
    /// `row < m`, `col < n`, and no other thread reads or writes the same cell concurrently.
    #[inline(always)]
    pub unsafe fn write(&self, row: usize, col: usize, v: f32) {
        debug_assert!(row < self.m && col < self.n);
        // SAFETY: in bounds by the caller's contract; exclusive by the caller's contract.
        unsafe { *self.ptr.add(row * self.n + col) = v }
    }

    /// Adds `v` to a cell: the later k passes of a k-blocked kernel.
    ///
    /// # Safety
    /// As for [`OutMat::write`].
    #[inline(always)]
    pub unsafe fn add(&self, row: usize, col: usize, v: f32) {
        debug_assert!(row < self.m && col < self.n);
        // SAFETY: in bounds by the caller's contract; exclusive by the caller's contract.
        unsafe { *self.ptr.add(row * self.n + col) += v }
    }
}

impl WeightMat<'_> {
    /// Dequantizes row `row` into `out` (`k` values): GET_ROWS for one id.
    ///
    /// Returns `None` when `row` is out of range, so a bad token id is an error upstream
    /// instead of a read past the matrix.
    pub fn get_row(&self, row: usize, out: &mut [f32]) -> Option<()> {
        if row >= self.n || out.len() != self.k {
            return None;
        }
        let per = self.k / self.ty().block_size();
        let r = row * per..(row + 1) * per;
        match self.data {
            WeightData::F32(d) => out.copy_from_slice(&d[r]),
            WeightData::F16(d) => {
                for (o, v) in out.iter_mut().zip(&d[r]) {
                    *o = v.to_f32();
                }
            }
            WeightData::Q8_0(d) => crate::quant::q8_0::dequantize_row(&d[r], out),
            WeightData::Q4_0(d) => crate::quant::q4_0::dequantize_row(&d[r], out),
            WeightData::Q4_0x8(d) => {
                let g = row / 8 * per;
                for (b, o) in d[g..g + per].iter().zip(out.chunks_exact_mut(QK)) {
                    crate::quant::q4_0::dequantize_row(&[b.row(row % 8)], o);
                }
            }
            WeightData::X16(p) => {
                for (b, o) in out.chunks_exact_mut(QK).enumerate() {
                    if p.ty() == GgmlType::Q4_0 {
                        crate::quant::q4_0::dequantize_row(&[p.q4_block(row, b)], o);
                    } else {
                        crate::quant::q8_0::dequantize_row(&[p.q8_block(row, b)], o);
                    }
                }
            }
        }
        Some(())
    }
}

impl OutMat<'_> {
    /// Mutable view of `row`'s columns `cols`.
    ///
    /// # Safety
    /// `row < m`, `cols.end <= n`, and no other reference to those cells exists while the
    /// returned slice lives (threads must use disjoint cells).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn segment_mut(&self, row: usize, cols: std::ops::Range<usize>) -> &mut [f32] {
        debug_assert!(row < self.m && cols.start <= cols.end && cols.end <= self.n);
        // SAFETY: in bounds and exclusive by the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(row * self.n + cols.start), cols.len())
        }
    }
}

/// `w` repacked eight rows at a time, or `None` when it is not Q4_0 or its row count is no
/// multiple of 8.
pub fn repack_q4_0x8(w: &WeightMat) -> Option<Vec<BlockQ4_0x8>> {
    let WeightData::Q4_0(d) = w.data() else {
        return None;
    };
    if !w.n().is_multiple_of(8) {
        return None;
    }
    let nb = w.k() / QK;
    let mut out = Vec::with_capacity(w.n() / 8 * nb);
    for g in 0..w.n() / 8 {
        for b in 0..nb {
            out.push(BlockQ4_0x8::pack(std::array::from_fn(|r| {
                &d[(8 * g + r) * nb + b]
            })));
        }
    }
    Some(out)
}

/// The repacked layouts a kernel table can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Q4_0 eight rows at a time ([`BlockQ4_0x8`], avx2).
    X8,
    /// Q4_0 and Q8_0 sixteen rows at a time ([`Packed16`], avx512 and AMX).
    X16,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::X8 => "x8",
            Layout::X16 => "x16",
        }
    }
}

/// A weight matrix in a repacked layout, owned.
#[derive(Debug, Clone)]
pub enum Packed {
    X8(Vec<BlockQ4_0x8>),
    X16(Packed16),
}

impl Packed {
    /// `w` in `layout`, or `None` when it has no such form (type, or row count).
    pub fn new(w: &WeightMat, layout: Layout) -> Option<Self> {
        match (layout, w.data()) {
            (Layout::X8, _) => repack_q4_0x8(w).map(Packed::X8),
            (Layout::X16, WeightData::Q4_0(d)) => {
                Packed16::from_q4_0(d, w.n(), w.k()).map(Packed::X16)
            }
            (Layout::X16, WeightData::Q8_0(d)) => {
                Packed16::from_q8_0(d, w.n(), w.k()).map(Packed::X16)
            }
            _ => None,
        }
    }

    pub fn layout(&self) -> Layout {
        match self {
            Packed::X8(_) => Layout::X8,
            Packed::X16(_) => Layout::X16,
        }
    }

    pub fn data(&self) -> WeightData<'_> {
        match self {
            Packed::X8(v) => WeightData::Q4_0x8(v),
            Packed::X16(p) => WeightData::X16(p),
        }
    }

    pub fn ty(&self) -> GgmlType {
        self.data().ty()
    }

    /// The rows back in the plain layout (`n` rows of `k`): Q4_0 or Q8_0 blocks.
    pub fn to_plain(&self, n: usize, k: usize) -> PlainQuant {
        let nb = k / QK;
        let cells = move || (0..n).flat_map(move |r| (0..nb).map(move |b| (r, b)));
        match self {
            Packed::X8(v) => {
                PlainQuant::Q4_0(cells().map(|(r, b)| v[r / 8 * nb + b].row(r % 8)).collect())
            }
            Packed::X16(p) if p.ty() == GgmlType::Q4_0 => {
                PlainQuant::Q4_0(cells().map(|(r, b)| p.q4_block(r, b)).collect())
            }
            Packed::X16(p) => PlainQuant::Q8_0(cells().map(|(r, b)| p.q8_block(r, b)).collect()),
        }
    }
}

/// Plain quantized rows, as [`Packed::to_plain`] gives them back.
#[derive(Debug)]
pub enum PlainQuant {
    Q4_0(Vec<BlockQ4_0>),
    Q8_0(Vec<BlockQ8_0>),
}

/// Repacked copies of weight matrices, found again by the address and length of the
/// original data, so a caller keeps passing the matrices it has and gets the repacked form
/// where one exists.
///
/// The originals must stay alive and unchanged while this is used (an engine context
/// borrows its model for its whole life, which guarantees it); they need not stay resident:
/// nothing here reads them after [`Repacked::add`].
#[derive(Debug)]
pub struct Repacked {
    layout: Layout,
    mats: HashMap<(usize, usize), Packed>,
}

impl Default for Repacked {
    fn default() -> Self {
        Self::new(Layout::X8)
    }
}

impl Repacked {
    /// An empty set that repacks into `layout`.
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            mats: HashMap::new(),
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Repacks `w` when it has a form in this set's layout; true when it did (or had).
    pub fn add(&mut self, w: &WeightMat) -> bool {
        let key = Self::key(w);
        if key.0 == 0 {
            return false;
        }
        if self.mats.contains_key(&key) {
            return true;
        }
        match Packed::new(w, self.layout) {
            Some(p) => {
                self.mats.insert(key, p);
                true
            }
            None => false,
        }
    }

    /// The repacked form of `w`, or `w` itself when it has none.
    pub fn view<'a>(&'a self, w: WeightMat<'a>) -> WeightMat<'a> {
        let data = match self.mats.get(&Self::key(&w)) {
            Some(p) => p.data(),
            None => return w,
        };
        WeightMat {
            data,
            n: w.n,
            k: w.k,
        }
    }

    /// How many matrices are repacked.
    pub fn len(&self) -> usize {
        self.mats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mats.is_empty()
    }

    fn key(w: &WeightMat) -> (usize, usize) {
        match w.data {
            WeightData::Q4_0(d) => (d.as_ptr() as usize, std::mem::size_of_val(d)),
            WeightData::Q8_0(d) => (d.as_ptr() as usize, std::mem::size_of_val(d)),
            // Only plain quantized matrices are ever repacked; others never match an entry.
            _ => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repacked_rows_read_back_as_the_originals() {
        let (n, k) = (16, 96);
        let blocks: Vec<BlockQ4_0> = (0..n * k / QK)
            .map(|i| BlockQ4_0 {
                d: f16::from_f32(i as f32 * 0.25 + 1.0),
                qs: std::array::from_fn(|j| (i * 7 + j * 13) as u8),
            })
            .collect();
        let w = WeightMat::new(WeightData::Q4_0(&blocks), n, k).unwrap();
        let mut rp = Repacked::default();
        assert!(rp.add(&w));
        let p = rp.view(w);
        assert!(matches!(p.data(), WeightData::Q4_0x8(_)));
        let (mut a, mut b) = (vec![0.0; k], vec![0.0; k]);
        for row in 0..n {
            w.get_row(row, &mut a).unwrap();
            p.get_row(row, &mut b).unwrap();
            assert_eq!(a, b, "row {row}");
        }
        // 12 rows do not form whole groups: no repacked form, the view is the original.
        let w12 = WeightMat::new(WeightData::Q4_0(&blocks[..12 * 3]), 12, k).unwrap();
        assert!(!rp.add(&w12));
        assert!(matches!(rp.view(w12).data(), WeightData::Q4_0(_)));
        assert_eq!(
            WeightMat::new(
                WeightData::Q4_0x8(match rp.mats.values().next().unwrap() {
                    Packed::X8(v) => &v[..3],
                    Packed::X16(_) => unreachable!("an x8 set"),
                }),
                12,
                k
            )
            .unwrap_err(),
            ShapeError::RaggedGroup { n: 12 }
        );
    }
}
