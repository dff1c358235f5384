//! perf_event sampling: one event per online CPU on the calling thread, inherited by the
//! threads and processes it creates, each CPU with its own ring buffer, drained by a
//! background thread into plain records (samples with their callchains, executable
//! mappings, exec and fork events).
//!
//! Why one event per CPU: the kernel refuses to map a ring buffer for an inherited event
//! that follows its task on any CPU (`cpu == -1 && inherit` is EINVAL in `perf_mmap`),
//! since every inherited copy would write to that one buffer. A per-CPU event with
//! `inherit` may be mapped, and the samples of its inherited copies land in the parent
//! event's buffer, so N buffers (one per CPU) see every thread of the process tree started
//! after the events were opened. `perf record` does the same.
//!
//! Why a drain thread started *before* the events are opened: it is then not one of the
//! threads they follow, so it never samples itself.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use perf_event::data::endian::Native;
use perf_event::data::parse::{ParseConfig, Parser};
use perf_event::data::{Comm, Fork, Lost, Mmap, Mmap2, RecordMetadata, Sample, Visitor};
use perf_event::events::{Hardware, Software};
use perf_event::{Builder, SampleFlag, Sampler};

/// Bytes of each CPU's ring buffer (a power of two; one more page holds the header). At
/// 999 Hz and ~300 bytes per sample with a callchain it holds close to a second, and the
/// drain thread empties it every 50 ms at the latest.
pub const RING_BYTES: usize = 256 << 10;

/// The kernel's `PERF_RECORD_MISC_COMM_EXEC`: the COMM record comes from an exec.
const MISC_COMM_EXEC: u16 = 1 << 13;

/// Callchain entries at or above this are context markers (`PERF_CONTEXT_USER`, ...),
/// not addresses.
const PERF_CONTEXT_MAX: u64 = -4095i64 as u64;

/// The sampled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Hardware CPU cycles, where the machine has a PMU.
    Cycles,
    /// The software cpu-clock timer, which every kernel has (VMs without a PMU).
    CpuClock,
}

impl EventKind {
    /// The name stored in a profile's `event`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Cycles => "cycles",
            EventKind::CpuClock => "cpu-clock",
        }
    }
}

/// One event to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub event: EventKind,
    pub cpu: usize,
    pub freq_hz: u64,
    /// Enabled by the next `exec` of a child instead of by `ioctl` (child processes).
    pub enable_on_exec: bool,
}

/// Opens one sampling event with its ring buffer. The seam where tests put a kernel that
/// refuses (`Err` with an errno); [`open`] is the real one.
pub type OpenFn = fn(&Spec) -> io::Result<Sampler>;

/// The real opener: `perf_event_open` on the calling thread and one CPU, user space only
/// (what `perf_event_paranoid` 2 allows), with IP, TID, TIME and a frame-pointer
/// CALLCHAIN per sample, and MMAP2, COMM and FORK records so addresses can be symbolized
/// after the process has exited.
pub fn open(spec: &Spec) -> io::Result<Sampler> {
    let mut b = match spec.event {
        EventKind::Cycles => Builder::new(Hardware::CPU_CYCLES),
        EventKind::CpuClock => Builder::new(Software::CPU_CLOCK),
    };
    b.observe_self()
        .one_cpu(spec.cpu)
        .inherit(true)
        .exclude_kernel(true)
        .exclude_hv(true)
        .exclude_callchain_kernel(true)
        .sample_frequency(spec.freq_hz)
        .sample(SampleFlag::IP | SampleFlag::TID | SampleFlag::TIME | SampleFlag::CALLCHAIN)
        .sample_id_all(true)
        .mmap(true)
        .mmap2(true)
        .comm(true)
        .comm_exec(true)
        .task(true)
        .wakeup_watermark(RING_BYTES / 4)
        .enabled(false);
    if spec.enable_on_exec {
        b.enable_on_exec(true);
    }
    b.build()?.sampled(RING_BYTES)
}

/// An executable mapping of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRec {
    pub pid: u32,
    /// Kernel timestamp (0 for mappings read from /proc).
    pub time: u64,
    pub start: u64,
    pub len: u64,
    /// Offset in the file of `start`.
    pub pgoff: u64,
    /// File path, or a kernel label such as `[vdso]`, or empty for anonymous memory.
    pub path: String,
}

/// One sample: which process, when, and its stack (an index into [`Raw::stacks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSample {
    pub pid: u32,
    pub time: u64,
    pub stack: u32,
}

/// Everything the ring buffers held, in the order drained (not time order across CPUs).
#[derive(Debug, Default)]
pub struct Raw {
    pub samples: Vec<RawSample>,
    /// Distinct callchains, leaf first, context markers removed.
    pub stacks: Vec<Vec<u64>>,
    pub maps: Vec<MapRec>,
    /// (pid, time) of every exec.
    pub execs: Vec<(u32, u64)>,
    /// pid → process name, the last one seen.
    pub comms: HashMap<u32, String>,
    /// (child pid, parent pid, time) of every new process (not thread).
    pub forks: Vec<(u32, u32, u64)>,
    /// Records the kernel dropped because a buffer was full.
    pub lost: u64,
    stack_ids: HashMap<Vec<u64>, u32>,
}

