//! `tessera sweep` speaks llama-bench's flags as `tessera bench` does: `-p`, `-n`, `-pg`,
//! `-r`, `-t`, `-ub`, `-ctk`/`-ctv` plan exactly what the long forms plan.

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
