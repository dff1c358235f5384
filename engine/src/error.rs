//! Errors of the engine: a bad model file, a bad request, or a resource limit.

use std::path::PathBuf;

use tessera_kernels::GgmlType;

use crate::gguf::GgufError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<EngineError>,
    },
    #[error("model architecture is '{0}'; tessera runs 'llama'")]
    Architecture(String),
    #[error("missing tensor '{0}' required by the llama architecture")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?} (ggml ne order)")]
    TensorShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor '{name}' has type {ty}; tessera computes with f32, f16, q8_0 and q4_0")]
    UnsupportedType { name: String, ty: GgmlType },
    #[error("bad hyperparameter: {0}")]
    Hparams(String),
    #[error("token id {token} at position {pos} is out of range: the vocabulary has {n_vocab} tokens (0..={max})", max = n_vocab - 1)]
    TokenOutOfRange {
        token: i64,
        pos: usize,
        n_vocab: usize,
    },
    #[error("context full: {needed} tokens do not fit a context of {n_ctx}")]
    ContextFull { needed: usize, n_ctx: usize },
    #[error("unknown KV cache type '{0}'; valid: f16, f32")]
    KvType(String),
    #[error(transparent)]
    Dispatch(#[from] tessera_kernels::DispatchError),
    #[error("{0}")]
    Invalid(String),
    /// The CUDA backend was asked for and cannot run: no driver, no device, no NVRTC, or a
    /// build without the `cuda` feature.
    #[error("no CUDA device: {0}")]
    NoCudaDevice(String),
    /// A GPU op failed, in llama.cpp's words: "GET_ROWS failed: an illegal memory access was
    /// encountered (CUDA_ERROR_ILLEGAL_ADDRESS, code 700)".
    #[error("{0}")]
    Cuda(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
