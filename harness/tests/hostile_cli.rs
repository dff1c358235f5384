//! Hostile command lines and model paths: every one is exit 2 with one line naming the bad
//! value and what would be valid, nothing half-written, never a hang, panic or abort.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;

fn tessera(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", cache)
        .env("TESSERA_CALIBRATE", "off")
        // A hang (a FIFO opened for reading) fails the test instead of blocking it.
        .timeout(Duration::from_secs(60));
    c
}

fn synth(dir: &Path) -> PathBuf {
    let out = dir.join("tiny.gguf");
    tessera(dir)
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&out)
        .assert()
        .success();
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, nothing on stdout, and one stderr line that holds every one of `needles`.
fn assert_refused(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        o.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn non_regular_model_files_are_refused_by_every_command_without_opening_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo.gguf");
    mkfifo(&fifo);
    let sub = d.join("dir.gguf");
    std::fs::create_dir(&sub).unwrap();
    let sock = d.join("sock.gguf");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let cases: [(PathBuf, &str); 4] = [
        (fifo, "is not a regular file (a FIFO); give a GGUF file"),
        (sub, "is not a regular file (a directory); give a GGUF file"),
        (
            PathBuf::from("/dev/zero"),
            "is not a regular file (a character device); give a GGUF file",
        ),
        (sock, "is not a regular file (a socket); give a GGUF file"),
    ];
    let out_dir = d.join("runs");
    for (path, what) in &cases {
        let name = path.display().to_string();
        let commands: [Vec<&str>; 4] = [
            vec!["bench", "-p", "8", "-n", "0", "-r", "1", "-m", &name],
            vec!["generate", "--prompt-tokens", "1,2", "-n", "2", "-m", &name],
            vec!["kernels", "--no-measure", "-m", &name],
            vec![
                "sweep",
                "--model",
                &name,
                "--out-dir",
                out_dir.to_str().unwrap(),
            ],
        ];
        for args in commands {
            let o = tessera(d).args(&args).output().unwrap();
            let err = assert_refused(&o, &[&format!("'{name}'"), what]);
            assert!(!err.contains("does not exist"), "{args:?}: {err}");
        }
    }
    // What really is missing says so, and a dangling link says where it points.
    std::os::unix::fs::symlink("nowhere.gguf", d.join("dangling.gguf")).unwrap();
    for (name, what) in [
        ("nope.gguf", "model file 'nope.gguf' does not exist"),
        (
            "dangling.gguf",
            "model file 'dangling.gguf' is a symbolic link to 'nowhere.gguf', which does not exist",
        ),
    ] {
        let o = tessera(d)
            .current_dir(d)
            .args(["generate", "--prompt-tokens", "1", "-m", name])
            .output()
            .unwrap();
        assert_refused(&o, &[&format!("error: -m: {what}")]);
    }
    assert!(!out_dir.exists(), "a refused sweep must not create a run");
}

#[test]
fn out_of_range_counts_are_refused_at_parse_time_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let m = model.to_str().unwrap();
    let tokens = "give a number of tokens from 0 to 16777216";
    let threads = "give a positive number of threads, at most 1024";
    let cases: [(Vec<&str>, &[&str]); 12] = [
        // Used to run and record 4294967295 in the row (a u32 cast).
        (
            vec!["bench", "-m", m, "-p", "18446744073709551615", "-n", "0"],
            &["-p: invalid value '18446744073709551615'", tokens],
        ),
        (
            vec!["bench", "-m", m, "-p", "4294967295", "-n", "0"],
            &["'4294967295'", tokens],
        ),
        (
            vec![
                "bench",
                "-m",
                m,
                "-p",
                "0",
                "-n",
                "8,99999999999999999999999",
            ],
            &["-n: invalid value '99999999999999999999999'", tokens],
        ),
        (
            vec!["bench", "-m", m, "-p", "0", "-n", "0", "-pg", "16777216,1"],
            &[
                "-pg: invalid value '16777216,1'",
                "16777217 tokens in all; a context holds at most 16777216",
            ],
        ),
        (
            vec!["bench", "-m", m, "-b", "0"],
            &["-b: invalid value '0'", "at most 16777216"],
        ),
        (
            vec!["bench", "-m", m, "-ub", "16777217"],
            &["-ub: invalid value '16777217'", "at most 16777216"],
        ),
        (
            vec!["bench", "-m", m, "-t", "1,100000"],
            &["-t: invalid value '100000'", threads],
        ),
        (
            vec!["bench", "-m", m, "-r", "18446744073709551615"],
            &["'18446744073709551615'", "at most 1000000"],
        ),
        // Used to panic in the thread pool ("spawning a worker thread: WouldBlock").
        (
            vec!["generate", "-m", m, "--prompt-tokens", "1", "-t", "100000"],
            &["'100000'", "--threads", threads],
        ),
        (
            vec![
                "generate",
                "-m",
                m,
                "--prompt-tokens",
                "1",
                "-n",
                "16777217",
            ],
            &["'16777217'", "--n-predict", tokens],
        ),
        (
            vec![
                "generate",
                "-m",
                m,
                "--prompt-tokens",
                "1,2",
                "-n",
                "16777215",
            ],
            &["a context of 16777217 positions is more than the limit of 16777216"],
        ),
        (
            vec!["kernels", "--no-measure", "-t", "1025"],
            &["'1025'", threads],
        ),
    ];
    for (args, needles) in cases {
        let o = tessera(dir.path()).args(&args).output().unwrap();
        assert_refused(&o, needles);
    }
}

