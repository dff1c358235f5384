//! End-to-end behaviour of `tessera sweep` and `tessera merge`: faults, hangs and garbage
//! become rows and the sweep goes on; a killed sweep resumes without losing or repeating
//! points; the built-in engine's rows carry counters; shards merge into one run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn tessera(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", dir.join("cache"));
    c
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A fixture engine: behaves by thread count. 1, 5: a good row; 2: SIGSEGV; 3: hangs; 4:
/// prints garbage. Each run logs "threads" to `log` before printing.
fn fixture(dir: &Path) -> PathBuf {
    let script = dir.join("engine.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
t=$1; p=$2; g=$3; log=$4; delay=$5
[ -n "$delay" ] && sleep "$delay"
echo "$t" >> "$log"
case "$t" in
  2) echo "about to crash" >&2; kill -SEGV $$ ;;
  3) echo "spinning" >&2; sleep 60 ;;
  4) echo "this is not json"; exit 0 ;;
esac
echo "{\"n_threads\": $t, \"n_prompt\": $p, \"n_gen\": $g, \"avg_ns\": 1000000, \"avg_ts\": $((t * 100)).5, \"samples_ns\": [1000000], \"model_size\": 1000000}"
"#,
    )
    .unwrap();
    script
}

#[test]
fn crash_hang_and_garbage_are_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = fixture(d);
    let log = d.join("log");
    let engine = format!(
        "cmd=sh {} {{threads}} {{n_prompt}} {{n_gen}} {}",
        script.display(),
        log.display()
    );
    let t0 = Instant::now();
    let out = tessera(d)
        .args(["sweep", "--engine", &engine, "-t", "1,2,3,4,5", "--pp", "8"])
        .args([
            "--timeout",
            "2",
            "--no-probe",
            "--counters",
            "task-clock,cycles",
        ])
        .args(["--run-id", "faults", "--csv", "--out-dir"])
        .arg(d.join("runs"))
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(t0.elapsed() < Duration::from_secs(40), "{:?}", t0.elapsed());
    let run = d.join("runs/faults");
    let rows = rows(&run.join("results.jsonl"));
    assert_eq!(rows.len(), 5);
    let by_t: BTreeMap<u64, &Value> = rows
        .iter()
        .map(|r| (r["n_threads"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(by_t.len(), 5);
    for t in [1, 5] {
        let r = by_t[&t];
        assert_eq!(r["status"], "ok");
        assert_eq!(r["engine"], "cmd");
        assert_eq!(r["run_id"], "faults");
        assert_eq!(r["counters_scope"], "child-process");
        // Software counters work; hardware ones are a value or null with a reason, never 0
        // without a reason.
        assert!(r["counters"]["task-clock"]["value"].as_u64().unwrap() > 0);
        let cyc = &r["counters"]["cycles"];
        assert!(
            cyc["value"].as_u64().is_some_and(|v| v > 0) || cyc["reason"].is_string(),
            "{cyc}"
        );
        assert_eq!(r["avg_ts"].as_f64().unwrap(), t as f64 * 100.0 + 0.5);
    }
    let crash = by_t[&2];
    assert_eq!(crash["status"], "fault");
    assert_eq!(crash["fault"]["signal"], 11);
    assert!(
        crash["fault"]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("about to crash")
    );
    let hang = by_t[&3];
    assert_eq!(hang["status"], "timeout");
    assert!(
        hang["fault"]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("spinning")
    );
    let garbage = by_t[&4];
    assert_eq!(garbage["status"], "error");
    assert!(
        garbage["error"]
            .as_str()
            .unwrap()
            .contains("this is not json"),
        "{garbage}"
    );
    // Every row names its point; keys are distinct.
    let keys: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["point_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 5);
    // Run directory contents and the summary.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["unit_keys"].as_array().unwrap().len(), 5);
    assert!(manifest["fingerprint"].as_str().unwrap().len() == 16);
    assert!(run.join("results.csv").is_file());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("5 rows: 2 ok, 1 fault, 1 timeout, 1 error"),
        "{stdout}"
    );
    assert!(stdout.contains("| pp8 | 500.50 |"), "{stdout}");
}

#[test]
fn kill_dash_nine_then_resume_loses_nothing_and_measures_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = fixture(d);
    let log = d.join("log");
    // Only good thread counts; each point takes 0.3 s.
    let engine = format!(
        "cmd=sh {} {{threads}} {{n_prompt}} {{n_gen}} {} 0.3",
        script.display(),
        log.display()
    );
    let threads = "1,5,6,7,8,9,10,11";
    let bin = assert_cmd::cargo::cargo_bin("tessera");
    let runs = d.join("runs");
    let mut child = std::process::Command::new(&bin)
        .env("TESSERA_CACHE", d.join("cache"))
        .args(["sweep", "--engine", &engine, "-t", threads, "--tg", "4"])
        .args([
            "--no-probe",
            "--counters",
            "none",
            "--run-id",
            "r",
            "--out-dir",
        ])
        .arg(&runs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = runs.join("r/results.jsonl");
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_to_string(&results)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if n >= 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "sweep made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = rows(&results);
    assert!(before.len() >= 3 && before.len() < 8, "{}", before.len());
    let done_before: BTreeSet<u64> = before
        .iter()
        .map(|r| r["n_threads"].as_u64().unwrap())
        .collect();
    // Let the orphaned in-flight child finish before counting measurements.
    std::thread::sleep(Duration::from_millis(800));
    tessera(d)
        .args(["sweep", "--resume", "r", "--no-probe", "--out-dir"])
        .arg(&runs)
        .assert()
        .success();
    let after = rows(&results);
    assert_eq!(after.len(), 8, "every point exactly once");
    let ts: BTreeSet<u64> = after
        .iter()
        .map(|r| r["n_threads"].as_u64().unwrap())
        .collect();
    assert_eq!(ts.len(), 8);
    // The rows from before the kill are untouched, in place.
    assert_eq!(&after[..before.len()], &before[..]);
    // Points finished before the kill were not run again.
    let log = std::fs::read_to_string(&log).unwrap();
    for t in &done_before {
        let n = log.lines().filter(|l| l.trim() == t.to_string()).count();
        assert_eq!(n, 1, "threads={t} measured {n} times");
    }
}

#[test]
fn builtin_sweep_rows_carry_counters_nulls_with_reasons_and_placement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("tiny.gguf");
    tessera(d)
        .args(["model", "synth", "--preset", "tiny", "--type", "q8_0", "-o"])
        .arg(&model)
        .assert()
        .success();
    let out = tessera(d)
        .args(["sweep", "-m"])
        .arg(&model)
        .args([
            "-t", "1,2", "--pp", "8", "--tg", "4", "-r", "1", "--pin", "compact",
        ])
        .args([
            "--numa",
            "local",
            "--no-probe",
            "--run-id",
            "b",
            "--out-dir",
        ])
        .arg(d.join("runs"))
        .assert()
        .success()
        .get_output()
        .clone();
    let rows = rows(&d.join("runs/b/results.jsonl"));
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["engine"], "builtin");
        assert_eq!(r["numa"], "local");
        assert_eq!(r["pin"], "compact");
        let n = r["n_threads"].as_u64().unwrap() as usize;
        assert_eq!(r["cpus"].as_str().unwrap().split(',').count(), n, "{r}");
        assert_eq!(r["counters_scope"], "timed-region");
        let c = r["counters"].as_object().unwrap();
        assert_eq!(c.len(), 10, "the default set");
        for (name, v) in c {
            match v["value"].as_u64() {
                Some(_) => {}
                None => assert!(
                    v["reason"].as_str().is_some_and(|s| !s.is_empty()),
                    "{name} is null without a reason"
                ),
            }
        }
        assert!(c["task-clock"]["value"].as_u64().unwrap() > 0);
        assert!(r["derived"].as_object().unwrap().contains_key("ipc"));
        assert_eq!(r["fingerprint"].as_str().unwrap().len(), 16);
    }
    let _ = out;
}

