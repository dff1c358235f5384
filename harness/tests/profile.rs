//! `--profile`: a child whose hot function is known has that function on top, in the row, the
//! folded stacks and the flamegraph; where perf_event_open is refused (an injected opener,
//! and a real seccomp filter around a `tessera` process) rows get `profile: null` with the
//! reason and the measurement goes on; `tessera sweep`, `tessera bench` and `tessera
//! bisect` store their profiles where their docs say.
//!
//! Tests that need a C compiler or a kernel that allows sampling print why they are skipped.

use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use tessera::profile::{self, Settings, Target};
use tessera::sweep::child;

const HOT: &str = "tessera_test_hot_loop";

/// A program whose time goes to `tessera_test_hot_loop`, run on a second thread (so the
/// profile must cover threads) for argv[1] seconds; then it prints a result row, or with
/// argv[2] = "crash" aborts.
const HOT_C: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((noinline)) unsigned long tessera_test_hot_loop(double seconds) {
    volatile unsigned long x = 1;
    double end = now() + seconds;
    while (now() < end)
        for (int i = 0; i < 200000; i++) x = x * 6364136223846793005ul + 1442695040888963407ul;
    return x;
}

static double seconds;
static void *worker(void *arg) { (void)arg; tessera_test_hot_loop(seconds); return NULL; }

int main(int argc, char **argv) {
    seconds = argc > 1 ? atof(argv[1]) : 0.3;
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    if (argc > 2 && strcmp(argv[2], "crash") == 0) abort();
    printf("{\"n_threads\": 1, \"n_prompt\": 8, \"n_gen\": 0, \"avg_ns\": 1000000, \"avg_ts\": 100.0, \"samples_ns\": [1000000]}\n");
    return 0;
}
"#;

/// Builds the hot program into `dir` with frame pointers; None (printed) without a compiler.
fn hot_program(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("hot.c");
    let exe = dir.join("hot");
    std::fs::write(&src, HOT_C).unwrap();
    match Std::new("cc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
    {
        Ok(o) if o.status.success() => Some(exe),
        Ok(o) => {
            println!(
                "skipped: cc failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("skipped: no C compiler (cc: {e})");
            None
        }
    }
}

/// Whether this kernel lets this process sample; prints why not.
fn sampling_allowed() -> bool {
    match profile::Session::start(&Settings::default(), Target::This) {
        Ok(s) => {
            drop(s.finish());
            true
        }
        Err(why) => {
            println!("skipped: {why}");
            false
        }
    }
}

fn tessera(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", dir.join("cache"));
    c
}

fn tiny(dir: &Path) -> PathBuf {
    let out = dir.join("tiny.gguf");
    tessera(dir)
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&out)
        .assert()
        .success();
    out
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn top_symbol(p: &Value) -> &str {
    p["top"][0]["symbol"].as_str().unwrap_or("")
}

/// The profile's files exist under `run_dir`, and both name `symbol`.
fn assert_files(run_dir: &Path, p: &Value, symbol: &str) {
    let folded = std::fs::read_to_string(run_dir.join(p["folded"].as_str().unwrap())).unwrap();
    assert!(folded.contains(symbol), "folded:\n{folded}");
    for line in folded.lines() {
        let (_, n) = line.rsplit_once(' ').expect("`stack count` lines");
        n.parse::<u64>().expect("a count");
    }
    let svg = std::fs::read_to_string(run_dir.join(p["flamegraph"].as_str().unwrap())).unwrap();
    assert!(svg.contains("<svg"), "not an SVG");
    assert!(
        svg.contains(symbol),
        "the flamegraph does not name {symbol}"
    );
}

#[test]
fn the_known_hot_function_of_a_child_is_on_top_and_in_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let Some(hot) = hot_program(dir.path()) else {
        return;
    };
    if !sampling_allowed() {
        return;
    }
    // Directly, and under a shell that forks and execs it (a new address space).
    let direct = vec![hot.display().to_string(), "0.4".to_string()];
    let shell = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{} 0.4; true", hot.display()),
    ];
    for (i, argv) in [direct, shell].iter().enumerate() {
        let mut cmd = Std::new(&argv[0]);
        cmd.args(&argv[1..]);
        let r = child::run_profiled(
            &mut cmd,
            Duration::from_secs(60),
            &[],
            Some(&Settings::default()),
        )
        .unwrap();
        assert_eq!(r.exit_code, Some(0), "{}", r.stderr_tail);
        assert!(String::from_utf8_lossy(&r.stdout).contains("n_threads"));
        let name = format!("profiles/hot-{i}");
        let (p, kernels) =
            profile::conclude(r.profile.expect("asked for"), dir.path(), &name).expect("a profile");
        let p = serde_json::to_value(&p).unwrap();
        assert_eq!(top_symbol(&p), HOT, "{argv:?}: {p:#}");
        assert_eq!(p["top"][0]["dso"], "hot");
        let share = p["top"][0]["share"].as_f64().unwrap();
        assert!(share > 0.5, "{argv:?}: share {share}: {p:#}");
        assert!(p["samples"].as_u64().unwrap() >= 100, "{p:#}");
        assert!(["cycles", "cpu-clock"].contains(&p["event"].as_str().unwrap()));
        assert_eq!(p["folded"], format!("{name}.folded"));
        assert_eq!(p["flamegraph"], format!("{name}.svg"));
        assert_files(dir.path(), &p, HOT);
        // No family claims the hot loop: all of it is "other".
        assert_eq!(kernels.len(), 1, "{kernels:?}");
        assert_eq!(kernels[0].kernel, "other");
        assert_eq!(kernels[0].source, "profile");
        assert!((kernels[0].share.unwrap() - 1.0).abs() < 1e-9);
    }
}

