//! Errors of the engine: a bad model file, a bad request, or a resource limit.

use std::path::PathBuf;

use tessera_kernels::GgmlType;

use crate::gguf::GgufError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// An error of the file at `path` (the inner error is shown, not chained, so that a
    /// `{:#}` print of the error does not repeat it).
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        error: Box<EngineError>,
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
    /// A context longer than [`crate::context::MAX_CTX`] positions.
    #[error(
        "a context of {n_ctx} positions is more than the limit of {max}",
        max = crate::context::MAX_CTX
    )]
    ContextTooLarge { n_ctx: usize },
    /// Buffers that do not fit the memory this process may still allocate: refused before
    /// allocating (`available` known), or an allocation that failed (`available` None).
    #[error("{}", out_of_memory(.what, *.needed, .available.as_ref()))]
    OutOfMemory {
        what: String,
        needed: u64,
        available: Option<crate::memory::Available>,
    },
    /// A thread pool that cannot start: too many threads asked for, or the system refused.
    #[error(
        "cannot start {requested} threads: {reason}; give at most {max} threads, fewer if \
         the system limits them",
        max = crate::pool::MAX_THREADS
    )]
    Threads { requested: usize, reason: String },
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

fn out_of_memory(what: &str, needed: u64, available: Option<&crate::memory::Available>) -> String {
    let needed = crate::memory::human(needed);
    match available {
        Some(a) => format!(
            "{what} needs {needed}, more than the {} available ({})",
            crate::memory::human(a.bytes),
            a.source
        ),
        None => format!("{what} needs {needed}, and allocating it failed"),
    }
}
