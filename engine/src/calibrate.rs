//! `--isa auto` by measurement: which kernel table is fastest for *this* model on *this*
//! machine with *this* thread count.
//!
//! A fixed preference order cannot be right everywhere: on the AMX Xeon we measured, avx512
//! on the plain layout was 0.56x of avx2 and AMX was never chosen; on another CPU the order
//! flips. So `auto` times the candidates (every available ISA among amx, avx512 and avx2
//! whose tile list holds the requested tile) on the model's own layer-0 matrices, each in
//! the layout its table repacks into, with the run's thread count:
//!
//! - GEMM: [`CAL_M`] tokens through all seven layer matrices (what a prompt batch does);
//! - GEMV: one token through them, [`GEMV_REPS`] times (what generation does). Where the
//!   model's weights exceed the last-level cache, generation streams them from DRAM, so
//!   each GEMV pass then starts with its weights flushed from the caches
//!   (`WeightMat::flush_from_caches`): timed hot, the
//!   AVX-512 x16 GEMV once looked 1.8x faster than avx2 x8 on a Zen 4 VM while it was
//!   0.57x of it in tg128 (docs/performance.md, "AVX-512 GEMV from DRAM");
//!
//! in [`ROUNDS`] interleaved rounds, keeping each candidate's fastest. The winner is the
//! candidate with the smallest worst-case loss, `max(gemm / best gemm, gemv / best gemv)`:
//! one table serves both prompt and generation tests, so it must be close to the best on
//! both. The choice and the timings are cached per machine (CPU model and flags), model
//! shape, weight type, thread count and tile in `<cache dir>/calibration/<key>.json`, so it
//! is measured once (about a tenth of a second for the 150m preset) and every later run
//! follows it; the row records `isa_requested: auto`, the ISA and why.
//!
//! `TESSERA_CALIBRATE=0` (or `off`) skips the measurement and uses the fixed order of
//! [`Isa::AUTO_ORDER`]; `TESSERA_CALIBRATE=force` measures again and rewrites the cache.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tessera_kernels::{ActBuf, Isa, IsaRequest, Kernels, OutMat, TileConfig, WeightMat};

use crate::error::Result;
use crate::model::Model;
use crate::pool::{ThreadPool, split_range};

/// Tokens of the calibration GEMM.
pub const CAL_M: usize = 128;
/// GEMV passes per measurement, hot (the model fits in the last-level cache).
pub const GEMV_REPS: usize = 24;
/// GEMV passes per measurement when each starts from flushed caches.
pub const GEMV_REPS_COLD: usize = 4;
/// Interleaved rounds; each candidate keeps its fastest.
pub const ROUNDS: usize = 5;
/// Bumped when the method or the kernels change enough to invalidate cached choices.
const VERSION: u32 = 2;

/// What `auto` resolved to, and why (for the result row).
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub isa: Isa,
    pub reason: String,
}

/// A cached calibration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Record {
    pub version: u32,
    pub key: String,
    pub isa: String,
    pub threads: usize,
    /// Best GEMM time (ns) per candidate.
    pub gemm_ns: BTreeMap<String, u64>,
    /// Best GEMV time (ns, all [`GEMV_REPS`] passes) per candidate.
    pub gemv_ns: BTreeMap<String, u64>,
    /// How long the measurement took (ms).
    pub took_ms: u64,
}

/// The kernel table for `request`: a named ISA as asked, `auto` by calibration (see the
/// module docs). The second value says how `auto` was resolved. Errors: an ISA or tile
/// this CPU cannot run, or a calibration thread pool that cannot start.
pub fn kernels_for(
    request: IsaRequest,
    tile: Option<TileConfig>,
    model: &Model,
    n_threads: usize,
) -> Result<(Kernels, Option<Choice>)> {
    if let IsaRequest::Named(_) = request {
        return Ok((Kernels::new(request, tile)?, None));
    }
    let mode = std::env::var("TESSERA_CALIBRATE").unwrap_or_default();
    if matches!(mode.as_str(), "0" | "off") {
        let k = Kernels::new(request, tile)?;
        let reason = format!(
            "fixed order {} (TESSERA_CALIBRATE={mode})",
            order_names(&Isa::AUTO_ORDER)
        );
        let isa = k.isa();
        return Ok((k, Some(Choice { isa, reason })));
    }
    let cands = candidates(tile);
    let choice = match cands.as_slice() {
        [] => {
            // No vector candidate takes this tile: the fixed order decides (and reports
            // an invalid tile as it always did).
            let k = Kernels::new(request, tile)?;
            let isa = k.isa();
            return Ok((
                k,
                Some(Choice {
                    isa,
                    reason: "no vector ISA takes this tile; fixed order".into(),
                }),
            ));
        }
        [one] => Choice {
            isa: *one,
            reason: format!("{one} is the only candidate on this CPU"),
        },
        _ => calibrated(model, &cands, n_threads.max(1), tile, mode == "force")?,
    };
    let k = Kernels::with_isa(request, choice.isa, tile)?;
    Ok((k, Some(choice)))
}

