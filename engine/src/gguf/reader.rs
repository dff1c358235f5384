//! The GGUF parser proper, over a byte slice (a memory map or a buffer). It reads the
//! header, metadata and tensor infos and checks every length, count, offset and shape
//! against the bytes actually present before using or allocating for it, so a crafted file
//! yields an error naming the offset, never a panic or a huge allocation.

use std::collections::HashSet;

use tessera_kernels::GgmlType;

use super::error::{GgufError, quoted};
use super::value::{Value, ValueType};
use super::{DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS, TensorInfo};

/// What the parser found; the caller keeps the bytes.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
}

/// Fewest bytes of one key-value pair: key length, value type, a one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Fewest bytes of one tensor info: name length, n_dims, one dim, type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;
/// Elements reserved up front for an array; larger arrays grow as they are read, so the
/// allocation follows the bytes really parsed rather than a count from the file.
const MAX_PREALLOC: usize = 4096;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn file_size(&self) -> u64 {
        self.buf.len() as u64
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn truncated(&self, what: String, needed: u64) -> GgufError {
        GgufError::Truncated {
            what,
            offset: self.offset(),
            needed,
            available: self.remaining(),
            file_size: self.file_size(),
        }
    }

    /// The next `n` bytes; `what` is only built on failure.
    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(self.truncated(what(), n));
        }
        // n <= remaining <= usize::MAX, so the cast is exact.
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A `u64` length followed by that many UTF-8 bytes; `what` names the string.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(|| format!("length of {}", what()))?;
        let at = self.offset();
        let bytes = self.take(len, || format!("{} (string length {len})", what()))?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                what: what(),
                offset: at,
            }),
        }
    }

    /// Refuses `count` elements when even the smallest encoding of each would not fit in
    /// the rest of the file.
    fn check_count(
        &self,
        what: impl FnOnce() -> String,
        count: u64,
        min_each: u64,
        at: u64,
    ) -> Result<(), GgufError> {
        let fits = count
            .checked_mul(min_each)
            .is_some_and(|need| need <= self.remaining());
        if fits {
            Ok(())
        } else {
            Err(GgufError::CountTooLarge {
                what: what(),
                count,
                offset: at,
                min_each,
                available: self.remaining(),
            })
        }
    }

    fn value_type(&mut self, what: &dyn Fn() -> String) -> Result<ValueType, GgufError> {
        let at = self.offset();
        let id = self.u32(what)?;
        ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType {
            what: what(),
            offset: at,
            id,
        })
    }

    /// One value of type `ty`. `depth` counts the arrays enclosing it.
    fn value(&mut self, ty: ValueType, key: &str, depth: usize) -> Result<Value, GgufError> {
        let what = || format!("value of key {}", quoted(key));
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(what)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(what)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            // Like llama.cpp, any non-zero byte is true.
            ValueType::Bool => Value::Bool(self.array::<1>(what)?[0] != 0),
            ValueType::String => Value::String(self.string(&what)?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(what)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            ValueType::Array => {
                let at = self.offset();
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::TooDeep {
                        key: key.to_owned(),
                        offset: at,
                        max: MAX_ARRAY_DEPTH,
                    });
                }
                let elem =
                    self.value_type(&|| format!("array element type of key {}", quoted(key)))?;
                let count_at = self.offset();
                let count = self.u64(|| format!("array length of key {}", quoted(key)))?;
                self.check_count(
                    || format!("array length of key {} ({elem} elements)", quoted(key)),
                    count,
                    elem.min_encoded_size(),
                    count_at,
                )?;
                // count <= remaining bytes, so it fits in usize.
                let mut items = Vec::with_capacity((count as usize).min(MAX_PREALLOC));
                for _ in 0..count {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}

pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, GgufError> {
    let mut c = Cursor { buf, pos: 0 };

    let magic: [u8; 4] = c.array(|| "magic".to_owned())?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(|| "version".to_owned())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let tensor_count_at = c.offset();
    let tensor_count = c.u64(|| "tensor_count".to_owned())?;
    let kv_count_at = c.offset();
    let kv_count = c.u64(|| "kv_count".to_owned())?;
    c.check_count(
        || "kv_count".to_owned(),
        kv_count,
        MIN_KV_BYTES,
        kv_count_at,
    )?;
    c.check_count(
        || "tensor_count".to_owned(),
        tensor_count,
        MIN_TENSOR_INFO_BYTES,
        tensor_count_at,
    )?;

    // Both counts are bounded by the file size above, so these fit in usize.
    let mut metadata = Vec::with_capacity(kv_count as usize);
    let mut keys = HashSet::with_capacity(kv_count as usize);
    let mut alignment = DEFAULT_ALIGNMENT;
    for i in 0..kv_count {
        let key_at = c.offset();
        let key = c.string(&|| format!("key #{i}"))?;
        let ty = c.value_type(&|| format!("type of key {}", quoted(&key)))?;
        let value_at = c.offset();
        let value = c.value(ty, &key, 0)?;
        if !keys.insert(key.clone()) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_at,
            });
        }
        if key == "general.alignment" {
            alignment = match value {
                Value::U32(a) if a.is_power_of_two() => u64::from(a),
                ref other => {
                    return Err(GgufError::BadAlignment {
                        found: other.describe(),
                        offset: value_at,
                    });
                }
            };
        }
        metadata.push((key, value));
    }

    c.check_count(
        || "tensor_count".to_owned(),
        tensor_count,
        MIN_TENSOR_INFO_BYTES,
        tensor_count_at,
    )?;
    let mut tensors = Vec::with_capacity(tensor_count as usize);
    let mut names = HashSet::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        let info_at = c.offset();
        let name = c.string(&|| format!("name of tensor #{i}"))?;
        let t = tensor_info(&mut c, name, info_at, alignment)?;
        if !names.insert(t.name.clone()) {
            return Err(GgufError::DuplicateTensor {
                tensor: t.name,
                offset: info_at,
            });
        }
        tensors.push(t);
    }

    let data_offset = c
        .offset()
        .checked_next_multiple_of(alignment)
        .unwrap_or(u64::MAX);
    check_placement(&tensors, data_offset, c.file_size())?;

    Ok(Parsed {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
    })
}

