//! Sampled profiles of any engine (`--profile`): perf_event samples of the measured process
//! and all its threads, symbolized after the fact, stored in the row as the hottest
//! symbols (self time) plus folded stacks and a flamegraph SVG in the run directory, and,
//! for external engines, as `kernels_used` entries inferred from symbol families.
//!
//! Two targets: [`Target::Child`] follows the next process this thread spawns from its
//! `exec` to its exit (external engines, sweep points, bisect runs); [`Target::This`]
//! follows this thread and the threads it creates afterwards, only between
//! [`Session::enable`] and [`Session::disable`] (the built-in engine's timed
//! repetitions). Either way only user space is sampled, which is what
//! `perf_event_paranoid` 2 allows without privileges.
//!
//! Sampling may be impossible (paranoid level 3, a container's seccomp profile, no perf
//! support): then the measurement goes on, and the row says why there is no profile, in
//! one line naming the errno and the paranoid level.

pub mod classify;
pub mod output;
pub mod sampler;
pub mod symbolize;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::results::{BenchRow, KernelUse, Profile};
use sampler::{Drain, EventKind, MapRec, OpenFn, Raw};
use symbolize::{Frame, Loc, Spaces};

/// Samples per second per CPU. Not a round number, so sampling does not run in lockstep
/// with timers of the measured program; clamped to the kernel's
/// `perf_event_max_sample_rate`.
pub const DEFAULT_FREQ_HZ: u64 = 999;

/// Symbols kept in a row's `top`.
pub const TOP_N: usize = 10;

/// How to sample.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub freq_hz: u64,
    /// Opens one event; [`sampler::open`] unless a test simulates a refusing kernel.
    pub open: OpenFn,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            freq_hz: DEFAULT_FREQ_HZ,
            open: sampler::open,
        }
    }
}

/// What a session follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The next child this thread spawns, from its exec on, and everything it starts.
    Child,
    /// This thread and the threads it creates after [`Session::start`], while enabled.
    This,
}

/// Open sampling events and the thread draining them.
pub struct Session {
    drain: Drain,
    fds: Vec<RawFd>,
    event: EventKind,
    freq_hz: u64,
    target: Target,
}

impl Session {
    /// Opens the events on every online CPU. For [`Target::Child`], call it on the thread
    /// that spawns the child, right before the spawn. `Err` is the one-line reason.
    pub fn start(s: &Settings, target: Target) -> Result<Session, String> {
        let freq_hz = clamp_freq(s.freq_hz);
        let mut drain = Drain::spawn().map_err(|e| format!("cannot start the profiler: {e}"))?;
        let cpus = sampler::online_cpus();
        let (event, samplers) = sampler::open_all(s.open, &cpus, freq_hz, target == Target::Child)
            .map_err(|(event, e)| reason(event, &e))?;
        let fds = samplers.iter().map(|s| s.as_raw_fd()).collect();
        drain.hand_over(samplers);
        Ok(Session {
            drain,
            fds,
            event,
            freq_hz,
            target,
        })
    }

    /// Starts sampling ([`Target::This`]; a child's events enable themselves at its exec).
    pub fn enable(&self) {
        sampler::set_enabled(&self.fds, true);
    }

    /// Stops sampling.
    pub fn disable(&self) {
        sampler::set_enabled(&self.fds, false);
    }

    /// Stops sampling and collects what was sampled. For [`Target::This`] the mappings are
    /// read from /proc/self/maps now, while every library is still mapped.
    pub fn finish(self) -> Recording {
        self.disable();
        let raw = self.drain.finish();
        let pid = std::process::id();
        let (extra, live, comm) = match self.target {
            Target::This => (
                std::fs::read_to_string("/proc/self/maps")
                    .map(|m| parse_proc_maps(&m, pid))
                    .unwrap_or_default(),
                Some(pid),
                std::fs::read_to_string("/proc/self/comm")
                    .map(|c| c.trim().to_string())
                    .ok(),
            ),
            Target::Child => (Vec::new(), None, None),
        };
        Recording {
            raw,
            extra,
            live,
            comm,
            event: self.event,
            freq_hz: self.freq_hz,
        }
    }
}

/// What a session sampled, not yet symbolized.
#[derive(Debug)]
pub struct Recording {
    raw: Raw,
    /// Mappings not in the records (this process's, from /proc).
    extra: Vec<MapRec>,
    /// The pid, when the sampled process is this one (still alive).
    live: Option<u32>,
    /// This process's name, for the root frame of its stacks.
    comm: Option<String>,
    event: EventKind,
    freq_hz: u64,
}

/// Self samples of one symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub symbol: String,
    pub dso: String,
    pub samples: u64,
}

