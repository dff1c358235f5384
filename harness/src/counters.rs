//! Performance counters through perf_event_open (crate perf-event2): open a named set, count
//! a region of this process (the timed repetitions of the built-in engine) or a whole child
//! process (external engines), and derive IPC, miss rates, bandwidth and roofline shares.
//!
//! A counter the machine lacks is recorded as null with the reason, never as 0: a VM
//! without a PMU fails hardware events with ENOENT, and `perf_event_paranoid` can forbid
//! them with EACCES. Counting is restricted to user space (`exclude_kernel`), which is
//! what an unprivileged process may count at paranoid level 2.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Mutex;

use anyhow::{Result, bail};
use perf_event::events::{Cache, CacheId, CacheOp, CacheResult, Hardware, Software};
use perf_event::{Builder, Counter};

use crate::results::{BenchRow, CounterValue};

/// The set `--counters default` opens.
pub const DEFAULT_COUNTERS: &[&str] = &[
    "cycles",
    "instructions",
    "cache-references",
    "cache-misses",
    "llc-load-misses",
    "branch-misses",
    "task-clock",
    "page-faults",
    "context-switches",
    "cpu-migrations",
];

/// Every name `--counters` accepts.
pub const KNOWN_COUNTERS: &[&str] = &[
    "cycles",
    "instructions",
    "cache-references",
    "cache-misses",
    "llc-load-misses",
    "l1d-load-misses",
    "branch-instructions",
    "branch-misses",
    "task-clock",
    "cpu-clock",
    "page-faults",
    "context-switches",
    "cpu-migrations",
];

/// Parses `--counters`: `none`, `default`, or a comma list of [`KNOWN_COUNTERS`]
/// (`default` may appear in the list to extend the default set).
pub fn parse_list(s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "none" => {}
            "default" => out.extend(DEFAULT_COUNTERS.iter().map(|s| s.to_string())),
            name if KNOWN_COUNTERS.contains(&name) => out.push(name.to_string()),
            other => bail!(
                "--counters: unknown counter '{other}'; valid: none, default, {}",
                KNOWN_COUNTERS.join(", ")
            ),
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    Ok(out)
}

/// What the counters observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// This process and the threads it creates after opening; counting only between
    /// `enable` and `disable`.
    Region,
    /// The next child process this thread spawns, from its `exec` to its exit.
    Child,
}

impl Scope {
    /// The value of a row's `counters_scope`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Region => "timed-region",
            Scope::Child => "child-process",
        }
    }
}

/// An opened set of counters; one that failed to open keeps its reason.
pub struct CounterSet {
    entries: Vec<(String, std::result::Result<Counter, String>)>,
    scope: Scope,
}