/// `tessera ARGS` under `ulimit -v KB` (the case where allocation failure used to abort).
fn under_ulimit_v(kb: u64, cache: &Path, args: &[&str]) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("tessera");
    let mut c = Command::new("sh");
    c.env("TESSERA_CACHE", cache)
        .env("TESSERA_CALIBRATE", "off")
        .timeout(Duration::from_secs(60))
        .arg("-c")
        .arg(format!("ulimit -v {kb} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args);
    c.output().unwrap()
}

#[test]
fn a_context_larger_than_memory_is_exit_2_before_any_row_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let m = model.to_str().unwrap();
    // 10M positions of the tiny model: a 9.5 GiB KV cache against a 3.8 GiB limit.
    let limit = "address-space limit `ulimit -v` 3.8 GiB";
    let o = under_ulimit_v(
        4_000_000,
        dir.path(),
        &[
            "bench",
            "-m",
            m,
            "-p",
            "8,10000000",
            "-n",
            "0",
            "-r",
            "1",
            "-t",
            "1",
            "-o",
            "json",
        ],
    );
    // The small test comes first, yet nothing is written: every point is checked first.
    assert_refused(
        &o,
        &[
            "error: -p 10000000 on ",
            "a context of 10000000 positions (KV cache 9.5 GiB as K f16 + V f16",
            limit,
        ],
    );
    let o = under_ulimit_v(
        4_000_000,
        dir.path(),
        &[
            "bench", "-m", m, "-p", "0", "-n", "10000000", "-r", "1", "-t", "1",
        ],
    );
    assert_refused(&o, &["error: -n 10000000 on ", limit]);
    let o = under_ulimit_v(
        4_000_000,
        dir.path(),
        &[
            "generate",
            "-m",
            m,
            "--prompt-tokens",
            "1,2",
            "-n",
            "10000000",
            "-t",
            "1",
        ],
    );
    assert_refused(
        &o,
        &[
            "error: --prompt-tokens (2 ids) and -n 10000000: a context of 10000002 positions",
            limit,
        ],
    );
    // What fits still runs under the same limit.
    let o = under_ulimit_v(
        4_000_000,
        dir.path(),
        &[
            "generate",
            "-m",
            m,
            "--prompt-tokens",
            "1,2",
            "-n",
            "3",
            "-t",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_thread_the_system_refuses_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    // A 1 PiB stack for every spawned thread: no system can map it, so every spawn fails.
    let huge_stack = (1u64 << 50).to_string();
    let o = tessera(dir.path())
        .env("RUST_MIN_STACK", &huge_stack)
        .args([
            "generate",
            "--prompt-tokens",
            "1,2",
            "-n",
            "2",
            "-t",
            "4",
            "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert_refused(
        &o,
        &["cannot start 4 threads: the system refused to start thread 1 ("],
    );
    // In bench it is that configuration's failure: an error row and exit 1.
    let o = tessera(dir.path())
        .env("RUST_MIN_STACK", &huge_stack)
        .args([
            "bench", "-p", "8", "-n", "0", "-r", "1", "-t", "4", "-o", "jsonl", "-m",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(row["status"], "error");
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot start 4 threads: the system refused"),
        "{row}"
    );
}

#[test]
fn bench_model_errors_are_not_labelled_as_writing_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth(dir.path());
    let bytes = std::fs::read(&model).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // The good model comes first; its rows must not be half-written before the error.
    let both = format!("{},{}", model.display(), cut.display());
    let o = tessera(dir.path())
        .args([
            "bench", "-p", "8", "-n", "0", "-r", "1", "-t", "1", "-o", "json", "-m", &both,
        ])
        .output()
        .unwrap();
    let err = assert_refused(&o, &[&format!("error: -m: {}: ", cut.display()), "offset"]);
    assert!(!err.contains("writing results"), "{err}");
    // A real write failure keeps its label.
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("tessera"))
        .env("TESSERA_CACHE", dir.path())
        .args(["bench", "-p", "8", "-n", "0", "-r", "1", "-t", "1", "-m"])
        .arg(&model)
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: writing results: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn kernels_token_counts_and_repetitions_are_bounded_at_parse_time() {
    let dir = tempfile::tempdir().unwrap();
    let o = tessera(dir.path())
        .args(["kernels", "--preset", "tiny", "--m", "1,100000000"])
        .output()
        .unwrap();
    assert_refused(&o, &["'100000000'", "at most 65536"]);
    let o = tessera(dir.path())
        .args(["kernels", "--preset", "tiny", "-r", "99999999999"])
        .output()
        .unwrap();
    assert_refused(&o, &["99999999999", "at most 1000000"]);
}