/// A symbolized profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub event: &'static str,
    pub freq_hz: u64,
    pub samples: u64,
    /// Records the kernel dropped (a ring buffer was full).
    pub lost: u64,
    /// Folded stacks, root first (`process;outer;...;leaf`) → samples.
    pub folded: BTreeMap<String, u64>,
    /// Self samples per symbol, most first.
    pub leaves: Vec<Leaf>,
}

impl Recording {
    /// Places and names every sampled address. `Err` when there is nothing to show: no
    /// samples, or not one file could be symbolized.
    pub fn analyze(&self) -> Result<Analysis, String> {
        let raw = &self.raw;
        if raw.samples.is_empty() {
            return Err(format!(
                "no samples: the measured process ran for less than one {} Hz sampling period",
                self.freq_hz
            ));
        }
        let mut spaces = Spaces::new(raw, &self.extra);
        // Samples that share process, address space and stack are resolved once.
        let mut groups: HashMap<(u32, usize, u32), u64> = HashMap::new();
        for s in &raw.samples {
            let g = spaces.generation(s.pid, s.time);
            *groups.entry((s.pid, g, s.stack)).or_default() += 1;
        }
        let mut located: Vec<((u32, u32, u64), Vec<Loc>)> = Vec::with_capacity(groups.len());
        let mut all_locs: Vec<Loc> = Vec::new();
        for (&(pid, g, stack), &n) in &groups {
            let locs: Vec<Loc> = raw.stacks[stack as usize]
                .iter()
                .enumerate()
                // A caller's entry is its return address; the call is the byte before.
                .map(|(i, &a)| spaces.locate(pid, g, if i == 0 { a } else { a - 1 }))
                .collect();
            all_locs.extend(locs.iter().cloned());
            located.push(((pid, stack, n), locs));
        }
        all_locs.sort();
        all_locs.dedup();
        let (frames, errors) = symbolize::symbolize(&spaces.files, &all_locs, self.live);
        if !errors.is_empty() && errors.len() == spaces.files.len() {
            return Err(format!("symbolization failed: {}", errors[0]));
        }
        let unknown = Frame {
            symbol: "[unknown]".into(),
            dso: String::new(),
        };
        let mut folded: BTreeMap<String, u64> = BTreeMap::new();
        let mut leaves: HashMap<(&str, &str), u64> = HashMap::new();
        for ((pid, _, n), locs) in &located {
            let names: Vec<&Frame> = locs
                .iter()
                .map(|l| frames.get(l).unwrap_or(&unknown))
                .collect();
            let root = self.process_name(*pid);
            let mut line = root;
            for f in names.iter().rev() {
                line.push(';');
                line.push_str(&f.symbol);
            }
            *folded.entry(line).or_default() += n;
            let leaf = names.first().copied().unwrap_or(&unknown);
            *leaves
                .entry((leaf.symbol.as_str(), leaf.dso.as_str()))
                .or_default() += n;
        }
        let mut leaves: Vec<Leaf> = leaves
            .into_iter()
            .map(|((symbol, dso), samples)| Leaf {
                symbol: symbol.to_string(),
                dso: dso.to_string(),
                samples,
            })
            .collect();
        leaves.sort_by(|a, b| {
            b.samples
                .cmp(&a.samples)
                .then_with(|| a.symbol.cmp(&b.symbol))
        });
        Ok(Analysis {
            event: self.event.name(),
            freq_hz: self.freq_hz,
            samples: raw.samples.len() as u64,
            lost: raw.lost,
            folded,
            leaves,
        })
    }

    fn process_name(&self, pid: u32) -> String {
        let name = self
            .raw
            .comms
            .get(&pid)
            .cloned()
            .or_else(|| {
                (self.live == Some(pid))
                    .then(|| self.comm.clone())
                    .flatten()
            })
            .unwrap_or_else(|| format!("pid {pid}"));
        name.replace([';', ' '], "_")
    }
}

impl Analysis {
    /// The row's profile: the top symbols and where [`output::write`] put the files.
    pub fn profile(&self, folded: String, flamegraph: String) -> Profile {
        Profile {
            event: self.event.to_string(),
            freq_hz: self.freq_hz,
            samples: self.samples,
            top: self
                .leaves
                .iter()
                .take(TOP_N)
                .map(|l| crate::results::ProfileSymbol {
                    symbol: l.symbol.clone(),
                    dso: l.dso.clone(),
                    share: l.samples as f64 / self.samples.max(1) as f64,
                })
                .collect(),
            folded,
            flamegraph,
        }
    }

    /// `kernels_used` entries for an external engine (see [`classify`]).
    pub fn kernel_uses(&self) -> Vec<KernelUse> {
        classify::kernel_uses(
            self.leaves.iter().map(|l| (l.symbol.as_str(), l.samples)),
            self.samples,
        )
    }
}

