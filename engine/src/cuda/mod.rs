//! The CUDA backend: which layers go to the GPU (`-ngl`, llama.cpp's semantics), what the
//! machine has (`probe`), and [`Offload`], the GPU half of a context's forward pass. The
//! kernels and their launchers live in `tessera_kernels::cuda`; this module owns devices,
//! weights on the device, the KV cache of the offloaded layers and the on-disk kernel cache.
//!
//! Built without the `cuda` feature, everything here still exists and asking for CUDA is a
//! clear "no CUDA device: tessera was built without the cuda feature" error.

use std::fmt;
use std::str::FromStr;

use crate::error::EngineError;

#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
mod offload;
#[cfg(feature = "cuda")]
pub mod ops;

#[cfg(feature = "cuda")]
pub use device::{Device, kernel_cache_dir};
#[cfg(feature = "cuda")]
pub use offload::Offload;

/// Environment variable of the fault-injection test hook: `get_rows` makes the GPU GET_ROWS of
/// the token embedding use an out-of-range id without host validation (so a real GPU raises
/// an illegal memory access). Only for testing the fault path; never set it otherwise.
pub const INJECT_FAULT_ENV: &str = "TESSERA_CUDA_INJECT_FAULT";
/// The values [`INJECT_FAULT_ENV`] accepts.
pub const INJECT_FAULTS: &[&str] = &["get_rows"];

/// Where the forward pass runs (llama-bench's `backends` column: "CPU" or "CUDA").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    #[default]
    Cpu,
    Cuda,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The name llama-bench writes in its `backends` field.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Cpu => "CPU",
            Backend::Cuda => "CUDA",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            _ => Err(EngineError::Invalid(format!(
                "unknown backend '{s}'; valid: cpu, cuda"
            ))),
        }
    }
}

/// Which part of the model runs on the GPU for `-ngl n_gpu_layers`, as llama.cpp splits it:
/// the LAST `n_gpu_layers` repeating layers, and the output head (final norm and output
/// matrix) once `n_gpu_layers` exceeds the layer count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Layers `first_gpu_layer..n_layer` run on the GPU.
    pub first_gpu_layer: usize,
    pub n_layer: usize,
    pub head_on_gpu: bool,
}

impl Split {
    pub fn new(n_layer: usize, n_gpu_layers: usize) -> Self {
        Split {
            first_gpu_layer: n_layer - n_gpu_layers.min(n_layer),
            n_layer,
            head_on_gpu: n_gpu_layers > n_layer,
        }
    }

    pub fn gpu_layers(&self) -> std::ops::Range<usize> {
        self.first_gpu_layer..self.n_layer
    }

    /// The token embedding lookup (GET_ROWS) runs on the GPU when every layer does: its output
    /// then feeds the GPU directly.
    pub fn embedding_on_gpu(&self) -> bool {
        self.first_gpu_layer == 0
    }

    /// Nothing runs on the GPU (`-ngl 0`).
    pub fn is_empty(&self) -> bool {
        self.first_gpu_layer == self.n_layer && !self.head_on_gpu
    }
}

/// One GPU as `tessera probe` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuInfo {
    pub index: usize,
    pub name: String,
    /// Compute capability (major, minor).
    pub cc: (u32, u32),
    pub total_mem: u64,
}

/// What the CUDA libraries report about this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaProbe {
    /// "13.0", from cuDriverGetVersion.
    pub driver_version: String,
    /// "13.0", or why NVRTC is unusable ("not found: ...").
    pub nvrtc: Result<String, String>,
    pub devices: Vec<GpuInfo>,
}

/// The GPUs of this machine, or the reason there are none ("the CUDA driver library
/// (libcuda.so) was not found"). Never panics: library presence is checked before any call.
pub fn probe() -> Result<CudaProbe, String> {
    #[cfg(feature = "cuda")]
    {
        device::probe()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(NOT_BUILT.to_string())
    }
}

/// NVRTC's version ("13.5"), or why the kernels cannot be compiled; needs no GPU or driver.
pub fn nvrtc_status() -> Result<String, String> {
    #[cfg(feature = "cuda")]
    {
        device::nvrtc_status()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(NOT_BUILT.to_string())
    }
}

#[cfg(not(feature = "cuda"))]
const NOT_BUILT: &str = "tessera was built without the cuda feature";

/// `llama-bench`'s `gpu_info`: the names of the GPUs, comma-separated.
pub fn gpu_info_string(p: &CudaProbe) -> String {
    p.devices
        .iter()
        .map(|d| d.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stand-in for the GPU half of a context in a build without the `cuda` feature: it cannot be
/// constructed, so a context never has one.
#[cfg(not(feature = "cuda"))]
pub enum Offload {}

#[cfg(not(feature = "cuda"))]
impl Offload {
    pub fn new(
        _model: &crate::model::Model,
        _params: &crate::context::ContextParams,
    ) -> Result<Self, EngineError> {
        Err(EngineError::NoCudaDevice(NOT_BUILT.to_string()))
    }

    pub fn split(&self) -> Split {
        match *self {}
    }

    pub fn forward(
        &mut self,
        _tokens: &[u32],
        _x: &mut [f32],
        _pos0: usize,
        _logits: &mut [f32],
        _rows: usize,
    ) -> Result<bool, EngineError> {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngl_takes_the_last_layers() {
        let s = Split::new(8, 3);
        assert_eq!(s.gpu_layers(), 5..8);
        assert!(!s.head_on_gpu && !s.embedding_on_gpu() && !s.is_empty());
        let s = Split::new(8, 8);
        assert_eq!(s.gpu_layers(), 0..8);
        assert!(!s.head_on_gpu && s.embedding_on_gpu());
        let s = Split::new(8, 9);
        assert_eq!(s.gpu_layers(), 0..8);
        assert!(s.head_on_gpu);
        let s = Split::new(8, 99);
        assert!(s.head_on_gpu && s.embedding_on_gpu());
        let s = Split::new(8, 0);
        assert_eq!(s.gpu_layers(), 8..8);
        assert!(s.is_empty() && !s.head_on_gpu);
    }

    #[test]
    fn backend_names() {
        assert_eq!("cuda".parse::<Backend>().unwrap(), Backend::Cuda);
        assert_eq!("CPU".parse::<Backend>().unwrap(), Backend::Cpu);
        let e = "metal".parse::<Backend>().unwrap_err().to_string();
        assert!(e.contains("'metal'") && e.contains("cpu, cuda"), "{e}");
        assert_eq!(Backend::Cuda.label(), "CUDA");
    }
}