fn refuse(_: &profile::sampler::Spec) -> std::io::Result<perf_event::Sampler> {
    Err(std::io::Error::from_raw_os_error(libc::EACCES))
}

#[test]
fn a_refused_profile_leaves_the_measurement_and_says_why() {
    let s = Settings {
        open: refuse,
        ..Settings::default()
    };
    let mut cmd = Std::new("sh");
    cmd.args([
        "-c",
        "echo '{\"n_threads\": 2, \"n_prompt\": 0, \"n_gen\": 4, \"avg_ns\": 5, \"avg_ts\": 3.5}'",
    ]);
    let r = child::run_profiled(&mut cmd, Duration::from_secs(30), &[], Some(&s)).unwrap();
    assert_eq!(r.exit_code, Some(0));
    let mut row = tessera::sweep::engine::parse_rows(&r.stdout)
        .unwrap()
        .remove(0);
    let outcome = profile::conclude(
        r.profile.expect("asked for"),
        Path::new("/nonexistent"),
        "p",
    );
    profile::apply(&mut row, &outcome, true);
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["avg_ts"], 3.5);
    assert!(v["profile"].is_null());
    let why = v["profile_error"].as_str().unwrap();
    assert!(why.contains("EACCES"), "{why}");
    assert!(why.contains("kernel.perf_event_paranoid = "), "{why}");
    assert!(row.kernels_used.is_empty());
}

/// A BPF seccomp program: perf_event_open fails with EACCES, everything else is allowed.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn deny_perf_filter() -> Vec<libc::sock_filter> {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k, jt, jf| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    vec![
        stmt(LD_W_ABS, 4), // seccomp_data.arch
        jump(ARCH, 1, 0),
        stmt(RET_K, ALLOW),
        stmt(LD_W_ABS, 0), // seccomp_data.nr
        jump(libc::SYS_perf_event_open as u32, 0, 1),
        stmt(RET_K, ERRNO | libc::EACCES as u32),
        stmt(RET_K, ALLOW),
    ]
}

