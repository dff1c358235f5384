//! tessera-kernels: weight formats and the CPU kernels that compute with them, chosen at
//! run time per ISA through one dispatch table. Knows nothing of models.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod dispatch;
pub mod matrix;
pub mod quant;
pub mod tile;

pub use dispatch::{DispatchError, Isa, IsaRequest, KernelUse, Kernels, MatmulKernel, Ops, UseId};
pub use matrix::{ActBuf, ActKind, Acts, OutMat, WeightData, WeightMat};
pub use quant::GgmlType;
pub use tile::TileConfig;
