//! A persistent pool of worker threads that run one closure on every thread at once
//! (`run`), the shape of work in a forward pass: split a matmul's rows, wait for all.
//!
//! The calling thread is worker 0, so `n` threads means `n - 1` spawned ones. A job is
//! published by bumping a generation counter; completion is a counter of workers still busy.
//! How a thread waits for either is the [`Barrier`] strategy:
//!
//! - `condvar`: a mutex and condition variables, every wake-up a futex syscall;
//! - `spin-park`: spin on the atomic for a bounded number of `spin_loop` iterations, then
//!   sleep on the condition variable (woken only when someone really sleeps);
//! - `spin`: spin forever. Fastest when every thread owns a core, catastrophic when the
//!   cores are shared (a spinning thread burns the time slice the worker it waits for needs).
//!
//! The default is `spin-park` with 2000 `spin_loop`s (about 60 µs: one `spin_loop` is one
//! `pause`). Spinning wins when every thread owns a core (a condvar wake-up is a futex round
//! trip, tens of µs per empty `run` against a fraction of a µs spinning: `cargo bench -p
//! tessera-engine --bench pool`); pure spinning collapses when the cores are shared (the
//! spinner holds the core its partner needs), and a long budget is nearly as bad. 2000 kept
//! the quiet-machine speed and stayed level with the condvar under load; the measurements
//! behind it, with their machine and command, are in docs/performance.md ("Thread-pool
//! barrier").
//!
//! Pinning: `ThreadPool::with_cpus` puts worker `tid` on `cpus[tid % len]` (the calling
//! thread on `cpus[0]`). `ThreadPool::new` uses the process-wide plan set by
//! [`set_default_pinning`], so a command can pin every pool a `Context` creates without the
//! context knowing about placement. `TESSERA_POOL_BARRIER=condvar|spin-park|spin` (and
//! `TESSERA_POOL_SPIN=N`, the spin budget of `spin-park`) overrides the default barrier of
//! `ThreadPool::new`, for measuring.
//!
//! Limits: a pool has at most [`MAX_THREADS`] threads, the one bound every command's
//! `-t` parser uses, and a thread the system refuses to start (a `ulimit -u`, a cgroup
//! `pids.max`, no memory for its stack) makes pool creation an error, never a panic.

use std::cell::UnsafeCell;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{EngineError, Result};

type Job = dyn Fn(usize, usize) + Sync;

/// Most threads one pool runs (the caller included): far above the core count of any
/// machine tessera measures, low enough that a typo such as `-t 100000` is refused as
/// input rather than discovered as a system limit.
pub const MAX_THREADS: usize = 1024;

/// How pool threads wait for a job and the caller waits for its end (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barrier {
    Condvar,
    /// Spin up to this many `spin_loop` iterations, then sleep on the condition variable.
    SpinPark(u32),
    Spin,
}

impl Barrier {
    /// Spin budget of `spin-park` when none is given (see the module docs for the numbers).
    pub const DEFAULT_SPIN: u32 = 2_000;

    /// The strategy `ThreadPool::new` uses unless `TESSERA_POOL_BARRIER` says otherwise.
    pub const DEFAULT: Barrier = Barrier::SpinPark(Self::DEFAULT_SPIN);

    pub const NAMES: &'static str = "condvar, spin-park, spin";

    /// The default, or the `TESSERA_POOL_BARRIER` / `TESSERA_POOL_SPIN` override. A bad
    /// value is reported once on stderr and the default is used: the variables are a
    /// measuring aid, not a user setting worth aborting a run for.
    pub fn from_env() -> Barrier {
        static CHOICE: std::sync::OnceLock<Barrier> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            let mut b = match std::env::var("TESSERA_POOL_BARRIER") {
                Ok(s) => s.parse().unwrap_or_else(|e| {
                    eprintln!("warning: {e}; using {}", Barrier::DEFAULT);
                    Barrier::DEFAULT
                }),
                Err(_) => Barrier::DEFAULT,
            };
            if let (Barrier::SpinPark(n), Ok(s)) = (&mut b, std::env::var("TESSERA_POOL_SPIN")) {
                match s.parse::<u32>() {
                    Ok(v) => *n = v,
                    Err(_) => eprintln!(
                        "warning: TESSERA_POOL_SPIN '{s}' is not a count of iterations \
                         (0..=4294967295); using {n}"
                    ),
                }
            }
            b
        })
    }
}