/// Available ISAs `auto` may pick, in the order ties are broken.
pub fn candidates(tile: Option<TileConfig>) -> Vec<Isa> {
    [Isa::Amx, Isa::Avx512, Isa::Avx2]
        .into_iter()
        .filter(|i| i.is_available())
        .filter(|i| tile.is_none_or(|t| i.valid_tiles().contains(&t)))
        .collect()
}

fn order_names(isas: &[Isa]) -> String {
    isas.iter()
        .map(|i| i.name())
        .collect::<Vec<_>>()
        .join(" > ")
}

/// The cached choice for this key, or a fresh measurement (written to the cache).
fn calibrated(
    model: &Model,
    cands: &[Isa],
    n_threads: usize,
    tile: Option<TileConfig>,
    force: bool,
) -> Result<Choice> {
    let key = cache_key(model, n_threads, tile);
    let path = cache_path(&key);
    if !force
        && let Some(rec) = read_record(&path)
        && rec.version == VERSION
        && rec.key == key
        && let Ok(isa) = rec.isa.parse::<Isa>()
        && cands.contains(&isa)
    {
        return Ok(Choice {
            isa,
            reason: format!("{} (cached in {})", summary(&rec), path.display()),
        });
    }
    let rec = measure(model, cands, n_threads, tile, key)?;
    let saved = write_record(&path, &rec);
    let isa = rec.isa.parse().unwrap_or(cands[0]);
    Ok(Choice {
        isa,
        reason: match saved {
            Ok(()) => format!(
                "{} (measured now, saved to {})",
                summary(&rec),
                path.display()
            ),
            Err(e) => format!("{} (measured now; not cached: {e})", summary(&rec)),
        },
    })
}