impl Raw {
    fn push_sample(&mut self, pid: u32, time: u64, chain: Vec<u64>) {
        let next = self.stacks.len() as u32;
        let stack = *self.stack_ids.entry(chain).or_insert_with_key(|c| {
            self.stacks.push(c.clone());
            next
        });
        self.samples.push(RawSample { pid, time, stack });
    }
}

/// A decoded record, owned.
enum Event {
    Sample {
        pid: u32,
        time: u64,
        chain: Vec<u64>,
    },
    Map(MapRec),
    Comm {
        pid: u32,
        tid: u32,
        exec: bool,
        time: u64,
        name: String,
    },
    Fork {
        pid: u32,
        ppid: u32,
        time: u64,
    },
    Lost(u64),
    Other,
}

struct Decoder;

impl<'a> Visitor<'a> for Decoder {
    type Output = Event;

    fn visit_unimplemented(self, _: RecordMetadata) -> Event {
        Event::Other
    }

    fn visit_sample(self, s: Sample<'a>, _: RecordMetadata) -> Event {
        let mut chain: Vec<u64> = s
            .callchain()
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|&a| a < PERF_CONTEXT_MAX && a != 0)
            .collect();
        if chain.is_empty()
            && let Some(ip) = s.ip()
        {
            chain.push(ip);
        }
        Event::Sample {
            pid: s.pid().unwrap_or(0),
            time: s.time().unwrap_or(0),
            chain,
        }
    }

    fn visit_mmap(self, m: Mmap<'a>, md: RecordMetadata) -> Event {
        map_event(&md, m.pid, m.addr, m.len, m.pgoff, &m.filename)
    }

    // MMAP2 adds the inode and build id, which symbolization does not use (it reads the
    // file by path), so both record kinds become the same event.
    fn visit_mmap2(self, m: Mmap2<'a>, md: RecordMetadata) -> Event {
        map_event(&md, m.pid, m.addr, m.len, m.pgoff, &m.filename)
    }

    fn visit_comm(self, c: Comm<'a>, md: RecordMetadata) -> Event {
        Event::Comm {
            pid: c.pid,
            tid: c.tid,
            exec: md.misc() & MISC_COMM_EXEC != 0,
            time: md.sample_id().time().unwrap_or(0),
            name: String::from_utf8_lossy(&c.comm).into_owned(),
        }
    }

    fn visit_fork(self, f: Fork, _: RecordMetadata) -> Event {
        if f.pid == f.ppid {
            // A new thread: it shares its process's mappings.
            return Event::Other;
        }
        Event::Fork {
            pid: f.pid,
            ppid: f.ppid,
            time: f.time,
        }
    }

    fn visit_lost(self, l: Lost, _: RecordMetadata) -> Event {
        Event::Lost(l.lost)
    }
}

fn map_event(
    md: &RecordMetadata,
    pid: u32,
    start: u64,
    len: u64,
    pgoff: u64,
    file: &[u8],
) -> Event {
    Event::Map(MapRec {
        pid,
        time: md.sample_id().time().unwrap_or(0),
        start,
        len,
        pgoff,
        path: String::from_utf8_lossy(file).into_owned(),
    })
}

/// Decodes one ring-buffer record into `out`; a record that does not parse is skipped.
fn decode(rec: &perf_event::Record, config: &ParseConfig<Native>, out: &mut Raw) {
    let data = rec.to_contiguous();
    // The parser wants the record with its 8-byte header, which the sampler has consumed.
    let Ok(size) = u16::try_from(data.len() + 8) else {
        return;
    };
    let mut bytes = Vec::with_capacity(data.len() + 8);
    bytes.extend_from_slice(&rec.ty().to_ne_bytes());
    bytes.extend_from_slice(&rec.misc().to_ne_bytes());
    bytes.extend_from_slice(&size.to_ne_bytes());
    bytes.extend_from_slice(&data);
    let mut p = Parser::new(&bytes[..], config.clone());
    match p.parse_record(Decoder) {
        Ok(Event::Sample { pid, time, chain }) => out.push_sample(pid, time, chain),
        Ok(Event::Map(m)) => out.maps.push(m),
        Ok(Event::Comm {
            pid,
            tid,
            exec,
            time,
            name,
        }) => {
            if exec {
                out.execs.push((pid, time));
            }
            if pid == tid {
                out.comms.insert(pid, name);
            }
        }
        Ok(Event::Fork { pid, ppid, time }) => out.forks.push((pid, ppid, time)),
        Ok(Event::Lost(n)) => out.lost += n,
        Ok(Event::Other) | Err(_) => {}
    }
}