impl fmt::Display for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Barrier::Condvar => f.write_str("condvar"),
            Barrier::SpinPark(n) => write!(f, "spin-park({n})"),
            Barrier::Spin => f.write_str("spin"),
        }
    }
}

impl FromStr for Barrier {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "condvar" => Ok(Barrier::Condvar),
            "spin-park" => Ok(Barrier::SpinPark(Barrier::DEFAULT_SPIN)),
            "spin" => Ok(Barrier::Spin),
            _ => Err(format!(
                "unknown pool barrier '{s}'; valid: {}",
                Barrier::NAMES
            )),
        }
    }
}

/// Keeps the hot atomics of different writers on different cache lines.
#[repr(align(128))]
struct Padded<T>(T);

struct Shared {
    barrier: Barrier,
    /// Bumped (Release) after `job` is written; workers read `job` after seeing it (Acquire).
    generation: Padded<AtomicU64>,
    /// Workers that have not finished the current job.
    pending: Padded<AtomicUsize>,
    /// Written by `run` only while no worker can read it (all finished the previous job).
    job: UnsafeCell<Option<*const Job>>,
    shutdown: AtomicBool,
    panicked: AtomicBool,
    /// Workers asleep (or about to sleep) on `start`, and whether the caller sleeps on
    /// `done`: a waker takes the lock and notifies only then (always under `condvar`).
    sleepers: AtomicUsize,
    caller_sleeps: AtomicBool,
    lock: Mutex<()>,
    start: Condvar,
    done: Condvar,
}

