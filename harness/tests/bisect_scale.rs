//! End-to-end tests of `tessera bisect` at real scale, on throw-away repositories: speedup
//! mode, git's neutral `--old`/`--new`, mirrors and partial clones whose object store lacks
//! blobs (with and without `--exclude`, and with the repository's own sparse-checkout
//! patterns), submodules that are present or absent, the build caches (ccache, one reused
//! worktree), and `--max-steps`/`--budget` stops that report the range left and resume
//! without rebuilding. Every test checks that the user's HEAD, index, worktree and stash
//! (or a mirror's refs) are as they were.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use serde_json::Value;

/// What one commit's program does.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    segv: bool,
    /// tg128 around 100 t/s, or this many.
    speed: Option<u32>,
}

fn program(i: usize, b: Behaviour) -> String {
    format!(
        r#"/* commit {i} */
#include <stdio.h>
#include <unistd.h>
int main(void) {{
    unsigned s = (unsigned)getpid() * 2654435761u;
    double noise = (double)((s >> 8) % 1000) / 1000.0 - 0.5;
    if ({segv}) {{ volatile int *p = 0; *p = 1; }}
    printf("[{{\"test\":\"tg128\",\"avg_ts\":%.4f}}]\n", {speed}.0 * (1.0 + 0.1 * noise));
    return 0;
}}
"#,
        segv = i32::from(b.segv),
        speed = b.speed.unwrap_or(100),
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Std::new("git")
        .args([
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=author@example.com",
            "-c",
            "protocol.file.allow=always",
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

/// Bytes of the fixture's large file at commit i: a few KiB, different in every commit.
fn big_file(i: usize) -> String {
    (0..200)
        .map(|k| format!("block {i} {k} {}\n", (i * 7919 + k * 104_729) % 1_000_003))
        .collect()
}

/// A repository whose commit i has prog.c = program(i, behaviours[i]), an unchanging lib.h
/// and, with `big`, a models/big.gguf that changes every commit. Returns the hashes.
fn make_repo(dir: &Path, behaviours: &[Behaviour], big: bool) -> Vec<String> {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("lib.h"), "/* unchanged */\n").unwrap();
    let mut hashes = Vec::new();
    for (i, b) in behaviours.iter().enumerate() {
        std::fs::write(dir.join("prog.c"), program(i, *b)).unwrap();
        let mut files = vec!["prog.c", "lib.h"];
        if big {
            std::fs::write(dir.join("models/big.gguf"), big_file(i)).unwrap();
            files.push("models/big.gguf");
        }
        git(dir, &[&["add"], &files[..]].concat());
        git(dir, &["commit", "-q", "-m", &format!("c{i}: change {i}")]);
        hashes.push(git(dir, &["rev-parse", "HEAD"]));
    }
    hashes
}

const BUILD: &str = "cc -O0 -o prog prog.c";

/// c0..c15: c9..c12 segfault, c13 fixes it.
fn fault_history() -> Vec<Behaviour> {
    (0..16)
        .map(|i| Behaviour {
            segv: (9..=12).contains(&i),
            ..Behaviour::default()
        })
        .collect()
}

/// Runs `tessera bisect` to the end; returns (exit code, result JSON, stdout, stderr).
fn bisect(
    repo: &Path,
    root: &Path,
    state: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value, String, String) {
    let json = root.join(format!("{state}.json"));
    let _ = std::fs::remove_file(&json);
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .arg("bisect")
        .arg("--repo")
        .arg(repo)
        .arg("--state-dir")
        .arg(root.join(state))
        .arg("--cache-dir")
        .arg(root.join(format!("{state}-cache")))
        .args(args)
        .arg("--json")
        .arg(&json)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ceil_log2(n: u64) -> u64 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros() as u64
    }
}

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

/// What the user has: HEAD, branch, index, worktree status, stash, refs.
fn user_state(repo: &Path) -> Vec<String> {
    let bare = git(repo, &["rev-parse", "--is-bare-repository"]) == "true";
    let mut s = vec![
        git(repo, &["rev-parse", "HEAD"]),
        git(repo, &["symbolic-ref", "-q", "HEAD"]),
        git(repo, &["show-ref"]),
    ];
    if !bare {
        s.push(git(
            repo,
            &["status", "--porcelain", "--untracked-files=all"],
        ));
        s.push(git(repo, &["ls-files", "--stage", "-t"]));
        s.push(git(repo, &["stash", "list"]));
    }
    s
}

/// A checkout with local work: a modified tracked file, an untracked one, a stash entry.
fn add_local_work(repo: &Path) {
    std::fs::write(repo.join("lib.h"), "/* stashed edit */\n").unwrap();
    git(repo, &["stash", "-q"]);
    std::fs::write(repo.join("prog.c"), "/* local edit */\n").unwrap();
    std::fs::write(repo.join("notes.txt"), "mine\n").unwrap();
}

fn tests_of(v: &Value) -> Vec<Value> {
    v["decided_by"].as_array().cloned().unwrap_or_default()
}

#[test]
fn speedup_mode_finds_the_first_faster_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    // c11.. are 40% faster; every run has +-5% noise.
    let hist: Vec<Behaviour> = (0..20)
        .map(|i| Behaviour {
            speed: (i >= 11).then_some(140),
            ..Behaviour::default()
        })
        .collect();
    let h = make_repo(&repo, &hist, false);
    add_local_work(&repo);
    let before = user_state(&repo);
    let common = [
        "--build", BUILD, "--run", "./prog", "--metric", "tg128", "--mode", "speedup",
    ];
    // As in fix mode, --bad is the older (slow) revision and --good the newer (fast) one.
    let (code, v, stdout, err) = bisect(
        &repo,
        root,
        "s1",
        &[&["--bad", &h[0], "--good", &h[19]], &common[..]].concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[11], &err);
    assert_eq!(v["term"], "first faster commit");
    assert_eq!(v["mode"], "speedup");
    assert!(stdout.contains("# first faster commit"), "{stdout}");
    assert!(v["confidence"].as_f64().unwrap() > 0.8, "{v:#}");
    let decided = tests_of(&v);
    let (parent, culprit) = (&decided[0], &decided[1]);
    assert_eq!(culprit["verdict"], "good", "{v:#}");
    assert!(
        culprit["reason"].as_str().unwrap().contains("faster (>"),
        "{culprit}"
    );
    let change = culprit["perf"]["regression"].as_f64().unwrap();
    assert!((-0.5..-0.3).contains(&change), "{change}");
    assert_eq!(parent["verdict"], "bad", "{v:#}");
    // The old endpoint was verified first: it is the baseline.
    assert!(
        err.find("verify --bad").unwrap() < err.find("verify --good").unwrap(),
        "{err}"
    );

    // The same with git's neutral names.
    let (code, v, _, err) = bisect(
        &repo,
        root,
        "s2",
        &[&["--old", &h[0], "--new", &h[19]], &common[..]].concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[11], &err);
    assert!(err.contains("verify --old"), "{err}");

    // The endpoints swapped: the older revision is not the fast one.
    let (code, _, _, err) = bisect(
        &repo,
        root,
        "s3",
        &[&["--good", &h[0], "--bad", &h[19]], &common[..]].concat(),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--mode speedup") && err.contains("ancestor"),
        "{err}"
    );
    // A newer endpoint that is not faster.
    let (code, _, _, err) = bisect(
        &repo,
        root,
        "s4",
        &[
            &["--old", &h[0], "--new", &h[5]],
            &common[..],
            &["--max-repeat", "5"],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("--new") && line.contains("measurably faster"),
        "{err}"
    );
    assert_eq!(before, user_state(&repo));
}

#[test]
fn old_and_new_name_the_endpoints_in_every_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let h = make_repo(&repo, &fault_history(), false);
    add_local_work(&repo);
    let before = user_state(&repo);
    let run = ["--build", BUILD, "--run", "./prog"];
    let (code, v, _, err) = bisect(
        &repo,
        root,
        "fault",
        &[&["--old", &h[0], "--new", &h[12]], &run[..]].concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    // Fix mode: --old is the faulty older revision.
    let (code, v, _, err) = bisect(
        &repo,
        root,
        "fix",
        &[
            &["--mode", "fix", "--old", &h[9], "--new", &h[15]],
            &run[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[13], &err);
    assert_eq!(v["term"], "first fixed commit");
    // Mixed: --old with the classic name of the other end.
    let (code, v, _, err) = bisect(
        &repo,
        root,
        "mixed",
        &[
            &["--mode", "fix", "--old", &h[9], "--good", &h[15]],
            &run[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[13], &err);
    // Perf mode.
    let slow = tempfile::tempdir().unwrap();
    let prepo = slow.path().join("repo");
    let hist: Vec<Behaviour> = (0..8)
        .map(|i| Behaviour {
            speed: (i >= 5).then_some(60),
            ..Behaviour::default()
        })
        .collect();
    let ph = make_repo(&prepo, &hist, false);
    let (code, v, _, err) = bisect(
        &prepo,
        slow.path(),
        "perf",
        &[
            "--mode", "perf", "--old", &ph[0], "--new", &ph[7], "--build", BUILD, "--run",
            "./prog", "--metric", "tg128",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &ph[5], &err);
    // One name per endpoint; both missing is a one-line error.
    let (code, _, _, err) = bisect(
        &repo,
        root,
        "twice",
        &[
            &["--old", &h[0], "--good", &h[1], "--new", &h[12]],
            &run[..],
        ]
        .concat(),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--old and --good both name the older revision"),
        "{err}"
    );
    let (code, _, _, err) = bisect(
        &repo,
        root,
        "none",
        &["--new", &h[12], "--run", "./prog"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--good: missing") && err.contains("--old"),
        "{err}"
    );
    assert_eq!(before, user_state(&repo));
}

#[test]
fn help_says_which_endpoint_is_which() {
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args(["bisect", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for want in [
        "--old <OLD>",
        "--new <NEW>",
        "the OLDER one in fault, perf and output mode",
        "the OLDER one in fix and speedup mode",
        "speedup: first commit measurably faster",
        "--exclude <PATH>",
        "--build-cache",
        "--budget",
    ] {
        assert!(help.contains(want), "no '{want}' in:\n{help}");
    }
}

/// Deletes the loose objects of every version of `path` in `repo`; returns how many.
fn delete_blobs(repo: &Path, path: &str) -> usize {
    let objects = git(repo, &["rev-list", "--objects", "--all"]);
    let objects_dir = PathBuf::from(git(repo, &["rev-parse", "--git-path", "objects"]));
    let objects_dir = if objects_dir.is_absolute() {
        objects_dir
    } else {
        repo.join(objects_dir)
    };
    let mut n = 0;
    for line in objects.lines() {
        if let Some((oid, p)) = line.split_once(' ')
            && p == path
        {
            let file = objects_dir.join(&oid[..2]).join(&oid[2..]);
            std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            n += 1;
        }
    }
    n
}

#[test]
fn mirror_without_a_blob_needs_exclude() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    let h = make_repo(&src, &fault_history(), true);
    let mirror = root.join("mirror.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--mirror",
            "--no-hardlinks",
            src.to_str().unwrap(),
            "mirror.git",
        ],
    );
    assert_eq!(delete_blobs(&mirror, "models/big.gguf"), 16);
    let before = user_state(&mirror);
    let args = [
        "--old", &h[0], "--new", &h[12], "--build", BUILD, "--run", "./prog",
    ];

    let (code, _, _, err) = bisect(&mirror, root, "m", &args, &[]);
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("no copy of models/big.gguf"), "{err}");
    assert!(line.contains("--exclude 'models/*.gguf'"), "{err}");
    // Nothing half-made is left, and the state is not "in progress": the corrected command
    // line starts at once.
    let cache = root.join("m-cache");
    assert_eq!(std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0), 0);
    assert!(
        !mirror.join("worktrees").exists()
            || std::fs::read_dir(mirror.join("worktrees")).unwrap().count() == 0
    );

    let excluded = [&args[..], &["--exclude", "models/*.gguf"]].concat();
    let (code, v, _, err) = bisect(&mirror, root, "m", &excluded, &[]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    let wt = cache.join(&h[9]);
    assert!(wt.join("prog.c").is_file() && !wt.join("models/big.gguf").exists());
    assert_eq!(git(&wt, &["status", "--porcelain"]), "?? prog");
    assert_eq!(before, user_state(&mirror));

    // `bisect reset --worktrees` removes them, registrations included.
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args(["bisect", "reset", "--worktrees", "--repo"])
        .arg(&mirror)
        .arg("--state-dir")
        .arg(root.join("m"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        git(&mirror, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert!(!wt.exists());
    assert_eq!(before, user_state(&mirror));
}

#[test]
fn partial_clone_offline_with_exclude_and_its_own_sparse_patterns() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let origin = root.join("origin");
    let h = make_repo(&origin, &fault_history(), true);
    git(&origin, &["config", "uploadpack.allowFilter", "true"]);
    let url = format!("file://{}", origin.display());
    git(
        root,
        &["clone", "-q", "--filter=blob:limit=1k", &url, "clone"],
    );
    let clone = root.join("clone");
    // No network: the promisor remote is gone.
    std::fs::rename(&origin, root.join("origin.gone")).unwrap();
    add_local_work(&clone);
    let before = user_state(&clone);
    let args = [
        "--old", &h[0], "--new", &h[12], "--build", BUILD, "--run", "./prog",
    ];

    let (code, _, _, err) = bisect(&clone, root, "p", &args, &[]);
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    // git names only the object; tessera finds its path.
    assert!(line.contains("no copy of models/big.gguf"), "{err}");
    assert!(line.contains("--exclude 'models/*.gguf'"), "{err}");
    assert_eq!(before, user_state(&clone));

    let excluded = [&args[..], &["--exclude", "models/big.gguf"]].concat();
    let (code, v, _, err) = bisect(&clone, root, "p", &excluded, &[]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert_eq!(before, user_state(&clone));

    // The user's own checkout leaves models/ out (cone mode: top-level files only); the
    // worktrees follow it without --exclude.
    git(&clone, &["sparse-checkout", "set", "--cone"]);
    let sparse_before = user_state(&clone);
    let (code, v, _, err) = bisect(&clone, root, "q", &args, &[]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert!(err.contains("sparse-checkout patterns"), "{err}");
    assert!(
        !root
            .join("q-cache")
            .join(&h[9])
            .join("models/big.gguf")
            .exists()
    );
    assert_eq!(sparse_before, user_state(&clone));
}

#[test]
fn submodules_present_are_checked_out_and_absent_ones_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q", "-b", "main"]);
    std::fs::write(sub.join("sub.txt"), "from the submodule\n").unwrap();
    git(&sub, &["add", "sub.txt"]);
    git(&sub, &["commit", "-q", "-m", "sub"]);
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(
        &repo,
        &[
            "submodule",
            "-q",
            "add",
            sub.to_str().unwrap(),
            "vendor/lib",
        ],
    );
    // A second gitlink whose repository was never cloned.
    git(
        &repo,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            "160000,4565194ed7c32d1d2efa32ceab4d3c6cae006306,vendor/absent",
        ],
    );
    std::fs::write(repo.join("lib.h"), "/* unchanged */\n").unwrap();
    let mut h = Vec::new();
    for (i, b) in fault_history().iter().take(12).enumerate() {
        std::fs::write(repo.join("prog.c"), program(i, *b)).unwrap();
        git(&repo, &["add", "prog.c", "lib.h"]);
        git(&repo, &["commit", "-q", "-m", &format!("c{i}")]);
        h.push(git(&repo, &["rev-parse", "HEAD"]));
    }
    let before = user_state(&repo);
    // The run fails unless the present submodule's file is there.
    let (code, v, _, err) = bisect(
        &repo,
        root,
        "sm",
        &[
            "--old",
            &h[0],
            "--new",
            &h[11],
            "--build",
            BUILD,
            "--run",
            "test -f vendor/lib/sub.txt || exit 7; ./prog",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert!(
        err.contains("note: submodule vendor/absent is absent from the repository")
            && err.contains("skipped"),
        "{err}"
    );
    assert!(!err.contains("submodule vendor/lib"), "{err}");
    assert_eq!(before, user_state(&repo));
}

#[test]
fn stops_report_the_range_left_and_resume_rebuilds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let h = make_repo(&repo, &fault_history(), false);
    let builds = root.join("builds.log");
    let build = format!(
        "echo $TESSERA_BISECT_COMMIT >> {}; {BUILD}",
        builds.display()
    );
    let args = [
        "--old", &h[0], "--new", &h[12], "--build", &build, "--run", "./prog",
    ];

    let (code, v, stdout, err) = bisect(
        &repo,
        root,
        "st",
        &[&args[..], &["--max-steps", "1"]].concat(),
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["status"], "stopped", "{v:#}");
    let left = &v["remaining"];
    let n = left["count"].as_u64().unwrap();
    assert!((3..12).contains(&n), "{v:#}");
    let listed: Vec<&str> = left["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len() as u64, n);
    assert!(listed.contains(&h[9].as_str()), "{v:#}");
    assert_eq!(left["oldest"]["hash"], listed[0]);
    assert!(left["git_range"].as_str().unwrap().contains(".."), "{v:#}");
    assert!(
        stdout.contains(&format!("is one of {n} commits")),
        "{stdout}"
    );
    assert!(err.contains("stopped by --max-steps 1"), "{err}");
    // Progress: the step, the commit, the build and the run with their times.
    assert!(err.contains("step 1 (~"), "{err}");
    assert!(
        err.contains("build: built in") && err.contains("run: 1 run in"),
        "{err}"
    );

    let (code, v, _, err) = bisect(&repo, root, "st", &["--resume"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert_each_built_once(&builds);

    // A budget smaller than the endpoints' checks: stopped before the first test, with the
    // whole range left; the resumed run builds nothing it built before.
    let slow_build = format!("sleep 1; {build}");
    let budget_args = [
        "--old",
        &h[0],
        "--new",
        &h[12],
        "--build",
        &slow_build,
        "--run",
        "./prog",
    ];
    std::fs::remove_file(&builds).unwrap();
    let (code, v, _, err) = bisect(
        &repo,
        root,
        "bu",
        &[&budget_args[..], &["--budget", "2s"]].concat(),
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["status"], "stopped", "{v:#}\n{err}");
    assert_eq!(v["remaining"]["count"], 12, "{v:#}");
    assert!(err.contains("stopped by --budget"), "{err}");
    let (code, v, _, err) = bisect(&repo, root, "bu", &["--resume"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert_each_built_once(&builds);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("bu").join("state.json")).unwrap())
            .unwrap();
    // Every step that built says how long it took.
    for s in state["steps"].as_array().unwrap() {
        assert!(s["build_seconds"].as_f64().unwrap() >= 1.0, "{s:#}");
    }
}

#[test]
fn reuse_cache_moves_one_worktree_and_resume_after_kill_rebuilds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let h = make_repo(&repo, &fault_history(), false);
    add_local_work(&repo);
    let before = user_state(&repo);
    let builds = root.join("builds.log");
    let runs = root.join("runs.log");
    // Each build logs its commit and lib.h's inode: git leaves an unchanged file in place
    // when it moves the shared worktree, so the inode stays.
    let build = format!(
        "echo $TESSERA_BISECT_COMMIT $(basename $PWD) $(stat -c %i lib.h) >> {}; {BUILD}",
        builds.display()
    );
    // The 4th run kills tessera itself, as a crash or a Ctrl-C would.
    let run = format!(
        "echo r >> {r}; if [ $(wc -l < {r}) -eq 4 ]; then kill -9 $PPID; sleep 5; fi; ./prog",
        r = runs.display()
    );
    let args = [
        "--old",
        &h[0],
        "--new",
        &h[12],
        "--build",
        &build,
        "--run",
        &run,
        "--build-cache",
        "reuse",
    ];
    let (code, _, _, err) = bisect(&repo, root, "re", &args, &[]);
    assert_eq!(code, -1, "killed by a signal\n{err}");
    let (code, v, _, err) = bisect(&repo, root, "re", &["--resume"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    let lines: Vec<Vec<String>> = std::fs::read_to_string(&builds)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect();
    let mut commits: Vec<&String> = lines.iter().map(|l| &l[0]).collect();
    commits.sort();
    commits.dedup();
    assert_eq!(
        commits.len(),
        lines.len(),
        "a commit was built twice: {lines:?}"
    );
    // The old endpoint in its own worktree, everything else in the shared one.
    let cache = root.join("re-cache");
    let mut dirs: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, vec![h[0].clone(), "shared".to_string()], "{lines:?}");
    let shared: Vec<&Vec<String>> = lines.iter().filter(|l| l[1] == "shared").collect();
    assert!(shared.len() >= 3, "{lines:?}");
    assert!(
        shared.iter().all(|l| l[2] == shared[0][2]),
        "lib.h was rewritten: {lines:?}"
    );
    assert_eq!(before, user_state(&repo));
}

#[test]
fn ccache_cache_reaches_cmake_through_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    let h = make_repo(&repo, &fault_history(), false);
    // A stand-in ccache on PATH; the build only records what it sees.
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("ccache");
    std::fs::write(&fake, "#!/bin/sh\nexec \"$@\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let envlog = root.join("env.log");
    let build = format!(
        "echo \"$CMAKE_C_COMPILER_LAUNCHER|$CMAKE_CXX_COMPILER_LAUNCHER|$CCACHE_BASEDIR|$JOBS|$CMAKE_BUILD_PARALLEL_LEVEL\" >> {}; $TESSERA_BISECT_CCACHE {BUILD}",
        envlog.display()
    );
    let args = [
        "--old",
        &h[0],
        "--new",
        &h[12],
        "--build",
        &build,
        "--run",
        "./prog",
        "--build-cache",
        "ccache",
        "--jobs",
        "3",
    ];
    let clean: [(&str, &str); 1] = [("PATH", &path)];
    let (code, v, _, err) = bisect(&repo, root, "cc", &args, &clean);
    assert_eq!(code, 0, "{err}");
    assert_found(&v, &h[9], &err);
    assert!(err.contains("build cache: ccache"), "{err}");
    let cache = std::fs::canonicalize(root.join("cc-cache")).unwrap();
    let seen = std::fs::read_to_string(&envlog).unwrap();
    for line in seen.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if std::env::var_os("CMAKE_C_COMPILER_LAUNCHER").is_none() {
            assert_eq!(f[0], fake.to_str().unwrap(), "{line}");
            assert_eq!(f[1], fake.to_str().unwrap(), "{line}");
        }
        if std::env::var_os("CCACHE_BASEDIR").is_none() {
            assert_eq!(Path::new(f[2]), cache.as_path(), "{line}");
        }
        assert_eq!((f[3], f[4]), ("3", "3"), "{line}");
    }
    // Asked for but not installed: a clear error.
    let no_ccache: [(&str, &str); 1] = [("PATH", "/usr/bin:/bin")];
    if !Path::new("/usr/bin/ccache").exists() && !Path::new("/bin/ccache").exists() {
        let (code, _, _, err) = bisect(&repo, root, "nc", &args, &no_ccache);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("ccache is not on PATH"), "{err}");
    }
}

/// Every line of the build log (one commit hash per build) is distinct: nothing was built
/// twice.
fn assert_each_built_once(log: &Path) {
    let built: Vec<String> = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut distinct = built.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        built.len(),
        distinct.len(),
        "a commit was built twice: {built:?}"
    );
}
