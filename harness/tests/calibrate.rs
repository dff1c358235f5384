//! `--isa auto` follows the calibration it recorded: the first run measures and caches its
//! choice, a later run reads it back (even a choice edited by hand), and the row says which.

use std::path::Path;

use assert_cmd::Command;

fn tessera(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", cache)
        .env_remove("TESSERA_CALIBRATE");
    c
}

fn bench_row(cache: &Path, model: &Path) -> serde_json::Value {
    bench_row_env(cache, model, None)
}

/// The first row of a one-point `bench -o json`, with `TESSERA_CALIBRATE` set to `calibrate`.
fn bench_row_env(cache: &Path, model: &Path, calibrate: Option<&str>) -> serde_json::Value {
    let mut cmd = tessera(cache);
    if let Some(v) = calibrate {
        cmd.env("TESSERA_CALIBRATE", v);
    }
    let out = cmd
        .args([
            "bench", "-p", "16", "-n", "0", "-r", "1", "-t", "1", "-o", "json", "-m",
        ])
        .arg(model)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: serde_json::Value = serde_json::from_slice(&out).unwrap();
    rows[0].clone()
}

#[test]
fn auto_follows_the_calibration_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tessera(dir.path())
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&model)
        .assert()
        .success();
    let cands = tessera_engine::calibrate::candidates(None);
    let first = bench_row(dir.path(), &model);
    assert_eq!(first["isa_requested"], "auto");
    let reason = first["isa_reason"].as_str().unwrap().to_string();
    let isa = first["isa"].as_str().unwrap().to_string();
    if cands.len() < 2 {
        eprintln!("skipped: one candidate only on this CPU ({reason})");
        assert!(reason.contains("only candidate"), "{reason}");
        return;
    }
    assert!(reason.contains("measured now"), "{reason}");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("calibration"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut rec: tessera_engine::calibrate::Record =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(rec.isa, isa, "the row runs what the calibration chose");
    for c in &cands {
        assert!(rec.gemm_ns.contains_key(c.name()) && rec.gemv_ns.contains_key(c.name()));
    }

    // A second run reads the cache instead of measuring.
    let again = bench_row(dir.path(), &model);
    assert_eq!(again["isa"], first["isa"]);
    assert!(again["isa_reason"].as_str().unwrap().contains("cached in"));

    // Edit the recorded choice to another candidate: auto follows the record.
    let other = cands.iter().find(|c| c.name() != isa).unwrap();
    rec.isa = other.name().to_string();
    tessera_engine::calibrate::write_record(&files[0], &rec).unwrap();
    let edited = bench_row(dir.path(), &model);
    assert_eq!(edited["isa"], other.name());
    let r = edited["isa_reason"].as_str().unwrap();
    assert!(
        r.contains(&format!("auto chose {}", other.name())) && r.contains("cached"),
        "{r}"
    );

    // A record naming an ISA that is no candidate here is measured again, not followed.
    rec.isa = "amx-emu".into();
    tessera_engine::calibrate::write_record(&files[0], &rec).unwrap();
    let redo = bench_row(dir.path(), &model);
    assert!(
        redo["isa_reason"]
            .as_str()
            .unwrap()
            .contains("measured now")
    );
    assert_ne!(redo["isa"], "amx-emu");

    // TESSERA_CALIBRATE=0: the fixed order, said so.
    let fixed = bench_row_env(dir.path(), &model, Some("0"));
    assert!(
        fixed["isa_reason"]
            .as_str()
            .unwrap()
            .contains("fixed order")
    );
}
