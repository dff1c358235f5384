//! `tessera nightly` end to end, night after night, with a fixture engine whose speed each
//! night is set by a file: the first night has nothing to compare with; a steady night is
//! OK; a 10% slower night regresses against `previous` and exits 1; a named baseline is
//! used and a misspelt one refused before anything runs; a step that only the history can
//! see is flagged on the night it becomes significant, and not again after.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

struct Nights {
    dir: tempfile::TempDir,
    engine: String,
    plan: PathBuf,
}

impl Nights {
    fn new() -> Nights {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Three timed samples ±1% around 100 t/s × the factor in `speed`.
        let script = d.join("engine.sh");
        std::fs::write(
            &script,
            r#"#!/bin/sh
t=$1; p=$2; g=$3; speed=$(cat "$4")
awk -v t="$t" -v p="$p" -v g="$g" -v s="$speed" 'BEGIN {
  n = p + g; split("0.99 1.00 1.01", f, " ");
  ns = ""; ts = ""; sum = 0; nsum = 0;
  for (i = 1; i <= 3; i++) {
    r = 100 * s * f[i]; sum += r; nsum += n * 1e9 / r;
    ns = ns (i > 1 ? "," : "") sprintf("%d", n * 1e9 / r);
    ts = ts (i > 1 ? "," : "") sprintf("%.6f", r);
  }
  printf "{\"n_threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"avg_ns\": %d, \"avg_ts\": %.6f, \"samples_ns\": [%s], \"samples_ts\": [%s], \"model_size\": 1000000}\n", t, p, g, nsum / 3, sum / 3, ns, ts;
}'
"#,
        )
        .unwrap();
        let engine = format!(
            "cmd=sh {} {{threads}} {{n_prompt}} {{n_gen}} {}",
            script.display(),
            d.join("speed").display()
        );
        let plan = d.join("nightly.toml");
        std::fs::write(
            &plan,
            format!(
                "engine = [{engine:?}]\nthreads = [1, 2]\npp = [64]\ntg = [16]\nrepeat = 2\nreps = 3\ncounters = \"none\"\ntimeout = 20.0\n"
            ),
        )
        .unwrap();
        Nights { dir, engine, plan }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn cmd(&self, sub: &[&str]) -> Command {
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.env("TESSERA_CACHE", self.path("cache"));
        c.args(sub).arg("--db").arg(self.path("history.sqlite"));
        c
    }