/// A `tessera` command whose process (and children) get EACCES from perf_event_open, by a
/// seccomp filter installed between fork and exec.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn tessera_without_perf(dir: &Path) -> Command {
    use std::os::unix::process::CommandExt as _;
    let filter = deny_perf_filter();
    let mut cmd = Std::new(assert_cmd::cargo::cargo_bin("tessera"));
    cmd.env("TESSERA_CACHE", dir.join("cache"));
    // SAFETY: between fork and exec only prctl(2), which is async-signal-safe, runs; it
    // reads the filter built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Command::from_std(cmd)
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn under_seccomp_rows_say_why_there_is_no_profile_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let engine = "cmd=echo '{\"n_threads\": {threads}, \"n_prompt\": 8, \"n_gen\": 0, \"avg_ns\": 5, \"avg_ts\": 3.5}'";
    let out = tessera_without_perf(d)
        .args([
            "sweep",
            "--engine",
            engine,
            "-t",
            "1,2",
            "--pp",
            "8",
            "--profile",
        ])
        .args([
            "--no-probe",
            "--counters",
            "none",
            "--run-id",
            "denied",
            "--out-dir",
        ])
        .arg(d.join("runs"))
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = rows(&d.join("runs/denied/results.jsonl"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "ok", "{r:#}");
        assert_eq!(r["avg_ts"], 3.5);
        assert!(r["profile"].is_null(), "{r:#}");
        let why = r["profile_error"].as_str().unwrap();
        assert!(
            why.contains("EACCES") && why.contains("kernel.perf_event_paranoid = "),
            "{why}"
        );
    }
    let warnings = stderr.lines().filter(|l| l.contains("--profile")).count();
    assert_eq!(warnings, 1, "one warning, not one per row:\n{stderr}");

    // The built-in engine, sampling itself in-process, is refused the same way.
    let model = tiny(d);
    let out = tessera_without_perf(d)
        .args([
            "bench", "-o", "jsonl", "-r", "1", "-p", "8", "-n", "0", "-t", "1", "-m",
        ])
        .arg(&model)
        .arg("--profile")
        .arg("--profile-dir")
        .arg(d.join("bench-denied"))
        .assert()
        .success()
        .get_output()
        .clone();
    let row: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["status"], "ok");
    assert!(row["avg_ts"].as_f64().unwrap() > 0.0);
    assert!(row["profile"].is_null());
    let why = row["profile_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{row:#}"));
    assert!(why.contains("EACCES"), "{why}");
}

#[test]
fn sweep_profiles_external_and_builtin_points_into_the_run_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if !sampling_allowed() {
        return;
    }
    let model = tiny(d);
    let mut engines = vec!["builtin".to_string()];
    let hot = hot_program(d);
    if let Some(h) = &hot {
        engines.push(format!("cmd={} 0.3", h.display()));
    }
    let mut c = tessera(d);
    c.arg("sweep");
    for e in &engines {
        c.args(["--engine", e]);
    }
    c.arg("-m")
        .arg(&model)
        .args(["-t", "1", "--pp", "64", "--reps", "20", "--profile"])
        .args([
            "--no-probe",
            "--counters",
            "none",
            "--run-id",
            "prof",
            "--out-dir",
        ])
        .arg(d.join("runs"))
        .assert()
        .success();
    let run = d.join("runs/prof");
    let rows = rows(&run.join("results.jsonl"));
    assert_eq!(rows.len(), engines.len());
    for r in &rows {
        assert_eq!(r["status"], "ok", "{r:#}");
        let p = &r["profile"];
        assert!(p.is_object(), "{r:#}");
        let key = r["point_key"].as_str().unwrap();
        assert_eq!(p["folded"], format!("profiles/{key}-0.folded"));
        assert_eq!(p["flamegraph"], format!("profiles/{key}-0.svg"));
        assert!(p["samples"].as_u64().unwrap() > 0);
        let top = p["top"].as_array().unwrap();
        assert!(!top.is_empty() && top.len() <= profile::TOP_N);
        let shares: f64 = top.iter().map(|t| t["share"].as_f64().unwrap()).sum();
        assert!(shares <= 1.0 + 1e-9, "{shares}");
        let by_profile: Vec<&Value> = r["kernels_used"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["source"] == "profile")
            .collect();
        if r["engine"] == "builtin" {
            // The built-in engine records its own kernels; its profile covers the timed
            // repetitions, which spend their time in tessera's kernels.
            assert!(by_profile.is_empty(), "{r:#}");
            assert!(!r["kernels_used"].as_array().unwrap().is_empty());
            let names: Vec<&str> = top.iter().map(|t| t["symbol"].as_str().unwrap()).collect();
            assert!(
                names.iter().any(|n| n.starts_with("tessera_kernels::")),
                "no tessera kernel among {names:?}"
            );
            assert_files(&run, p, "tessera_kernels::");
        } else {
            assert_eq!(top_symbol(p), HOT, "{p:#}");
            assert_files(&run, p, HOT);
            assert_eq!(by_profile.len(), 1, "{r:#}");
            assert_eq!(by_profile[0]["kernel"], "other");
            assert_eq!(by_profile[0]["calls"], 0);
        }
    }
}

