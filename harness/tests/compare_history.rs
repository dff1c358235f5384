//! End-to-end history store: runs imported into SQLite, series with change points
//! (a known step found, a flat series left alone), charts, baselines, exit codes.

#[path = "fixtures/rows.rs"]
mod rows;

use std::path::Path;

use assert_cmd::Command;
use rows::{row, spread, write_run};

/// `tessera SUB --db DB`, the rest of the arguments to follow.
fn tessera(db: &Path, sub: &str) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.arg(sub).arg("--db").arg(db);
    c
}

/// 16 nightly runs: pp512 flat with 1% run-to-run wobble, tg128 drops 12% from run 10.
fn nightly_runs(root: &Path) -> Vec<std::path::PathBuf> {
    let wobble = [
        0.0, 0.8, -0.6, 0.3, -1.0, 0.5, -0.2, 0.9, -0.7, 0.1, 0.6, -0.9, 0.4, -0.3, 0.7, -0.5,
    ];
    (0..16)
        .map(|i| {
            let pp = 1160.0 * (1.0 + wobble[i] / 100.0);
            let tg = if i < 10 { 340.0 } else { 300.0 } * (1.0 + wobble[15 - i] / 100.0);
            let mut a = row((512, 0), 2, "avx512", "16x16x32", &spread(5, pp, 0.01));
            let mut b = row((0, 128), 2, "avx512", "16x16x32", &spread(5, tg, 0.01));
            a.test_time = format!("2026-11-{:02}T02:00:00Z", i + 1);
            b.test_time = a.test_time.clone();
            let dir = root.join(format!("night-{i:02}"));
            write_run(&dir, &[a, b]);
            dir
        })
        .collect()
}

#[test]
fn history_finds_the_step_and_not_the_wobble() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let runs = nightly_runs(dir.path());
    for r in &runs {
        // History subcommands take --db after the subcommand too (global flag).
        Command::cargo_bin("tessera")
            .unwrap()
            .args(["history", "add"])
            .arg(r)
            .arg("--db")
            .arg(&db)
            .assert()
            .success();
    }
    // Importing a run again replaces it instead of counting it twice.
    Command::cargo_bin("tessera")
        .unwrap()
        .args(["history", "--db"])
        .arg(&db)
        .arg("add")
        .arg(&runs[3])
        .assert()
        .success();

    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args(["history", "--db"])
        .arg(&db)
        .args(["show", "-o", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let series = v.as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        assert_eq!(s["points"].as_array().unwrap().len(), 16);
        let cps = s["change_points"].as_array().unwrap();
        if s["label"] == "tg128" {
            assert_eq!(cps.len(), 1, "{s}");
            assert_eq!(cps[0]["index"], 10);
            let change = cps[0]["change"].as_f64().unwrap();
            assert!((change + 0.1176).abs() < 0.01, "{change}");
        } else {
            assert_eq!(s["label"], "pp512");
            assert!(cps.is_empty(), "{s}");
        }
    }

    // The latest change is a slowdown: --fail-on-regression fails; pp512 alone passes.
    let mut show = Command::cargo_bin("tessera").unwrap();
    show.args(["history", "--db"])
        .arg(&db)
        .args(["show", "--fail-on-regression"]);
    let md = String::from_utf8(show.assert().code(1).get_output().stdout.clone()).unwrap();
    assert!(
        md.contains("| tg128 | 16 |") && md.contains("-11.8% at night-10"),
        "{md}"
    );
    assert!(
        md.contains("| pp512 | 16 |") && md.contains("| none |"),
        "{md}"
    );
    Command::cargo_bin("tessera")
        .unwrap()
        .args(["history", "--db"])
        .arg(&db)
        .args([
            "show",
            "--test",
            "pp512",
            "--match",
            "isa=avx512",
            "--fail-on-regression",
        ])
        .assert()
        .success();

    // One chart per series when several are selected.
    let chart = dir.path().join("hist.png");
    Command::cargo_bin("tessera")
        .unwrap()
        .args(["history", "--db"])
        .arg(&db)
        .arg("show")
        .arg("--chart")
        .arg(&chart)
        .assert()
        .success();
    for name in ["hist-pp512.png", "hist-tg128.png"] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}

#[test]
fn baselines_are_named_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let runs = nightly_runs(dir.path());
    tessera(&db, "baseline")
        .args(["set", "release-1.0"])
        .arg(&runs[2])
        .assert()
        .success();
    tessera(&db, "baseline")
        .args(["set", "release-1.0"])
        .arg(&runs[5])
        .assert()
        .success();
    let out = tessera(&db, "baseline")
        .args(["show"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("| release-1.0 | night-05 |"), "{out}");
    assert!(!out.contains("night-02 |"), "{out}");
    // compare resolves baseline:NAME through the same database.
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args(["compare", "baseline:release-1.0"])
        .arg(&runs[12])
        .arg("--db")
        .arg(&db)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("| tg128 |") && out.contains("| regressed |"),
        "{out}"
    );
    Command::cargo_bin("tessera")
        .unwrap()
        .args(["compare", "baseline:nope"])
        .arg(&runs[12])
        .arg("--db")
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("known baselines are release-1.0"));
    tessera(&db, "baseline")
        .args(["set", "x"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(2);
    tessera(&db, "history")
        .args(["show", "--match", "isa"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad --match 'isa'"));
    let not_db = dir.path().join("not.sqlite");
    std::fs::write(
        &not_db,
        "this is not a database, just text that is long enough",
    )
    .unwrap();
    tessera(&not_db, "baseline").args(["show"]).assert().code(2);
}
