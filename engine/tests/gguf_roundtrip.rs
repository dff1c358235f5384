//! Writer → reader round trips, and files built by hand byte by byte (v2, v1, bad magic).

mod gguf_common;

use gguf_common::{F32, Q4_0, Raw, T_STRING};
use tessera_engine::gguf::{GgufError, GgufFile, GgufWriter, Value, ValueType};
use tessera_kernels::GgmlType;

fn strings(xs: &[&str]) -> Value {
    Value::Array(
        ValueType::String,
        xs.iter().map(|s| Value::from(*s)).collect(),
    )
}

/// One key of every value type, arrays of every element type, and nesting.
fn every_value() -> Vec<(String, Value)> {
    let mut kvs: Vec<(String, Value)> = vec![
        ("t.u8".into(), Value::U8(200)),
        ("t.i8".into(), Value::I8(-100)),
        ("t.u16".into(), Value::U16(60_000)),
        ("t.i16".into(), Value::I16(-30_000)),
        ("t.u32".into(), Value::U32(4_000_000_000)),
        ("t.i32".into(), Value::I32(-2_000_000_000)),
        ("t.f32".into(), Value::F32(-1.5e-7)),
        ("t.bool_true".into(), Value::Bool(true)),
        ("t.bool_false".into(), Value::Bool(false)),
        ("t.string".into(), Value::from("héllo ▁wörld")),
        ("t.empty_string".into(), Value::from("")),
        ("t.u64".into(), Value::U64(u64::MAX - 1)),
        ("t.i64".into(), Value::I64(i64::MIN + 1)),
        ("t.f64".into(), Value::F64(std::f64::consts::PI)),
        (
            "t.array_of_arrays_of_strings".into(),
            Value::Array(
                ValueType::Array,
                vec![
                    strings(&["a", "bc"]),
                    strings(&[]),
                    strings(&["", "▁x", "zz"]),
                ],
            ),
        ),
        (
            "t.empty_u64_array".into(),
            Value::Array(ValueType::U64, vec![]),
        ),
    ];
    for t in ValueType::ALL {
        let item = match t {
            ValueType::U8 => Value::U8(1),
            ValueType::I8 => Value::I8(-1),
            ValueType::U16 => Value::U16(2),
            ValueType::I16 => Value::I16(-2),
            ValueType::U32 => Value::U32(3),
            ValueType::I32 => Value::I32(-3),
            ValueType::F32 => Value::F32(0.25),
            ValueType::Bool => Value::Bool(true),
            ValueType::String => Value::from("s"),
            ValueType::Array => Value::Array(ValueType::I16, vec![Value::I16(7)]),
            ValueType::U64 => Value::U64(4),
            ValueType::I64 => Value::I64(-4),
            ValueType::F64 => Value::F64(-0.5),
        };
        kvs.push((
            format!("t.array.{t}"),
            Value::Array(t, vec![item.clone(), item]),
        ));
    }
    // The deepest nesting the reader accepts: 8 levels of arrays.
    let mut deep = Value::Array(ValueType::U8, vec![Value::U8(9)]);
    for _ in 1..tessera_engine::gguf::MAX_ARRAY_DEPTH {
        deep = Value::Array(ValueType::Array, vec![deep]);
    }
    kvs.push(("t.deep".into(), deep));
    kvs
}

fn pattern(i: usize, n: u64) -> Vec<u8> {
    (0..n).map(|j| (j as usize * 7 + i * 31) as u8).collect()
}

#[test]
fn round_trip_keeps_every_value_type_nested_arrays_and_tensor_bytes() {
    let kvs = every_value();
    let mut w = GgufWriter::new(128);
    for (k, v) in &kvs {
        w.add_kv(k.clone(), v.clone());
    }
    let shapes: [(&str, &[u64], GgmlType); 5] = [
        ("q4", &[64, 3], GgmlType::Q4_0),
        ("f32_1d", &[5], GgmlType::F32),
        ("q8_3d", &[32, 2, 3], GgmlType::Q8_0),
        ("f16_4d", &[3, 1, 2, 2], GgmlType::F16),
        ("bf16", &[7], GgmlType::BF16),
    ];
    for (name, dims, ty) in shapes {
        w.add_tensor(name, dims, ty);
    }
    let infos = w.tensor_infos().unwrap();
    let mut bytes = Vec::new();
    let n = w
        .write(&mut bytes, |i, info, buf| {
            buf.extend(pattern(i, info.size));
            Ok(())
        })
        .unwrap();
    assert_eq!(n, bytes.len() as u64);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let mapped = GgufFile::open(&path).unwrap();
    let owned = GgufFile::from_bytes(bytes).unwrap();

    for f in [&mapped, &owned] {
        assert_eq!(f.version, 3);
        assert_eq!(f.alignment, 128);
        assert_eq!(f.data_offset % 128, 0);
        // The writer records the non-default alignment after the caller's keys.
        assert_eq!(f.metadata[..kvs.len()], kvs[..]);
        assert_eq!(
            f.metadata[kvs.len()],
            ("general.alignment".into(), Value::U32(128))
        );
        assert_eq!(f.metadata.len(), kvs.len() + 1);
        assert_eq!(f.tensors, infos);
        for (i, t) in f.tensors.iter().enumerate() {
            assert_eq!(t.offset % 128, 0, "{}", t.name);
            let data = f.tensor_data(t);
            assert_eq!(data, &pattern(i, t.size)[..], "{}", t.name);
            assert_eq!(
                data.as_ptr() as usize % 8,
                0,
                "{} is not 8-byte aligned",
                t.name
            );
        }
    }
    assert_eq!(mapped.path(), Some(path.as_path()));
    assert_eq!(mapped.tensor("q8_3d").unwrap().size, 6 * 34);
    assert_eq!(mapped.tensor("f16_4d").unwrap().n_elements(), 12);
}

