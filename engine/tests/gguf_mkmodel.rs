//! Cross-checks with llama.cpp's own Python `gguf` package: a file written by
//! shared/tools/mkmodel.py (llama.cpp's writer) must parse with the expected tensors and
//! keys and match our synthetic model's layout and vocabulary; and llama.cpp's Python
//! reader must read our writer's files as we do.
//!
//! Needs `python3` with `gguf` and `numpy` (`pip install gguf numpy`). Without them the
//! tests print "skipped" and pass, except under CI=true, where they fail.

mod gguf_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use gguf_common::{decode, llama_tensors, moments};
use tessera_engine::gguf::{GgufFile, Value, ValueType};
use tessera_engine::synth::{Preset, SynthSpec, write_model};
use tessera_kernels::GgmlType;

fn mkmodel_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/mkmodel.py")
}

/// `true` when python3 with gguf and numpy is usable. Otherwise says why and returns
/// `false`, or fails the test when CI is "true" (CI installs them).
fn python_gguf_available() -> bool {
    let script = mkmodel_script();
    let problem = if !script.exists() {
        Some(format!("{} not found", script.display()))
    } else {
        match Command::new("python3")
            .args(["-c", "import gguf, numpy"])
            .output()
        {
            Ok(out) if out.status.success() => None,
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                Some(err.lines().last().unwrap_or("import failed").to_owned())
            }
            Err(e) => Some(format!("cannot run python3: {e}")),
        }
    };
    let Some(problem) = problem else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("python gguf not installed ({problem}); run `pip install gguf numpy`");
    }
    eprintln!("skipped: python gguf not installed ({problem})");
    false
}

fn run_python(args: &[&str]) -> String {
    let out = Command::new("python3").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "python3 {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mkmodel(out: &Path, ty: &str, seed: u64) -> GgufFile {
    let script = mkmodel_script();
    run_python(&[
        script.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        ty,
        "--ctx",
        "4096",
        "--seed",
        &seed.to_string(),
    ]);
    GgufFile::open(out).unwrap()
}

#[test]
fn mkmodel_q4_0_file_parses_with_the_expected_tensors_and_keys() {
    if !python_gguf_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = mkmodel(&dir.path().join("mk.gguf"), "q4_0", 5);

    assert_eq!((f.version, f.alignment), (3, 32));
    let got: Vec<(String, Vec<u64>, GgmlType)> = f
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.dims.clone(), t.ty))
        .collect();
    assert_eq!(
        got,
        llama_tensors(512, 256, 2, 128, 768, GgmlType::Q4_0, false)
    );
    let u32_keys = [
        ("llama.context_length", 4096),
        ("llama.embedding_length", 256),
        ("llama.block_count", 2),
        ("llama.feed_forward_length", 768),
        ("llama.attention.head_count", 8),
        ("llama.attention.head_count_kv", 4),
        ("llama.rope.dimension_count", 32),
        ("general.file_type", 2),
        ("llama.vocab_size", 512),
        ("tokenizer.ggml.bos_token_id", 1),
        ("tokenizer.ggml.eos_token_id", 2),
        ("tokenizer.ggml.unknown_token_id", 0),
    ];
    for (k, v) in u32_keys {
        assert_eq!(f.get(k), Some(&Value::U32(v)), "{k}");
    }
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "llama");
    assert_eq!(f.get("llama.rope.freq_base"), Some(&Value::F32(10000.0)));
    assert_eq!(
        f.get("llama.attention.layer_norm_rms_epsilon"),
        Some(&Value::F32(1e-5))
    );
    let (ty, tokens) = f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!((ty, tokens.len()), (ValueType::String, 512));

    // llama.cpp's Q4_0 quantizer, read with our block layout, gives the intended scales.
    for (name, mean, std) in [
        ("token_embd.weight", 0.0, 1.0),
        ("blk.0.attn_q.weight", 0.0, 1.0 / 16.0),
        ("blk.1.ffn_down.weight", 0.0, 768f64.powf(-0.5)),
    ] {
        let t = f.tensor(name).unwrap();
        let (m, s) = moments(&decode(t.ty, f.tensor_data(t)));
        assert!((m - mean).abs() < 0.02 * std, "{name}: mean {m}");
        assert!((s / std - 1.0).abs() < 0.05, "{name}: std {s}, want {std}");
    }
    let t = f.tensor("blk.0.ffn_norm.weight").unwrap();
    let (m, s) = moments(&decode(t.ty, f.tensor_data(t)));
    assert!(
        (m - 1.0).abs() < 0.03 && (s - 0.1).abs() < 0.02,
        "ffn_norm: {m} ± {s}"
    );
}

