//! The operands of a matmul: a weight matrix in one of the computable formats, activations
//! already converted to the form that format is dotted with, and an output that several
//! threads may fill in disjoint column ranges.

use std::marker::PhantomData;

use half::f16;

use crate::quant::{BlockQ4_0, BlockQ8_0, GgmlType, QK};

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
}

impl WeightData<'_> {
    pub fn ty(&self) -> GgmlType {
        match self {
            Self::F32(_) => GgmlType::F32,
            Self::F16(_) => GgmlType::F16,
            Self::Q8_0(_) => GgmlType::Q8_0,
            Self::Q4_0(_) => GgmlType::Q4_0,
        }
    }

    fn items(&self) -> usize {
        match self {
            Self::F32(d) => d.len(),
            Self::F16(d) => d.len(),
            Self::Q8_0(d) => d.len(),
            Self::Q4_0(d) => d.len(),
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
        let expected = n * (k / block);
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

    /// The form activations must take to be dotted with this matrix.
    pub fn act_kind(&self) -> ActKind {
        match self.data {
            WeightData::F32(_) => ActKind::F32,
            WeightData::F16(_) => ActKind::F16,
            WeightData::Q8_0(_) | WeightData::Q4_0(_) => ActKind::Q8_0,
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

    /// Converts `x` (rows of `k`) to `kind`; F32 needs no conversion.
    pub fn convert(&mut self, kind: ActKind, x: &[f32], k: usize) {
        match kind {
            ActKind::F32 => {}
            ActKind::F16 => {
                self.f16.clear();
                self.f16.resize(x.len(), f16::ZERO);
                crate::dispatch::convert_row_f16(x, &mut self.f16);
            }
            ActKind::Q8_0 => {
                assert_eq!(k % QK, 0, "quantized activations need rows of whole blocks");
                self.q8.clear();
                self.q8.resize(x.len() / QK, BlockQ8_0::default());
                // Bit-identical to quant::q8_0::quantize_row, with the best ISA's kernel.
                crate::dispatch::quantize_row_q8_0(x, &mut self.q8);
            }
        }
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