impl CounterSet {
    /// Opens `names` (already validated by [`parse_list`]). Never fails as a whole: a
    /// counter that cannot be opened is carried as its reason, and a notice is printed to
    /// stderr once per counter per process ([`notice_missing`]).
    pub fn open(names: &[String], scope: Scope) -> CounterSet {
        let entries: Vec<(String, std::result::Result<Counter, String>)> = names
            .iter()
            .map(|name| (name.clone(), open_one(name, scope).map_err(|e| reason(&e))))
            .collect();
        notice_missing(
            entries
                .iter()
                .filter_map(|(n, r)| r.as_ref().err().map(|why| (n.as_str(), why.as_str()))),
        );
        CounterSet { entries, scope }
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Starts counting (adds to what was counted before).
    pub fn enable(&mut self) {
        for (_, c) in &mut self.entries {
            if let Ok(c) = c {
                let _ = c.enable();
            }
        }
    }

    /// Stops counting.
    pub fn disable(&mut self) {
        for (_, c) in &mut self.entries {
            if let Ok(c) = c {
                let _ = c.disable();
            }
        }
    }

    /// The counts so far, scaled up when the kernel multiplexed a counter.
    pub fn read(&mut self) -> BTreeMap<String, CounterValue> {
        self.entries
            .iter_mut()
            .map(|(name, c)| {
                let v = match c {
                    Err(why) => CounterValue::missing(why.clone()),
                    Ok(c) => match c.read_count_and_time() {
                        Err(e) => CounterValue::missing(format!("read failed: {e}")),
                        Ok(ct) => scaled(ct.count, ct.time_enabled, ct.time_running),
                    },
                };
                (name.clone(), v)
            })
            .collect()
    }
}

/// A count corrected for multiplexing: `count * enabled / running`. A counter that was
/// enabled but never got a hardware slot has no value.
fn scaled(count: u64, enabled: u64, running: u64) -> CounterValue {
    if running == 0 && enabled > 0 {
        return CounterValue::missing("never scheduled on the PMU (too many counters)".into());
    }
    if running == 0 || running >= enabled {
        return CounterValue::value(count);
    }
    let v = (count as u128 * enabled as u128 / running as u128).min(u64::MAX as u128);
    CounterValue::value(v as u64)
}

fn open_one(name: &str, scope: Scope) -> io::Result<Counter> {
    let ll_miss = Cache {
        which: CacheId::LL,
        operation: CacheOp::READ,
        result: CacheResult::MISS,
    };
    let l1d_miss = Cache {
        which: CacheId::L1D,
        operation: CacheOp::READ,
        result: CacheResult::MISS,
    };
    let mut b = match name {
        "cycles" => Builder::new(Hardware::CPU_CYCLES),
        "instructions" => Builder::new(Hardware::INSTRUCTIONS),
        "cache-references" => Builder::new(Hardware::CACHE_REFERENCES),
        "cache-misses" => Builder::new(Hardware::CACHE_MISSES),
        "branch-instructions" => Builder::new(Hardware::BRANCH_INSTRUCTIONS),
        "branch-misses" => Builder::new(Hardware::BRANCH_MISSES),
        "llc-load-misses" => Builder::new(ll_miss),
        "l1d-load-misses" => Builder::new(l1d_miss),
        "task-clock" => Builder::new(Software::TASK_CLOCK),
        "cpu-clock" => Builder::new(Software::CPU_CLOCK),
        "page-faults" => Builder::new(Software::PAGE_FAULTS),
        "context-switches" => Builder::new(Software::CONTEXT_SWITCHES),
        "cpu-migrations" => Builder::new(Software::CPU_MIGRATIONS),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown counter '{other}'"),
            ));
        }
    };
    // Threads created after opening (the worker pool, the child) are counted too, and a
    // read sums them; an unprivileged process may only count user space.
    b.observe_self()
        .any_cpu()
        .inherit(true)
        .exclude_kernel(true)
        .exclude_hv(true)
        .enabled(false);
    if scope == Scope::Child {
        b.enable_on_exec(true);
    }
    b.build()
}

/// A one-line reason for a counter that cannot be opened.
pub fn reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => {
            "not supported on this machine (ENOENT: no such hardware event; VMs often have no PMU)"
                .to_string()
        }
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "permission denied ({}; kernel.perf_event_paranoid = {})",
            e,
            std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        ),
        Some(libc::EOPNOTSUPP) => "not supported by this PMU (EOPNOTSUPP)".to_string(),
        Some(libc::ENOSYS) => "perf_event_open is not available (ENOSYS)".to_string(),
        _ => format!("cannot open: {e}"),
    }
}

/// Whether `name` can be opened here, without printing a notice: `Err(reason)` if not.
pub fn probe_counter(name: &str) -> std::result::Result<(), String> {
    open_one(name, Scope::Region)
        .map(drop)
        .map_err(|e| reason(&e))
}

static NOTICED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Prints which counters are unavailable and why, once per counter per process, in one
/// line per reason ([`missing_lines`]): a VM without a PMU lacks all hardware counters for
/// the same reason, so a run says so in one line.
pub fn notice_missing<'a>(missing: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut seen = NOTICED.lock().unwrap_or_else(|e| e.into_inner());
    let fresh: Vec<(&str, &str)> = missing
        .into_iter()
        .filter(|(name, _)| seen.insert(name.to_string()))
        .collect();
    for line in missing_lines(&fresh) {
        eprintln!("{line}");
    }
}

/// "tessera: counters cycles, instructions unavailable, recorded as null: why", one line
/// per distinct reason, in first-seen order.
pub fn missing_lines(missing: &[(&str, &str)]) -> Vec<String> {
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for &(name, why) in missing {
        match by_reason.iter_mut().find(|(w, _)| *w == why) {
            Some((_, names)) => names.push(name),
            None => by_reason.push((why, vec![name])),
        }
    }
    by_reason
        .into_iter()
        .map(|(why, names)| {
            let what = if names.len() == 1 {
                "counter"
            } else {
                "counters"
            };
            format!(
                "tessera: {what} {} unavailable, recorded as null: {why}",
                names.join(", ")
            )
        })
        .collect()
}

/// Machine peaks that turn one row's rates into shares of a roofline; from `tessera probe`
/// (`probe::RowPeaks::for_row`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Peaks {
    /// Read bandwidth of the row's working set at its thread count, GB/s.
    pub read_gbps: Option<f64>,
    /// Measured int8 multiply-add rate of the row's ISA at its thread count, G ops/s (one
    /// multiply-add = 2 ops).
    pub int8_gops: Option<f64>,
    /// Measured f32 FMA rate of the row's ISA at its thread count, GFLOP/s.
    pub f32_gflops: Option<f64>,
}