/// What `--profile` gives one measurement: the profile and the kernel classes of its
/// samples, or the one-line reason there is none.
pub type Outcome = Result<(Profile, Vec<KernelUse>), String>;

/// Symbolizes a recording and writes `<run_dir>/<name>.folded` and `.svg` (`name` may
/// have directories, e.g. `profiles/<point>-<repeat>`); the profile's paths are relative
/// to `run_dir`.
pub fn conclude(rec: Result<Recording, String>, run_dir: &Path, name: &str) -> Outcome {
    let a = rec?.analyze()?;
    let (folded, svg) = output::write(&a, run_dir, name)?;
    Ok((a.profile(folded, svg), a.kernel_uses()))
}

/// Puts an outcome into a row: `profile`, or `profile: null` with `profile_error` (and a
/// warning, printed once per process). `classify` (external engines) also appends the
/// kernel classes to `kernels_used`; the built-in engine records its own.
pub fn apply(row: &mut BenchRow, outcome: &Outcome, classify: bool) {
    match outcome {
        Ok((p, kernels)) => {
            row.profile = Some(p.clone());
            row.profile_error = None;
            if classify {
                row.kernels_used.extend(kernels.iter().cloned());
            }
        }
        Err(why) => {
            row.profile = None;
            row.profile_error = Some(why.clone());
            notice_once(why);
        }
    }
}

static NOTICED: AtomicBool = AtomicBool::new(false);

/// Prints "no profile: why" to stderr the first time a profile fails in this process.
pub fn notice_once(why: &str) {
    if !NOTICED.swap(true, Ordering::Relaxed) {
        eprintln!("tessera: warning: --profile: rows get profile null: {why}");
    }
}

/// Where `tessera bench --profile` writes: a run directory and, for a sweep's child, the
/// file name of its one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutDir {
    pub dir: PathBuf,
    pub name: Option<String>,
}

impl OutDir {
    /// The default run directory, `results/runs/profile-<UTC time>-<pid>`.
    pub fn default_dir() -> PathBuf {
        PathBuf::from("results/runs").join(format!("profile-{}", crate::sweep::new_run_id()))
    }

    /// The file name (without extension) of the `seq`-th row (1-based): the given name
    /// (with `-<seq>` after the first), else `<seq>-<test>-t<threads>`.
    pub fn name_for(&self, seq: usize, test: &str, threads: u32) -> String {
        match &self.name {
            Some(n) if seq <= 1 => n.clone(),
            Some(n) => format!("{n}-{seq}"),
            None => format!("{seq}-{test}-t{threads}"),
        }
    }
}

/// Checks a `--profile-name`: a relative path without `..`.
pub fn valid_name(name: &str) -> Result<(), String> {
    let p = Path::new(name);
    if name.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "'{name}' is not valid; give a relative path without '..', such as profiles/p1"
        ));
    }
    Ok(())
}

/// The sampling rate the kernel accepts: `want`, at most `perf_event_max_sample_rate`.
fn clamp_freq(want: u64) -> u64 {
    let max = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&m| m > 0)
        .unwrap_or(want);
    want.clamp(1, max)
}

/// The symbolic name of an errno perf_event_open or mmap reports.
fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ENOSYS => "ENOSYS",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EMFILE => "EMFILE",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::E2BIG => "E2BIG",
        _ => "errno",
    }
}

/// The one-line reason sampling with `event` could not start: the errno, the kernel's
/// `perf_event_paranoid`, and what to do.
pub fn reason(event: EventKind, e: &io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let code = e.raw_os_error();
    let hint = match code {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "; allow it with `sysctl kernel.perf_event_paranoid=2` (user space) or CAP_PERFMON"
        }
        Some(libc::ENOENT) | Some(libc::ENOSYS) | Some(libc::ENODEV) => {
            "; perf events are not available here (a container's seccomp profile or a kernel without perf support)"
        }
        _ => "",
    };
    let errno = code.map_or("error", errno_name);
    let detail = match code {
        Some(c) => io::Error::from_raw_os_error(c).to_string(),
        None => e.to_string(),
    };
    format!(
        "perf_event_open ({} sampling) failed: {errno} ({detail}); kernel.perf_event_paranoid = {paranoid}{hint}",
        event.name()
    )
}

