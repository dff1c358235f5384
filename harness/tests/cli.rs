//! End-to-end behaviour of the `tessera` binary: outputs, exit codes, error messages.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn tessera(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    // Keep the default-model cache inside the test's temp dir.
    c.env("TESSERA_CACHE", cache);
    c
}

fn synth(dir: &Path, ty: &str) -> PathBuf {
    let out = dir.join(format!("tiny-{ty}.gguf"));
    tessera(dir)
        .args(["model", "synth", "--preset", "tiny", "--type", ty, "-o"])
        .arg(&out)
        .assert()
        .success();
    out
}

#[test]
fn bench_json_has_llama_bench_fields_and_one_row_per_config() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "q4_0");
    let out = tessera(dir.path())
        .args([
            "bench", "-p", "16,32", "-n", "4", "-r", "2", "-t", "1,2", "-o", "json", "-m",
        ])
        .arg(&model)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = rows.as_array().unwrap();
    // 2 thread counts x (pp16, pp32, tg4)
    assert_eq!(rows.len(), 6);
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp16", "pp32", "tg4", "pp16", "pp32", "tg4"]);
    for r in rows {
        for f in [
            "build_commit",
            "model_filename",
            "model_type",
            "n_batch",
            "n_ubatch",
            "type_k",
            "type_v",
            "n_prompt",
            "n_gen",
            "test_time",
        ] {
            assert!(!r[f].is_null(), "missing {f}");
        }
        assert_eq!(r["samples_ns"].as_array().unwrap().len(), 2);
        assert_eq!(r["samples_ts"].as_array().unwrap().len(), 2);
        let ts: Vec<f64> = r["samples_ts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mean = ts.iter().sum::<f64>() / 2.0;
        assert!((r["avg_ts"].as_f64().unwrap() - mean).abs() < 1e-6 * mean);
        assert!(r["model_size"].as_u64().unwrap() > 0 && r["model_n_params"].as_u64().unwrap() > 0);
        assert_eq!(r["status"], "ok");
        assert_eq!(r["schema_version"], 1);
        assert!(r["isa"].is_string() && r["tile"].is_string());
        let used = r["kernels_used"].as_array().unwrap();
        let kind = if r["n_gen"].as_u64().unwrap() > 0 {
            "gemv"
        } else {
            "gemm"
        };
        // Plain Q4_0, or repacked at load (`_q4_0x8_` on avx2, `_q4_0x16_` on avx512 and
        // amx, whose GEMM kernel is `..._amx`).
        let names = [
            format!("{kind}_q4_0_q8_0"),
            format!("{kind}_q4_0x8_q8_0"),
            format!("{kind}_q4_0x16_q8_0"),
            format!("{kind}_q4_0x16_q8_0_amx"),
        ];
        assert!(
            used.iter()
                .any(|u| names.iter().any(|n| u["kernel"] == n.as_str())),
            "{names:?} not in {used:?}"
        );
    }
    assert_eq!(rows[0]["n_threads"], 1);
    assert_eq!(rows[3]["n_threads"], 2);
}

#[test]
fn bench_markdown_looks_like_llama_bench() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "q8_0");
    tessera(dir.path())
        .args([
            "bench", "-p", "8", "-n", "2", "-r", "1", "-t", "1", "-ctk", "f32", "-m",
        ])
        .arg(&model)
        .assert()
        .success()
        .stdout(predicate::str::contains("| model"))
        .stdout(predicate::str::contains("t/s"))
        .stdout(predicate::str::contains("pp8"))
        .stdout(predicate::str::contains("tg2"))
        .stdout(predicate::str::contains("type_k"))
        .stdout(predicate::str::contains(" ± "));
}

#[test]
fn bench_pg_runs_both_under_one_timer() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "f16");
    let out = tessera(dir.path())
        .args([
            "bench", "-p", "0", "-n", "0", "--pg", "8,4", "-r", "1", "-t", "1", "-o", "jsonl", "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let r: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r["test"], "pp8+tg4");
    assert_eq!(
        (r["n_prompt"].as_u64(), r["n_gen"].as_u64()),
        (Some(8), Some(4))
    );
}

#[test]
fn truncated_model_is_exit_2_with_a_helpful_message() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "q4_0");
    let bytes = std::fs::read(&model).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    tessera(dir.path())
        .args(["bench", "-p", "8", "-n", "0", "-r", "1", "-m"])
        .arg(&cut)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cut.gguf"))
        .stderr(predicate::str::contains("offset"));
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"not a gguf file at all").unwrap();
    tessera(dir.path())
        .args(["generate", "--prompt-tokens", "1", "-m"])
        .arg(&garbage)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a GGUF file"));
}

#[test]
fn bad_flag_values_are_exit_2_and_name_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "q4_0");
    let cases: [(&[&str], &str); 5] = [
        (&["-o", "xml"], "md, csv, json, jsonl"),
        (&["-ctk", "q9"], "f16, f32"),
        (&["--isa", "sse9"], "scalar"),
        (&["--tile", "3x3x7"], "valid tiles"),
        (&["-t", "0"], "positive"),
    ];
    for (args, hint) in cases {
        tessera(dir.path())
            .arg("bench")
            .args(args)
            .arg("-m")
            .arg(&model)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(hint));
    }
    tessera(dir.path())
        .args(["model", "synth", "--preset", "70b", "-o"])
        .arg(dir.path().join("x.gguf"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tiny"));
}

#[test]
fn generate_prints_tokens_and_writes_the_logits_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "q8_0");
    let logits = dir.path().join("logits.json");
    let out = tessera(dir.path())
        .args([
            "generate",
            "--prompt-tokens",
            "1,2,3",
            "-n",
            "5",
            "-t",
            "2",
            "--logits-out",
        ])
        .arg(&logits)
        .arg("-m")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(printed.len(), 5);
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&logits).unwrap()).unwrap();
    let steps = file["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for (step, &tok) in steps.iter().zip(&printed) {
        let l: Vec<f64> = step["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(l.len(), 512);
        let best = l
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > l[b] { i } else { b });
        assert_eq!(best as u32, tok);
        assert_eq!(step["token"], tok);
    }
    // Deterministic: the same command gives the same tokens. (The same thread count: with
    // `--isa auto` another count is calibrated on its own and may pick another ISA, whose
    // logits differ in the last bits and can break a near tie.)
    tessera(dir.path())
        .args([
            "generate",
            "--prompt-tokens",
            "1,2,3",
            "-n",
            "5",
            "-t",
            "2",
            "-m",
        ])
        .arg(&model)
        .assert()
        .success()
        .stdout(format!(
            "{}\n",
            printed
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
}

#[test]
fn generate_rejects_out_of_range_and_negative_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path(), "q4_0");
    tessera(dir.path())
        .args(["generate", "--prompt-tokens", "1,512", "-m"])
        .arg(&model)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("512").and(predicate::str::contains("0..=511")));
    tessera(dir.path())
        .args(["generate", "--prompt-tokens", "1,-4", "-m"])
        .arg(&model)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-4"));
}

#[test]
fn synth_is_deterministic_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, seed: &str| {
        let p = dir.path().join(name);
        tessera(dir.path())
            .args([
                "model", "synth", "--preset", "tiny", "--type", "q4_0", "--seed", seed, "-o",
            ])
            .arg(&p)
            .assert()
            .success();
        std::fs::read(p).unwrap()
    };
    let a = write("a.gguf", "5");
    let b = write("b.gguf", "5");
    let c = write("c.gguf", "6");
    assert_eq!(a, b);
    assert_ne!(a, c);
}
