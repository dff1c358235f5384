//! tessera-kernels: weight formats and the CPU kernels that compute with them, chosen at
//! run time per ISA through one dispatch table. Knows nothing of models.

pub mod quant;

pub use quant::GgmlType;