// SAFETY: `job` is only written by `run` while every worker waits for the next generation,
// and only read by workers after they saw that generation (Acquire), and `run` keeps the
// closure alive until `pending` is 0 again. Everything else is atomics and std sync types.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spins per the barrier until `ready()`; true when it became ready while spinning.
    #[inline]
    fn spin_until(&self, ready: impl Fn() -> bool) -> bool {
        let budget = match self.barrier {
            Barrier::Condvar => 0,
            Barrier::SpinPark(n) => n,
            Barrier::Spin => u32::MAX,
        };
        let mut i = 0u32;
        loop {
            if ready() {
                return true;
            }
            if i >= budget {
                if self.barrier != Barrier::Spin {
                    return false;
                }
                // Pure spin: an endless budget.
                i = 0;
            }
            std::hint::spin_loop();
            i += 1;
        }
    }

    /// Waits until the generation differs from `seen` or the pool shuts down.
    fn wait_start(&self, seen: u64) -> u64 {
        let ready = || {
            self.generation.0.load(Ordering::Acquire) != seen
                || self.shutdown.load(Ordering::Acquire)
        };
        if !self.spin_until(ready) {
            let mut g = self.lock();
            // SeqCst pairs with `publish`: either it sees this sleeper, or we see its bump.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            while self.generation.0.load(Ordering::SeqCst) == seen
                && !self.shutdown.load(Ordering::SeqCst)
            {
                g = self.start.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        self.generation.0.load(Ordering::Acquire)
    }

    /// Makes the new generation visible and wakes the workers that sleep.
    fn publish(&self) {
        self.generation.0.fetch_add(1, Ordering::SeqCst);
        if self.barrier == Barrier::Condvar || self.sleepers.load(Ordering::SeqCst) > 0 {
            drop(self.lock());
            self.start.notify_all();
        }
    }

    /// The caller's wait for `pending == 0`.
    fn wait_done(&self) {
        let ready = || self.pending.0.load(Ordering::Acquire) == 0;
        if !self.spin_until(ready) {
            let mut g = self.lock();
            self.caller_sleeps.store(true, Ordering::SeqCst);
            while self.pending.0.load(Ordering::SeqCst) != 0 {
                g = self.done.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            self.caller_sleeps.store(false, Ordering::SeqCst);
        }
    }

    /// A worker's end of a job.
    fn finish(&self) {
        if self.pending.0.fetch_sub(1, Ordering::SeqCst) == 1
            && (self.barrier == Barrier::Condvar || self.caller_sleeps.load(Ordering::SeqCst))
        {
            drop(self.lock());
            self.done.notify_one();
        }
    }
}

pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    n: usize,
    cpus: Option<Vec<usize>>,
}

/// The plan `ThreadPool::new` applies; `None` = no pinning.
static DEFAULT_PINNING: Mutex<Option<Vec<usize>>> = Mutex::new(None);

/// Sets the CPUs later `ThreadPool::new` calls pin their threads to (`None` = no pinning).
pub fn set_default_pinning(cpus: Option<Vec<usize>>) {
    *DEFAULT_PINNING.lock().unwrap_or_else(|e| e.into_inner()) = cpus.filter(|c| !c.is_empty());
}

/// The plan set by [`set_default_pinning`].
pub fn default_pinning() -> Option<Vec<usize>> {
    DEFAULT_PINNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

impl ThreadPool {
    /// A pool of `n` threads (the caller included), pinned per [`set_default_pinning`],
    /// waiting with [`Barrier::from_env`]. `n == 0` is treated as 1.
    ///
    /// # Errors
    /// [`EngineError::Threads`] when `n` is above [`MAX_THREADS`] or the system refuses to
    /// start one of the threads (those already started are stopped again).
    pub fn new(n: usize) -> Result<Self> {
        Self::with_barrier(n, default_pinning(), Barrier::from_env())
    }

    /// A pool of `n` threads; with `Some(cpus)`, thread `tid` (the caller is 0) is pinned to
    /// `cpus[tid % cpus.len()]`. A CPU that cannot be used leaves that thread unpinned: the
    /// plan was validated against the online CPUs before, so this only happens when a
    /// cgroup forbids the CPU, and a measurement still beats an abort. Errors as
    /// [`ThreadPool::new`].
    pub fn with_cpus(n: usize, cpus: Option<Vec<usize>>) -> Result<Self> {
        Self::with_barrier(n, cpus, Barrier::from_env())
    }

    /// As [`ThreadPool::with_cpus`], waiting with `barrier`.
    pub fn with_barrier(n: usize, cpus: Option<Vec<usize>>, barrier: Barrier) -> Result<Self> {
        let n = n.max(1);
        if n > MAX_THREADS {
            return Err(EngineError::Threads {
                requested: n,
                reason: format!("more than the limit of {MAX_THREADS}"),
            });
        }
        let cpus = cpus.filter(|c| !c.is_empty());
        if let Some(c) = &cpus {
            let _ = crate::affinity::pin_current_thread(c[0]);
        }
        let shared = Arc::new(Shared {
            barrier,
            generation: Padded(AtomicU64::new(0)),
            pending: Padded(AtomicUsize::new(0)),
            job: UnsafeCell::new(None),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            caller_sleeps: AtomicBool::new(false),
            lock: Mutex::new(()),
            start: Condvar::new(),
            done: Condvar::new(),
        });
        // Built before the workers so that, if one fails to start, dropping the pool shuts
        // down and joins those already running.
        let mut pool = Self {
            shared,
            workers: Vec::with_capacity(n - 1),
            n,
            cpus,
        };
        for tid in 1..n {
            let shared = Arc::clone(&pool.shared);
            let cpu = pool.cpus.as_ref().map(|c| c[tid % c.len()]);
            let handle = std::thread::Builder::new()
                .name(format!("tessera-worker-{tid}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        let _ = crate::affinity::pin_current_thread(cpu);
                    }
                    worker(shared, tid, n)
                })
                .map_err(|e| EngineError::Threads {
                    requested: n,
                    reason: format!("the system refused to start thread {tid} ({e})"),
                })?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    pub fn n_threads(&self) -> usize {
        self.n
    }

    /// The waiting strategy of this pool.
    pub fn barrier(&self) -> Barrier {
        self.shared.barrier
    }

    /// The CPU of each thread (`tid` order), or `None` when unpinned.
    pub fn pinned_cpus(&self) -> Option<Vec<usize>> {
        self.cpus
            .as_ref()
            .map(|c| (0..self.n).map(|t| c[t % c.len()]).collect())
    }

    /// Runs `f(tid, n)` on every thread and returns when all have finished.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, f: &F) {
        if self.n == 1 {
            f(0, 1);
            return;
        }
        let job: &(dyn Fn(usize, usize) + Sync + '_) = f;
        // SAFETY: erases the closure's lifetime; workers use it only before `pending`
        // drops to 0, and we wait for that below before `f` goes out of scope.
        let job: *const Job = unsafe {
            std::mem::transmute::<&(dyn Fn(usize, usize) + Sync + '_), &'static Job>(job)
        };
        let sh = &*self.shared;
        // SAFETY: every worker finished the previous job (`wait_done` below) and waits for
        // the next generation, so nobody reads `job` now.
        unsafe { *sh.job.get() = Some(job) };
        sh.pending.0.store(self.n - 1, Ordering::Relaxed);
        sh.publish();
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0, self.n)));
        sh.wait_done();
        // SAFETY: all workers are done with this job (pending is 0, Acquire).
        unsafe { *sh.job.get() = None };
        let panicked = sh.panicked.swap(false, Ordering::Relaxed);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!panicked, "a worker thread panicked");
    }
}