/// The rest of one tensor info after its name: shape, type, offset; checks the shape
/// against the type and computes the size in bytes.
fn tensor_info(
    c: &mut Cursor<'_>,
    name: String,
    info_at: u64,
    alignment: u64,
) -> Result<TensorInfo, GgufError> {
    let bad_dims = |reason: String| GgufError::BadDims {
        tensor: name.clone(),
        offset: info_at,
        reason,
    };
    let n_dims = c.u32(|| format!("n_dims of tensor {}", quoted(&name)))?;
    if !(1..=MAX_DIMS as u32).contains(&n_dims) {
        return Err(bad_dims(format!(
            "n_dims is {n_dims}, expected 1 to {MAX_DIMS}"
        )));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    let mut n_elements: u64 = 1;
    for d in 0..n_dims {
        let ne = c.u64(|| format!("ne[{d}] of tensor {}", quoted(&name)))?;
        if ne == 0 {
            return Err(bad_dims(format!(
                "ne[{d}] is 0, every dimension must be at least 1"
            )));
        }
        n_elements = n_elements.checked_mul(ne).ok_or_else(|| {
            bad_dims(format!(
                "element count overflows u64 at ne[{d}] = {ne} (shape so far {dims:?})"
            ))
        })?;
        dims.push(ne);
    }
    let type_at = c.offset();
    let type_id = c.u32(|| format!("type of tensor {}", quoted(&name)))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        tensor: name.clone(),
        offset: type_at,
        id: type_id,
    })?;
    let offset = c.u64(|| format!("data offset of tensor {}", quoted(&name)))?;

    let row = ty.row_bytes(dims[0]).ok_or_else(|| {
        if !dims[0].is_multiple_of(ty.block_size() as u64) {
            GgufError::SizeMismatch {
                tensor: name.clone(),
                ty,
                ne0: dims[0],
                block_size: ty.block_size(),
            }
        } else {
            bad_dims(format!("row size of ne[0] = {} overflows u64", dims[0]))
        }
    })?;
    let rows: u64 = dims[1..].iter().product(); // <= n_elements, no overflow
    let size = row.checked_mul(rows).ok_or_else(|| {
        bad_dims(format!(
            "size in bytes of shape {dims:?} as {ty} overflows u64"
        ))
    })?;
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::Misaligned {
            tensor: name,
            offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        size,
    })
}

/// Every tensor lies inside the file, and no two share a byte.
fn check_placement(
    tensors: &[TensorInfo],
    data_offset: u64,
    file_size: u64,
) -> Result<(), GgufError> {
    for t in tensors {
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|start| start.checked_add(t.size));
        if end.is_none_or(|end| end > file_size) {
            return Err(GgufError::OutOfBounds {
                tensor: t.name.clone(),
                start: data_offset.saturating_add(t.offset),
                size: t.size,
                file_size,
            });
        }
    }
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        // In bounds above, so the sum cannot overflow.
        let a_end = a.offset + a.size;
        if a_end > b.offset {
            return Err(GgufError::Overlap {
                a: a.name.clone(),
                b: b.name.clone(),
                a_end,
                b_start: b.offset,
            });
        }
    }
    Ok(())
}
