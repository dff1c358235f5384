//! `tessera probe`'s data: the machine fingerprint (CPU, flags, cores, caches, NUMA nodes,
//! kernel, governor, perf counter support) read from /proc and /sys, the measured rates of
//! [`measure`], and the fingerprint id that every sweep row references.
//!
//! The id hashes only the parts that identify the hardware and its topology (CPU model,
//! family/model/stepping, relevant flags, core counts, caches, NUMA nodes and their CPUs);
//! the kernel version, governor, node memory sizes and measured numbers change without the
//! machine changing, so they are recorded but not hashed.

pub mod gpu;
pub mod measure;
pub mod roofline;

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use tessera_engine::numa::{format_id_list, parse_id_list};

/// The CPU flags that matter for the kernels.
pub const FLAGS_OF_INTEREST: &[&str] = &[
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub model_name: String,
    pub vendor: String,
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    /// The [`FLAGS_OF_INTEREST`] this CPU has.
    pub flags: Vec<String>,
    pub logical_cpus: usize,
    pub cores: usize,
    pub sockets: usize,
    pub threads_per_core: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheLevel {
    pub level: u32,
    /// "Data", "Instruction" or "Unified".
    pub kind: String,
    pub size_bytes: u64,
    /// CPUs sharing one instance, as a list ("0-1").
    pub shared_cpus: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NumaNode {
    pub node: usize,
    pub cpus: String,
    pub mem_total_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfSupport {
    pub hardware: bool,
    pub software: bool,
    /// Why hardware counters do not work, when they do not.
    pub reason: Option<String>,
    pub paranoid: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Bytes per array (three arrays).
    pub array_bytes: u64,
    pub bandwidth: Vec<measure::Bandwidth>,
    pub peak: Option<measure::Peak>,
    /// Read bandwidth per cache level and peak rates per ISA (absent in files written
    /// before it existed; [`cached`] then measures it).
    #[serde(default)]
    pub roofline: Option<roofline::Roofline>,
}

/// Everything `tessera probe` reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// 16 hex digits; see the module docs for what it covers.
    pub fingerprint: String,
    pub cpu: Cpu,
    pub caches: Vec<CacheLevel>,
    pub numa: Vec<NumaNode>,
    pub kernel: String,
    pub governor: Option<String>,
    pub perf: PerfSupport,
    pub tessera_build: String,
    pub measured: Option<Measured>,
    /// CUDA GPUs, or why there are none.
    #[serde(default)]
    pub gpu: gpu::Gpus,
}

impl Probe {
    /// The roofs the derived shares of sweep rows are taken against ([`RowPeaks`]).
    pub fn row_peaks(&self) -> RowPeaks {
        let m = self.measured.as_ref();
        RowPeaks {
            roofline: m.and_then(|m| m.roofline.clone()),
            fallback: crate::counters::Peaks {
                read_gbps: m.and_then(|m| {
                    m.bandwidth
                        .iter()
                        .map(|b| b.read_gbps)
                        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))))
                }),
                int8_gops: m.and_then(|m| m.peak.as_ref().map(|p| p.int8_gops_all)),
                f32_gflops: m.and_then(|m| m.peak.as_ref().map(|p| p.f32_gflops_all)),
            },
        }
    }
}

/// Where a sweep row's `bandwidth_roofline_pct` and `peak_pct` come from: the same
/// cache-aware roofline `tessera explain` and `tessera kernels` use, read for the row
/// itself: the read rate of the level its model's bytes are served from at its thread
/// count, and the peak of the ISA it ran at that thread count. A probe measured before the
/// roofline existed has only the STREAM bandwidth and the widest kernel's peak with all
/// threads; those are the fallback.
#[derive(Clone, Debug, Default)]
pub struct RowPeaks {
    pub roofline: Option<roofline::Roofline>,
    pub fallback: crate::counters::Peaks,
}

impl RowPeaks {
    /// The peaks `row` is measured against.
    pub fn for_row(&self, row: &crate::results::BenchRow) -> crate::counters::Peaks {
        let Some(r) = &self.roofline else {
            return self.fallback;
        };
        let threads = (row.n_threads as usize).max(1);
        let positive = |v: f64| (v > 0.0).then_some(v);
        crate::counters::Peaks {
            read_gbps: positive(r.read_gbps(row.model_size, threads)),
            int8_gops: r.row_peak(&row.isa, true, threads),
            f32_gflops: r.row_peak(&row.isa, false, threads),
        }
    }
}

