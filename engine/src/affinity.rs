//! Thread placement: `--pin none|compact|scatter|LIST` turned into one CPU per worker
//! thread, and `sched_setaffinity` to put the calling thread there.
//!
//! `compact` fills a core's SMT siblings and then the next core of the same socket
//! (threads share caches); `scatter` takes one CPU per core round-robin over sockets before
//! using any SMT sibling (threads get the most memory bandwidth and private caches).

use std::fmt;
use std::str::FromStr;

use crate::numa::{format_id_list, parse_id_list};

/// A pinning request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum PinPolicy {
    /// Let the scheduler place threads.
    #[default]
    None,
    Compact,
    Scatter,
    /// Worker i runs on `list[i % len]`.
    List(Vec<usize>),
}

impl FromStr for PinPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" | "" => Ok(PinPolicy::None),
            "compact" => Ok(PinPolicy::Compact),
            "scatter" => Ok(PinPolicy::Scatter),
            other => match parse_id_list(&other.replace(['+', ';'], ",")) {
                Some(v) if !v.is_empty() => Ok(PinPolicy::List(v)),
                _ => Err(format!(
                    "'{other}' is not a pinning; valid: none, compact, scatter, or a CPU list such as 0,2,4 or 0-3"
                )),
            },
        }
    }
}

impl fmt::Display for PinPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinPolicy::None => f.write_str("none"),
            PinPolicy::Compact => f.write_str("compact"),
            PinPolicy::Scatter => f.write_str("scatter"),
            PinPolicy::List(v) => f.write_str(&format_id_list(v)),
        }
    }
}

/// One logical CPU and where it sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuInfo {
    pub cpu: usize,
    pub core: usize,
    pub package: usize,
}

/// Online CPUs with their core and package ids from /sys; when /sys says nothing, every
/// CPU the process may use counts as its own core on package 0.
pub fn topology() -> Vec<CpuInfo> {
    let read = |p: String| std::fs::read_to_string(p).ok();
    let online = read("/sys/devices/system/cpu/online".into())
        .and_then(|s| parse_id_list(&s))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        });
    online
        .into_iter()
        .map(|cpu| {
            let id = |name: &str| {
                read(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{name}"))
                    .and_then(|s| s.trim().parse::<usize>().ok())
            };
            CpuInfo {
                cpu,
                core: id("core_id").unwrap_or(cpu),
                package: id("physical_package_id").unwrap_or(0),
            }
        })
        .collect()
}

/// The CPU of each of `n` worker threads, or `None` for no pinning. A CPU that is not
/// online is an error listing the online ones.
pub fn plan(policy: &PinPolicy, n: usize, topo: &[CpuInfo]) -> Result<Option<Vec<usize>>, String> {
    let n = n.max(1);
    let order: Vec<usize> = match policy {
        PinPolicy::None => return Ok(None),
        PinPolicy::Compact => {
            let mut t = topo.to_vec();
            t.sort_by_key(|c| (c.package, c.core, c.cpu));
            t.iter().map(|c| c.cpu).collect()
        }
        PinPolicy::Scatter => {
            // Rank each CPU among the SMT siblings of its core and each core within its
            // package, then interleave packages: (sibling rank, core rank, package).
            let mut t = topo.to_vec();
            t.sort_by_key(|c| (c.package, c.core, c.cpu));
            let mut keyed = Vec::with_capacity(t.len());
            let (mut core_rank, mut sib_rank) = (0usize, 0usize);
            for (i, c) in t.iter().enumerate() {
                if i > 0 {
                    let p = t[i - 1];
                    if p.package != c.package {
                        core_rank = 0;
                        sib_rank = 0;
                    } else if p.core != c.core {
                        core_rank += 1;
                        sib_rank = 0;
                    } else {
                        sib_rank += 1;
                    }
                }
                keyed.push(((sib_rank, core_rank, c.package), c.cpu));
            }
            keyed.sort();
            keyed.into_iter().map(|(_, cpu)| cpu).collect()
        }
        PinPolicy::List(list) => {
            let online: Vec<usize> = topo.iter().map(|c| c.cpu).collect();
            if let Some(bad) = list.iter().find(|c| !online.contains(c)) {
                return Err(format!(
                    "--pin: CPU {bad} does not exist or is offline; valid CPUs: {}",
                    format_id_list(&online)
                ));
            }
            list.clone()
        }
    };
    if order.is_empty() {
        return Ok(None);
    }
    Ok(Some((0..n).map(|i| order[i % order.len()]).collect()))
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("--pin: CPU {cpu} is beyond CPU_SETSIZE"));
    }
    // SAFETY: cpu_set_t is plain data; CPU_SET is given an index below CPU_SETSIZE; pid 0
    // means the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity to CPU {cpu} failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The CPUs the calling thread may run on.
pub fn current_affinity() -> Vec<usize> {
    // SAFETY: as above; the set is only read after a successful call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sockets × two cores × two SMT siblings, numbered as Linux often does
    /// (siblings far apart).
    fn two_sockets() -> Vec<CpuInfo> {
        let mut v = Vec::new();
        for cpu in 0..8 {
            v.push(CpuInfo {
                cpu,
                core: cpu % 2,
                package: (cpu / 2) % 2,
            });
        }
        v
    }

    #[test]
    fn parses_and_prints() {
        for s in ["none", "compact", "scatter", "0-3", "0,2,5"] {
            assert_eq!(s.parse::<PinPolicy>().unwrap().to_string(), s);
        }
        assert!("spread".parse::<PinPolicy>().is_err());
    }

    #[test]
    fn compact_fills_siblings_then_cores_of_one_socket() {
        let t = two_sockets();
        // package 0: cpus 0,1 (cores 0,1) and 4,5 (cores 0,1); core 0 = {0,4}.
        let p = plan(&PinPolicy::Compact, 4, &t).unwrap().unwrap();
        assert_eq!(p, [0, 4, 1, 5]);
    }

    #[test]
    fn scatter_spreads_over_sockets_and_cores_before_siblings() {
        let t = two_sockets();
        let p = plan(&PinPolicy::Scatter, 4, &t).unwrap().unwrap();
        let pkgs: Vec<usize> = p.iter().map(|&c| t[c].package).collect();
        assert_eq!(pkgs, [0, 1, 0, 1]);
        let cores: std::collections::HashSet<(usize, usize)> =
            p.iter().map(|&c| (t[c].package, t[c].core)).collect();
        assert_eq!(cores.len(), 4, "{p:?} reuses a core");
        // More threads than CPUs wrap around.
        assert_eq!(plan(&PinPolicy::Scatter, 9, &t).unwrap().unwrap().len(), 9);
    }

    #[test]
    fn a_missing_cpu_is_refused_with_the_valid_list() {
        let e = plan(&PinPolicy::List(vec![0, 99]), 2, &two_sockets()).unwrap_err();
        assert_eq!(
            e,
            "--pin: CPU 99 does not exist or is offline; valid CPUs: 0-7"
        );
        assert_eq!(plan(&PinPolicy::None, 2, &two_sockets()).unwrap(), None);
    }

    #[test]
    fn pinning_this_thread_takes_effect() {
        let cpu = *current_affinity().first().unwrap();
        let before = current_affinity();
        std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            assert_eq!(current_affinity(), [cpu]);
        })
        .join()
        .unwrap();
        assert_eq!(current_affinity(), before);
    }
}