#[test]
fn bad_axis_values_are_one_line_errors_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, want) in [
        (
            vec!["--numa", "bind:99"],
            "node 99 does not exist; valid nodes: ",
        ),
        (
            vec!["--pin", "0,4096"],
            "CPU 4096 does not exist or is offline; valid CPUs: ",
        ),
        (
            vec!["--engine", "llama"],
            "valid: builtin, llama-bench=PATH",
        ),
        (vec!["--counters", "bogus"], "unknown counter 'bogus'"),
        (vec!["--shard", "3/2"], "give I/N"),
        (vec!["-t", "0"], "positive"),
    ] {
        let out = tessera(d)
            .arg("sweep")
            .args(&args)
            .args(["--dry-run", "--out-dir"])
            .arg(d.join("runs"))
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn shards_partition_the_points_and_merge_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = fixture(d);
    let log = d.join("log");
    let engine = format!(
        "cmd=sh {} {{threads}} {{n_prompt}} {{n_gen}} {}",
        script.display(),
        log.display()
    );
    let runs = d.join("runs");
    let base = [
        "sweep",
        "--engine",
        &engine,
        "-t",
        "1,5,6,7,8",
        "--pp",
        "8,16",
        "--no-probe",
    ];
    let all: BTreeSet<String> = String::from_utf8(
        tessera(d)
            .args(base)
            .args(["--dry-run"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .map(|l| l.split(' ').next().unwrap().to_string())
    .collect();
    assert_eq!(all.len(), 10);
    let mut dirs = Vec::new();
    for i in 1..=3 {
        tessera(d)
            .args(base)
            .args(["--shard", &format!("{i}/3"), "--run-id", "s", "--out-dir"])
            .arg(&runs)
            .assert()
            .success();
        dirs.push(runs.join(format!("s/shard-{i}-of-3")));
    }
    let mut seen = Vec::new();
    for dir in &dirs {
        seen.extend(
            rows(&dir.join("results.jsonl"))
                .iter()
                .map(|r| r["point_key"].as_str().unwrap().to_string()),
        );
    }
    seen.sort();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "a point ran in two shards");
    assert_eq!(unique, all, "every point in exactly one shard");
    // Merge all shards: complete, exit 0. Two of three: incomplete, exit 1.
    tessera(d).arg("merge").args(&dirs).assert().success();
    let merged = rows(&runs.join("s/results.jsonl"));
    assert_eq!(merged.len(), 10);
    let out = tessera(d)
        .arg("merge")
        .args(&dirs[..2])
        .arg("--out")
        .arg(d.join("partial"))
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(String::from_utf8(out.stdout).unwrap().contains("missing"));
}

#[test]
fn llama_bench_end_to_end_when_built() {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let root = home.join(".cache/tessera/llama.cpp");
    let bin = std::fs::read_dir(&root).ok().and_then(|it| {
        it.filter_map(|e| e.ok())
            .map(|e| e.path().join("bin/llama-bench"))
            .find(|p| p.is_file())
    });
    let Some(bin) = bin else {
        println!("skipped: no llama-bench under {}", root.display());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("tiny.gguf");
    tessera(d)
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&model)
        .assert()
        .success();
    tessera(d)
        .args(["sweep", "-m"])
        .arg(&model)
        .arg("--engine")
        .arg(format!("llama-bench={}", bin.display()))
        .args([
            "-t",
            "1",
            "--pp",
            "16",
            "--tg",
            "4",
            "-r",
            "1",
            "--no-probe",
            "--run-id",
            "lb",
        ])
        .args(["--counters", "task-clock", "--out-dir"])
        .arg(d.join("runs"))
        .assert()
        .success();
    let rows = rows(&d.join("runs/lb/results.jsonl"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["engine"], "llama-bench");
        assert!(r["avg_ts"].as_f64().unwrap() > 0.0);
        assert!(r["counters"]["task-clock"]["value"].as_u64().unwrap() > 0);
    }
}
