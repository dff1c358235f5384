//! `--threshold` at the edges, end to end: `compare` (a noise threshold, 0 allowed) and
//! `bisect` (the smallest change searched for, 0 refused) share one parser
//! (`cli::parse_threshold`) but keep their own ranges and messages, and a bad value is a
//! usage error (exit 2) before anything is read or run.

use assert_cmd::Command;
use predicates::prelude::*;

fn tessera() -> Command {
    Command::cargo_bin("tessera").unwrap()
}

/// `compare` with `--threshold VALUE` on two files that do not exist: a valid threshold
/// gets as far as loading them.
fn compare(value: &str) -> assert_cmd::assert::Assert {
    let dir = tempfile::tempdir().unwrap();
    tessera()
        .arg("compare")
        .arg(dir.path().join("base.jsonl"))
        .arg(dir.path().join("new.jsonl"))
        .arg(format!("--threshold={value}"))
        .assert()
}

#[test]
fn compare_threshold_edges() {
    for ok in ["0", "0%", "5%", "5", "99.5"] {
        compare(ok)
            .code(2)
            .stderr(predicate::str::contains("threshold").not())
            .stderr(predicate::str::contains("base.jsonl"));
    }
    for bad in ["-1", "-5%", "100", "lots", ""] {
        compare(bad)
            .code(2)
            .stderr(predicate::str::contains(format!(
                "bad --threshold '{bad}': give a percentage from 0 to 100, e.g. 2 or 2%"
            )));
    }
}

/// A perf-mode `bisect` with `--threshold VALUE` on a repository that does not exist: the
/// threshold is checked before the repository is opened.
fn bisect(value: &str) -> assert_cmd::assert::Assert {
    let dir = tempfile::tempdir().unwrap();
    tessera()
        .arg("bisect")
        .arg("--repo")
        .arg(dir.path().join("no-such-repo"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--good", "a", "--bad", "b", "--run", "true"])
        .args(["--mode", "perf", "--metric", "tg128"])
        // `=`: a value such as "-5" would otherwise be read as a flag.
        .arg(format!("--threshold={value}"))
        .assert()
}

#[test]
fn bisect_threshold_edges() {
    for ok in ["5%", "5", "0.5", "99"] {
        bisect(ok)
            .code(2)
            .stderr(predicate::str::contains("threshold").not())
            .stderr(predicate::str::contains("--repo"));
    }
    for bad in ["0", "0%", "-5", "-5%", "100%"] {
        bisect(bad).code(2).stderr(predicate::str::contains(format!(
            "--threshold: '{bad}' is not valid; give a percentage between 0 and 100 (exclusive)"
        )));
    }
    for bad in ["fast", ""] {
        bisect(bad).code(2).stderr(predicate::str::contains(format!(
            "--threshold: '{bad}' is not valid; give a percentage such as 5%"
        )));
    }
}
