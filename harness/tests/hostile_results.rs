//! Damaged and hostile inputs to the commands that read and write results: a results.jsonl
//! with unreadable lines is read alike by every command (each skips them with the same
//! warning and the file keeps them); a merge never replaces more rows with fewer; a bare
//! directory name works like ./name; rows of a newer schema are refused; a comparison
//! with nothing in common is an error; a bad TOML plan is one line.

#[path = "fixtures/rows.rs"]
mod rows;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rows::{row, spread, write_run};

fn tessera(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", dir.join("cache")).current_dir(dir);
    c
}

/// (exit code, stdout, stderr).
fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `cmd=` engine printing one good row per point, with three samples.
fn engine(dir: &Path) -> String {
    let script = dir.join("engine.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
echo "{\"n_threads\": $1, \"n_prompt\": $2, \"n_gen\": $3, \"avg_ns\": 1000000, \"avg_ts\": 100.5, \"samples_ns\": [1000000, 1010000, 990000], \"samples_ts\": [100, 101, 99]}"
"#,
    )
    .unwrap();
    format!(
        "cmd=sh {} {{threads}} {{n_prompt}} {{n_gen}}",
        script.display()
    )
}

/// Sweeps threads 1,2,3 × pp8,pp16 (6 points) into `runs/<id>` (or a shard of it).
fn sweep(dir: &Path, id: &str, shard: Option<&str>) -> PathBuf {
    let mut c = tessera(dir);
    c.args([
        "sweep",
        "--engine",
        &engine(dir),
        "-t",
        "1,2,3",
        "--pp",
        "8,16",
    ])
    .args([
        "--no-probe",
        "--counters",
        "none",
        "--run-id",
        id,
        "--out-dir",
        "runs",
    ]);
    if let Some(s) = shard {
        c.args(["--shard", s]);
    }
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    let run = dir.join("runs").join(id);
    match shard {
        Some(s) => run.join(format!("shard-{}", s.replace('/', "-of-"))),
        None => run,
    }
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn unreadable_results_lines_are_skipped_alike_by_every_reader_and_kept_in_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run_dir = sweep(d, "r", None);
    let results = run_dir.join("results.jsonl");
    // Line 3 torn in the middle of the file (it kept its newline); a torn last line too.
    let text = std::fs::read_to_string(&results).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 6);
    lines[2] = lines[2][..40].to_string();
    lines[5] = lines[5][..25].to_string();
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&results, &damaged).unwrap();
    let warning =
        |n: usize| format!("tessera: warning: runs/r/results.jsonl line {n}: not JSON at column");

    // Readers: each goes on with the readable rows and warns with the same line.
    let readers: Vec<(&str, Vec<&str>)> = vec![
        ("report", vec!["report", "runs/r", "-o", "rep"]),
        ("compare", vec!["compare", "runs/r", "runs/r"]),
        (
            "history add",
            vec!["history", "add", "runs/r", "--db", "h.sqlite"],
        ),
        ("merge", vec!["merge", "runs/r", "--out", "merged"]),
    ];
    for (name, args) in readers {
        let (code, _, err) = run(tessera(d).args(&args));
        assert!(
            code == 0 || name == "merge" && code == 1,
            "{name}: {code} {err}"
        );
        for n in [3, 6] {
            assert!(err.contains(&warning(n)), "{name}: {err}");
        }
        // compare reads the file twice, once per side.
        let per_read = if name == "compare" { 4 } else { 2 };
        assert_eq!(
            err.matches("tessera: warning:").count(),
            per_read,
            "{name}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&results).unwrap(), damaged);
    assert_eq!(line_count(&d.join("merged/results.jsonl")), 4);

    // The writer: resume warns the same way, measures the two points again, and the
    // damaged lines stay where they were.
    let (code, _, err) = run(tessera(d).args(["sweep", "--resume", "r", "--out-dir", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&warning(3)) && err.contains(&warning(6)),
        "{err}"
    );
    assert!(err.contains("4 of 6 points done, 2 to run"), "{err}");
    let after = std::fs::read_to_string(&results).unwrap();
    assert!(after.starts_with(&damaged), "{after}");
    assert_eq!(after.lines().count(), 8);
    let (code, out, _) = run(tessera(d).args(["compare", "runs/r", "runs/r", "-o", "json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["lines"].as_array().unwrap().len(), 6);
}

#[test]
fn a_torn_last_line_without_newline_is_ended_not_cut_and_resume_reruns_its_point() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run_dir = sweep(d, "t", None);
    let results = run_dir.join("results.jsonl");
    let text = std::fs::read_to_string(&results).unwrap();
    let torn = &text[..text.len() - 30];
    std::fs::write(&results, torn).unwrap();
    let (code, _, err) = run(tessera(d).args(["sweep", "--resume", "t", "--out-dir", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the last line was torn"), "{err}");
    assert!(err.contains("line 6: not JSON"), "{err}");
    let after = std::fs::read_to_string(&results).unwrap();
    assert!(
        after.starts_with(&format!("{torn}\n")),
        "the torn text is kept"
    );
    assert_eq!(after.lines().count(), 7);
}

#[test]
fn merge_of_fewer_shards_refuses_to_replace_a_complete_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s1 = sweep(d, "s", Some("1/2"));
    let s2 = sweep(d, "s", Some("2/2"));
    let merged = d.join("runs/s/results.jsonl");
    let (code, _, err) = run(tessera(d).arg("merge").arg(&s1).arg(&s2));
    assert_eq!(code, 0, "{err}");
    let complete = std::fs::read_to_string(&merged).unwrap();
    assert_eq!(complete.lines().count(), 6);

    let (code, _, err) = run(tessera(d).arg("merge").arg(&s1));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("already holds 6 rows and this merge has 3, without 3 of its points")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), complete);

    // Merging all shards again is fine (nothing is lost); --force replaces, saying so.
    let (code, _, err) = run(tessera(d).arg("merge").arg(&s1).arg(&s2));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(tessera(d).arg("merge").arg(&s1).arg("--force"));
    assert_eq!(code, 1, "incomplete: {err}");
    assert!(err.contains("replacing it (--force)"), "{err}");
    assert_eq!(line_count(&merged), 3);
}

#[test]
fn merge_of_a_bare_directory_name_works_like_dot_slash_name() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run_dir = sweep(d, "r", None);
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    for name in ["refcopy", "refcopy2"] {
        let copy = work.join(name);
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["manifest.json", "results.jsonl"] {
            std::fs::copy(run_dir.join(f), copy.join(f)).unwrap();
        }
    }
    let mut c = tessera(d);
    c.current_dir(&work).args(["merge", "./refcopy"]);
    let (dot, _, err) = run(&mut c);
    assert_eq!(dot, 0, "{err}");
    std::fs::remove_file(work.join("results.jsonl")).unwrap();
    for args in [
        vec!["merge", "refcopy"],
        vec!["merge", "refcopy", "./refcopy2"],
    ] {
        let mut c = tessera(d);
        c.current_dir(&work).args(&args);
        let (code, out, err) = run(&mut c);
        assert_eq!(code, dot, "{args:?}: {err}");
        assert!(out.contains("into .: 6 of 6 points"), "{out}");
        assert_eq!(line_count(&work.join("results.jsonl")), 6);
    }
    // Directories in different places still need --out, and the line says so.
    let (code, _, err) = run(tessera(d).args(["merge", "work/refcopy", "runs/r"]));
    assert_eq!(code, 2);
    assert!(err.contains("no common parent; give --out DIR"), "{err}");
}

#[test]
fn compare_refuses_rows_of_a_newer_schema_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut r = row((512, 0), 2, "avx2", "", &spread(5, 100.0, 0.01));
    write_run(&d.join("base"), std::slice::from_ref(&r));
    r.schema_version = 99;
    write_run(&d.join("new"), &[r]);
    let (code, _, err) = run(tessera(d).args(["compare", "base", "new"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "line 1: schema_version 99 is newer than this tessera reads (schema_version 1)"
        ),
        "{err}"
    );
}

#[test]
fn compare_with_no_matching_test_exits_2_naming_what_each_side_had() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_run(
        &d.join("base"),
        &[
            row((512, 0), 2, "avx2", "", &spread(5, 100.0, 0.01)),
            row((0, 128), 2, "avx2", "", &spread(5, 30.0, 0.01)),
        ],
    );
    write_run(
        &d.join("new"),
        &[row((64, 0), 2, "avx2", "", &spread(5, 90.0, 0.01))],
    );
    for extra in [vec![], vec!["--fail-on-regression"]] {
        let (code, out, err) = run(tessera(d).args(["compare", "base", "new"]).args(&extra));
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(
                "no test matched: the baseline has pp512, tg128 (2 rows), the candidate has pp64 (1 row)"
            ),
            "{err}"
        );
        // The rows are still listed, as unmatched.
        assert!(out.contains("no matched rows"), "{out}");
    }
    // The same test at other thread counts: the line names the field that differs.
    write_run(
        &d.join("new"),
        &[row((512, 0), 4, "avx2", "", &spread(5, 90.0, 0.01))],
    );
    let (code, _, err) = run(tessera(d).args(["compare", "base", "new"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("both sides have pp512 but no configuration agrees on n_threads (baseline 2; candidate 4)"),
        "{err}"
    );
}

#[test]
fn a_bad_toml_plan_is_one_line_naming_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("plan.toml"),
        "threads = [1, 2]\npp = [64]\nthread = [4]\n",
    )
    .unwrap();
    let (code, _, err) = run(tessera(d).args(["sweep", "--plan", "plan.toml", "--dry-run"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: --plan: 'plan.toml': line 3, column 1: unknown field `thread`"),
        "{err}"
    );
}
