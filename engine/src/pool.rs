//! A persistent pool of worker threads that run one closure on every thread at once
//! (`run`), the shape of work in a forward pass: split a matmul's rows, wait for all.
//!
//! The calling thread is worker 0, so `n` threads means `n - 1` spawned ones. Dispatch uses a
//! generation counter under a mutex with condition variables. Per-token dispatch cost is
//! the subject of the kernels issue; this is the correct, simple baseline.
//!
//! Pinning: `ThreadPool::with_cpus` puts worker `tid` on `cpus[tid % len]` (the calling
//! thread on `cpus[0]`). `ThreadPool::new` uses the process-wide plan set by
//! [`set_default_pinning`], so a command can pin every pool a `Context` creates without the
//! context knowing about placement.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Job = dyn Fn(usize, usize) + Sync;

struct State {
    generation: u64,
    /// The job of the current generation; only valid while `pending > 0`.
    job: Option<*const Job>,
    pending: usize,
    shutdown: bool,
    panicked: bool,
}

// SAFETY: the raw job pointer is only dereferenced while `run` keeps the closure alive
// (it waits for `pending == 0` before returning).
unsafe impl Send for State {}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
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
    /// A pool of `n` threads (the caller included), pinned per [`set_default_pinning`].
    /// `n == 0` is treated as 1.
    pub fn new(n: usize) -> Self {
        Self::with_cpus(n, default_pinning())
    }

    /// A pool of `n` threads; with `Some(cpus)`, thread `tid` (the caller is 0) is pinned to
    /// `cpus[tid % cpus.len()]`. A CPU that cannot be used leaves that thread unpinned: the
    /// plan was validated against the online CPUs before, so this only happens when a
    /// cgroup forbids the CPU, and a measurement still beats an abort.
    pub fn with_cpus(n: usize, cpus: Option<Vec<usize>>) -> Self {
        let n = n.max(1);
        let cpus = cpus.filter(|c| !c.is_empty());
        if let Some(c) = &cpus {
            let _ = crate::affinity::pin_current_thread(c[0]);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                pending: 0,
                shutdown: false,
                panicked: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
        });
        let workers = (1..n)
            .map(|tid| {
                let shared = Arc::clone(&shared);
                let cpu = cpus.as_ref().map(|c| c[tid % c.len()]);
                std::thread::Builder::new()
                    .name(format!("tessera-worker-{tid}"))
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            let _ = crate::affinity::pin_current_thread(cpu);
                        }
                        worker(shared, tid, n)
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        Self {
            shared,
            workers,
            n,
            cpus,
        }
    }

    pub fn n_threads(&self) -> usize {
        self.n
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
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.job = Some(job);
            st.pending = self.n - 1;
            st.generation += 1;
        }
        self.shared.start.notify_all();
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0, self.n)));
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.pending > 0 {
            st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.job = None;
        let panicked = std::mem::take(&mut st.panicked);
        drop(st);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!panicked, "a worker thread panicked");
    }
}

fn worker(shared: Arc<Shared>, tid: usize, n: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.generation == seen && !st.shutdown {
                st = shared.start.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.shutdown {
                return;
            }
            seen = st.generation;
            st.job
        };
        let ok = match job {
            // SAFETY: `run` keeps the closure alive until `pending` reaches 0.
            Some(j) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*j)(tid, n) }))
                    .is_ok()
            }
            None => true,
        };
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.panicked |= !ok;
        st.pending -= 1;
        if st.pending == 0 {
            shared.done.notify_one();
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown = true;
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
        let pool = ThreadPool::new(3);
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
    fn pinned_workers_run_on_their_cpus() {
        let allowed = crate::affinity::current_affinity();
        let cpu = allowed[allowed.len() - 1];
        std::thread::spawn(move || {
            let pool = ThreadPool::with_cpus(2, Some(vec![cpu]));
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
        assert!(ThreadPool::with_cpus(2, None).pinned_cpus().is_none());
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
