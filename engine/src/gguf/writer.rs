//! A streaming GGUF v3 writer: the header, metadata and tensor infos are laid out from the
//! declared shapes first, then each tensor's bytes are asked for one at a time and written
//! straight out, so the whole model never has to be in memory.

use std::collections::HashSet;
use std::io::{self, Write};

use tessera_kernels::GgmlType;

use super::error::{GgufError, quoted};
use super::value::Value;
use super::{DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS, TensorInfo};

/// Builds a GGUF file: declare metadata and tensors, then [`GgufWriter::write`].
#[derive(Clone, Debug)]
pub struct GgufWriter {
    alignment: u32,
    kvs: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
}

/// Where each part of the file goes, computed and validated before anything is written.
struct Layout {
    header: Vec<u8>,
    data_offset: u64,
    tensors: Vec<TensorInfo>,
}

impl GgufWriter {
    /// `alignment` must be a non-zero power of two (checked by `write`); anything but the
    /// default 32 is recorded as `general.alignment`.
    pub fn new(alignment: u32) -> Self {
        GgufWriter {
            alignment,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn add_kv(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.kvs.push((key.into(), value.into()));
    }

    /// Declares the next tensor and returns its index, the one `write` passes to `fill`.
    /// `dims` is ggml order: `ne[0]` (contiguous) first.
    pub fn add_tensor(&mut self, name: impl Into<String>, dims: &[u64], ty: GgmlType) -> usize {
        self.tensors.push((name.into(), dims.to_vec(), ty));
        self.tensors.len() - 1
    }

    /// The tensor infos (offsets and sizes) the file will have, after the same checks
    /// `write` makes.
    pub fn tensor_infos(&self) -> Result<Vec<TensorInfo>, GgufError> {
        Ok(self.layout()?.tensors)
    }

    /// Writes the file to `out` and returns its size. `fill(i, info, buf)` is called once
    /// per tensor in declaration order with an empty `buf` and must append exactly
    /// `info.size` bytes.
    pub fn write<W, F>(self, mut out: W, mut fill: F) -> Result<u64, GgufError>
    where
        W: Write,
        F: FnMut(usize, &TensorInfo, &mut Vec<u8>) -> io::Result<()>,
    {
        let layout = self.layout()?;
        let werr = |source| GgufError::Write { source };
        out.write_all(&layout.header).map_err(werr)?;
        let mut pos = layout.header.len() as u64;
        pad_to(&mut out, &mut pos, layout.data_offset)?;

        let mut buf = Vec::new();
        for (i, t) in layout.tensors.iter().enumerate() {
            buf.clear();
            fill(i, t, &mut buf).map_err(|e| GgufError::Write {
                source: io::Error::new(
                    e.kind(),
                    format!("producing data for tensor {}: {e}", quoted(&t.name)),
                ),
            })?;
            if buf.len() as u64 != t.size {
                return Err(GgufError::FillSize {
                    tensor: t.name.clone(),
                    expected: t.size,
                    found: buf.len() as u64,
                });
            }
            pad_to(&mut out, &mut pos, layout.data_offset + t.offset)?;
            out.write_all(&buf).map_err(werr)?;
            pos += t.size;
        }
        // Like llama.cpp's writer, pad after the last tensor too.
        let end = pos.next_multiple_of(u64::from(self.alignment));
        pad_to(&mut out, &mut pos, end)?;
        out.flush().map_err(werr)?;
        Ok(pos)
    }

    fn layout(&self) -> Result<Layout, GgufError> {
        let invalid = |reason: String| GgufError::InvalidWrite { reason };
        if !self.alignment.is_power_of_two() {
            return Err(invalid(format!(
                "alignment {} is not a non-zero power of two",
                self.alignment
            )));
        }
        let align = u64::from(self.alignment);

        let mut kvs: Vec<(&str, Value)> = Vec::with_capacity(self.kvs.len() + 1);
        let mut keys = HashSet::new();
        for (k, v) in &self.kvs {
            if !keys.insert(k.as_str()) {
                return Err(invalid(format!("key {} was added twice", quoted(k))));
            }
            if k == "general.alignment" && *v != Value::U32(self.alignment) {
                return Err(invalid(format!(
                    "general.alignment is {}, but the writer aligns to u32 {}",
                    v.describe(),
                    self.alignment
                )));
            }
            check_value(k, v, 0)?;
            kvs.push((k, v.clone()));
        }
        if align != DEFAULT_ALIGNMENT && !keys.contains("general.alignment") {
            kvs.push(("general.alignment", Value::U32(self.alignment)));
        }

        let mut names = HashSet::new();
        let mut tensors = Vec::with_capacity(self.tensors.len());
        let mut next: u64 = 0;
        for (name, dims, ty) in &self.tensors {
            if !names.insert(name.as_str()) {
                return Err(invalid(format!("tensor {} was added twice", quoted(name))));
            }
            let size = tensor_size(name, dims, *ty)?;
            let offset = next;
            next = offset
                .checked_add(size)
                .and_then(|e| e.checked_next_multiple_of(align))
                .ok_or_else(|| invalid(format!("tensor {} ends past 2^64 bytes", quoted(name))))?;
            tensors.push(TensorInfo {
                name: name.clone(),
                dims: dims.clone(),
                ty: *ty,
                offset,
                size,
            });
        }

        let mut h = Vec::new();
        h.extend_from_slice(b"GGUF");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
        for (k, v) in &kvs {
            put_str(&mut h, k);
            h.extend_from_slice(&v.value_type().id().to_le_bytes());
            put_value(&mut h, v);
        }
        for t in &tensors {
            put_str(&mut h, &t.name);
            h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                h.extend_from_slice(&d.to_le_bytes());
            }
            h.extend_from_slice(&t.ty.id().to_le_bytes());
            h.extend_from_slice(&t.offset.to_le_bytes());
        }
        let data_offset = (h.len() as u64).next_multiple_of(align);
        if data_offset.checked_add(next).is_none() {
            return Err(invalid(
                "the file would be larger than 2^64 bytes".to_owned(),
            ));
        }
        Ok(Layout {
            header: h,
            data_offset,
            tensors,
        })
    }
}

/// Bytes of a tensor of this shape and type, or why it cannot be stored.
fn tensor_size(name: &str, dims: &[u64], ty: GgmlType) -> Result<u64, GgufError> {
    let invalid = |reason: String| GgufError::InvalidWrite {
        reason: format!("tensor {}: {reason}", quoted(name)),
    };
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(invalid(format!(
            "{} dimensions, expected 1 to {MAX_DIMS}",
            dims.len()
        )));
    }
    if dims.contains(&0) {
        return Err(invalid(format!("shape {dims:?} has a zero dimension")));
    }
    let rows = dims[1..]
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|rows| rows.checked_mul(dims[0]).is_some());
    let row = ty.row_bytes(dims[0]);
    match (row, rows) {
        (Some(row), Some(rows)) => row
            .checked_mul(rows)
            .ok_or_else(|| invalid(format!("shape {dims:?} as {ty} overflows u64 bytes"))),
        (None, _) if !dims[0].is_multiple_of(ty.block_size() as u64) => Err(invalid(format!(
            "ne[0] = {} is not a multiple of the {ty} block size {}",
            dims[0],
            ty.block_size()
        ))),
        _ => Err(invalid(format!("shape {dims:?} overflows u64 elements"))),
    }
}