/// The CPU's model name from /proc/cpuinfo, as llama-bench's `cpu_info`.
pub fn cpu_info() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// Reads the static description of this machine (no measurement).
pub fn describe() -> Probe {
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let mut cpu = parse_cpuinfo(&cpuinfo);
    let topo = tessera_engine::affinity::topology();
    cpu.logical_cpus = topo.len();
    let mut cores: Vec<(usize, usize)> = topo.iter().map(|c| (c.package, c.core)).collect();
    cores.sort();
    cores.dedup();
    cpu.cores = cores.len().max(1);
    let mut pk: Vec<usize> = topo.iter().map(|c| c.package).collect();
    pk.sort();
    pk.dedup();
    cpu.sockets = pk.len().max(1);
    cpu.threads_per_core = (cpu.logical_cpus / cpu.cores).max(1);
    let mut probe = Probe {
        cpu,
        caches: caches(),
        numa: numa_nodes(),
        kernel: read("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
            .map(|s| s.trim().to_string()),
        perf: perf_support(),
        tessera_build: {
            let (c, d, _) = crate::results::build_info();
            format!("{c}{}", if d { "-dirty" } else { "" })
        },
        gpu: gpu::describe(),
        ..Probe::default()
    };
    probe.fingerprint = fingerprint_id(&probe);
    probe
}

/// Parses the first processor block of /proc/cpuinfo.
pub fn parse_cpuinfo(text: &str) -> Cpu {
    let mut cpu = Cpu::default();
    for line in text.lines() {
        if line.trim().is_empty() && !cpu.model_name.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "model name" => cpu.model_name = v.to_string(),
            "vendor_id" => cpu.vendor = v.to_string(),
            "cpu family" => cpu.family = v.parse().ok(),
            "model" => cpu.model = v.parse().ok(),
            "stepping" => cpu.stepping = v.parse().ok(),
            "flags" => {
                let have: Vec<&str> = v.split_whitespace().collect();
                cpu.flags = FLAGS_OF_INTEREST
                    .iter()
                    .filter(|f| have.contains(f))
                    .map(|f| f.to_string())
                    .collect();
            }
            _ => {}
        }
    }
    cpu
}

