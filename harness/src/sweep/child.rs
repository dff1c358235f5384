//! Runs one sweep point as a child process with a time limit, and captures what a crash
//! leaves behind: exit code or signal, stdout, and the tail of stderr.
//!
//! The child gets its own process group, so a timeout kills everything it started (a
//! shell script's `sleep`, llama-bench under numactl), and so do orphans left after a
//! normal exit — otherwise they would hold the pipes open and the sweep would hang.
//!
//! With `--profile` the child is also sampled (crate::profile) from its exec to its exit,
//! with every thread and process it starts.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::counters::{CounterSet, Scope};
use crate::profile::{self, Recording};
use crate::results::CounterValue;

/// Most stdout kept (rows are small; garbage can be large).
const STDOUT_CAP: usize = 16 << 20;
/// Bytes of stderr kept from the end.
const STDERR_TAIL: usize = 4096;

#[derive(Debug, Default)]
pub struct ChildResult {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    /// The last lines of stderr (at most 4 KiB).
    pub stderr_tail: String,
    pub elapsed: Duration,
    /// Counters over the whole child, when requested.
    pub counters: Option<std::collections::BTreeMap<String, CounterValue>>,
    /// The sampled profile of the whole child, or why there is none, when requested.
    pub profile: Option<Result<Recording, String>>,
}

fn reader<R: Read + Send + 'static>(mut r: R, keep_tail: bool) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if keep_tail && out.len() > 2 * STDERR_TAIL {
                        out.drain(..out.len() - STDERR_TAIL);
                    } else if !keep_tail && out.len() > STDOUT_CAP {
                        out.truncate(STDOUT_CAP);
                    }
                }
            }
        }
        out
    })
}

/// The last `STDERR_TAIL` bytes, starting at a line boundary when there is one.
pub fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    let mut s = &bytes[start..];
    if start > 0
        && let Some(nl) = s.iter().position(|&b| b == b'\n')
    {
        s = &s[nl + 1..];
    }
    String::from_utf8_lossy(s).trim_end().to_string()
}

/// Spawns `cmd`, waits at most `timeout`, and returns what happened. `counters`, when not
/// empty, counts the child from its exec to its exit.
pub fn run(
    cmd: &mut Command,
    timeout: Duration,
    counters: &[String],
) -> std::io::Result<ChildResult> {
    run_profiled(cmd, timeout, counters, None)
}

/// [`run`], and with `profile` also samples the child from its exec to its exit. A profile
/// that cannot be taken is `Some(Err(reason))`; the child runs all the same.
pub fn run_profiled(
    cmd: &mut Command,
    timeout: Duration,
    counters: &[String],
    profile: Option<&profile::Settings>,
) -> std::io::Result<ChildResult> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Opened on this thread right before the spawn: the child inherits them disabled and
    // its exec enables them (FACTS.md: perf-event2 child counting).
    let mut set = (!counters.is_empty()).then(|| CounterSet::open(counters, Scope::Child));
    // The same for the sampling events (crate::profile::Target::Child).
    let session = profile.map(|s| profile::Session::start(s, profile::Target::Child));
    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let out = reader(child.stdout.take().expect("piped"), false);
    let err = reader(child.stderr.take().expect("piped"), true);
    let mut timed_out = false;
    loop {
        // Wait without reaping, so the process group id stays reserved until we kill it.
        // SAFETY: siginfo_t is plain data the kernel fills.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            rc != 0 || info.si_pid() != 0
        };
        if exited {
            break;
        }
        if t0.elapsed() >= timeout {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill on our child's process group; ESRCH (already gone) is harmless.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let status = child.wait()?;
    let elapsed = t0.elapsed();
    let counters = set.as_mut().map(|s| s.read());
    let profile = session.map(|s| s.map(profile::Session::finish));
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(ChildResult {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout,
        stderr_tail: tail(&stderr),
        elapsed,
        counters,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> ChildResult {
        run(
            Command::new("sh").arg("-c").arg(script),
            Duration::from_millis(timeout_ms),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn exit_code_stdout_and_stderr_tail() {
        let r = sh("echo out; echo err1 >&2; echo err2 >&2; exit 3", 10_000);
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.signal, None);
        assert!(!r.timed_out);
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr_tail, "err1\nerr2");
    }

    #[test]
    fn a_signal_is_reported() {
        let r = sh("kill -SEGV $$", 10_000);
        assert_eq!(r.signal, Some(11));
        assert_eq!(r.exit_code, None);
    }

    #[test]
    fn a_hang_is_killed_with_its_children() {
        // The background sleep holds stdout open; without the group kill this would hang.
        let r = sh("sleep 30 & sleep 30", 300);
        assert!(r.timed_out);
        assert_eq!(r.signal, Some(9));
        assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
    }

    #[test]
    fn tail_keeps_the_end_on_a_line_boundary() {
        let mut big = Vec::new();
        for i in 0..2000 {
            big.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let t = tail(&big);
        assert!(t.ends_with("line 1999"));
        assert!(t.starts_with("line "));
        assert!(t.len() <= STDERR_TAIL);
    }

    #[test]
    fn software_counters_cover_the_child() {
        let r = run(
            Command::new("sh")
                .arg("-c")
                .arg("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"),
            Duration::from_secs(30),
            &["task-clock".to_string(), "cycles".to_string()],
        )
        .unwrap();
        let c = r.counters.unwrap();
        assert!(c["task-clock"].value.unwrap() > 1_000_000, "{c:?}");
        // Hardware counters: a real value on a machine with a PMU, null + reason in a VM.
        assert!(c["cycles"].value.is_some() || c["cycles"].reason.is_some());
    }
}
