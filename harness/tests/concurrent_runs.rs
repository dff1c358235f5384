//! Two writers of one run directory or one bisect state at once: the second is refused
//! with a line naming the first one's pid (instead of both measuring, concurrently), and
//! a lock left by a killed process is taken over with a note.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// (exit code, stderr).
fn run(c: &mut Command) -> (i32, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(args: &[&str], dir: &Path) -> Child {
    Std::new(assert_cmd::cargo::cargo_bin("tessera"))
        .env("TESSERA_CACHE", dir.join("cache"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn tessera(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", dir.join("cache")).current_dir(dir);
    c
}

#[test]
fn a_second_sweep_of_one_run_directory_is_refused_naming_the_first_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let log = d.join("log");
    std::fs::write(
        d.join("engine.sh"),
        format!(
            "#!/bin/sh\necho $1 >> {}\nsleep 0.4\necho \"{{\\\"n_threads\\\": $1, \\\"n_prompt\\\": 8, \\\"n_gen\\\": 0, \\\"avg_ns\\\": 1, \\\"avg_ts\\\": 1.5}}\"\n",
            log.display()
        ),
    )
    .unwrap();
    let engine = format!("cmd=sh {} {{threads}}", d.join("engine.sh").display());
    let first = [
        "sweep",
        "--engine",
        &engine,
        "-t",
        "1,2,3,4,5,6",
        "--pp",
        "8",
        "--no-probe",
        "--counters",
        "none",
        "--run-id",
        "r",
        "--out-dir",
        "runs",
    ];
    let mut a = spawn(&first, d);
    let results = d.join("runs/r/results.jsonl");
    wait_for("the first row", || {
        std::fs::read_to_string(&results).is_ok_and(|t| t.lines().count() >= 1)
    });
    let (code, err) = run(tessera(d).args(["sweep", "--resume", "r", "--out-dir", "runs"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "runs/r is in use by pid {} (tessera sweep)",
            a.id()
        )),
        "{err}"
    );
    // Killed without a chance to clean up: the next resume takes the lock over.
    a.kill().unwrap();
    a.wait().unwrap();
    std::thread::sleep(Duration::from_millis(600)); // the orphaned engine finishes
    let (code, err) = run(tessera(d).args(["sweep", "--resume", "r", "--out-dir", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "took over the lock on runs/r left by pid {} (tessera sweep), which is no longer running",
            a.id()
        )),
        "{err}"
    );
    assert!(!d.join("runs/r/.tessera.lock").exists(), "released at exit");
    let rows = std::fs::read_to_string(&results).unwrap();
    assert_eq!(rows.lines().count(), 6, "{rows}");
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Std::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A repository of 8 commits whose `run.sh` exits 1 from c5 on.
fn repo(root: &Path) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for i in 0..8 {
        std::fs::write(
            repo.join("run.sh"),
            format!("# c{i}\nexit {}\n", u8::from(i >= 5)),
        )
        .unwrap();
        git(&repo, &["add", "run.sh"]);
        git(&repo, &["commit", "-q", "-m", &format!("c{i}")]);
    }
    repo
}

#[test]
fn a_second_bisect_resume_is_refused_and_nothing_runs_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let repo = repo(d);
    let log = d.join("runs.log");
    let run_cmd = format!("echo run >> {}; sleep 0.3; sh run.sh", log.display());
    let (repo_s, state_s, cache_s) = (
        repo.display().to_string(),
        d.join("state").display().to_string(),
        d.join("cache").display().to_string(),
    );
    let common = [
        "bisect",
        "--repo",
        &repo_s,
        "--state-dir",
        &state_s,
        "--cache-dir",
        &cache_s,
    ];
    let mut start: Vec<&str> = common.to_vec();
    start.extend([
        "--good", "HEAD~7", "--bad", "HEAD", "--build", "true", "--run", &run_cmd,
    ]);
    let mut a = spawn(&start, d);
    wait_for("the state file", || d.join("state/state.json").exists());
    let mut resume: Vec<&str> = common.to_vec();
    resume.push("--resume");
    let (code, err) = run(tessera(d).args(&resume));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "state is in use by pid {} (tessera bisect)",
            a.id()
        )),
        "{err}"
    );
    assert!(a.wait().unwrap().success());
    // Verify good, verify bad, then ceil(log2 7) = 3 tests: nothing more ran.
    let runs = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(runs <= 5, "{runs} runs");
    assert!(!d.join("state/.tessera.lock").exists(), "released at exit");

    // A bisection killed mid-way leaves its lock file; --resume takes it over and ends it.
    let (code, err) = run(tessera(d).args([
        "bisect",
        "reset",
        "--repo",
        &repo_s,
        "--state-dir",
        &state_s,
    ]));
    assert_eq!(code, 0, "{err}");
    let mut a = spawn(&start, d);
    wait_for("the state file", || d.join("state/state.json").exists());
    a.kill().unwrap();
    a.wait().unwrap();
    let (code, err) = run(tessera(d).args(&resume));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "left by pid {} (tessera bisect), which is no longer running",
            a.id()
        )),
        "{err}"
    );
}

#[test]
fn a_failing_endpoint_names_its_exit_code_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let repo = repo(d);
    let (repo_s, state_s) = (
        repo.display().to_string(),
        d.join("state").display().to_string(),
    );
    // --good HEAD~1 (c6) exits 1 with nothing on stderr.
    let (code, err) = run(tessera(d).args([
        "bisect",
        "--repo",
        &repo_s,
        "--state-dir",
        &state_s,
        "--good",
        "HEAD~1",
        "--bad",
        "HEAD",
        "--build",
        "true",
        "--run",
        "sh run.sh",
    ]));
    assert_eq!(code, 2, "{err}");
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.contains(") is bad: exit code 1; the older revision (--good or --old) must be good"),
        "{last}"
    );
    assert!(!err.contains("exit exit"), "{err}");
}