fn drain_all(samplers: &mut [(Sampler, ParseConfig<Native>)], out: &mut Raw) -> bool {
    let mut any = false;
    for (s, config) in samplers.iter_mut() {
        while let Some(rec) = s.next_record() {
            decode(&rec, config, out);
            any = true;
        }
    }
    any
}

/// The background thread that empties the ring buffers.
pub struct Drain {
    tx: Option<mpsc::Sender<Vec<Sampler>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Raw>>,
}

impl Drain {
    /// Starts the thread; it waits for [`Drain::hand_over`]. Call it before the events are
    /// opened (see the module docs).
    pub fn spawn() -> io::Result<Drain> {
        let (tx, rx) = mpsc::channel::<Vec<Sampler>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("tessera-profile".into())
            .spawn(move || {
                let mut out = Raw::default();
                let Ok(samplers) = rx.recv() else {
                    return out;
                };
                let mut samplers: Vec<(Sampler, ParseConfig<Native>)> = samplers
                    .into_iter()
                    .map(|s| {
                        let c = s.config().clone();
                        (s, c)
                    })
                    .collect();
                let mut fds: Vec<libc::pollfd> = samplers
                    .iter()
                    .map(|(s, _)| libc::pollfd {
                        fd: s.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    })
                    .collect();
                while !stop2.load(Ordering::Acquire) {
                    // SAFETY: `fds` is a live array of `fds.len()` pollfd structs whose
                    // descriptors stay open while `samplers` lives.
                    unsafe {
                        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50);
                    }
                    if !drain_all(&mut samplers, &mut out) {
                        // Woken with nothing to read (POLLHUP, EINTR): do not spin.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                drain_all(&mut samplers, &mut out);
                out
            })?;
        Ok(Drain {
            tx: Some(tx),
            stop,
            handle: Some(handle),
        })
    }

    /// Gives the opened events to the thread.
    pub fn hand_over(&mut self, samplers: Vec<Sampler>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(samplers);
        }
    }

    /// Stops the thread after a last drain and returns what it collected.
    pub fn finish(mut self) -> Raw {
        self.stop.store(true, Ordering::Release);
        // Without a hand-over the thread ends as soon as the sender is gone.
        self.tx.take();
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Drain {
    /// A session dropped unfinished (the child could not be spawned) stops its thread,
    /// which then closes the events.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.tx.take();
    }
}

/// Opens one event per CPU in `cpus`, all of one kind: cycles where the machine has them,
/// else cpu-clock. Returns the kind and the samplers, or the error of the last attempt
/// (with the kind it was for).
pub fn open_all(
    open: OpenFn,
    cpus: &[usize],
    freq_hz: u64,
    enable_on_exec: bool,
) -> Result<(EventKind, Vec<Sampler>), (EventKind, io::Error)> {
    let mut last = None;
    for event in [EventKind::Cycles, EventKind::CpuClock] {
        let opened: io::Result<Vec<Sampler>> = cpus
            .iter()
            .map(|&cpu| {
                open(&Spec {
                    event,
                    cpu,
                    freq_hz,
                    enable_on_exec,
                })
            })
            .collect();
        match opened {
            Ok(v) => return Ok((event, v)),
            Err(e) => last = Some((event, e)),
        }
    }
    Err(last.expect("two kinds tried"))
}

/// `PERF_EVENT_IOC_ENABLE` / `_DISABLE` (`_IO('$', 0)` / `_IO('$', 1)`, the same on every
/// architecture). Applied to an inherited event they reach its inherited copies too.
const IOC_ENABLE: libc::c_ulong = 0x2400;
const IOC_DISABLE: libc::c_ulong = 0x2401;

/// Enables or disables every event in `fds`.
pub fn set_enabled(fds: &[RawFd], on: bool) {
    let req = if on { IOC_ENABLE } else { IOC_DISABLE };
    for &fd in fds {
        // SAFETY: ioctl on a perf event descriptor that the drain thread keeps open; the
        // request takes no pointer argument.
        unsafe {
            libc::ioctl(fd, req as _, 0);
        }
    }
}

/// The online CPUs, from sysfs ("0-3,8"); all CPUs up to the available parallelism if
/// that cannot be read.
pub fn online_cpus() -> Vec<usize> {
    let parsed = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()));
    parsed.unwrap_or_else(|| {
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
    })
}

fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8"), Some(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert!(!online_cpus().is_empty());
    }

    #[test]
    fn stacks_are_interned() {
        let mut r = Raw::default();
        r.push_sample(1, 10, vec![1, 2, 3]);
        r.push_sample(1, 11, vec![1, 2, 3]);
        r.push_sample(2, 12, vec![4]);
        assert_eq!(r.stacks, vec![vec![1, 2, 3], vec![4]]);
        assert_eq!(
            r.samples.iter().map(|s| s.stack).collect::<Vec<_>>(),
            [0, 0, 1]
        );
    }
}
