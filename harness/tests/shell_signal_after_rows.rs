//! A `cmd=` engine that prints a row and is then killed by a signal: `sh -c` reports it as
//! exit 128+N, and the sweep records class `signal` with the signal's name, as it does for
//! a direct kill, whether or not rows came first.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn sweep_one(dir: &Path, script_body: &str) -> Value {
    let script = dir.join("engine.sh");
    std::fs::write(&script, script_body).unwrap();
    let engine = format!(
        "cmd=sh {} {{threads}} {{n_prompt}} {{n_gen}}",
        script.display()
    );
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .env("TESSERA_CACHE", dir.join("cache"))
        .args(["sweep", "--engine", &engine, "-t", "1", "--pp", "8"])
        .args([
            "--no-probe",
            "--counters",
            "none",
            "--run-id",
            "x",
            "--out-dir",
        ])
        .arg(dir.join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = std::fs::read_to_string(dir.join("runs/x/results.jsonl")).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    rows.into_iter().next().unwrap()
}

const ROW: &str = r#"echo "{\"n_threads\": $1, \"n_prompt\": $2, \"n_gen\": $3, \"avg_ns\": 1000000, \"avg_ts\": 100.5}""#;

#[test]
fn exit_139_after_a_printed_row_is_class_signal_sigsegv() {
    for (kill, sig, name) in [
        ("SEGV", 11, "SIGSEGV"),
        ("ABRT", 6, "SIGABRT"),
        ("TERM", 15, "SIGTERM"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        // The row is out before the crash; the script reports its child's death the way a
        // shell does, as 128+N.
        let row = sweep_one(
            dir.path(),
            &format!("#!/bin/sh\n{ROW}\nsh -c 'kill -{kill} $$'\nexit $?\n"),
        );
        assert_eq!(row["status"], "fault", "{row}");
        let f = &row["fault"];
        assert_eq!(f["class"], "signal", "{row}");
        assert_eq!(f["signal"], sig, "{row}");
        assert_eq!(f["exit_code"], 128 + sig, "{row}");
        assert_eq!(
            f["message"],
            format!("killed by {name} (shell exit {})", 128 + sig)
        );
    }
}

#[test]
fn exit_139_without_rows_is_class_signal_and_a_plain_exit_stays_exit() {
    let dir = tempfile::tempdir().unwrap();
    let row = sweep_one(dir.path(), "#!/bin/sh\nsh -c 'kill -SEGV $$'\nexit $?\n");
    assert_eq!(row["fault"]["class"], "signal", "{row}");
    assert_eq!(row["fault"]["signal"], 11, "{row}");
    let dir = tempfile::tempdir().unwrap();
    let row = sweep_one(
        dir.path(),
        &format!("#!/bin/sh\n{ROW}\necho 'gave up' >&2\nexit 3\n"),
    );
    assert_eq!(row["fault"]["class"], "exit", "{row}");
    assert_eq!(row["fault"]["exit_code"], 3, "{row}");
    assert!(row["fault"]["signal"].is_null(), "{row}");
}
