//! GGUF v2/v3 reader and writer.
//!
//! [`GgufFile`] parses a file over a memory map (or an in-memory buffer) and validates it
//! completely up front: header, every metadata value (nested arrays included), every tensor
//! info, and the placement of every tensor's bytes. After that, [`GgufFile::tensor_data`]
//! can hand out slices without further checks. [`GgufWriter`] streams a v3 file tensor by
//! tensor, so a model larger than memory can be written.

mod error;
mod file;
mod reader;
mod value;
mod writer;

pub use error::GgufError;
pub use file::{GgufFile, check_regular_file};
pub use value::{Value, ValueType};
pub use writer::GgufWriter;

use tessera_kernels::GgmlType;

/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most levels of arrays nested in one metadata value (real files use one).
pub const MAX_ARRAY_DEPTH: usize = 8;
/// Most dimensions of a tensor (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// One tensor as the file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// `ne[0]` first: the contiguous dimension. A weight `[K, N]` has N rows of K.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Relative to the start of the data section; a multiple of the alignment.
    pub offset: u64,
    /// Bytes of data: `ty.row_bytes(ne[0])` times the product of the other dims.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }
}