#[test]
fn bench_writes_its_profiles_to_the_profile_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if !sampling_allowed() {
        return;
    }
    let model = tiny(d);
    let pdir = d.join("prof");
    let out = tessera(d)
        .args([
            "bench", "-o", "jsonl", "-r", "10", "-p", "64", "-n", "8", "-t", "1", "-m",
        ])
        .arg(&model)
        .arg("--profile")
        .arg("--profile-dir")
        .arg(&pdir)
        .assert()
        .success()
        .get_output()
        .clone();
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for (i, r) in rows.iter().enumerate() {
        let p = &r["profile"];
        let test = r["test"].as_str().unwrap();
        assert_eq!(p["folded"], format!("{}-{test}-t1.folded", i + 1), "{r:#}");
        assert!(pdir.join(p["folded"].as_str().unwrap()).is_file());
        assert!(pdir.join(p["flamegraph"].as_str().unwrap()).is_file());
        // 999 Hz, or less where the kernel's perf_event_max_sample_rate is lower.
        let hz = p["freq_hz"].as_u64().unwrap();
        assert!((1..=profile::DEFAULT_FREQ_HZ).contains(&hz), "{hz}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("profiles in {}", pdir.display())),
        "{stderr}"
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Std::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn bisect_steps_carry_their_profile_and_name_the_top_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(hot) = hot_program(d) else {
        return;
    };
    if !sampling_allowed() {
        return;
    }
    // Four commits; from the third on the program crashes after its hot loop.
    let repo = d.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let mut hashes = Vec::new();
    for (i, mode) in ["ok", "ok", "crash", "crash"].iter().enumerate() {
        std::fs::write(repo.join("mode.txt"), mode).unwrap();
        git(&repo, &["add", "mode.txt"]);
        git(
            &repo,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
        );
        hashes.push(git(&repo, &["rev-parse", "HEAD"]));
    }
    let state = d.join("state");
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args(["bisect", "--mode", "fault", "--profile", "--format", "json"])
        .arg("--repo")
        .arg(&repo)
        .arg("--state-dir")
        .arg(&state)
        .args(["--good", &hashes[0], "--bad", &hashes[3], "--run"])
        .arg(format!("{} 0.3 $(cat mode.txt)", hot.display()))
        .assert()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "found: exit 0\n{stderr}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["commit"]["hash"], hashes[2], "{result:#}");
    let notes = stderr
        .lines()
        .filter(|l| l.contains(&format!("(top: {HOT} ")))
        .count();
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
    let steps = st["steps"].as_array().unwrap();
    assert!(steps.len() >= 3, "{st:#}");
    assert_eq!(
        notes,
        steps.len(),
        "every step's log line names the top:\n{stderr}"
    );
    for s in steps {
        let p = &s["profile"];
        assert_eq!(top_symbol(p), HOT, "{s:#}");
        assert!(
            p["folded"]
                .as_str()
                .unwrap()
                .starts_with(&format!("profiles/step-{}-", s["n"])),
            "{p:#}"
        );
        assert_files(&state, p, HOT);
    }
}