/// "calibrated on ...: amx gemm 1.00 gemv 1.01, avx512 1.02/1.00, ..." relative to the
/// best of each, the winner first.
fn summary(rec: &Record) -> String {
    let best = |m: &BTreeMap<String, u64>| m.values().copied().min().unwrap_or(1).max(1) as f64;
    let (bg, bv) = (best(&rec.gemm_ns), best(&rec.gemv_ns));
    let mut parts: Vec<(f64, String)> = rec
        .gemm_ns
        .iter()
        .map(|(isa, &g)| {
            let v = rec.gemv_ns.get(isa).copied().unwrap_or(0) as f64;
            let (rg, rv) = (g as f64 / bg, v / bv);
            (rg.max(rv), format!("{isa} gemm {rg:.2}x gemv {rv:.2}x"))
        })
        .collect();
    parts.sort_by(|a, b| a.0.total_cmp(&b.0));
    format!(
        "auto chose {} by calibration ({} threads; time vs the best: {})",
        rec.isa,
        rec.threads,
        parts
            .into_iter()
            .map(|p| p.1)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The candidate with the smallest worst-case loss over GEMM and GEMV; ties go to the
/// earlier candidate. `times` holds (isa, gemm ns, gemv ns).
pub fn decide(times: &[(Isa, u64, u64)]) -> Option<Isa> {
    let bg = times.iter().map(|t| t.1).min()?.max(1) as f64;
    let bv = times.iter().map(|t| t.2).min()?.max(1) as f64;
    let loss = |t: &(Isa, u64, u64)| (t.1 as f64 / bg).max(t.2 as f64 / bv);
    let mut best: Option<(&(Isa, u64, u64), f64)> = None;
    for t in times {
        let l = loss(t);
        if best.is_none_or(|(_, b)| l < b) {
            best = Some((t, l));
        }
    }
    best.map(|(t, _)| t.0)
}

/// Times every candidate on the model's layer-0 matrices.
fn measure(
    model: &Model,
    cands: &[Isa],
    n_threads: usize,
    tile: Option<TileConfig>,
    key: String,
) -> Result<Record> {
    let start = Instant::now();
    let mats: Vec<WeightMat> = model
        .layers
        .first()
        .map(|l| {
            [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                .map(|w| w.mat())
                .to_vec()
        })
        .unwrap_or_default();
    let tables: Vec<(Isa, Kernels)> = cands
        .iter()
        .filter_map(|&i| {
            Kernels::new(IsaRequest::Named(i), tile)
                .ok()
                .map(|k| (i, k))
        })
        .collect();
    let packs: Vec<_> = tables
        .iter()
        .map(|(_, k)| k.repack(mats.iter().copied()))
        .collect();
    let pool = ThreadPool::new(n_threads)?;
    let kmax = mats.iter().map(|w| w.k()).max().unwrap_or(0);
    let nmax = mats.iter().map(|w| w.n()).max().unwrap_or(0);
    // Deterministic activations in -1..1.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let x: Vec<f32> = (0..CAL_M * kmax)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let mut out = vec![0.0f32; CAL_M * nmax];
    let mut gemm = vec![u64::MAX; tables.len()];
    let mut gemv = vec![u64::MAX; tables.len()];
    let mut act = ActBuf::with_capacity(CAL_M, kmax.max(32));
    let mut pass = |kernels: &Kernels, packed: &tessera_kernels::matrix::Repacked, m: usize| {
        let t = Instant::now();
        for w in &mats {
            let wp = packed.view(*w);
            let kind = wp.act_kind();
            let xs = &x[..m * wp.k()];
            kernels.convert(&mut act, kind, xs, wp.k());
            let acts = act.view(kind, xs);
            let kern = kernels.matmul("calibrate", &wp, m);
            let o = OutMat::new(&mut out[..m * wp.n()], m, wp.n());
            pool.run(&|tid, nth| {
                let cols = split_range(wp.n(), nth, tid, kern.tile.n);
                // SAFETY: disjoint column ranges per thread; activations converted to the
                // form of `wp` for `m` rows.
                unsafe { kern.run(&wp, acts, &o, cols) };
            });
        }
        t.elapsed().as_nanos() as u64
    };
    // Generation streams the weights from DRAM when the model exceeds the LLC.
    let cold = model.size_bytes > last_level_cache_bytes() as u64;
    let reps = if cold { GEMV_REPS_COLD } else { GEMV_REPS };
    for _ in 0..ROUNDS {
        for (i, ((_, k), p)) in tables.iter().zip(&packs).enumerate() {
            gemm[i] = gemm[i].min(pass(k, p, CAL_M));
            let mut v = 0;
            for _ in 0..reps {
                if cold {
                    for w in &mats {
                        p.view(*w).flush_from_caches();
                    }
                }
                v += pass(k, p, 1);
            }
            gemv[i] = gemv[i].min(v);
        }
    }
    let times: Vec<(Isa, u64, u64)> = tables
        .iter()
        .enumerate()
        .map(|(i, (isa, _))| (*isa, gemm[i], gemv[i]))
        .collect();
    let isa = decide(&times).unwrap_or(cands[0]);
    Ok(Record {
        version: VERSION,
        key,
        isa: isa.name().to_string(),
        threads: n_threads,
        gemm_ns: times
            .iter()
            .map(|t| (t.0.name().to_string(), t.1))
            .collect(),
        gemv_ns: times
            .iter()
            .map(|t| (t.0.name().to_string(), t.2))
            .collect(),
        took_ms: start.elapsed().as_millis() as u64,
    })
}

/// Bytes of the largest cache of CPU 0 (sysfs), or 32 MiB when sysfs does not say.
fn last_level_cache_bytes() -> usize {
    (0..8)
        .filter_map(|i| {
            let p = format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size");
            parse_cache_size(std::fs::read_to_string(p).ok()?.trim())
        })
        .max()
        .unwrap_or(32 << 20)
}

/// "32768K", "2M", "512" (bytes) → bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mul)
}

/// Machine, model shape and type, threads, tile and method version, as readable text.
pub fn cache_key(model: &Model, n_threads: usize, tile: Option<TileConfig>) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpu.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let machine = format!("{}|{}", field("model name"), field("flags"));
    let shape = model
        .layers
        .first()
        .map(|l| {
            [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                .map(|w| format!("{}x{}:{}", w.n, w.k, w.ty()))
                .join(",")
        })
        .unwrap_or_default();
    format!(
        "v{VERSION}-{:016x}-{shape}-t{n_threads}-{}",
        fnv(machine.as_bytes()),
        tile.map_or("default".to_string(), |t| t.to_string())
    )
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `<cache dir>/calibration/<hash of key>.json`.
pub fn cache_path(key: &str) -> PathBuf {
    crate::cache_dir::cache_dir()
        .join("calibration")
        .join(format!("{:016x}.json", fnv(key.as_bytes())))
}

fn read_record(path: &std::path::Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes atomically (temporary file, then rename), so a concurrent reader never sees half.
pub fn write_record(path: &std::path::Path, rec: &Record) -> std::io::Result<()> {
    let dir = path.parent().expect("cache path has a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("K"), None);
        assert_eq!(parse_cache_size("lots"), None);
        assert!(last_level_cache_bytes() >= 1);
    }

    #[test]
    fn decide_minimises_the_worst_case_loss() {
        use Isa::*;
        // amx wins GEMM by far but loses GEMV by 30%: avx512, 5% behind on GEMM and best
        // on GEMV, has the smaller worst case.
        let t = [(Amx, 100, 130), (Avx512, 105, 100), (Avx2, 200, 101)];
        assert_eq!(decide(&t), Some(Avx512));
        // A tie on both goes to the earlier candidate.
        assert_eq!(decide(&[(Amx, 100, 100), (Avx512, 100, 100)]), Some(Amx));
        assert_eq!(decide(&[(Avx2, 5, 7)]), Some(Avx2));
        assert_eq!(decide(&[]), None);
    }
}
