//! `tessera bench --counters/--numa/--pin`: counters cover the timed region, a counter the
//! machine lacks is null with a reason (never 0), placement is recorded, and bad values
//! are one-line errors with exit code 2.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn tessera(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", dir.join("cache"));
    c
}

fn tiny(dir: &Path) -> PathBuf {
    let out = dir.join("tiny.gguf");
    tessera(dir)
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&out)
        .assert()
        .success();
    out
}

fn bench(dir: &Path, model: &Path, extra: &[&str]) -> Vec<Value> {
    let out = tessera(dir)
        .args(["bench", "-o", "jsonl", "-r", "2", "-m"])
        .arg(model)
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn counters_cover_the_timed_region_and_missing_ones_are_null_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let short = bench(
        dir.path(),
        &model,
        &[
            "-p",
            "0",
            "-n",
            "4",
            "-t",
            "2",
            "--counters",
            "task-clock,page-faults,cycles,instructions",
        ],
    );
    let long = bench(
        dir.path(),
        &model,
        &[
            "-p",
            "0",
            "-n",
            "64",
            "-t",
            "2",
            "--counters",
            "task-clock,page-faults,cycles,instructions",
        ],
    );
    for r in short.iter().chain(&long) {
        assert_eq!(r["counters_scope"], "timed-region");
        let c = r["counters"].as_object().unwrap();
        assert_eq!(c.len(), 4);
        for (name, v) in c {
            match v["value"].as_u64() {
                Some(_) => assert!(v.get("reason").is_none(), "{name}: {v}"),
                None => assert!(
                    v["reason"].as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: {v}"
                ),
            }
        }
        // IPC is null exactly when a hardware input is null.
        let ipc_inputs = c["cycles"]["value"].is_u64() && c["instructions"]["value"].is_u64();
        assert_eq!(
            r["derived"]["ipc"].is_number(),
            ipc_inputs,
            "{}",
            r["derived"]
        );
    }
    // Task-clock grows with the work inside the timer: 64 tokens cost more CPU than 4.
    let tc = |rows: &[Value]| rows[0]["counters"]["task-clock"]["value"].as_u64().unwrap();
    assert!(tc(&long) > tc(&short), "{} vs {}", tc(&long), tc(&short));
    // Without --counters, rows carry none.
    let none = bench(dir.path(), &model, &["-p", "0", "-n", "2", "-t", "1"]);
    assert!(none[0]["counters"].as_object().unwrap().is_empty());
    assert_eq!(none[0]["counters_scope"], "");
}

#[test]
fn placement_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let rows = bench(
        dir.path(),
        &model,
        &[
            "-p",
            "8",
            "-n",
            "0",
            "-t",
            "2",
            "--pin",
            "scatter",
            "--numa",
            "interleave",
        ],
    );
    let r = &rows[0];
    assert_eq!(r["pin"], "scatter");
    assert_eq!(r["cpus"].as_str().unwrap().split(',').count(), 2);
    assert!(
        r["numa"].as_str().unwrap().starts_with("interleave:"),
        "{}",
        r["numa"]
    );
    let rows = bench(dir.path(), &model, &["-p", "8", "-n", "0", "-t", "1"]);
    assert_eq!(rows[0]["pin"], "none");
    assert_eq!(rows[0]["cpus"], "");
    assert_eq!(rows[0]["numa"], "none");
}

#[test]
fn missing_nodes_cpus_and_counters_are_exit_2_with_the_valid_list() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    for (args, want) in [
        (
            ["--numa", "bind:64"],
            "--numa: node 64 does not exist; valid nodes: ",
        ),
        (
            ["--numa", "spread"],
            "valid: none, local, interleave, bind:N",
        ),
        (
            ["--pin", "4000"],
            "--pin: CPU 4000 does not exist or is offline; valid CPUs: ",
        ),
        (["--counters", "cycels"], "unknown counter 'cycels'"),
    ] {
        let out = tessera(dir.path())
            .args(["bench", "-m"])
            .arg(&model)
            .args(args)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
