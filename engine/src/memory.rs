//! How much memory this process may still allocate, and fallible allocation of the big
//! buffers, so that a context too large for the machine is refused with a message naming
//! the sizes instead of aborting the process (Rust aborts when an allocation fails).
//!
//! The limit is the smaller of `MemAvailable` in /proc/meminfo (what the kernel can hand
//! out without swapping, reclaimable page cache included) and, when `ulimit -v` is set,
//! the address-space limit (`RLIMIT_AS`) less this process's current `VmSize`. A cgroup's
//! `memory.max` is not consulted: its `memory.current` counts page cache the kernel would
//! reclaim, so the difference refuses contexts that fit. Where neither figure can be read
//! (not Linux), nothing is refused up front and only a failed allocation is an error.

use crate::error::{EngineError, Result};

/// Bytes this process can still allocate, and which limit says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// The limit, for messages: "MemAvailable in /proc/meminfo" or the `ulimit -v` one.
    pub source: String,
}

/// The memory this process can still allocate now, or `None` where it cannot be told.
pub fn available() -> Option<Available> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let status = std::fs::read_to_string("/proc/self/status").ok();
    smallest(
        meminfo.as_deref().and_then(mem_available),
        address_space_limit(),
        status.as_deref().and_then(vm_size),
    )
}

/// Refuses `needed` bytes for `what` when they exceed [`available`].
pub fn ensure_available(what: impl FnOnce() -> String, needed: u64) -> Result<()> {
    match available() {
        Some(a) if needed > a.bytes => Err(EngineError::OutOfMemory {
            what: what(),
            needed,
            available: Some(a),
        }),
        _ => Ok(()),
    }
}

/// `len` zeroed values, or [`EngineError::OutOfMemory`] when the allocation fails. The
/// pages come zeroed from the allocator (as with `vec![0; len]`), so a large buffer costs
/// no time or resident memory until it is used.
pub fn zeroed_vec<T: bytemuck::Zeroable>(len: usize, what: &str) -> Result<Vec<T>> {
    bytemuck::allocation::try_zeroed_vec(len).map_err(|()| EngineError::OutOfMemory {
        what: what.to_string(),
        needed: (len as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        available: None,
    })
}

/// "97.7 GiB", "3.0 MiB", "512 B": sizes in messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `RLIMIT_AS` in bytes, `None` when unlimited or unknown.
fn address_space_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer and has no other effect.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// The smaller of the two limits; the address-space one is what is left of it after the
/// `vm_size` bytes this process has mapped already.
fn smallest(
    mem_available: Option<u64>,
    rlimit_as: Option<u64>,
    vm_size: Option<u64>,
) -> Option<Available> {
    let mem = mem_available.map(|bytes| Available {
        bytes,
        source: "MemAvailable in /proc/meminfo".to_string(),
    });
    let space = rlimit_as.map(|limit| Available {
        bytes: limit.saturating_sub(vm_size.unwrap_or(0)),
        source: format!(
            "address-space limit `ulimit -v` {} less the {} this process maps already",
            human(limit),
            human(vm_size.unwrap_or(0))
        ),
    });
    match (mem, space) {
        (Some(m), Some(s)) => Some(if s.bytes < m.bytes { s } else { m }),
        (m, s) => m.or(s),
    }
}

/// A `Key:   N kB` line of /proc/meminfo or /proc/self/status, in bytes.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
}

fn mem_available(meminfo: &str) -> Option<u64> {
    kb_field(meminfo, "MemAvailable")
}

fn vm_size(status: &str) -> Option<u64> {
    kb_field(status, "VmSize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse_in_bytes() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2000 kB\n";
        assert_eq!(mem_available(meminfo), Some(2000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(vm_size("Name:\tx\nVmSize:\t  12 kB\n"), Some(12 * 1024));
        assert_eq!(vm_size("VmSizeX: 12 kB\n"), None);
    }

    #[test]
    fn the_smaller_limit_wins_and_names_itself() {
        let m = smallest(Some(10 << 30), Some(8 << 30), Some(1 << 30)).unwrap();
        assert_eq!(m.bytes, 7 << 30);
        assert!(m.source.contains("ulimit -v"), "{}", m.source);
        let m = smallest(Some(2 << 30), Some(8 << 30), Some(1 << 30)).unwrap();
        assert_eq!(
            (m.bytes, m.source.as_str()),
            (2 << 30, "MemAvailable in /proc/meminfo")
        );
        // A process already past its limit has nothing left, not a wrapped-around lot.
        assert_eq!(
            smallest(None, Some(1 << 20), Some(2 << 20)).unwrap().bytes,
            0
        );
        assert_eq!(smallest(None, None, Some(1)), None);
    }

    #[test]
    fn more_than_the_machine_is_refused_before_allocating() {
        if available().is_none() {
            eprintln!("skipped: this system reports no available memory");
            return;
        }
        let e = ensure_available(|| "a test buffer".into(), u64::MAX).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, EngineError::OutOfMemory { .. }), "{msg}");
        assert!(
            msg.starts_with("a test buffer needs 16384.0 PiB, more than the "),
            "{msg}"
        );
        ensure_available(|| "nothing".into(), 0).unwrap();
    }

    #[test]
    fn a_failed_allocation_is_an_error_not_an_abort() {
        // 8 EiB of f32: a valid layout no allocator can satisfy.
        let e = zeroed_vec::<f32>(usize::MAX / 8, "the KV cache").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the KV cache needs 8192.0 PiB, and allocating it failed"),
            "{e}"
        );
        let v = zeroed_vec::<half::f16>(3, "x").unwrap();
        assert_eq!(v, [half::f16::ZERO; 3]);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(100_000_000 * 1024), "95.4 GiB");
    }
}
