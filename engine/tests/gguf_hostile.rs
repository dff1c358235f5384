//! Crafted GGUF files: each kind of damage gives its own error, with the offset or name
//! that locates it, and never a panic.

mod gguf_common;

use gguf_common::{F32, Q4_0, Raw, T_ARRAY, T_STRING, T_U32, T_U64, small_file};
use tessera_engine::gguf::{GgufError, GgufFile};

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(bytes)
}

fn err(bytes: Vec<u8>) -> GgufError {
    match parse(bytes) {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_prefix_of_a_valid_file_is_an_error() {
    let full = small_file();
    let f = parse(full.clone()).unwrap();
    let needed = f
        .tensors
        .iter()
        .map(|t| f.data_offset + t.offset + t.size)
        .max()
        .unwrap();
    assert_eq!(needed, full.len() as u64);
    for len in 0..full.len() {
        let e = err(full[..len].to_vec());
        // Every cut is reported as running past the end, not as some other damage.
        assert!(
            matches!(
                e,
                GgufError::Truncated { .. }
                    | GgufError::CountTooLarge { .. }
                    | GgufError::OutOfBounds { .. }
            ),
            "prefix {len}: {e}"
        );
    }
}

#[test]
fn huge_string_length_is_truncation_at_its_offset() {
    let mut r = Raw::header(3, 0, 1);
    let at = r.pos();
    r.u64(1 << 32).bytes(b"general.name");
    let e = err(r.done());
    match &e {
        GgufError::Truncated {
            offset,
            needed,
            file_size,
            ..
        } => {
            assert_eq!(*offset, at as u64 + 8);
            assert_eq!(*needed, 1 << 32);
            assert_eq!(*file_size, r.pos() as u64);
        }
        _ => panic!("{e}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("string length 4294967296"), "{msg}");
    assert!(msg.contains(&format!("({} bytes)", r.pos())), "{msg}");

    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(T_STRING).u64(u64::MAX);
    assert!(matches!(
        err(r.done()),
        GgufError::Truncated {
            needed: u64::MAX,
            ..
        }
    ));
}

#[test]
fn huge_array_count_is_refused_before_allocating() {
    for (elem, count) in [
        (T_U64, u64::MAX),
        (0, 1 << 40),
        (T_STRING, u64::MAX / 8 + 1),
    ] {
        let mut r = Raw::header(3, 0, 1);
        r.str("tokenizer.ggml.tokens").u32(T_ARRAY).u32(elem);
        let at = r.pos();
        r.u64(count).bytes(&[0; 64]);
        let e = err(r.done());
        assert!(
            matches!(e, GgufError::CountTooLarge { count: c, offset, .. } if c == count && offset == at as u64),
            "{e}"
        );
        assert!(e.to_string().contains("tokenizer.ggml.tokens"), "{e}");
    }
}

#[test]
fn huge_kv_and_tensor_counts_are_refused() {
    let e = err(Raw::header(3, 0, u64::MAX).done());
    assert!(
        matches!(e, GgufError::CountTooLarge { offset: 16, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("kv_count"), "{e}");
    let e = err(Raw::header(3, 1 << 50, 0).done());
    assert!(
        matches!(e, GgufError::CountTooLarge { offset: 8, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("tensor_count"), "{e}");
}

#[test]
fn unknown_value_type_names_id_and_offset() {
    let mut r = Raw::header(3, 0, 1);
    r.str("k");
    let at = r.pos();
    r.u32(13).u32(0);
    let e = err(r.done());
    assert!(
        matches!(e, GgufError::UnknownValueType { id: 13, offset, .. } if offset == at as u64),
        "{e}"
    );

    // Inside an array, too.
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(T_ARRAY);
    let at = r.pos();
    r.u32(0xFFFF_FFFF).u64(0);
    let e = err(r.done());
    assert!(
        matches!(e, GgufError::UnknownValueType { id: u32::MAX, offset, .. } if offset == at as u64),
        "{e}"
    );
}

#[test]
fn unknown_tensor_type_names_tensor_and_known_types() {
    let mut r = Raw::header(3, 1, 0);
    r.tensor("blk.0.attn_q.weight", &[32, 2], 99, 0)
        .pad(32)
        .data(64, 0);
    let e = err(r.done());
    assert!(
        matches!(&e, GgufError::UnknownTensorType { tensor, id: 99, .. } if tensor == "blk.0.attn_q.weight"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("f32=0") && msg.contains("q4_0=2"), "{msg}");
}

#[test]
fn tensor_past_the_end_is_out_of_bounds() {
    let mut r = Raw::header(3, 1, 0);
    r.tensor("w", &[8], F32, 0).pad(32).data(31, 0);
    let e = err(r.done());
    assert!(
        matches!(&e, GgufError::OutOfBounds { tensor, size: 32, .. } if tensor == "w"),
        "{e}"
    );

    // An offset so large that offset + size overflows must not wrap around.
    let mut r = Raw::header(3, 1, 0);
    r.tensor("w", &[8], F32, u64::MAX - 31).pad(32).data(32, 0);
    let e = err(r.done());
    assert!(matches!(e, GgufError::OutOfBounds { .. }), "{e}");
}

#[test]
fn overlapping_tensors_are_named() {
    let mut r = Raw::header(3, 3, 0);
    r.tensor("c", &[8], F32, 64)
        .tensor("a", &[16], F32, 0)
        .tensor("b", &[8], F32, 32);
    r.pad(32).data(96, 0);
    let e = err(r.done());
    match e {
        GgufError::Overlap {
            a,
            b,
            a_end,
            b_start,
        } => {
            assert_eq!((a.as_str(), b.as_str(), a_end, b_start), ("a", "b", 64, 32));
        }
        e => panic!("{e}"),
    }
}

#[test]
fn row_not_a_whole_number_of_blocks_is_a_size_mismatch() {
    let mut r = Raw::header(3, 1, 0);
    r.tensor("w", &[33, 2], Q4_0, 0).pad(32).data(128, 0);
    let e = err(r.done());
    assert!(
        matches!(&e, GgufError::SizeMismatch { tensor, ne0: 33, block_size: 32, .. } if tensor == "w"),
        "{e}"
    );
    assert!(e.to_string().contains("q4_0 block size 32"), "{e}");
}

#[test]
fn bad_dims_are_refused() {
    let cases: [(&[u64], &str); 5] = [
        (&[], "n_dims is 0"),
        (&[1, 1, 1, 1, 1], "n_dims is 5"),
        (&[4, 0], "ne[1] is 0"),
        (&[1 << 32, 1 << 32, 1 << 32], "element count overflows"),
        (&[1 << 32, 1 << 31], "overflows u64"), // 2^63 elements, 2^65 bytes
    ];
    for (dims, want) in cases {
        let mut r = Raw::header(3, 1, 0);
        r.tensor("w", dims, F32, 0).pad(32).data(64, 0);
        let e = err(r.done());
        assert!(
            matches!(&e, GgufError::BadDims { tensor, .. } if tensor == "w"),
            "{e}"
        );
        assert!(e.to_string().contains(want), "{dims:?}: {e}");
    }
}

#[test]
fn misaligned_offset_is_refused() {
    let mut r = Raw::header(3, 1, 0);
    r.tensor("w", &[4], F32, 16).pad(32).data(64, 0);
    let e = err(r.done());
    assert!(
        matches!(&e, GgufError::Misaligned { tensor, offset: 16, alignment: 32 } if tensor == "w"),
        "{e}"
    );
}

#[test]
fn bad_alignment_values_and_types_are_refused() {
    let mut bad = Vec::new();
    for v in [0u32, 48, 3] {
        let mut r = Raw::header(3, 0, 1);
        r.kv_u32("general.alignment", v);
        bad.push(r.done());
    }
    let mut r = Raw::header(3, 0, 1);
    r.str("general.alignment").u32(T_U64).u64(64);
    bad.push(r.done());
    for bytes in bad {
        let e = err(bytes);
        assert!(
            matches!(e, GgufError::BadAlignment { offset: 53, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("power of two of type u32"), "{e}");
    }

    // A valid non-default alignment moves the data section.
    let mut r = Raw::header(3, 1, 1);
    r.kv_u32("general.alignment", 256)
        .tensor("w", &[4], F32, 0)
        .pad(256);
    let start = r.pos() as u64;
    r.data(16, 0);
    let f = parse(r.done()).unwrap();
    assert_eq!((f.alignment, f.data_offset), (256, start));
}

#[test]
fn nesting_deeper_than_the_cap_is_refused() {
    let build = |levels: usize| {
        let mut r = Raw::header(3, 0, 1);
        r.str("deep").u32(T_ARRAY);
        for _ in 1..levels {
            r.u32(T_ARRAY).u64(1);
        }
        r.u32(T_U32).u64(1).u32(5);
        r.done()
    };
    assert!(parse(build(8)).is_ok());
    let e = err(build(9));
    assert!(
        matches!(&e, GgufError::TooDeep { key, max: 8, .. } if key == "deep"),
        "{e}"
    );
    // A deep enough file would overflow the stack without the cap.
    assert!(matches!(err(build(100_000)), GgufError::TooDeep { .. }));
}

#[test]
fn duplicates_are_refused() {
    let mut r = Raw::header(3, 0, 2);
    r.kv_u32("a", 1);
    let at = r.pos();
    r.kv_u32("a", 2);
    let e = err(r.done());
    assert!(
        matches!(&e, GgufError::DuplicateKey { key, offset } if key == "a" && *offset == at as u64),
        "{e}"
    );

    let mut r = Raw::header(3, 2, 0);
    r.tensor("w", &[8], F32, 0)
        .tensor("w", &[8], F32, 32)
        .pad(32)
        .data(64, 0);
    let e = err(r.done());
    assert!(
        matches!(&e, GgufError::DuplicateTensor { tensor, .. } if tensor == "w"),
        "{e}"
    );
}

#[test]
fn invalid_utf8_names_what_and_where() {
    let mut r = Raw::header(3, 0, 1);
    r.u64(2);
    let at = r.pos();
    r.bytes(&[0xC3, 0x28]).u32(T_U32).u32(1);
    let e = err(r.done());
    assert!(
        matches!(e, GgufError::InvalidUtf8 { offset, .. } if offset == at as u64),
        "{e}"
    );

    let mut r = Raw::header(3, 1, 0);
    r.u64(1)
        .bytes(&[0xFF])
        .u32(1)
        .u64(4)
        .u32(F32)
        .u64(0)
        .pad(32)
        .data(16, 0);
    let e = err(r.done());
    assert!(e.to_string().contains("name of tensor #0"), "{e}");
}