#[test]
fn typed_getters_convert_or_name_key_and_found_type() {
    let mut w = GgufWriter::new(32);
    w.add_kv("count_i32", Value::I32(12));
    w.add_kv("negative", Value::I32(-5));
    w.add_kv("eps", Value::F64(1e-6));
    w.add_kv("arch", "llama");
    let mut bytes = Vec::new();
    w.write(&mut bytes, |_, _, _| Ok(())).unwrap();
    let f = GgufFile::from_bytes(bytes).unwrap();

    assert_eq!(f.get_u64("count_i32").unwrap(), 12);
    assert_eq!(f.get_f32("eps").unwrap(), 1e-6);
    assert_eq!(f.get_str("arch").unwrap(), "llama");
    let e = f.get_u64("negative").unwrap_err();
    assert!(
        matches!(&e, GgufError::WrongType { key, .. } if key == "negative"),
        "{e}"
    );
    assert!(e.to_string().contains("i32 -5"), "{e}");
    let e = f.get_str("count_i32").unwrap_err().to_string();
    assert!(
        e.contains("'count_i32'") && e.contains("string") && e.contains("i32 12"),
        "{e}"
    );
    let e = f.get_f32("llama.rope.freq_base").unwrap_err();
    assert!(matches!(&e, GgufError::MissingKey { key } if key == "llama.rope.freq_base"));
    assert!(e.to_string().contains("'llama.rope.freq_base'"), "{e}");
}

#[test]
fn hand_built_v2_file_parses() {
    let mut r = Raw::header(2, 2, 3);
    r.kv_str("general.architecture", "llama");
    r.kv_u32("llama.block_count", 7);
    r.str("tokenizer.ggml.tokens")
        .u32(gguf_common::T_ARRAY)
        .u32(T_STRING)
        .u64(2);
    r.str("<s>").str("▁a");
    r.tensor("w", &[4, 2], F32, 0).tensor("q", &[32], Q4_0, 32);
    r.pad(32);
    let data_start = r.pos();
    for i in 0..8 {
        r.f32(i as f32 * 0.5);
    }
    r.data(18, 1);
    let f = GgufFile::from_bytes(r.done()).unwrap();

    assert_eq!(f.version, 2);
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset, data_start as u64);
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u64("llama.block_count").unwrap(), 7);
    assert_eq!(
        f.get("tokenizer.ggml.tokens").unwrap(),
        &Value::Array(ValueType::String, vec!["<s>".into(), "▁a".into()])
    );
    let w = f.tensor("w").unwrap();
    assert_eq!(
        (w.dims.as_slice(), w.ty, w.offset, w.size),
        (&[4u64, 2][..], GgmlType::F32, 0, 32)
    );
    let values: Vec<f32> = f
        .tensor_data(w)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
    let q = f.tensor("q").unwrap();
    assert_eq!(f.tensor_data(q), &(1..19).collect::<Vec<u8>>()[..]);
    assert_eq!(f.file_size(), data_start as u64 + 32 + 18);
}

#[test]
fn v1_file_is_refused_naming_the_version() {
    // v1 used u32 counts; the reader must stop at the version, not misparse the counts.
    let mut r = Raw::default();
    r.bytes(b"GGUF").u32(1).u32(0).u32(1).kv_u32("a", 1);
    let e = GgufFile::from_bytes(r.done()).unwrap_err();
    assert!(
        matches!(e, GgufError::UnsupportedVersion { version: 1 }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("version 1") && msg.contains("2 and 3"),
        "{msg}"
    );

    let e = GgufFile::from_bytes(Raw::header(4, 0, 0).done()).unwrap_err();
    assert!(e.to_string().contains("version 4"), "{e}");
    let e = GgufFile::from_bytes(Raw::header(3u32.swap_bytes(), 0, 0).done()).unwrap_err();
    assert!(e.to_string().contains("big-endian"), "{e}");
}

#[test]
fn bad_magic_and_missing_file_are_named() {
    let e = GgufFile::from_bytes(b"GGML\x03\0\0\0".to_vec()).unwrap_err();
    assert!(
        matches!(e, GgufError::BadMagic { found } if &found == b"GGML"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.gguf");
    let e = GgufFile::open(&missing).unwrap_err();
    assert!(
        matches!(&e, GgufError::NotFound { path } if *path == missing),
        "{e}"
    );
    assert!(e.to_string().contains("nope.gguf"), "{e}");

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let e = GgufFile::open(&empty).unwrap_err();
    assert!(matches!(e, GgufError::Truncated { offset: 0, .. }), "{e}");
}

#[test]
fn file_without_tensors_round_trips() {
    let mut w = GgufWriter::new(32);
    w.add_kv("general.architecture", "llama");
    let mut bytes = Vec::new();
    w.write(&mut bytes, |_, _, _| Ok(())).unwrap();
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert!(f.tensors.is_empty());
    assert_eq!(f.metadata.len(), 1);
}
