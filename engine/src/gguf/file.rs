//! An opened, fully validated GGUF file and its typed metadata accessors.

use std::fmt;
use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::TensorInfo;
use super::error::GgufError;
use super::reader::parse;
use super::value::Value;

/// The bytes behind a file: a read-only map, or a buffer whose start is 8-byte aligned so
/// that tensor slices can be cast to `f32`/`f16` the same way as with a map.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
    /// A buffer that arrived misaligned, copied into words; the first `len` bytes count.
    Words(Vec<u64>, usize),
}

impl Bytes {
    fn words(bytes: &[u8]) -> Bytes {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Bytes::Words(words, bytes.len())
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
            Bytes::Words(w, len) => bytemuck::cast_slice(w).get(..*len).unwrap_or(&[]),
        }
    }
}

/// A parsed GGUF file. The header fields are public for inspection; the bytes stay private
/// so that [`GgufFile::tensor_data`] can only hand out validated ranges.
pub struct GgufFile {
    pub version: u32,
    pub alignment: u64,
    /// Absolute offset of the data section (tensor offsets are relative to it).
    pub data_offset: u64,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    bytes: Bytes,
    path: Option<PathBuf>,
}

/// Refuses `path` unless it is a regular file (symbolic links followed), by `stat` alone:
/// nothing is opened, so a FIFO cannot block and a device is never read. Every command
/// that takes a model runs this first (and [`GgufFile::open`] runs it again).
pub fn check_regular_file(path: &Path) -> Result<(), GgufError> {
    match std::fs::metadata(path) {
        Ok(m) => regular(path, m.file_type()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(match std::fs::read_link(path) {
            Ok(target) => GgufError::DanglingLink {
                path: path.to_owned(),
                target,
            },
            Err(_) => GgufError::NotFound {
                path: path.to_owned(),
            },
        }),
        Err(error) => Err(GgufError::Io {
            path: path.to_owned(),
            error,
        }),
    }
}

fn regular(path: &Path, ty: FileType) -> Result<(), GgufError> {
    if ty.is_file() {
        return Ok(());
    }
    let kind = if ty.is_dir() {
        "a directory"
    } else if ty.is_fifo() {
        "a FIFO"
    } else if ty.is_char_device() {
        "a character device"
    } else if ty.is_block_device() {
        "a block device"
    } else if ty.is_socket() {
        "a socket"
    } else {
        "not a file, directory, FIFO, device or socket"
    };
    Err(GgufError::NotRegularFile {
        path: path.to_owned(),
        kind,
    })
}

impl GgufFile {
    /// Maps `path` and parses it. Anything but a regular file is refused before it is
    /// opened ([`check_regular_file`]).
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io_err = |error| GgufError::Io {
            path: path.to_owned(),
            error,
        };
        check_regular_file(path)?;
        // Non-blocking, and checked again on the descriptor: a path swapped for a FIFO
        // between the stat and the open must not hang the open either. (O_NONBLOCK does
        // nothing to reads or maps of a regular file.)
        let file: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        regular(path, meta.file_type())?;
        let len = meta.len();
        let bytes = if len == 0 {
            // Mapping zero bytes fails on some systems; an empty buffer gives the same
            // "truncated" error as any short file.
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this value. Another process
            // truncating or rewriting the file while it is mapped could change or remove
            // bytes under us; that is the accepted cost of mapping multi-gigabyte models
            // (llama.cpp maps them the same way), and tessera never writes a file it maps.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?)
        };
        Self::from_storage(bytes, Some(path.to_owned()))
    }

    /// Parses a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        let storage = if (bytes.as_ptr() as usize).is_multiple_of(8) {
            Bytes::Owned(bytes)
        } else {
            Bytes::words(&bytes)
        };
        Self::from_storage(storage, None)
    }

    fn from_storage(bytes: Bytes, path: Option<PathBuf>) -> Result<GgufFile, GgufError> {
        let p = parse(bytes.as_slice())?;
        Ok(GgufFile {
            version: p.version,
            alignment: p.alignment,
            data_offset: p.data_offset,
            metadata: p.metadata,
            tensors: p.tensors,
            bytes,
            path,
        })
    }

    /// The path given to [`GgufFile::open`], for messages; `None` for in-memory files.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn file_size(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_owned(),
        })
    }

    /// Any non-negative integer value.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| wrong_type(key, "a non-negative integer", v))
    }

    /// An `f32` (or `f64`) value.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f32()
            .ok_or_else(|| wrong_type(key, "a float (f32 or f64)", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, "a string", v))
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The bytes of `t`. Ranges of this file's own tensors were checked when it was
    /// parsed; a `TensorInfo` from elsewhere that does not fit gives an empty slice.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let range = self
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(t.size)?)))
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        range
            .and_then(|r| self.bytes.as_slice().get(r))
            .unwrap_or(&[])
    }

    /// Drops this process's resident pages of `t`'s data once it has been copied out
    /// (`madvise(MADV_DONTNEED)` on the whole pages inside it), so loading holds each
    /// weight once, not once in the map and once in its copy. The map stays valid: a later
    /// read faults the bytes in again from the file. A no-op for data held in memory.
    pub fn release(&self, t: &TensorInfo) {
        let Bytes::Mapped(m) = &self.bytes else {
            return;
        };
        let data = self.tensor_data(t);
        if data.is_empty() {
            return;
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let base = m.as_ptr() as usize;
        let start = (data.as_ptr() as usize).next_multiple_of(page);
        let end = (data.as_ptr() as usize + data.len()) / page * page;
        if end > start && start >= base {
            // SAFETY: [start, end) is whole pages inside this read-only private file map;
            // DONTNEED on such a map only drops pages the kernel can read back from the
            // file, and no reference into them is used for writing. Failure is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> GgufError {
    GgufError::WrongType {
        key: key.to_owned(),
        expected,
        found: found.describe(),
    }
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("file_size", &self.file_size())
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufWriter;
    use tessera_kernels::GgmlType;

    #[test]
    fn copied_buffers_read_like_owned_ones() {
        let mut w = GgufWriter::new(32);
        w.add_kv("k", Value::U32(1));
        w.add_tensor("t", &[3], GgmlType::F32);
        let mut bytes = Vec::new();
        w.write(&mut bytes, |_, _, buf| {
            buf.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
            Ok(())
        })
        .unwrap();
        // Odd lengths exercise the partial last word.
        bytes.push(0);
        let copied = GgufFile::from_storage(Bytes::words(&bytes), None).unwrap();
        assert_eq!(copied.file_size(), bytes.len() as u64);
        let t = copied.tensor("t").unwrap();
        assert_eq!(copied.tensor_data(t), (1..=12).collect::<Vec<u8>>());
        assert_eq!(copied.tensor_data(t).as_ptr() as usize % 8, 0);

        // A TensorInfo that does not fit gives an empty slice, not a panic.
        let stray = TensorInfo {
            offset: u64::MAX - 4,
            ..t.clone()
        };
        assert!(copied.tensor_data(&stray).is_empty());
    }
}