/// Refuses what the reader would refuse: arrays whose elements disagree with the declared
/// element type, and nesting deeper than the reader accepts.
fn check_value(key: &str, v: &Value, depth: usize) -> Result<(), GgufError> {
    if let Value::Array(elem, items) = v {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::InvalidWrite {
                reason: format!(
                    "key {} nests arrays more than {MAX_ARRAY_DEPTH} deep",
                    quoted(key)
                ),
            });
        }
        for (i, item) in items.iter().enumerate() {
            if item.value_type() != *elem {
                return Err(GgufError::InvalidWrite {
                    reason: format!(
                        "key {}: element {i} is {}, but the array holds {elem}",
                        quoted(key),
                        item.type_name()
                    ),
                });
            }
            check_value(key, item, depth + 1)?;
        }
    }
    Ok(())
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(u8::from(*x)),
        Value::String(s) => put_str(h, s),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Array(elem, items) => {
            h.extend_from_slice(&elem.id().to_le_bytes());
            h.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(h, item);
            }
        }
    }
}

/// Writes zeros from `*pos` up to `target`.
fn pad_to<W: Write>(out: &mut W, pos: &mut u64, target: u64) -> Result<(), GgufError> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while *pos < target {
        let n = (target - *pos).min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..n])
            .map_err(|source| GgufError::Write { source })?;
        *pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::ValueType;

    #[test]
    fn offsets_follow_sizes_and_alignment() {
        let mut w = GgufWriter::new(64);
        w.add_tensor("a", &[32, 3], GgmlType::Q4_0); // 54 bytes
        w.add_tensor("b", &[5], GgmlType::F32); // 20 bytes
        w.add_tensor("c", &[2], GgmlType::F16);
        let infos = w.tensor_infos().unwrap();
        let got: Vec<(u64, u64)> = infos.iter().map(|t| (t.offset, t.size)).collect();
        assert_eq!(got, [(0, 54), (64, 20), (128, 4)]);
    }

    #[test]
    fn refuses_mixed_arrays_and_bad_shapes() {
        let mut w = GgufWriter::new(32);
        w.add_kv(
            "x",
            Value::Array(ValueType::U32, vec![Value::U32(1), Value::I32(2)]),
        );
        assert!(matches!(
            w.tensor_infos(),
            Err(GgufError::InvalidWrite { .. })
        ));

        let mut w = GgufWriter::new(32);
        w.add_tensor("t", &[33, 2], GgmlType::Q8_0);
        let e = w.tensor_infos().unwrap_err().to_string();
        assert!(
            e.contains("not a multiple of the q8_0 block size 32"),
            "{e}"
        );

        assert!(GgufWriter::new(48).tensor_infos().is_err());
    }

    #[test]
    fn fill_of_the_wrong_size_is_refused() {
        let mut w = GgufWriter::new(32);
        w.add_tensor("t", &[4], GgmlType::F32);
        let e = w
            .write(Vec::new(), |_, _, buf| {
                buf.extend_from_slice(&[0; 15]);
                Ok(())
            })
            .unwrap_err();
        assert!(
            matches!(
                e,
                GgufError::FillSize {
                    expected: 16,
                    found: 15,
                    ..
                }
            ),
            "{e}"
        );
    }
}