#[test]
fn synth_tiny_matches_mkmodel_layout_keys_and_vocabulary() {
    if !python_gguf_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (ty, name) in [(GgmlType::Q4_0, "q4_0"), (GgmlType::F16, "f16")] {
        let theirs = mkmodel(&dir.path().join(format!("mk-{name}.gguf")), name, 1);
        let ours_path = dir.path().join(format!("synth-{name}.gguf"));
        write_model(&ours_path, &SynthSpec::new(Preset::Tiny, ty, 1)).unwrap();
        let ours = GgufFile::open(&ours_path).unwrap();

        // Same tensors at the same data offsets, so the same loader code path.
        assert_eq!(ours.tensors, theirs.tensors, "{name}");
        // Every key llama.cpp's writer produced, with the same type and value (token
        // strings, scores and types included); general.name differs on purpose.
        for (k, v) in &theirs.metadata {
            if k == "general.name" {
                assert_eq!(ours.get(k).map(Value::type_name), Some("string"));
                continue;
            }
            assert_eq!(ours.get(k), Some(v), "{name}: key {k}");
        }
        let extra: Vec<&str> = ours
            .metadata
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| theirs.get(k).is_none())
            .collect();
        assert_eq!(extra, ["tessera.synth.seed"], "{name}");
    }
}

/// CRC-32 (IEEE), as Python's zlib.crc32 computes it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

const READ_WITH_GGUF_PY: &str = r#"
import json, sys, zlib, gguf
r = gguf.GGUFReader(sys.argv[1])
fields = {k: [t.name for t in f.types] for k, f in r.fields.items() if not k.startswith("GGUF.")}
tensors = [{"name": t.name, "shape": [int(x) for x in t.shape], "type": int(t.tensor_type),
            "n_bytes": int(t.n_bytes), "data_offset": int(t.data_offset),
            "crc": zlib.crc32(t.data.tobytes())} for t in r.tensors]
print(json.dumps({"fields": fields, "tensors": tensors}))
"#;

#[test]
fn llama_cpp_python_reader_reads_our_files_as_we_do() {
    if !python_gguf_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::F16, GgmlType::F32] {
        let path = dir.path().join(format!("synth-{ty}.gguf"));
        let spec = SynthSpec {
            tie_output: ty == GgmlType::F16,
            ..SynthSpec::new(Preset::Tiny, ty, 2)
        };
        write_model(&path, &spec).unwrap();
        let ours = GgufFile::open(&path).unwrap();
        let json = run_python(&["-c", READ_WITH_GGUF_PY, path.to_str().unwrap()]);
        let theirs: serde_json::Value = serde_json::from_str(&json).unwrap();

        let fields = theirs["fields"].as_object().unwrap();
        assert_eq!(fields.len(), ours.metadata.len(), "{ty}");
        for (k, v) in &ours.metadata {
            let mut want = vec![serde_json::json!(type_name_py(v.value_type()))];
            if let Value::Array(elem, _) = v {
                want.push(serde_json::json!(type_name_py(*elem)));
            }
            assert_eq!(fields[k].as_array().unwrap(), &want, "{ty} key {k}");
        }
        let tensors = theirs["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), ours.tensors.len(), "{ty}");
        for (t, py) in ours.tensors.iter().zip(tensors) {
            assert_eq!(py["name"], t.name.as_str());
            assert_eq!(py["shape"], serde_json::json!(t.dims), "{}", t.name);
            assert_eq!(py["type"], t.ty.id(), "{}", t.name);
            assert_eq!(py["n_bytes"], t.size, "{}", t.name);
            assert_eq!(py["data_offset"], ours.data_offset + t.offset, "{}", t.name);
            assert_eq!(py["crc"], crc32(ours.tensor_data(t)), "{}", t.name);
        }
    }
}

fn type_name_py(t: ValueType) -> &'static str {
    match t {
        ValueType::U8 => "UINT8",
        ValueType::I8 => "INT8",
        ValueType::U16 => "UINT16",
        ValueType::I16 => "INT16",
        ValueType::U32 => "UINT32",
        ValueType::I32 => "INT32",
        ValueType::F32 => "FLOAT32",
        ValueType::Bool => "BOOL",
        ValueType::String => "STRING",
        ValueType::Array => "ARRAY",
        ValueType::U64 => "UINT64",
        ValueType::I64 => "INT64",
        ValueType::F64 => "FLOAT64",
    }
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
