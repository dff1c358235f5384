//! End-to-end tests of `tessera bisect` on throw-away git repositories: a small C program
//! whose history introduces a segfault (later fixed), a commit that does not build, a 40%
//! slowdown amid ±5% noise, a CUDA-style GET_ROWS error and an output change. Each bisection
//! must find the exact commit within ceil(log2(N)) steps plus skips, leave the user's
//! checkout untouched, and survive interruption, replay and bad endpoints.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use serde_json::Value;

/// What one commit's program does.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    segv: bool,
    slow: bool,
    cuda: bool,
    broken: bool,
    hang: bool,
    /// Last generated token written to tokens.txt.
    token: i32,
}

fn program(i: usize, b: Behaviour) -> String {
    format!(
        r#"/* commit {i} */
#include <stdio.h>
#include <unistd.h>
int main(void) {{
    {broken}
    /* Seeded noise per run: +-5% around the base value. */
    unsigned s = (unsigned)getpid() * 2654435761u;
    double noise = (double)((s >> 8) % 1000) / 1000.0 - 0.5;
    double base = {base};
    FILE *f = fopen("tokens.txt", "w");
    if (f) {{ fprintf(f, "1 2 3 {token}\n"); fclose(f); }}
    if ({cuda}) {{
        fprintf(stderr, "ggml_cuda_compute_forward: GET_ROWS failed: an illegal memory access was encountered\n");
        return 1;
    }}
    if ({segv}) {{ volatile int *p = 0; *p = 1; }}
    if ({hang}) sleep(30);
    printf("[{{\"test\":\"pp512\",\"avg_ts\":1000.0}},{{\"test\":\"tg128\",\"avg_ts\":%.4f}}]\n",
           base * (1.0 + 0.1 * noise));
    return 0;
}}
"#,
        broken = if b.broken {
            "this does not compile;"
        } else {
            ""
        },
        base = if b.slow { "60.0" } else { "100.0" },
        token = b.token,
        cuda = i32::from(b.cuda),
        segv = i32::from(b.segv),
        hang = i32::from(b.hang),
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Std::new("git")
        .args([
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=author@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository whose commit i has program(i, behaviours[i]); returns the commit hashes.
fn make_repo(dir: &Path, behaviours: &[Behaviour]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    let mut hashes = Vec::new();
    for (i, b) in behaviours.iter().enumerate() {
        std::fs::write(dir.join("prog.c"), program(i, *b)).unwrap();
        git(dir, &["add", "prog.c"]);
        git(dir, &["commit", "-q", "-m", &format!("c{i}: change {i}")]);
        hashes.push(git(dir, &["rev-parse", "HEAD"]));
    }
    hashes
}

const BUILD: &str = "cc -O0 -o prog prog.c";

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
    hashes: Vec<String>,
}

impl Setup {
    fn new(behaviours: &[Behaviour]) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let repo = root.join("repo");
        let hashes = make_repo(&repo, behaviours);
        Setup {
            _tmp: tmp,
            root,
            repo,
            hashes,
        }
    }

    fn state(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn tessera(&self, state: &str) -> Command {
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.arg("bisect")
            .arg("--repo")
            .arg(&self.repo)
            .arg("--state-dir")
            .arg(self.state(state))
            .arg("--cache-dir")
            .arg(self.root.join("cache"));
        c
    }

    /// Runs a bisection to the end; returns (exit code, result JSON, stderr).
    fn bisect(&self, state: &str, args: &[&str]) -> (i32, Value, String) {
        let json = self.root.join(format!("{state}.json"));
        let out = self
            .tessera(state)
            .args(args)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let code = out.status.code().unwrap_or(-1);
        let v = std::fs::read_to_string(&json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        (code, v, stderr)
    }
}

fn ceil_log2(n: u64) -> u64 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros() as u64
    }
}

/// Asserts the answer and the step bound.
fn assert_found(v: &Value, hash: &str, stderr: &str) {
    assert_eq!(v["status"], "found", "{v:#}\n{stderr}");
    assert_eq!(v["commit"]["hash"], hash, "{v:#}\n{stderr}");
    let n = v["n_commits"].as_u64().unwrap();
    let steps = v["steps"].as_u64().unwrap();
    let skips = v["skips"].as_u64().unwrap();
    assert!(
        steps <= ceil_log2(n) + skips,
        "{steps} steps, {skips} skips for {n} commits\n{stderr}"
    );
}

/// c0..c15: c4 does not build, c9..c12 segfault, c13 fixes it.
fn fault_history() -> Vec<Behaviour> {
    (0..16)
        .map(|i| Behaviour {
            broken: i == 4,
            segv: (9..=12).contains(&i),
            ..Behaviour::default()
        })
        .collect()
}

#[test]
fn fault_and_fix_found_exactly_and_checkout_untouched() {
    let s = Setup::new(&fault_history());
    // The user's checkout: on main at c15, with a modified tracked file and an untracked one.
    std::fs::write(s.repo.join("prog.c"), "/* local edit */\n").unwrap();
    std::fs::write(s.repo.join("notes.txt"), "mine\n").unwrap();
    let before = (
        git(&s.repo, &["symbolic-ref", "HEAD"]),
        git(&s.repo, &["rev-parse", "HEAD"]),
        git(&s.repo, &["status", "--porcelain"]),
        git(&s.repo, &["branch", "--list"]),
    );
    let h = &s.hashes;

    let (code, v, err) = s.bisect(
        "fault",
        &[
            "--good", &h[0], "--bad", &h[12], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert_eq!(v["n_commits"], 12);
    assert_eq!(v["commit"]["subject"], "c9: change 9");
    assert_eq!(v["commit"]["author"], "Test Author");
    assert_eq!(v["commit"]["files_changed"], serde_json::json!(["prog.c"]));
    let decided: Vec<&Value> = v["decided_by"].as_array().unwrap().iter().collect();
    assert_eq!(decided.last().unwrap()["class"]["signal"], 11, "{v:#}");

    // The first commit where the segfault is gone again: --bad is the older revision.
    let (code, v, err) = s.bisect(
        "fix",
        &[
            "--mode", "fix", "--bad", &h[9], "--good", &h[15], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[13], &err);
    assert_eq!(v["term"], "first fixed commit");

    let after = (
        git(&s.repo, &["symbolic-ref", "HEAD"]),
        git(&s.repo, &["rev-parse", "HEAD"]),
        git(&s.repo, &["status", "--porcelain"]),
        git(&s.repo, &["branch", "--list"]),
    );
    assert_eq!(before, after);
    assert_eq!(
        std::fs::read_to_string(s.repo.join("prog.c")).unwrap(),
        "/* local edit */\n"
    );
}

#[test]
fn broken_build_is_skipped_and_bordering_skips_give_a_range() {
    // c5 and c6 do not build; the segfault arrives with c6.
    let hist: Vec<Behaviour> = (0..10)
        .map(|i| Behaviour {
            broken: i == 5 || i == 6,
            segv: i >= 6,
            ..Behaviour::default()
        })
        .collect();
    let s = Setup::new(&hist);
    let h = &s.hashes;
    let (code, v, err) = s.bisect(
        "st",
        &[
            "--good", &h[0], "--bad", &h[9], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["status"], "ambiguous", "{v:#}");
    let cands: Vec<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap())
        .collect();
    assert_eq!(cands, [&h[5], &h[6], &h[7]]);
    assert!(v["skips"].as_u64().unwrap() >= 2);
    let log = Command::cargo_bin("tessera")
        .unwrap()
        .args(["bisect", "log", "--state-dir"])
        .arg(s.state("st"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(log.status.success());
    assert!(text.contains("build failed"), "{text}");
    assert!(text.contains("verify good"), "{text}");
}

#[test]
fn cuda_fault_with_pattern_and_op_name() {
    // c3 segfaults (a different bug), c7.. print a GET_ROWS illegal memory access.
    let hist: Vec<Behaviour> = (0..12)
        .map(|i| Behaviour {
            segv: i == 3,
            cuda: i >= 7,
            ..Behaviour::default()
        })
        .collect();
    let s = Setup::new(&hist);
    let h = &s.hashes;
    let (code, v, err) = s.bisect(
        "cuda",
        &[
            "--good",
            &h[0],
            "--bad",
            &h[11],
            "--build",
            BUILD,
            "--run",
            "./prog",
            "--fault",
            "illegal memory access",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[7], &err);
    let culprit = v["decided_by"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(culprit["class"]["class"], "cuda-illegal-address", "{v:#}");
    assert_eq!(culprit["class"]["op"], "GET_ROWS", "{v:#}");
    // Markdown on stdout names the commit and the op.
    let out = s
        .tessera("cuda-md")
        .args([
            "--good", &h[0], "--bad", &h[11], "--build", BUILD, "--run", "./prog",
        ])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains(&h[7]), "{md}");
    assert!(md.contains("GET_ROWS"), "{md}");
}

#[test]
fn perf_regression_amid_noise() {
    // c13.. are 40% slower; every run has +-5% noise.
    let hist: Vec<Behaviour> = (0..20)
        .map(|i| Behaviour {
            slow: i >= 13,
            ..Behaviour::default()
        })
        .collect();
    let s = Setup::new(&hist);
    let h = &s.hashes;
    let (code, v, err) = s.bisect(
        "perf",
        &[
            "--mode",
            "perf",
            "--good",
            &h[0],
            "--bad",
            &h[19],
            "--build",
            BUILD,
            "--run",
            "./prog",
            "--metric",
            "tg128",
            "--threshold",
            "5%",
            "--repeat",
            "5",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[13], &err);
    let conf = v["confidence"].as_f64().unwrap();
    assert!(conf > 0.8, "confidence {conf}\n{err}");
    let culprit = v["decided_by"].as_array().unwrap().last().unwrap().clone();
    let reg = culprit["perf"]["regression"].as_f64().unwrap();
    assert!((0.3..0.5).contains(&reg), "{reg}");
    assert!(culprit["perf"]["baseline"].as_array().unwrap().len() >= 5);
}

#[test]
fn perf_endpoint_that_is_not_slower_is_an_error() {
    let s = Setup::new(&[Behaviour::default(); 4]);
    let h = &s.hashes;
    let (code, _, err) = s.bisect(
        "p",
        &[
            "--mode",
            "perf",
            "--good",
            &h[0],
            "--bad",
            &h[3],
            "--build",
            BUILD,
            "--run",
            "./prog",
            "--metric",
            "tg128",
            "--max-repeat",
            "5",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--bad"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1);
}

#[test]
fn output_change_found() {
    let hist: Vec<Behaviour> = (0..10)
        .map(|i| Behaviour {
            token: if i >= 6 { 5 } else { 4 },
            ..Behaviour::default()
        })
        .collect();
    let s = Setup::new(&hist);
    let h = &s.hashes;
    let (code, v, err) = s.bisect(
        "out",
        &[
            "--mode",
            "output",
            "--good",
            &h[0],
            "--bad",
            &h[9],
            "--build",
            BUILD,
            "--run",
            "./prog",
            "--compare",
            "tokens",
            "--output-file",
            "tokens.txt",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[6], &err);
    let culprit = v["decided_by"].as_array().unwrap().last().unwrap().clone();
    assert!(
        culprit["reason"].as_str().unwrap().contains("token 3"),
        "{culprit}"
    );
}

#[test]
fn resume_after_kill_replay_and_build_cache() {
    let s = Setup::new(&fault_history());
    let h = &s.hashes;
    let runs = s.root.join("runs.log");
    let builds = s.root.join("builds.log");
    let build = format!("echo b >> {}; {BUILD}", builds.display());
    // The 4th run kills tessera itself (its parent), as a crash or a Ctrl-C would.
    let run = format!(
        "echo r >> {r}; if [ $(wc -l < {r}) -eq 4 ]; then kill -9 $PPID; sleep 5; fi; ./prog",
        r = runs.display()
    );
    let (code, _, err) = s.bisect(
        "res",
        &[
            "--good", &h[0], "--bad", &h[12], "--build", &build, "--run", &run,
        ],
    );
    assert_eq!(code, -1, "killed by a signal\n{err}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(s.state("res").join("state.json")).unwrap())
            .unwrap();
    // verify good, verify bad, one test; the fourth run died with tessera.
    assert_eq!(saved["steps"].as_array().unwrap().len(), 3, "{saved:#}");
    assert_eq!(saved["status"], "running");

    // A new bisection refuses to overwrite the one in progress.
    let (code, _, err) = s.bisect(
        "res",
        &[
            "--good", &h[0], "--bad", &h[12], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--resume"), "{err}");

    let (code, v, err) = s.bisect("res", &["--resume"]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(s.state("res").join("state.json")).unwrap())
            .unwrap();
    let steps = state["steps"].as_array().unwrap();
    // The three saved steps were kept, not redone.
    assert_eq!(steps[..3], saved["steps"].as_array().unwrap()[..]);
    // Every commit was built once: the interrupted one's build was reused on resume.
    let mut tested: Vec<&str> = steps
        .iter()
        .map(|s| s["commit"].as_str().unwrap())
        .collect();
    tested.sort();
    tested.dedup();
    let n_builds = std::fs::read_to_string(&builds).unwrap().lines().count();
    assert_eq!(n_builds, tested.len(), "{state:#}");

    // Replay of the finished log in a fresh state dir: same answer, nothing run.
    let log = Command::cargo_bin("tessera")
        .unwrap()
        .args(["bisect", "log", "--json", "--state-dir"])
        .arg(s.state("res"))
        .output()
        .unwrap();
    assert!(log.status.success());
    let log_path = s.root.join("log.json");
    std::fs::write(&log_path, &log.stdout).unwrap();
    let marker = s.root.join("ran");
    let builds_before = std::fs::read_to_string(&builds).unwrap().lines().count();
    let (code, v2, err) = s.bisect(
        "rep",
        &[
            "--good",
            &h[0],
            "--bad",
            &h[12],
            "--build",
            &build,
            "--run",
            &format!("touch {}; exit 1", marker.display()),
            "--replay",
            log_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v2["commit"], v["commit"]);
    assert_eq!(v2["replayed"], v2["steps"]);
    assert!(!marker.exists(), "replay ran the command");
    assert_eq!(
        std::fs::read_to_string(&builds).unwrap().lines().count(),
        builds_before,
        "replay rebuilt"
    );
}

#[test]
fn bad_endpoints_and_missing_revisions_are_usage_errors() {
    let s = Setup::new(&fault_history());
    let h = &s.hashes;
    // c10 segfaults: it cannot be the good endpoint.
    let (code, _, err) = s.bisect(
        "e1",
        &[
            "--good", &h[10], "--bad", &h[12], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("--good") && line.contains("is bad"), "{err}");
    // A corrected command line starts afresh in the same state dir.
    let (code, v, err) = s.bisect(
        "e1",
        &[
            "--good", &h[8], "--bad", &h[12], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    // c2 runs cleanly: it cannot be the bad endpoint.
    let (code, _, err) = s.bisect(
        "e2",
        &[
            "--good", &h[0], "--bad", &h[2], "--build", BUILD, "--run", "./prog",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--bad") && err.contains("is good"), "{err}");
    // Good newer than bad in fault mode.
    let (code, _, err) = s.bisect("e3", &["--good", &h[12], "--bad", &h[9], "--run", "./prog"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ancestor"), "{err}");
    // A revision that does not exist: one line naming it, nothing run.
    let out = s
        .tessera("e4")
        .args(["--good", "no-such-rev", "--bad", &h[12], "--run", "./prog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--good") && err.contains("'no-such-rev'"),
        "{err}"
    );
    assert!(!s.state("e4").join("state.json").exists());
    // Flag errors are one line too.
    let out = s
        .tessera("e5")
        .args([
            "--good", &h[0], "--bad", &h[12], "--run", "./prog", "--mode", "speed",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault, fix, perf, speedup, output"));
    let out = s.tessera("e6").args(["--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bisection saved"));
}

#[test]
fn hang_is_a_timeout_fault() {
    let hist: Vec<Behaviour> = (0..6)
        .map(|i| Behaviour {
            hang: i >= 3,
            ..Behaviour::default()
        })
        .collect();
    let s = Setup::new(&hist);
    let h = &s.hashes;
    let (code, v, err) = s.bisect(
        "hang",
        &[
            "--good",
            &h[0],
            "--bad",
            &h[5],
            "--build",
            BUILD,
            "--run",
            "./prog",
            "--timeout",
            "1",
            "--fault",
            "timeout",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[3], &err);
    let culprit = v["decided_by"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(culprit["class"]["class"], "timeout", "{v:#}");
}

#[test]
fn first_parent_finds_the_merge_all_parents_the_branch_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let h = make_repo(&repo, &[Behaviour::default(); 2]); // c0, c1 on main
    let commit = |file: &str, text: String, msg: &str| {
        std::fs::write(repo.join(file), text).unwrap();
        git(&repo, &["add", file]);
        git(&repo, &["commit", "-q", "-m", msg]);
        git(&repo, &["rev-parse", "HEAD"])
    };
    git(&repo, &["checkout", "-q", "-b", "side"]);
    let segv = Behaviour {
        segv: true,
        ..Behaviour::default()
    };
    let s1 = commit("prog.c", program(101, segv), "s1: breaks it");
    commit("prog.c", program(102, segv), "s2");
    git(&repo, &["checkout", "-q", "main"]);
    commit("notes.txt", "a\n".into(), "c2");
    commit("notes.txt", "b\n".into(), "c3");
    git(
        &repo,
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
    );
    let merge = git(&repo, &["rev-parse", "HEAD"]);
    let tip = commit("notes.txt", "c\n".into(), "c4");
    let run = |extra: &[&str], state: &str| {
        let json = tmp.path().join(format!("{state}.json"));
        let out = Command::cargo_bin("tessera")
            .unwrap()
            .args(["bisect", "--repo"])
            .arg(&repo)
            .arg("--state-dir")
            .arg(tmp.path().join(state))
            .args([
                "--good", &h[0], "--bad", &tip, "--build", BUILD, "--run", "./prog",
            ])
            .args(extra)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{err}");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (v, err)
    };
    let (v, err) = run(&[], "fp");
    assert_found(&v, &merge, &err);
    assert_eq!(v["n_commits"], 5); // c1, c2, c3, merge, c4
    let (v, err) = run(&["--all-parents"], "ap");
    assert_eq!(v["commit"]["hash"], s1.as_str(), "{v:#}\n{err}");
    assert_eq!(v["n_commits"], 7);
}

#[test]
fn sanitizer_missing_is_a_clear_error() {
    let s = Setup::new(&[Behaviour::default(); 2]);
    let out = s
        .tessera("san")
        .env("PATH", s.root.join("empty-path"))
        .env_remove("CUDA_HOME")
        .args([
            "--good",
            &s.hashes[0],
            "--bad",
            &s.hashes[1],
            "--run",
            "./prog",
            "--sanitizer",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("compute-sanitizer not found"), "{err}");
}

#[test]
fn perf_with_regex_metric_and_mann_whitney() {
    let hist: Vec<Behaviour> = (0..8)
        .map(|i| Behaviour {
            slow: i >= 5,
            ..Behaviour::default()
        })
        .collect();
    let s = Setup::new(&hist);
    let h = &s.hashes;
    let (code, v, err) = s.bisect(
        "mw",
        &[
            "--mode",
            "perf",
            "--good",
            &h[0],
            "--bad",
            &h[7],
            "--build",
            BUILD,
            "--run",
            "./prog",
            "--metric-regex",
            r#""tg128","avg_ts":([0-9.]+)"#,
            "--stat",
            "mann-whitney",
            "--repeat",
            "6",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[5], &err);
    assert!(v["confidence"].as_f64().unwrap() > 0.8, "{v:#}");
}