/// Parses sizes such as "32K", "1024K", "32M".
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// The caches of CPU 0, from sysfs.
pub fn caches() -> Vec<CacheLevel> {
    let mut out = Vec::new();
    for i in 0..16 {
        let base = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let Some(level) = read(&format!("{base}/level")) else {
            break;
        };
        out.push(CacheLevel {
            level: level.trim().parse().unwrap_or(0),
            kind: read(&format!("{base}/type"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            size_bytes: read(&format!("{base}/size"))
                .and_then(|s| parse_size(&s))
                .unwrap_or(0),
            shared_cpus: read(&format!("{base}/shared_cpu_list"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        });
    }
    out
}

fn numa_nodes() -> Vec<NumaNode> {
    tessera_engine::numa::online_nodes()
        .into_iter()
        .map(|n| {
            let base = format!("/sys/devices/system/node/node{n}");
            let cpus = read(&format!("{base}/cpulist"))
                .and_then(|s| parse_id_list(&s))
                .map(|v| format_id_list(&v))
                .unwrap_or_default();
            // "Node 0 MemTotal:       24590000 kB"
            let mem = read(&format!("{base}/meminfo"))
                .and_then(|s| {
                    s.lines().find(|l| l.contains("MemTotal:")).and_then(|l| {
                        l.split_whitespace()
                            .rev()
                            .nth(1)
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                })
                .map_or(0, |kb| kb * 1024);
            NumaNode {
                node: n,
                cpus,
                mem_total_bytes: mem,
            }
        })
        .collect()
}

fn perf_support() -> PerfSupport {
    let hw = crate::counters::probe_counter("instructions");
    PerfSupport {
        hardware: hw.is_ok(),
        software: crate::counters::probe_counter("task-clock").is_ok(),
        reason: hw.err(),
        paranoid: read("/proc/sys/kernel/perf_event_paranoid").and_then(|s| s.trim().parse().ok()),
    }
}

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The fingerprint id of the stable parts. Node memory sizes are left out: a VM's balloon
/// driver changes MemTotal by hundreds of MiB between two reads.
pub fn fingerprint_id(p: &Probe) -> String {
    let mut s = format!(
        "{}|{}|{:?}|{:?}|{:?}|{}|{}|{}|{}|{}",
        p.cpu.model_name,
        p.cpu.vendor,
        p.cpu.family,
        p.cpu.model,
        p.cpu.stepping,
        p.cpu.flags.join(","),
        p.cpu.logical_cpus,
        p.cpu.cores,
        p.cpu.sockets,
        p.cpu.threads_per_core
    );
    for c in &p.caches {
        s.push_str(&format!(
            "|L{}{}:{}:{}",
            c.level, c.kind, c.size_bytes, c.shared_cpus
        ));
    }
    for n in &p.numa {
        s.push_str(&format!("|node{}:{}", n.node, n.cpus));
    }
    format!("{:016x}", fnv1a(s.as_bytes()))
}

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct MeasureOpts {
    /// Bytes per bandwidth array.
    pub array_bytes: u64,
    pub passes: usize,
    pub max_threads: usize,
    pub peak_scale: f64,
}

impl MeasureOpts {
    /// Arrays of 4 × the last-level cache (at least 64 MiB, at most 1 GiB) so caches hold
    /// none of it; all logical CPUs.
    pub fn default_for(p: &Probe) -> Self {
        let llc = p.caches.iter().map(|c| c.size_bytes).max().unwrap_or(0);
        MeasureOpts {
            array_bytes: (4 * llc).clamp(64 << 20, 1 << 30),
            passes: 5,
            max_threads: p.cpu.logical_cpus.max(1),
            peak_scale: 1.0,
        }
    }
}

/// Describes the machine and measures it.
pub fn probe(opts: Option<MeasureOpts>) -> Probe {
    let mut p = describe();
    if let Some(o) = opts {
        let steps = measure::thread_steps(o.max_threads);
        p.measured = Some(Measured {
            array_bytes: o.array_bytes,
            bandwidth: measure::bandwidth((o.array_bytes / 8) as usize, o.passes, &steps),
            peak: Some(measure::peak(o.max_threads, o.peak_scale)),
            roofline: Some(measure_roofline(&p, o)),
        });
    }
    p
}

/// The roofline of the machine `p` describes, with `o.max_threads` as "all threads".
pub fn measure_roofline(p: &Probe, o: MeasureOpts) -> roofline::Roofline {
    roofline::measure(
        &p.caches,
        &roofline::RooflineOpts::default_for(&p.caches, o.max_threads),
    )
}

/// The probe cached in `dir/probe.json`, measuring and writing it when absent or when it
/// belongs to another machine (a resumed run on a different host). A file from before the
/// roofline existed keeps its other measurements and gains a measured roofline.
pub fn cached(dir: &Path, opts: MeasureOpts) -> Result<Probe> {
    let path = dir.join("probe.json");
    let current = describe();
    let write = |p: &Probe| -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = serde_json::to_string_pretty(p)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(mut p) = serde_json::from_str::<Probe>(&text)
        && p.fingerprint == current.fingerprint
        && let Some(m) = &mut p.measured
    {
        if m.roofline.is_none() {
            m.roofline = Some(measure_roofline(&current, opts));
            write(&p)?;
        }
        return Ok(p);
    }
    let p = probe(Some(opts));
    write(&p)?;
    Ok(p)
}

/// The readable table of `tessera probe`.
pub fn table(p: &Probe) -> String {
    let mut s = String::new();
    let mut kv = |k: &str, v: String| s.push_str(&format!("{k:<22} {v}\n"));
    kv("fingerprint", p.fingerprint.clone());
    kv("cpu", p.cpu.model_name.clone());
    kv(
        "family/model/stepping",
        format!(
            "{}/{}/{}",
            p.cpu.family.map_or("?".into(), |v| v.to_string()),
            p.cpu.model.map_or("?".into(), |v| v.to_string()),
            p.cpu.stepping.map_or("?".into(), |v| v.to_string())
        ),
    );
    kv("flags", p.cpu.flags.join(" "));
    kv(
        "topology",
        format!(
            "{} sockets, {} cores, {} threads/core, {} logical CPUs",
            p.cpu.sockets, p.cpu.cores, p.cpu.threads_per_core, p.cpu.logical_cpus
        ),
    );
    for c in &p.caches {
        kv(
            &format!("cache L{} {}", c.level, c.kind.to_lowercase()),
            format!(
                "{} KiB shared by CPUs {}",
                c.size_bytes / 1024,
                c.shared_cpus
            ),
        );
    }
    for n in &p.numa {
        kv(
            &format!("numa node {}", n.node),
            format!(
                "CPUs {}, {:.1} GiB",
                n.cpus,
                n.mem_total_bytes as f64 / (1u64 << 30) as f64
            ),
        );
    }
    kv("kernel", p.kernel.clone());
    kv(
        "governor",
        p.governor.clone().unwrap_or_else(|| "unreadable".into()),
    );
    kv(
        "perf counters",
        format!(
            "hardware {}, software {}{}",
            if p.perf.hardware { "yes" } else { "no" },
            if p.perf.software { "yes" } else { "no" },
            p.perf
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    );
    for (k, v) in gpu::table_lines(&p.gpu) {
        kv(&k, v);
    }
    if let Some(m) = &p.measured {
        s.push_str(&format!(
            "\nmemory bandwidth (GB/s, arrays of {} MiB, best of passes)\n",
            m.array_bytes >> 20
        ));
        s.push_str("| threads |   read |   copy |  triad |\n| ---: | ---: | ---: | ---: |\n");
        for b in &m.bandwidth {
            s.push_str(&format!(
                "| {} | {:.1} | {:.1} | {:.1} |\n",
                b.threads, b.read_gbps, b.copy_gbps, b.triad_gbps
            ));
        }
        if let Some(pk) = &m.peak {
            s.push_str(&format!(
                "\npeak ({} loops): int8 {:.1} Gop/s (1 core), {:.1} Gop/s ({} threads); f32 FMA {:.1} GFLOP/s (1 core), {:.1} GFLOP/s ({} threads)\n",
                pk.variant,
                pk.int8_gops_1,
                pk.int8_gops_all,
                pk.threads_all,
                pk.f32_gflops_1,
                pk.f32_gflops_all,
                pk.threads_all
            ));
        }
        if let Some(r) = &m.roofline {
            s.push_str(&roofline::table(r));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC 9B14\nstepping\t: 1\nflags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16\n\nprocessor\t: 1\nmodel name\t: other\n";

    #[test]
    fn cpuinfo_parsing_takes_the_first_cpu_and_relevant_flags() {
        let c = parse_cpuinfo(CPUINFO);
        assert_eq!(c.model_name, "AMD EPYC 9B14");
        assert_eq!(
            (c.family, c.model, c.stepping),
            (Some(25), Some(17), Some(1))
        );
        assert_eq!(
            c.flags,
            [
                "avx2",
                "fma",
                "avx512f",
                "avx512bw",
                "avx512vl",
                "avx512_vnni",
                "avx512_bf16"
            ]
        );
        assert!(!c.flags.iter().any(|f| f.starts_with("amx")));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("32K\n"), Some(32 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn fingerprint_ignores_kernel_and_measurements_but_not_the_cpu() {
        let a = describe();
        assert_eq!(a.fingerprint.len(), 16);
        let mut b = a.clone();
        b.kernel = "9.9.9".into();
        b.governor = Some("powersave".into());
        b.measured = Some(Measured::default());
        assert_eq!(fingerprint_id(&b), a.fingerprint);
        b.cpu.flags.push("amx_tile".into());
        assert_ne!(fingerprint_id(&b), a.fingerprint);
        assert_eq!(describe().fingerprint, a.fingerprint, "not stable");
    }

    /// A probe.json as tessera wrote it before the roofline existed (abridged).
    const OLD_PROBE: &str = r#"{
        "fingerprint": "0123456789abcdef",
        "cpu": {"model_name": "AMD EPYC", "vendor": "AuthenticAMD", "family": 25, "model": 17,
                "stepping": 1, "flags": ["avx2"], "logical_cpus": 2, "cores": 2, "sockets": 1,
                "threads_per_core": 1},
        "caches": [{"level": 1, "kind": "Data", "size_bytes": 32768, "shared_cpus": "0"}],
        "numa": [], "kernel": "6.1", "governor": null,
        "perf": {"hardware": false, "software": true, "reason": "no PMU", "paranoid": 2},
        "tessera_build": "abc",
        "measured": {"array_bytes": 134217728,
                     "bandwidth": [{"threads": 1, "read_gbps": 20.5, "copy_gbps": 18.0,
                                    "triad_gbps": 19.0}],
                     "peak": {"variant": "avx512", "int8_gops_1": 300.0, "int8_gops_all": 600.0,
                              "f32_gflops_1": 100.0, "f32_gflops_all": 200.0, "threads_all": 2}}
    }"#;

    fn a_roofline() -> roofline::Roofline {
        roofline::Roofline {
            levels: vec![roofline::Level {
                name: "DRAM".into(),
                max_bytes: u64::MAX,
                read_gbps_1: 20.0,
                read_gbps_all: 30.0,
                max_bytes_all: u64::MAX,
                min_bytes: 64 << 20,
                min_bytes_all: 64 << 20,
            }],
            peaks: vec![roofline::IsaPeak {
                isa: "scalar".into(),
                int8_gops_1: 10.0,
                int8_gops_all: 20.0,
                f32_gflops_1: 5.0,
                f32_gflops_all: 10.0,
            }],
            threads_all: 2,
            skipped: vec![roofline::Skipped {
                isa: "amx".into(),
                reason: "CPU lacks AMX".into(),
            }],
            read_isa: "avx512".into(),
            curve_1: vec![measure::CurvePoint {
                bytes: 64 << 20,
                gbps: 20.0,
            }],
            curve_all: vec![],
        }
    }

    #[test]
    fn old_probe_files_parse_without_a_roofline_and_new_ones_round_trip() {
        let old: Probe = serde_json::from_str(OLD_PROBE).unwrap();
        let m = old.measured.as_ref().unwrap();
        assert_eq!(m.roofline, None);
        assert_eq!(m.bandwidth[0].read_gbps, 20.5);
        let mut new = old.clone();
        new.measured.as_mut().unwrap().roofline = Some(a_roofline());
        let text = serde_json::to_string_pretty(&new).unwrap();
        assert!(text.contains("\"roofline\""), "{text}");
        // u64::MAX (DRAM's boundary) survives JSON.
        assert!(text.contains("18446744073709551615"), "{text}");
        let back: Probe = serde_json::from_str(&text).unwrap();
        assert_eq!(back, new);
        assert_ne!(back, old);
    }

    #[test]
    fn cached_keeps_a_roofline_and_fills_in_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.json");
        let here = describe();
        let opts = MeasureOpts::default_for(&here);
        // A file of this machine with a roofline: returned as it is, nothing measured.
        let mut p: Probe = serde_json::from_str(OLD_PROBE).unwrap();
        p.fingerprint = here.fingerprint.clone();
        p.measured.as_mut().unwrap().roofline = Some(a_roofline());
        std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(cached(dir.path(), opts).unwrap(), p);
        // The same file from before the roofline: its bandwidth stays, a roofline is
        // measured and written back.
        p.measured.as_mut().unwrap().roofline = None;
        std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
        let got = cached(dir.path(), opts).unwrap();
        let m = got.measured.as_ref().unwrap();
        assert_eq!(m.bandwidth, p.measured.as_ref().unwrap().bandwidth);
        let r = m.roofline.as_ref().expect("measured");
        assert_eq!(r.levels.last().map(|l| l.name.as_str()), Some("DRAM"));
        assert_eq!(r.threads_all, opts.max_threads);
        let on_disk: Probe =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk, got);
    }

    #[test]
    fn perf_support_reports_software_counters() {
        let p = describe();
        assert!(p.perf.software);
        if !p.perf.hardware {
            assert!(p.perf.reason.is_some());
        }
    }
}