fn worker(shared: Arc<Shared>, tid: usize, n: usize) {
    let mut seen = 0u64;
    loop {
        seen = shared.wait_start(seen);
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the generation we saw (Acquire) was published after `job` was written,
        // and `run` keeps the closure alive until `pending` reaches 0.
        let job = unsafe { *shared.job.get() };
        if let Some(j) = job {
            let ok =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*j)(tid, n) }))
                    .is_ok();
            if !ok {
                shared.panicked.store(true, Ordering::Relaxed);
            }
        }
        shared.finish();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        drop(self.shared.lock());
        self.shared.start.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The `tid`-th of `n` contiguous parts of `0..len`, with boundaries on multiples of
/// `align` (except the end). Parts differ by at most one `align` unit, so no thread idles
/// while another has two units more.
pub fn split_range(len: usize, n: usize, tid: usize, align: usize) -> std::ops::Range<usize> {
    let align = align.max(1);
    let units = len.div_ceil(align);
    let (q, r) = (units / n, units % n);
    let start = tid * q + tid.min(r);
    let end = start + q + usize::from(tid < r);
    (start * align).min(len)..(end * align).min(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_thread_runs_each_job_once() {
        let pool = ThreadPool::new(3).unwrap();
        for _ in 0..100 {
            let hits = AtomicUsize::new(0);
            let mask = AtomicUsize::new(0);
            pool.run(&|tid, n| {
                assert_eq!(n, 3);
                hits.fetch_add(1, Ordering::SeqCst);
                mask.fetch_or(1 << tid, Ordering::SeqCst);
            });
            assert_eq!(hits.load(Ordering::SeqCst), 3);
            assert_eq!(mask.load(Ordering::SeqCst), 0b111);
        }
    }

    #[test]
    fn every_barrier_runs_each_job_once_and_propagates_panics() {
        for barrier in [
            Barrier::Condvar,
            Barrier::SpinPark(0),
            Barrier::SpinPark(50),
            Barrier::Spin,
        ] {
            let pool = ThreadPool::with_barrier(3, None, barrier).unwrap();
            assert_eq!(pool.barrier(), barrier);
            for round in 0..300 {
                let hits = AtomicUsize::new(0);
                pool.run(&|tid, n| {
                    assert_eq!(n, 3);
                    // Uneven jobs, so some threads wait (and sleep) for others.
                    if round % 50 == 0 && tid == round / 50 % 3 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    hits.fetch_add(1 << (8 * tid), Ordering::SeqCst);
                });
                assert_eq!(
                    hits.load(Ordering::SeqCst),
                    0x01_01_01,
                    "{barrier} round {round}"
                );
                if round % 100 == 0 {
                    // Idle long enough for spin-park workers to go to sleep.
                    std::thread::sleep(std::time::Duration::from_millis(3));
                }
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(&|tid, _| assert_ne!(tid, 2, "worker 2 fails"))
            }));
            assert!(
                r.is_err(),
                "{barrier}: a worker's panic must reach the caller"
            );
            // The pool still works after a panic.
            let hits = AtomicUsize::new(0);
            pool.run(&|_, _| {
                hits.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(hits.load(Ordering::SeqCst), 3, "{barrier}");
        }
    }

    #[test]
    fn more_than_max_threads_is_an_error_not_a_spawn() {
        let e = ThreadPool::new(MAX_THREADS + 1).err().expect("refused");
        assert!(
            matches!(e, EngineError::Threads { requested, .. } if requested == MAX_THREADS + 1),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "cannot start 1025 threads: more than the limit of 1024; give at most 1024 \
             threads, fewer if the system limits them"
        );
    }

    #[test]
    fn barrier_names_parse_and_bad_ones_list_the_valid() {
        assert_eq!("condvar".parse::<Barrier>(), Ok(Barrier::Condvar));
        assert_eq!("spin".parse::<Barrier>(), Ok(Barrier::Spin));
        assert_eq!(
            "spin-park".parse::<Barrier>(),
            Ok(Barrier::SpinPark(Barrier::DEFAULT_SPIN))
        );
        let e = "yield".parse::<Barrier>().unwrap_err();
        assert!(e.contains("'yield'") && e.contains("spin-park"), "{e}");
    }

    #[test]
    fn pinned_workers_run_on_their_cpus() {
        let allowed = crate::affinity::current_affinity();
        let cpu = allowed[allowed.len() - 1];
        std::thread::spawn(move || {
            let pool = ThreadPool::with_cpus(2, Some(vec![cpu])).unwrap();
            assert_eq!(pool.pinned_cpus(), Some(vec![cpu, cpu]));
            let seen = Mutex::new(Vec::new());
            pool.run(&|_, _| {
                seen.lock()
                    .unwrap()
                    .push(crate::affinity::current_affinity());
            });
            assert_eq!(seen.into_inner().unwrap(), [vec![cpu], vec![cpu]]);
        })
        .join()
        .unwrap();
        assert!(
            ThreadPool::with_cpus(2, None)
                .unwrap()
                .pinned_cpus()
                .is_none()
        );
    }

    #[test]
    fn split_covers_everything_once_and_evenly() {
        for len in [0, 1, 7, 64, 100, 1023] {
            for n in 1..6 {
                for align in [1, 4, 8] {
                    let parts: Vec<_> = (0..n).map(|t| split_range(len, n, t, align)).collect();
                    let mut next = 0;
                    for p in &parts {
                        assert_eq!(p.start, next.min(len));
                        next = p.end;
                    }
                    assert_eq!(next, len);
                    let units: Vec<_> = parts.iter().map(|p| p.len().div_ceil(align)).collect();
                    let (lo, hi) = (units.iter().min().unwrap(), units.iter().max().unwrap());
                    assert!(hi - lo <= 1, "len {len} n {n} align {align}: {units:?}");
                }
            }
        }
    }
}
