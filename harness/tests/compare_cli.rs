//! End-to-end `tessera compare`: llama-bench JSON (both dialects), tessera JSONL and
//! CSV imported, rows matched, verdicts, unmatched rows, output formats, exit codes.

#[path = "fixtures/rows.rs"]
mod rows;

use assert_cmd::Command;
use predicates::prelude::*;
use rows::{fault_row, fixture, row, spread, write_run};
use tessera::export::{OutputFormat, exporter};

fn tessera() -> Command {
    Command::cargo_bin("tessera").unwrap()
}

fn stdout(c: &mut Command) -> String {
    String::from_utf8(c.assert().get_output().stdout.clone()).unwrap()
}

#[test]
fn llama_bench_json_dialects_are_imported_and_compared() {
    // Baseline: ik_llama.cpp style (has `test`); candidate: upstream style (no `test`,
    // has `n_depth`). pp512 at 2 threads is 10% slower at 1% noise, tg128 +0.6%.
    let out = stdout(
        tessera()
            .args(["compare"])
            .arg(fixture("llama-bench-ik.json"))
            .arg(fixture("llama-bench-upstream.json")),
    );
    assert!(
        out.starts_with("| config | test | baseline t/s | candidate t/s | diff % | verdict |\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "| threads=2 | pp512 | 1160.00 ± 11.60 | 1044.00 ± 10.44 | -10.00% | regressed |"
        ),
        "{out}"
    );
    assert!(
        out.contains("| threads=2 | tg128 | 340.00 ± 3.40 | 342.00 ± 3.42 | +0.59% | unchanged |"),
        "{out}"
    );
    // Unmatched rows are listed, not dropped.
    assert!(
        out.contains("| baseline | threads=1 | pp512 | 600.00 ± 6.00 |"),
        "{out}"
    );
    assert!(
        out.contains("| candidate | threads=4 | tg128 | 560.00 ± 5.60 |"),
        "{out}"
    );
    assert!(
        out.contains("1 regressed, 1 unchanged, 2 unmatched"),
        "{out}"
    );
}

#[test]
fn fail_on_regression_sets_the_exit_code() {
    let (base, cand) = (
        fixture("llama-bench-ik.json"),
        fixture("llama-bench-upstream.json"),
    );
    tessera()
        .arg("compare")
        .arg(&base)
        .arg(&cand)
        .arg("--fail-on-regression")
        .assert()
        .code(1);
    tessera()
        .arg("compare")
        .arg(&base)
        .arg(&cand)
        .assert()
        .code(0);
    // Reversed, the same change is an improvement: no failure.
    tessera()
        .arg("compare")
        .arg(&cand)
        .arg(&base)
        .arg("--fail-on-regression")
        .assert()
        .code(0);
    // A threshold above the change makes it unchanged.
    tessera()
        .arg("compare")
        .arg(&base)
        .arg(&cand)
        .args(["--fail-on-regression", "--threshold", "15%"])
        .assert()
        .code(0);
}

