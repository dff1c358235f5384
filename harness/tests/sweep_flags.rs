//! `tessera sweep` speaks llama-bench's flags as `tessera bench` does: `-p`, `-n`, `-pg`,
//! `-r`, `-t`, `-b`, `-ub`, `-ctk`/`-ctv` plan exactly what the long forms plan.

use assert_cmd::Command;

/// The point list of a dry run (key, test, threads, isa, repeat per line).
fn points(args: &[&str]) -> String {
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .arg("sweep")
        .args(args)
        .arg("--dry-run")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn llama_bench_flags_plan_what_the_long_forms_plan() {
    let short = points(&[
        "-p", "16", "-n", "4", "-pg", "8,2", "-t", "1,2", "-ub", "8", "-ctk", "f32", "-ctv", "f32",
        "-r", "2",
    ]);
    let long = points(&[
        "--pp",
        "16",
        "--tg",
        "4",
        "--pg",
        "8,2",
        "--threads",
        "1,2",
        "--ubatch",
        "8",
        "--kv-type",
        "f32",
        "--reps",
        "2",
    ]);
    assert_eq!(short, long);
    assert_eq!(short.lines().count(), 6, "{short}");
    // The keys hash ubatch and kv type: the defaults plan other points.
    let defaults = points(&["--pp", "16", "--tg", "4", "--pg", "8,2", "--threads", "1,2"]);
    assert_ne!(short, defaults);
    // -ctk alone sets the type too.
    assert_eq!(
        points(&["-p", "16", "-ctk", "f32"]),
        points(&["--pp", "16", "--kv-type", "f32"])
    );
}

#[test]
fn different_k_and_v_types_are_refused_in_one_line() {
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args([
            "sweep",
            "-p",
            "16",
            "-ctk",
            "f16",
            "-ctv",
            "f32",
            "--dry-run",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("-ctk f16 and -ctv f32 differ"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn the_default_batch_plans_the_points_of_a_sweep_without_b() {
    let base = ["-p", "16", "-n", "4", "-t", "1,2"];
    let plain = points(&base);
    for b in [
        &["-b", "2048"][..],
        &["--batch", "2048"],
        &["--batch-size", "2048"],
    ] {
        assert_eq!(points(&[&base[..], b].concat()), plain, "{b:?}");
    }
    // Another batch plans other points (other keys) and says so in the label.
    let b256 = points(&[&base[..], &["-b", "256"]].concat());
    assert_eq!(b256.lines().count(), plain.lines().count());
    for (p, q) in plain.lines().zip(b256.lines()) {
        let (pk, pl) = p.split_once(' ').unwrap();
        let (qk, ql) = q.split_once(' ').unwrap();
        assert_ne!(pk, qk);
        let (label, repeat) = pl.rsplit_once(' ').unwrap();
        assert_eq!(ql, format!("{label} b=256 {repeat}"));
    }
    // Both: the default's points, unchanged and in their order, and the other batch's.
    let both = points(&[&base[..], &["-b", "2048,256"]].concat());
    let (with, without): (Vec<&str>, Vec<&str>) = both.lines().partition(|l| l.contains(" b=256 "));
    assert_eq!(without, plain.lines().collect::<Vec<_>>());
    assert_eq!(with, b256.lines().collect::<Vec<_>>());
}

#[test]
fn a_bad_batch_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.toml");
    std::fs::write(&plan, "n_batch = [0]\n").unwrap();
    let plan = plan.display().to_string();
    for (args, want) in [
        (
            vec!["-b", "0"],
            "--batch: invalid value '0': give a positive number of tokens",
        ),
        (vec!["-b", "lots"], "--batch: invalid value 'lots'"),
        (vec!["--batch", "64,-1"], "--batch: invalid value '-1'"),
        (
            vec!["--plan", &plan],
            "--batch: 0 is not valid; give a positive number of tokens",
        ),
    ] {
        let out = Command::cargo_bin("tessera")
            .unwrap()
            .arg("sweep")
            .args(&args)
            .arg("--dry-run")
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn a_b_value_reaches_the_rows_of_the_built_in_engine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tessera = || {
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.env("TESSERA_CACHE", d.join("cache"));
        c
    };
    let model = d.join("tiny.gguf");
    tessera()
        .args(["model", "synth", "--preset", "tiny", "--type", "q8_0", "-o"])
        .arg(&model)
        .assert()
        .success();
    tessera()
        .args(["sweep", "-m"])
        .arg(&model)
        .args(["-t", "1", "-p", "16", "-b", "8,2048", "-ub", "4", "-r", "1"])
        .args(["--counters", "none", "--no-probe", "--run-id", "b"])
        .arg("--out-dir")
        .arg(d.join("runs"))
        .assert()
        .success();
    let text = std::fs::read_to_string(d.join("runs/b/results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, u64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["n_batch"].as_u64().unwrap(),
                r["n_ubatch"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(8, 4, "ok"), (2048, 4, "ok")], "{text}");
    assert_ne!(rows[0]["point_key"], rows[1]["point_key"]);
}