    /// Runs night `id` at `speed` with `extra` flags; returns (exit code, stdout, nightly.json).
    fn night(&self, id: &str, speed: f64, extra: &[&str]) -> (i32, String, Value) {
        std::fs::write(self.path("speed"), format!("{speed}")).unwrap();
        let out = self
            .cmd(&["nightly"])
            .arg("--plan")
            .arg(&self.plan)
            .arg("--out-dir")
            .arg(self.path("runs"))
            .args(["--run-id", id, "--no-probe"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        let json = self.path("runs").join(id).join("nightly.json");
        let v = match std::fs::read_to_string(&json) {
            Ok(t) => serde_json::from_str(&t).unwrap(),
            Err(_) => Value::Null,
        };
        assert!(!stderr.contains("panicked"), "{stderr}");
        (code, format!("{stdout}\n--- stderr ---\n{stderr}"), v)
    }

    fn report(&self, id: &str) -> String {
        std::fs::read_to_string(self.path("runs").join(id).join("report.md")).unwrap()
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn nights_compare_with_the_previous_run_and_a_named_baseline() {
    let n = Nights::new();
    assert!(n.engine.starts_with("cmd="));

    let (code, out, v) = n.night("n1", 1.0, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(v["baseline"].is_null(), "{v}");
    assert_eq!(v["ok"], true);
    assert!(out.contains("nothing to compare with"), "{out}");
    let html = n.path("runs/n1/report.html");
    assert!(std::fs::metadata(&html).unwrap().len() > 1000);
    assert!(n.report("n1").contains("nightly: OK"));

    // A steady night: compared with n1, unchanged.
    let (code, out, v) = n.night("n2", 1.0, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(v["baseline"].as_str().unwrap().ends_with("n1"), "{v}");
    assert!(strings(&v, "regressions").is_empty());
    assert!(out.contains("unchanged"), "{out}");

    // 10% slower at 1% noise: regressed against n2 (the previous night), exit 1.
    let (code, out, v) = n.night("n3", 0.9, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(v["baseline"].as_str().unwrap().ends_with("n2"), "{v}");
    let reg = strings(&v, "regressions");
    assert_eq!(reg.len(), 4, "{reg:?}"); // pp64 and tg16 at 1 and 2 threads
    assert!(reg.iter().all(|r| r.contains("regressed")), "{reg:?}");
    let md = n.report("n3");
    assert!(md.contains("nightly: REGRESSION"), "{md}");
    assert!(md.contains("regressed"), "{md}");
    assert!(md.contains("## History"), "{md}");

    // A misspelt baseline is refused at once: exit 2, one line, no run directory made.
    let (code, out, _) = n.night("n4", 1.0, &["--baseline", "nosuch"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no baseline named 'nosuch'"), "{out}");
    assert!(!n.path("runs/n4").exists());

    // A named baseline: n1 is `good`; a night at n1's speed is fine against it even
    // though the previous night (n3) was slower.
    n.cmd(&["baseline"])
        .args(["set", "good"])
        .arg(n.path("runs/n1"))
        .assert()
        .success();
    let (code, out, v) = n.night("n4", 1.0, &["--baseline", "good"]);
    assert_eq!(code, 0, "{out}");
    assert!(v["baseline"].as_str().unwrap().ends_with("n1"), "{v}");
}

#[test]
fn a_step_in_the_history_is_flagged_once_when_it_becomes_significant() {
    let n = Nights::new();
    // Three nights around 1.0, then a 12% drop; no baseline, so only the history speaks.
    let speeds = [1.004, 0.997, 1.001, 0.882, 0.879, 0.884, 0.880];
    let mut flagged = Vec::new();
    for (i, s) in speeds.iter().enumerate() {
        let id = format!("h{i}");
        let (code, out, v) = n.night(&id, *s, &["--baseline", "none"]);
        let slow = strings(&v, "history_slowdowns");
        assert_eq!(code == 1, !slow.is_empty(), "{out}");
        if !slow.is_empty() {
            flagged.push(i);
            // All four series step down at the first slow night.
            assert_eq!(slow.len(), 4, "{slow:?}");
            assert!(slow.iter().all(|s| s.contains("at h3")), "{slow:?}");
            assert!(n.report(&id).contains("(new)"));
        }
    }
    // Three points on each side are needed: first significant on night h5, and only then.
    assert_eq!(flagged, vec![5]);

    // `history show` lists the step (no longer new after h6).
    let out = n
        .cmd(&["history"])
        .args(["show", "-o", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for s in v.as_array().unwrap() {
        let cps = s["change_points"].as_array().unwrap();
        assert_eq!(cps.len(), 1, "{s}");
        assert_eq!(cps[0]["index"], 3);
        assert_eq!(cps[0]["new"], false);
    }
}

#[test]
fn a_bad_plan_is_refused_before_anything_runs() {
    let n = Nights::new();
    let bad = n.path("bad.toml");
    std::fs::write(&bad, "threads = [0]\n").unwrap();
    let out = n
        .cmd(&["nightly"])
        .arg("--plan")
        .arg(&bad)
        .arg("--out-dir")
        .arg(n.path("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!n.path("runs").exists());
}

#[test]
fn the_cron_script_runs_a_night_keeps_the_report_and_passes_the_exit_status_on() {
    let n = Nights::new();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/nightly.sh");
    let home = n.path("nightly");
    let night = |speed: f64| {
        std::fs::write(n.path("speed"), format!("{speed}")).unwrap();
        // The build is a no-op here: the test binary is already built.
        let out = std::process::Command::new("bash")
            .arg(&script)
            .env("TESSERA_NIGHTLY_DIR", &home)
            .env("TESSERA_PLAN", &n.plan)
            .env("TESSERA_NIGHTLY_BUILD", "true")
            .env("TESSERA_BIN", assert_cmd::cargo::cargo_bin("tessera"))
            .env("TESSERA_CACHE", n.path("cache"))
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = night(1.0);
    assert_eq!(code, 0, "{out}");
    let latest = home.join("latest");
    let first = std::fs::canonicalize(&latest).unwrap();
    assert!(first.join("report.html").is_file(), "{out}");
    assert!(home.join("history.sqlite").is_file());
    let logs: Vec<_> = std::fs::read_dir(home.join("logs")).unwrap().collect();
    assert_eq!(logs.len(), 1);

    // Run ids are per second; the next night must not share the first one's.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out) = night(0.85);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("nightly: REGRESSION"), "{out}");
    let second = std::fs::canonicalize(&latest).unwrap();
    assert_ne!(first, second);
    assert!(second.join("report.html").is_file());
    // The first night's report is kept.
    assert!(first.join("report.html").is_file());
}
