//! The CUDA backend from the command line. Without a GPU (or driver, or NVRTC): `--backend
//! cuda` is a one-line "no CUDA device: <reason>" error with exit code 2 and no panic, and
//! `tessera probe` says "none: <reason>". With a GPU: bench rows say CUDA with their -ngl, and
//! an injected GET_ROWS fault becomes a classified `fault` row naming the op.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn tessera(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", cache);
    c.env_remove("TESSERA_CUDA_INJECT_FAULT");
    c
}

fn synth(dir: &Path) -> PathBuf {
    let out = dir.join("tiny-q4_0.gguf");
    tessera(dir)
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&out)
        .assert()
        .success();
    out
}

/// The probe's gpu entry: (device count, reason when none).
fn gpus(dir: &Path) -> (usize, Option<String>) {
    let out = tessera(dir).args(["probe", "-o", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &v["gpu"];
    (
        g["devices"].as_array().expect("gpu.devices").len(),
        g["none"].as_str().map(str::to_string),
    )
}

fn rows(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn probe_reports_gpus_or_why_none() {
    let dir = tempfile::tempdir().unwrap();
    let (n, none) = gpus(dir.path());
    let table = tessera(dir.path()).arg("probe").output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    if n == 0 {
        let reason = none.expect("a reason when there is no GPU");
        assert!(!reason.is_empty());
        assert!(text.contains(&format!("none: {reason}")), "{text}");
    } else {
        assert!(
            text.contains("gpu 0") && text.contains("compute capability"),
            "{text}"
        );
    }
}

#[test]
fn bench_cuda_without_a_gpu_is_a_one_line_error_or_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let (n, _) = gpus(dir.path());
    let out = tessera(dir.path())
        .args([
            "bench",
            "--backend",
            "cuda",
            "-p",
            "16",
            "-n",
            "4",
            "-r",
            "1",
            "-o",
            "jsonl",
            "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if n == 0 {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with("error: no CUDA device: "), "{stderr}");
        assert!(out.stdout.is_empty());
    } else {
        assert!(out.status.success(), "{stderr}");
        let rows = rows(&out.stdout);
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!(r["backends"], "CUDA");
            assert_eq!(r["n_gpu_layers"], 99);
            assert_eq!(r["status"], "ok");
            assert!(!r["gpu_info"].as_str().unwrap().is_empty());
        }
    }
}

#[test]
fn backend_flag_is_validated_and_cpu_rows_say_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let out = tessera(dir.path())
        .args([
            "bench",
            "--backend",
            "metal",
            "-p",
            "8",
            "-n",
            "0",
            "-r",
            "1",
            "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'metal'") && stderr.contains("cpu, cuda"),
        "{stderr}"
    );

    let out = tessera(dir.path())
        .args([
            "bench",
            "--backend",
            "cpu",
            "-ngl",
            "5",
            "-p",
            "8",
            "-n",
            "0",
            "-r",
            "1",
            "-o",
            "jsonl",
            "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["backends"], "CPU");
    assert_eq!(rows[0]["n_gpu_layers"], 0);
    assert_eq!(rows[0]["gpu_info"], "");
}

#[test]
fn injected_get_rows_fault_is_a_classified_fault_row() {
    let dir = tempfile::tempdir().unwrap();
    let (n, none) = gpus(dir.path());
    if n == 0 {
        eprintln!("skipped: no CUDA device ({})", none.unwrap_or_default());
        return;
    }
    let model = synth(dir.path());
    let out = tessera(dir.path())
        .env("TESSERA_CUDA_INJECT_FAULT", "get_rows")
        .env("CUDA_LAUNCH_BLOCKING", "1")
        .args([
            "bench",
            "--backend",
            "cuda",
            "-ngl",
            "99",
            "-p",
            "16",
            "-n",
            "0",
            "-r",
            "1",
            "-o",
            "jsonl",
            "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let rows = rows(&out.stdout);
    assert_eq!(rows.len(), 1, "{stderr}");
    let r = &rows[0];
    assert_eq!(r["status"], "fault", "{r}");
    assert_eq!(r["fault"]["class"], "cuda-illegal-address", "{r}");
    assert!(
        r["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("GET_ROWS failed"),
        "{r}"
    );
}