/// The executable mappings in a /proc/PID/maps text.
pub fn parse_proc_maps(text: &str, pid: u32) -> Vec<MapRec> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(off)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !perms.contains('x') {
            continue;
        }
        let (_dev, _inode) = (it.next(), it.next());
        let path = it.next().unwrap_or("").trim().to_string();
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(pgoff)) = (
            u64::from_str_radix(a, 16),
            u64::from_str_radix(b, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        if end <= start {
            continue;
        }
        out.push(MapRec {
            pid,
            time: 0,
            start,
            len: end - start,
            pgoff,
            path,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse_eacces(_: &sampler::Spec) -> io::Result<perf_event::Sampler> {
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }

    #[test]
    fn a_refused_open_is_a_reason_naming_the_errno_and_paranoid_level() {
        let s = Settings {
            open: refuse_eacces,
            ..Settings::default()
        };
        let Err(why) = Session::start(&s, Target::Child) else {
            panic!("the opener refuses");
        };
        assert!(why.contains("EACCES"), "{why}");
        assert!(why.contains("kernel.perf_event_paranoid = "), "{why}");
        assert!(
            why.contains("cpu-clock"),
            "the fallback event is named: {why}"
        );
        assert!(!why.contains('\n'));
        // The row: null profile, the reason, and the measurement untouched.
        let mut row = BenchRow {
            avg_ts: 12.5,
            ..BenchRow::default()
        };
        apply(&mut row, &Err(why.clone()), true);
        assert_eq!(row.profile, None);
        assert_eq!(row.profile_error.as_deref(), Some(why.as_str()));
        assert_eq!(row.avg_ts, 12.5);
        let json = serde_json::to_value(&row).unwrap();
        assert!(json["profile"].is_null());
        assert_eq!(json["profile_error"], why);
    }

    #[test]
    fn reasons_for_containers() {
        let r = reason(
            EventKind::Cycles,
            &io::Error::from_raw_os_error(libc::ENOSYS),
        );
        assert!(
            r.starts_with("perf_event_open (cycles sampling) failed: ENOSYS"),
            "{r}"
        );
        assert!(r.contains("container"), "{r}");
    }

    #[test]
    fn proc_maps_keep_executable_mappings() {
        let text = "\
55d0c0a00000-55d0c0a80000 r--p 00000000 08:01 123 /usr/bin/tessera
55d0c0a80000-55d0c0f00000 r-xp 00080000 08:01 123 /usr/bin/tessera
7f0000000000-7f0000001000 r-xp 00000000 00:00 0 
7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]
7f1000000000-7f1000100000 r-xp 00010000 08:01 9 /lib/with space.so (deleted)
";
        let m = parse_proc_maps(text, 7);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].start, 0x55d0c0a80000);
        assert_eq!(m[0].pgoff, 0x80000);
        assert_eq!(m[0].path, "/usr/bin/tessera");
        assert_eq!(m[1].path, "");
        assert_eq!(m[2].path, "[vdso]");
        assert_eq!(m[3].path, "/lib/with space.so (deleted)");
    }

    #[test]
    fn names_and_paths() {
        let o = OutDir {
            dir: "d".into(),
            name: None,
        };
        assert_eq!(o.name_for(3, "pp512", 4), "3-pp512-t4");
        let o = OutDir {
            dir: "d".into(),
            name: Some("profiles/k-0".into()),
        };
        assert_eq!(o.name_for(1, "pp512", 4), "profiles/k-0");
        assert_eq!(o.name_for(2, "pp512", 4), "profiles/k-0-2");
        assert!(valid_name("profiles/k-0").is_ok());
        for bad in ["", "/abs", "../up", "a/../../b", "./x"] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
    }

    /// A busy thread of this process, sampled with the real kernel interface: its hot
    /// function is on top. Skipped (with the reason) where perf_event_open is refused.
    #[test]
    fn this_process_is_sampled_while_enabled() {
        let session = match Session::start(&Settings::default(), Target::This) {
            Ok(s) => s,
            Err(why) => {
                println!("skipped: {why}");
                return;
            }
        };
        #[inline(never)]
        fn tessera_unit_hot_spin(n: u64) -> u64 {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for i in 0..n {
                x = std::hint::black_box(x.rotate_left(7) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
            }
            x
        }
        session.enable();
        let t = std::thread::spawn(|| {
            let t0 = std::time::Instant::now();
            let mut acc = 0;
            while t0.elapsed() < std::time::Duration::from_millis(300) {
                acc ^= tessera_unit_hot_spin(1 << 16);
            }
            acc
        });
        std::hint::black_box(t.join().unwrap());
        session.disable();
        let a = session.finish().analyze().expect("samples");
        assert!(a.samples >= 30, "{} samples in 300 ms", a.samples);
        let top = &a.leaves[0];
        assert!(
            top.symbol.contains("tessera_unit_hot_spin"),
            "top: {:?}",
            &a.leaves[..a.leaves.len().min(5)]
        );
        assert!(top.samples * 2 > a.samples, "{top:?} of {}", a.samples);
    }
}
