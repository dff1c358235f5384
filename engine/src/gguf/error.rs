//! Everything that can be wrong with a GGUF file, or with a file we are asked to write.
//! Each variant carries where (byte offset, key or tensor) and what was expected, so a
//! message alone is enough to find the fault with a hex dump.

use std::io;
use std::path::PathBuf;

use tessera_kernels::GgmlType;

use super::value::ValueType;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// Opening or mapping failed. The OS error is shown, not chained, so that a `{:#}`
    /// print of the error does not repeat it.
    #[error("cannot read GGUF file {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },

    #[error("model file '{}' does not exist", path.display())]
    NotFound { path: PathBuf },

    #[error(
        "model file '{}' is a symbolic link to '{}', which does not exist",
        path.display(),
        target.display()
    )]
    DanglingLink { path: PathBuf, target: PathBuf },

    /// A directory, FIFO, device or socket: refused after a `stat`, before it is opened (a
    /// FIFO would block the open forever, a device would be read as a file).
    #[error("model '{}' is not a regular file ({kind}); give a GGUF file", path.display())]
    NotRegularFile { path: PathBuf, kind: &'static str },

    #[error("writing GGUF failed: {source}")]
    Write {
        #[source]
        source: io::Error,
    },

    #[error(
        "not a GGUF file: the first bytes are {} ({:?}), expected \"GGUF\" (47 47 55 46)",
        hex(.found),
        String::from_utf8_lossy(.found)
    )]
    BadMagic { found: [u8; 4] },

    #[error("{}", version_message(*.version))]
    UnsupportedVersion { version: u32 },

    #[error(
        "truncated GGUF: {what} at offset {offset} needs {needed} bytes but only {available} \
         remain before the end of the file ({file_size} bytes)"
    )]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
        file_size: u64,
    },

    #[error(
        "implausible GGUF: {what} is {count} at offset {offset}, but at {min_each} or more \
         bytes each that needs more than the {available} bytes left in the file"
    )]
    CountTooLarge {
        what: String,
        count: u64,
        offset: u64,
        min_each: u64,
        available: u64,
    },

    #[error(
        "unknown GGUF value type {id} at offset {offset} ({what}); known types: {}",
        known_value_types()
    )]
    UnknownValueType { what: String, offset: u64, id: u32 },

    #[error(
        "tensor {} has unknown ggml type {id} at offset {offset} (known: {})",
        quoted(.tensor),
        known_tensor_types()
    )]
    UnknownTensorType {
        tensor: String,
        offset: u64,
        id: u32,
    },

    #[error(
        "GGUF key {} nests arrays more than {max} levels deep at offset {offset}; \
         refusing to read further",
        quoted(.key)
    )]
    TooDeep {
        key: String,
        offset: u64,
        max: usize,
    },

    #[error("tensor {} (info at offset {offset}): {reason}", quoted(.tensor))]
    BadDims {
        tensor: String,
        offset: u64,
        reason: String,
    },

    #[error(
        "tensor {} ({ty}) has ne[0] = {ne0}, not a multiple of the {ty} block size \
         {block_size}, so its rows have no whole size in bytes",
        quoted(.tensor)
    )]
    SizeMismatch {
        tensor: String,
        ty: GgmlType,
        ne0: u64,
        block_size: usize,
    },

    #[error(
        "tensor {}: data offset {offset} is not a multiple of the file's alignment \
         {alignment}",
        quoted(.tensor)
    )]
    Misaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },

    #[error(
        "tensor {}: its {size} bytes at absolute offset {start} run past the end of \
         the file ({file_size} bytes)",
        quoted(.tensor)
    )]
    OutOfBounds {
        tensor: String,
        start: u64,
        size: u64,
        file_size: u64,
    },

    #[error(
        "tensors {qa} and {qb} overlap: {qa} ends at data offset {a_end} but {qb} starts \
         at {b_start}",
        qa = quoted(.a),
        qb = quoted(.b)
    )]
    Overlap {
        a: String,
        b: String,
        a_end: u64,
        b_start: u64,
    },

    #[error("duplicate GGUF key {} at offset {offset}", quoted(.key))]
    DuplicateKey { key: String, offset: u64 },

    #[error("duplicate tensor name {} at offset {offset}", quoted(.tensor))]
    DuplicateTensor { tensor: String, offset: u64 },

    #[error(
        "general.alignment at offset {offset} must be a non-zero power of two of type u32, \
         found {found}"
    )]
    BadAlignment { found: String, offset: u64 },

    #[error("invalid UTF-8 in {what} at offset {offset}")]
    InvalidUtf8 { what: String, offset: u64 },

    #[error("GGUF metadata has no key {}", quoted(.key))]
    MissingKey { key: String },

    #[error("GGUF key {} should be {expected}, found {found}", quoted(.key))]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },

    #[error("the data for tensor {} has {found} bytes, expected {expected}", quoted(.tensor))]
    FillSize {
        tensor: String,
        expected: u64,
        found: u64,
    },

    #[error("cannot write GGUF: {reason}")]
    InvalidWrite { reason: String },
}

impl GgufError {
    /// Whether the message already names the file (errors of opening it), so a caller that
    /// prefixes errors with the path need not.
    pub fn names_path(&self) -> bool {
        matches!(
            self,
            GgufError::Io { .. }
                | GgufError::NotFound { .. }
                | GgufError::DanglingLink { .. }
                | GgufError::NotRegularFile { .. }
        )
    }
}

/// A key or tensor name as messages show it: in single quotes, control characters escaped
/// (names come from the file and may hold anything), long names cut, so that a message
/// stays one readable line.
pub(crate) fn quoted(name: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out = String::from("'");
    for (i, c) in name.chars().enumerate() {
        if i == MAX_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() || c == '\'' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn version_message(version: u32) -> String {
    let mut msg = format!(
        "unsupported GGUF version {version} (at offset 4): only versions 2 and 3 are supported"
    );
    if version == 1 {
        msg.push_str("; v1 files (32-bit counts) predate August 2023, re-convert the model");
    } else if matches!(version.swap_bytes(), 2 | 3) {
        msg.push_str("; the file looks big-endian, which tessera does not read");
    }
    msg
}

fn known_value_types() -> String {
    ValueType::ALL
        .iter()
        .map(|t| format!("{} {}", t.id(), t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn known_tensor_types() -> String {
    GgmlType::ALL
        .iter()
        .map(|t| format!("{}={}", t.name(), t.id()))
        .collect::<Vec<_>>()
        .join(", ")
}
