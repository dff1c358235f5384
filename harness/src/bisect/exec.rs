//! Runs a build or run command (`sh -c`) in a child process group with a time limit,
//! capturing its output, so that a crash, a CUDA fault or a hang is a recorded result and
//! never takes tessera down. With `--profile` a run is also sampled (crate::profile) from
//! its exec to its exit.

use std::io::Read;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::classify::RunOutput;

/// One command to run.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub script: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Run under this compute-sanitizer binary.
    pub sanitizer: Option<&'a Path>,
    /// Print "  LABEL: still running (ELAPSED)" every minute (long builds).
    pub heartbeat: Option<&'a str>,
}

/// How often a long command with a heartbeat says it is still running.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// Exit code compute-sanitizer is told to use when it finds errors.
pub const SANITIZER_EXIT_CODE: i32 = 86;

/// Runs the command; an error only when it cannot be started at all.
pub fn run(inv: &Invocation) -> Result<RunOutput> {
    run_profiled(inv, None).map(|(out, _)| out)
}

/// [`run`], and with `profile` also samples the command, everything it starts included;
/// the recording (or why there is none) comes back beside the output.
pub fn run_profiled(
    inv: &Invocation,
    profile: Option<&crate::profile::Settings>,
) -> Result<(RunOutput, Option<Result<crate::profile::Recording, String>>)> {
    let mut cmd = match inv.sanitizer {
        Some(san) => {
            let mut c = Command::new(san);
            c.args([
                "--tool",
                "memcheck",
                "--target-processes",
                "all",
                "--error-exitcode",
                &SANITIZER_EXIT_CODE.to_string(),
                "sh",
                "-c",
                inv.script,
            ]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", inv.script]);
            c
        }
    };
    cmd.current_dir(inv.dir)
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills the whole tree (make -j, etc.).
        .process_group(0);
    // Opened on this thread right before the spawn: the child inherits the events and its
    // exec enables them.
    let session = profile.map(|s| crate::profile::Session::start(s, crate::profile::Target::Child));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{}` in {}", inv.script, inv.dir.display()))?;
    let pid = child.id() as i32;
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let kill_group = || {
        // SAFETY: kill(2) with a negative pid signals our child's process group; it touches
        // no memory of ours. The group may already be gone, which kill reports as ESRCH.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    };
    // Wait in slices so that Ctrl-C (which the child's own process group does not receive)
    // still stops the child promptly.
    let mut next_beat = HEARTBEAT;
    let (status, timed_out) = loop {
        if let Some(label) = inv.heartbeat
            && start.elapsed() >= next_beat
        {
            eprintln!(
                "  {label}: still running ({})",
                super::build::fmt_elapsed(start.elapsed().as_secs_f64())
            );
            next_beat += HEARTBEAT;
        }
        let left = inv.timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(status) => break (status.ok(), false),
            Err(mpsc::RecvTimeoutError::Disconnected) => break (None, false),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    kill_group();
                    let _ = rx.recv();
                    bail!("interrupted; the steps so far are saved, continue with --resume");
                }
                if start.elapsed() >= inv.timeout {
                    kill_group();
                    break (rx.recv().ok().and_then(|s| s.ok()), true);
                }
            }
        }
    };
    // Also reap the rest of the group: a grandchild that outlives its parent would hold the
    // pipes open and stall the readers below.
    kill_group();
    let seconds = start.elapsed().as_secs_f64();
    let recording = session.map(|s| s.map(crate::profile::Session::finish));
    let collect = |r: Option<mpsc::Receiver<Vec<u8>>>| {
        r.and_then(|rx| rx.recv_timeout(Duration::from_secs(5)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let out = RunOutput {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stdout: collect(stdout),
        stderr: collect(stderr),
        seconds,
    };
    Ok((out, recording))
}

fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Set by SIGINT/SIGTERM once [`install_interrupt_handler`] ran.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM stop the running child and end the bisection with an error
/// instead of killing tessera while its child runs on in its own process group.
pub fn install_interrupt_handler() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Finds an executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The last `n` lines of a text, for logs.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> RunOutput {
        let dir = std::env::temp_dir();
        run(&Invocation {
            script,
            dir: &dir,
            env: vec![("TESSERA_X".into(), "7".into())],
            timeout: Duration::from_millis(timeout_ms),
            sanitizer: None,
            heartbeat: None,
        })
        .unwrap()
    }

    #[test]
    fn captures_output_exit_code_and_env() {
        let o = sh("echo out $TESSERA_X; echo err >&2; exit 3", 10_000);
        assert_eq!(o.stdout, "out 7\n");
        assert_eq!(o.stderr, "err\n");
        assert_eq!(o.exit_code, Some(3));
        assert!(!o.timed_out);
    }

    #[test]
    fn signal_death_is_reported() {
        let o = sh("kill -SEGV $$", 10_000);
        assert_eq!(o.signal, Some(11), "{o:?}");
    }

    #[test]
    fn timeout_kills_the_group() {
        let o = sh("sleep 30 & sleep 30; echo never", 300);
        assert!(o.timed_out);
        assert!(!o.stdout.contains("never"));
        assert!(o.seconds < 20.0);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
