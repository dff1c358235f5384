//! tessera-engine: GGUF read/write, the llama forward pass over the kernels crate, the
//! thread pool, llama-bench-style timing and synthetic models. Knows nothing of sweeps,
//! git or charts.

pub mod affinity;
pub mod bench;
pub mod cache_dir;
pub mod calibrate;
pub mod context;
pub mod cuda;
pub mod error;
pub mod gguf;
pub mod memory;
pub mod model;
pub mod numa;
pub mod pool;
pub mod rng;
pub mod synth;

pub use context::{Context, ContextParams, KvType};
pub use cuda::Backend;
pub use error::{EngineError, Result};
pub use model::{Hparams, Model};