#[test]
fn json_output_carries_the_evidence() {
    let out = stdout(
        tessera()
            .arg("compare")
            .arg(fixture("llama-bench-ik.json"))
            .arg(fixture("llama-bench-upstream.json"))
            .args(["-o", "json"]),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "regressed");
    assert!(lines[0]["p_value"].as_f64().unwrap() < 0.001);
    let (lo, hi) = (
        lines[0]["ci_low_pct"].as_f64().unwrap(),
        lines[0]["ci_high_pct"].as_f64().unwrap(),
    );
    assert!(lo < -10.0 && hi > -10.0 && hi < -2.0, "{lo} {hi}");
    assert_eq!(lines[1]["verdict"], "unchanged");
    let unmatched = v["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 2);
    assert_eq!(unmatched[0]["side"], "baseline");
    assert_eq!(v["counts"]["regressed"], 1);
}

#[test]
fn run_directory_against_csv_with_faults_and_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let base_rows = vec![
        row((512, 0), 2, "avx512", "16x16x32", &spread(5, 1000.0, 0.01)),
        row((0, 128), 2, "avx512", "16x16x32", &spread(5, 300.0, 0.01)),
        row((512, 0), 4, "avx512", "16x16x32", &spread(5, 1800.0, 0.01)),
    ];
    let base = dir.path().join("base-run");
    write_run(&base, &base_rows);
    // Candidate as CSV: pp512 improved 10%, tg128 crashed, 4 threads unchanged.
    let cand_rows = vec![
        row((512, 0), 2, "avx512", "16x16x32", &spread(5, 1100.0, 0.01)),
        fault_row((0, 128), 2, "avx512", "16x16x32"),
        row((512, 0), 4, "avx512", "16x16x32", &spread(5, 1805.0, 0.01)),
    ];
    let mut csv = Vec::new();
    let mut e = exporter(OutputFormat::Csv, &[][..]);
    e.begin(&mut csv).unwrap();
    for r in &cand_rows {
        e.row(&mut csv, r).unwrap();
    }
    e.end(&mut csv).unwrap();
    let cand = dir.path().join("cand.csv");
    std::fs::write(&cand, csv).unwrap();

    let out = stdout(tessera().arg("compare").arg(&base).arg(&cand));
    assert!(
        out.contains(
            "| threads=2 | pp512 | 1000.00 ± 10.00 | 1100.00 ± 11.00 | +10.00% | improved |"
        ),
        "{out}"
    );
    assert!(
        out.contains("| threads=2 | tg128 | 300.00 ± 3.00 | fault: SIGSEGV | - | failed |"),
        "{out}"
    );
    assert!(out.contains("| threads=4 | pp512 |"), "{out}");
    assert!(out.contains("| unchanged |"), "{out}");
    // A crash where the baseline worked counts as a regression for the exit code.
    tessera()
        .arg("compare")
        .arg(&base)
        .arg(&cand)
        .arg("--fail-on-regression")
        .assert()
        .code(1);

    // The llama-bench baseline lacks isa and tile: unknown, so they still match on
    // threads and test; the model file names differ, so --ignore model is needed.
    let out = stdout(
        tessera()
            .arg("compare")
            .arg(fixture("llama-bench-ik.json"))
            .arg(&base)
            .args(["--ignore", "model,engine", "-o", "csv"]),
    );
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("config,test,baseline_ts,")
    );
    let rest: Vec<&str> = lines.collect();
    assert!(
        rest.iter()
            .any(|l| l.contains(",pp512,1160") && l.contains(",regressed,")),
        "{out}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains(",unmatched,only in baseline")),
        "{out}"
    );
    let out = stdout(
        tessera()
            .arg("compare")
            .arg(fixture("llama-bench-ik.json"))
            .arg(&base),
    );
    assert!(
        out.contains("0 matched") || out.contains("no matched rows"),
        "{out}"
    );
}

#[test]
fn bad_inputs_are_one_line_errors_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture("llama-bench-ik.json");
    tessera()
        .arg("compare")
        .arg(dir.path())
        .arg(&good)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("without results.jsonl"));
    tessera()
        .arg("compare")
        .arg(dir.path().join("nope.jsonl"))
        .arg(&good)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.jsonl"));
    tessera()
        .arg("compare")
        .arg(&good)
        .arg(&good)
        .args(["--threshold", "lots"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad --threshold 'lots'"));
    tessera()
        .arg("compare")
        .arg(&good)
        .arg(&good)
        .args(["--chart", "x.jpg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".png or .svg"));
    tessera()
        .arg("compare")
        .arg(&good)
        .arg(&good)
        .args(["--ignore", "colour"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("valid fields are"));
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"n_threads\": 2}\n").unwrap();
    tessera()
        .arg("compare")
        .arg(&broken)
        .arg(&good)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 1"));
}

#[test]
fn chart_flag_writes_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["c.png", "c.svg"] {
        let path = dir.path().join(name);
        tessera()
            .arg("compare")
            .arg(fixture("llama-bench-ik.json"))
            .arg(fixture("llama-bench-upstream.json"))
            .arg("--chart")
            .arg(&path)
            .assert()
            .success();
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(
                svg.contains("Throughput: baseline vs candidate"),
                "title missing"
            );
            assert!(svg.contains("-10.0% regressed"));
        }
    }
}