/// Derived metrics of one row. A metric whose inputs are missing is null, never 0.
///
/// - `ipc` = instructions / cycles
/// - `cache_miss_rate` = cache-misses / cache-references
/// - `branch_miss_rate` = branch-misses / branch-instructions (when both were counted)
/// - `llc_load_misses_per_token`, `page_faults_per_token` over all timed repetitions
/// - `cpu_utilization` = task-clock / summed wall time (threads busy on average)
/// - `achieved_gbps` (tg tests) = model bytes read per token × tokens/s
/// - `bandwidth_roofline_pct` (tg) = achieved_gbps / read rate of the model's bytes × 100
/// - `achieved_gops` (pp tests) = 2 × parameters × tokens/s
/// - `peak_pct` (pp) = achieved_gops / the ISA's measured peak (int8 for quantized weights,
///   f32 else)
pub fn derive(row: &BenchRow, peaks: &Peaks) -> BTreeMap<String, Option<f64>> {
    let c = |n: &str| row.counters.get(n).and_then(|v| v.value).map(|v| v as f64);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut d = BTreeMap::new();
    if !row.counters.is_empty() {
        let tokens = (row.n_tokens() * row.samples_ns.len() as u64) as f64;
        let tokens = (tokens > 0.0).then_some(tokens);
        let wall: u64 = row.samples_ns.iter().sum();
        d.insert("ipc".into(), ratio(c("instructions"), c("cycles")));
        d.insert(
            "cache_miss_rate".into(),
            ratio(c("cache-misses"), c("cache-references")),
        );
        if row.counters.contains_key("branch-instructions") {
            d.insert(
                "branch_miss_rate".into(),
                ratio(c("branch-misses"), c("branch-instructions")),
            );
        }
        d.insert(
            "llc_load_misses_per_token".into(),
            ratio(c("llc-load-misses"), tokens),
        );
        d.insert(
            "page_faults_per_token".into(),
            ratio(c("page-faults"), tokens),
        );
        let wall = (wall > 0 && row.counters_scope == Scope::Region.name()).then_some(wall as f64);
        d.insert("cpu_utilization".into(), ratio(c("task-clock"), wall));
    }
    let ok = row.status == crate::results::Status::Ok && row.avg_ts > 0.0;
    if ok && row.n_prompt == 0 && row.n_gen > 0 {
        let gbps = (row.model_size > 0).then(|| row.model_size as f64 * row.avg_ts / 1e9);
        d.insert("achieved_gbps".into(), gbps);
        d.insert(
            "bandwidth_roofline_pct".into(),
            ratio(gbps, peaks.read_gbps).map(|r| r * 100.0),
        );
    }
    if ok && row.n_prompt > 0 && row.n_gen == 0 {
        let gops =
            (row.model_n_params > 0).then(|| 2.0 * row.model_n_params as f64 * row.avg_ts / 1e9);
        let quantized = row.model_type.contains('Q') || row.model_type.contains('q');
        let peak = if quantized {
            peaks.int8_gops
        } else {
            peaks.f32_gflops
        };
        d.insert("achieved_gops".into(), gops);
        d.insert("peak_pct".into(), ratio(gops, peak).map(|r| r * 100.0));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_counters_are_one_line_per_reason() {
        let no_pmu = "not supported by this machine (ENOENT)";
        let lines = missing_lines(&[
            ("cycles", no_pmu),
            ("instructions", no_pmu),
            ("cache-misses", no_pmu),
            ("page-faults", "permission denied"),
        ]);
        assert_eq!(
            lines,
            [
                format!(
                    "tessera: counters cycles, instructions, cache-misses unavailable, recorded as null: {no_pmu}"
                ),
                "tessera: counter page-faults unavailable, recorded as null: permission denied"
                    .to_string(),
            ]
        );
        assert!(missing_lines(&[]).is_empty());
    }

    #[test]
    fn list_parsing() {
        assert!(parse_list("none").unwrap().is_empty());
        assert_eq!(parse_list("default").unwrap().len(), DEFAULT_COUNTERS.len());
        assert_eq!(
            parse_list("task-clock,page-faults,task-clock").unwrap(),
            ["task-clock", "page-faults"]
        );
        let e = parse_list("cycles,bogus").unwrap_err().to_string();
        assert!(e.contains("'bogus'") && e.contains("task-clock"), "{e}");
    }

    #[test]
    fn multiplexed_counts_are_scaled_and_unscheduled_ones_are_null() {
        assert_eq!(scaled(100, 10, 10).value, Some(100));
        assert_eq!(scaled(100, 10, 5).value, Some(200));
        let v = scaled(0, 10, 0);
        assert_eq!(v.value, None);
        assert!(v.reason.unwrap().contains("never scheduled"));
        assert_eq!(scaled(0, 0, 0).value, Some(0));
    }

    #[test]
    fn enoent_reason_says_unsupported() {
        let r = reason(&io::Error::from_raw_os_error(libc::ENOENT));
        assert!(r.starts_with("not supported on this machine"), "{r}");
        let r = reason(&io::Error::from_raw_os_error(libc::EACCES));
        assert!(r.contains("perf_event_paranoid"), "{r}");
    }

    fn row_with(counters: &[(&str, Option<u64>)]) -> BenchRow {
        let mut row = BenchRow {
            n_prompt: 0,
            n_gen: 10,
            model_size: 1_000_000_000,
            model_n_params: 500_000_000,
            counters_scope: Scope::Region.name().into(),
            ..BenchRow::default()
        };
        row.set_samples(vec![1_000_000_000, 1_000_000_000]);
        for (n, v) in counters {
            row.counters.insert(
                n.to_string(),
                match v {
                    Some(v) => CounterValue::value(*v),
                    None => CounterValue::missing("not supported".into()),
                },
            );
        }
        row
    }

    #[test]
    fn derived_metrics_from_known_inputs() {
        let row = row_with(&[
            ("cycles", Some(4000)),
            ("instructions", Some(6000)),
            ("cache-references", Some(100)),
            ("cache-misses", Some(25)),
            ("task-clock", Some(3_000_000_000)),
            ("page-faults", Some(40)),
        ]);
        let peaks = Peaks {
            read_gbps: Some(40.0),
            ..Peaks::default()
        };
        let d = derive(&row, &peaks);
        assert_eq!(d["ipc"], Some(1.5));
        assert_eq!(d["cache_miss_rate"], Some(0.25));
        // 10 tokens/s × 1 GB per token = 10 GB/s = 25 % of 40 GB/s.
        assert_eq!(d["achieved_gbps"], Some(10.0));
        assert_eq!(d["bandwidth_roofline_pct"], Some(25.0));
        // 3 s of CPU over 2 s of wall time.
        assert_eq!(d["cpu_utilization"], Some(1.5));
        // 40 faults over 2 repetitions × 10 tokens.
        assert_eq!(d["page_faults_per_token"], Some(2.0));
    }

    #[test]
    fn derived_metrics_of_missing_counters_are_null_not_zero() {
        let row = row_with(&[("cycles", None), ("instructions", None)]);
        let d = derive(&row, &Peaks::default());
        assert_eq!(d["ipc"], None);
        assert_eq!(d["bandwidth_roofline_pct"], None);
        assert_eq!(d["achieved_gbps"], Some(10.0));
    }

    #[test]
    fn software_counters_count_a_region_of_this_process() {
        let names = parse_list("task-clock,page-faults").unwrap();
        let mut set = CounterSet::open(&names, Scope::Region);
        set.enable();
        // Touch fresh pages and burn CPU on another thread, created after opening.
        std::thread::spawn(|| {
            let v = vec![1u8; 16 << 20];
            let mut acc = 0u64;
            for i in (0..v.len()).step_by(4096) {
                acc = acc.wrapping_add(std::hint::black_box(v[i]) as u64);
            }
            std::hint::black_box(acc);
        })
        .join()
        .unwrap();
        set.disable();
        let got = set.read();
        let faults = got["page-faults"]
            .value
            .expect("software counters work everywhere");
        assert!(faults >= 1000, "16 MiB of fresh pages gave {faults} faults");
        assert!(got["task-clock"].value.unwrap() > 0);
        // Disabled: nothing more is counted.
        let _v = std::hint::black_box(vec![1u8; 8 << 20]);
        assert_eq!(set.read()["page-faults"].value, Some(faults));
    }

    #[test]
    fn unsupported_hardware_counters_are_null_with_a_reason() {
        let mut set = CounterSet::open(&["cycles".to_string()], Scope::Region);
        set.enable();
        set.disable();
        let v = &set.read()["cycles"];
        match v.value {
            // A machine with a PMU: a real count.
            Some(_) => println!("this machine has hardware counters; null path not exercised"),
            None => assert!(!v.reason.as_deref().unwrap_or("").is_empty()),
        }
    }
}
