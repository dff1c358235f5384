//! Files written by `tessera model synth` load and run in llama.cpp's own `llama-bench`, and
//! llama-bench agrees with tessera on the model's size and parameter count.
//!
//! Needs the binary from scripts/build-llama-cpp.sh (about 12 minutes to build on 2 cores,
//! so CI does not build it): `$TESSERA_LLAMA_BENCH`, else the script's cache location.
//! Without it the test prints `skipped:` and passes.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn llama_bench() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TESSERA_LLAMA_BENCH") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let root = PathBuf::from(home).join(".cache/tessera/llama.cpp");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/llama-bench"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

fn synth(dir: &Path, ty: &str, tied: bool) -> PathBuf {
    let out = dir.join(format!("tiny-{ty}-{tied}.gguf"));
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.args(["model", "synth", "--preset", "tiny", "--type", ty, "-o"])
        .arg(&out);
    if tied {
        c.arg("--tied");
    }
    c.assert().success();
    out
}

#[test]
fn synth_models_load_in_llama_bench() {
    let Some(lb) = llama_bench() else {
        eprintln!(
            "skipped: no llama-bench (run scripts/build-llama-cpp.sh or set TESSERA_LLAMA_BENCH)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (ty, tied) in [
        ("q4_0", false),
        ("q8_0", true),
        ("f16", false),
        ("f32", false),
    ] {
        let model = synth(dir.path(), ty, tied);
        let out = std::process::Command::new(&lb)
            .arg("-m")
            .arg(&model)
            .args(["-p", "16", "-n", "4", "-r", "1", "-t", "1", "-o", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "llama-bench failed on {ty}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 2, "{ty}: pp16 and tg4 rows");
        let ours = tessera_engine::Model::load(&model).unwrap();
        for r in rows {
            assert_eq!(r["model_n_params"].as_u64(), Some(ours.n_params), "{ty}");
            assert_eq!(r["model_size"].as_u64(), Some(ours.size_bytes), "{ty}");
            assert!(r["avg_ts"].as_f64().unwrap() > 0.0);
        }
    }
}
