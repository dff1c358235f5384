//! The cache-aware roofline: read bandwidth per memory level (L1, L2, L3, DRAM), found as
//! plateaus of a measured bandwidth-vs-working-set curve, and the peak int8 and f32 rate of
//! every kernel ISA, each with one thread and with all threads; [`Roofline::roof`] turns an
//! operation (flops, bytes, working set, ISA, threads) into the rate it cannot beat.
//!
//! Why plateaus and not sysfs sizes: a level's useful capacity is what the curve shows
//! (associativity, inclusive or victim caches, neighbours on a shared L3 of a VM), so both
//! the bandwidths and the size boundaries come from the measurement; the sysfs sizes only
//! say which plateau is which (see [`name_levels`]).
//!
//! The detector ([`Detector::plateaus`]), in log-log space (log2 bytes, ln GB/s):
//! 1. a median of three smooths single-point spikes;
//! 2. a point is *flat* when the least-squares slope of the smoothed curve over the points
//!    within half an octave of it is at most [`Detector::flat_slope`] (ln units per octave);
//! 3. runs of flat points, cut wherever their spread exceeds [`Detector::band`], spanning at
//!    least [`Detector::min_octaves`], are plateau cores;
//! 4. each core grows over neighbours within half the band of its level (the median of its
//!    points), and neighbouring plateaus whose levels agree that closely with at most two
//!    points between them merge.
//!
//! Everything between two plateaus is a transition: a working set there is served by the
//! lower level (it no longer fits the upper one) at the measured curve's rate, clamped
//! between the two levels' rates, so a roof in a transition is neither the upper level's
//! optimism nor the lower level's pessimism.
//!
//! Threads: the all-thread curve reads a working set split in equal contiguous slices, one
//! per thread (as the kernels split weight rows), so its boundaries are totals over threads
//! (twice the private L2 with two cores on their own L2s).

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use tessera_kernels::Isa;

use super::CacheLevel;
use super::measure::{self, CurvePoint, PeakKind};

/// One memory level of the roofline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// "L1", "L2", "L3" (as sysfs numbers them) or "DRAM".
    pub name: String,
    /// Largest working set served at this level's rate with one thread (the end of its
    /// plateau); `u64::MAX` for DRAM.
    pub max_bytes: u64,
    /// Read GB/s (1e9 bytes/s) on the plateau, one thread.
    pub read_gbps_1: f64,
    /// Read GB/s on the plateau, all threads (the working set split between them).
    pub read_gbps_all: f64,
    /// `max_bytes` with all threads (the total over threads).
    pub max_bytes_all: u64,
    /// Smallest working set on the plateau, one thread; from the level above's `max_bytes`
    /// up to this is the transition into this level.
    pub min_bytes: u64,
    /// `min_bytes` with all threads.
    pub min_bytes_all: u64,
}

/// Peak rates of one kernel ISA's multiply-add loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsaPeak {
    /// `tessera_kernels::Isa::name()`: "scalar", "avx2", "avx512", "amx".
    pub isa: String,
    /// 1e9 int8 operations/s (a multiply-add is 2), one thread.
    pub int8_gops_1: f64,
    pub int8_gops_all: f64,
    /// 1e9 f32 flops/s (an FMA is 2), one thread.
    pub f32_gflops_1: f64,
    pub f32_gflops_all: f64,
}

/// An ISA the probe did not measure, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub isa: String,
    pub reason: String,
}

/// The measured roofline of this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// By size, ending with DRAM; `max_bytes` (and `max_bytes_all`) ascending.
    pub levels: Vec<Level>,
    pub peaks: Vec<IsaPeak>,
    /// The thread count of the `_all` numbers.
    pub threads_all: usize,
    /// ISAs without a peak here (no hardware, or emulated).
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// The vector width of the read loops ([`measure::read_isa`]).
    pub read_isa: String,
    /// The measured curves the levels come from, one thread and all threads.
    pub curve_1: Vec<CurvePoint>,
    pub curve_all: Vec<CurvePoint>,
}

/// The roof of one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roof {
    /// The rate the operation cannot beat, 1e9 ops/s; 0 when there is none ("emulated",
    /// "unmeasured").
    pub gflops: f64,
    /// "compute", the level name when bandwidth bounds it, "emulated" or "unmeasured".
    pub bound: String,
    /// The level the working set is served from.
    pub level: String,
}

static UNMEASURED: LazyLock<Level> = LazyLock::new(|| Level {
    name: "unmeasured".into(),
    max_bytes: u64::MAX,
    read_gbps_1: 0.0,
    read_gbps_all: 0.0,
    max_bytes_all: u64::MAX,
    min_bytes: 0,
    min_bytes_all: 0,
});

/// Linear interpolation of a size boundary; `u64::MAX` (DRAM) stays.
fn lerp_bytes(a: u64, b: u64, f: f64) -> u64 {
    if a == u64::MAX || b == u64::MAX {
        return u64::MAX;
    }
    (a as f64 + (b as f64 - a as f64) * f).round() as u64
}

impl Roofline {
    /// Where `threads` lies between one thread (0) and `threads_all` (1): 1 or fewer → 0,
    /// `threads_all` or more → 1, in between linear in the thread count. Rates and size
    /// boundaries in between are interpolated linearly with it: an estimate (DRAM saturates
    /// before all cores read), documented as such, not a measurement.
    fn frac(&self, threads: usize) -> f64 {
        if threads <= 1 || self.threads_all <= 1 {
            0.0
        } else if threads >= self.threads_all {
            1.0
        } else {
            (threads - 1) as f64 / (self.threads_all - 1) as f64
        }
    }

    fn index_for(&self, working_set: u64, f: f64) -> Option<usize> {
        let n = self.levels.len();
        (n > 0).then(|| {
            self.levels
                .iter()
                .position(|l| working_set <= lerp_bytes(l.max_bytes, l.max_bytes_all, f))
                .unwrap_or(n - 1)
        })
    }

    /// The level a working set of `working_set` bytes is served from with one thread: the
    /// first whose `max_bytes` holds it (DRAM for anything larger than every cache).
    pub fn level_for(&self, working_set: u64) -> &Level {
        self.level_for_threads(working_set, 1)
    }

    /// [`Roofline::level_for`] at `threads` threads (boundaries as in [`Roofline::roof`]).
    pub fn level_for_threads(&self, working_set: u64, threads: usize) -> &Level {
        match self.index_for(working_set, self.frac(threads)) {
            Some(i) => &self.levels[i],
            None => &UNMEASURED,
        }
    }

    /// The read rate (GB/s) of `working_set` at `threads`: its level's plateau rate, or in
    /// the transition into that level the measured curve's rate clamped between the level's
    /// rate and the one above.
    pub fn read_gbps(&self, working_set: u64, threads: usize) -> f64 {
        let f = self.frac(threads);
        let Some(i) = self.index_for(working_set, f) else {
            return 0.0;
        };
        let rate = |l: &Level| l.read_gbps_1 + (l.read_gbps_all - l.read_gbps_1) * f;
        let l = &self.levels[i];
        let here = rate(l);
        if working_set >= lerp_bytes(l.min_bytes, l.min_bytes_all, f) {
            return here;
        }
        let on_curve = (1.0 - f) * curve_at(&self.curve_1, working_set)
            + f * curve_at(&self.curve_all, working_set);
        let above = if i > 0 {
            rate(&self.levels[i - 1])
        } else {
            f64::INFINITY
        };
        on_curve.clamp(here.min(above), here.max(above))
    }

    /// The peak of `isa` at `threads`, falling back to scalar's for an ISA without one.
    fn peak(&self, isa: &str, int8: bool, threads: usize) -> Option<f64> {
        let f = self.frac(threads);
        let p = self
            .peaks
            .iter()
            .find(|p| p.isa == isa)
            .or_else(|| self.peaks.iter().find(|p| p.isa == Isa::Scalar.name()))?;
        let (one, all) = if int8 {
            (p.int8_gops_1, p.int8_gops_all)
        } else {
            (p.f32_gflops_1, p.f32_gflops_all)
        };
        let v = one + (all - one) * f;
        (v > 0.0).then_some(v)
    }

    /// The peak a whole benchmark row of `isa` at `threads` is measured against: that ISA's
    /// when the probe measured it, otherwise the best any measured ISA reached (an external
    /// engine's row does not say which ISA it ran, and the best is the roof it cannot
    /// beat). `None` when nothing was measured.
    pub fn row_peak(&self, isa: &str, int8: bool, threads: usize) -> Option<f64> {
        if self.peaks.iter().any(|p| p.isa == isa) {
            return self.peak(isa, int8, threads);
        }
        self.peaks
            .iter()
            .filter_map(|p| self.peak(&p.isa, int8, threads))
            .max_by(f64::total_cmp)
    }

    /// The roof of an operation doing `flop` operations (int8 ops when `int8`) over `bytes`
    /// of memory traffic, with a working set of `working_set` bytes, on `threads` threads
    /// of `isa`: min(the ISA's peak, flop/bytes × the read rate of the level the working
    /// set is served from). Thread counts: 1 → the `_1` numbers, `threads_all` or more →
    /// `_all`, in between linear interpolation. `amx-emu` has no roof (gflops 0, bound
    /// "emulated"); an ISA without a measured peak (unknown, or not runnable when the probe
    /// ran) gets scalar's; with neither a peak nor a bandwidth the bound is "unmeasured".
    pub fn roof(
        &self,
        isa: &str,
        int8: bool,
        flop: f64,
        bytes: f64,
        working_set: u64,
        threads: usize,
    ) -> Roof {
        let level = self.level_for_threads(working_set, threads).name.clone();
        if isa == Isa::AmxEmu.name() {
            return Roof {
                gflops: 0.0,
                bound: "emulated".into(),
                level,
            };
        }
        let bw = self.read_gbps(working_set, threads);
        let by_bw = if bytes > 0.0 && bw > 0.0 {
            flop / bytes * bw
        } else {
            f64::INFINITY
        };
        let (gflops, bound) = match self.peak(isa, int8, threads) {
            Some(p) if p <= by_bw => (p, "compute".to_string()),
            _ if by_bw.is_finite() => (by_bw, level.clone()),
            _ => (0.0, "unmeasured".to_string()),
        };
        Roof {
            gflops,
            bound,
            level,
        }
    }
}

/// The median-of-three smoothed curve (ends kept), in ln GB/s.
fn smoothed_ln(curve: &[CurvePoint]) -> Vec<f64> {
    let y: Vec<f64> = curve.iter().map(|p| p.gbps.max(1e-9).ln()).collect();
    (0..y.len())
        .map(|i| {
            if i == 0 || i + 1 == y.len() {
                y[i]
            } else {
                let mut w = [y[i - 1], y[i], y[i + 1]];
                w.sort_by(f64::total_cmp);
                w[1]
            }
        })
        .collect()
}

/// The smoothed curve's GB/s at `bytes`, interpolated in log-log space (constant past the
/// ends); 0 for an empty curve.
fn curve_at(curve: &[CurvePoint], bytes: u64) -> f64 {
    let s = smoothed_ln(curve);
    let x = |i: usize| (curve[i].bytes.max(1) as f64).log2();
    let b = (bytes.max(1) as f64).log2();
    match curve.iter().position(|p| p.bytes >= bytes) {
        None if curve.is_empty() => 0.0,
        None => s[s.len() - 1].exp(),
        Some(0) => s[0].exp(),
        Some(j) => {
            let (x0, x1) = (x(j - 1), x(j));
            let t = if x1 > x0 { (b - x0) / (x1 - x0) } else { 1.0 };
            (s[j - 1] + (s[j] - s[j - 1]) * t).exp()
        }
    }
}

/// A plateau of a curve: points `first..=last`, read at `gbps` (the median of its points).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    pub first: usize,
    pub last: usize,
    pub gbps: f64,
}

/// The plateau detector's thresholds (see the module docs for the algorithm).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detector {
    /// Largest |slope| of a flat point, ln GB/s per octave (0.2: about 18 % per octave).
    pub flat_slope: f64,
    /// Largest spread (max − min of ln GB/s) inside a plateau core; points within half of it
    /// of a plateau's level join the plateau.
    pub band: f64,
    /// Shortest plateau core, octaves.
    pub min_octaves: f64,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            flat_slope: 0.2,
            band: 1.15f64.ln(),
            min_octaves: 0.5,
        }
    }
}

impl Detector {
    /// The plateaus of `curve` (ascending sizes), by size.
    pub fn plateaus(&self, curve: &[CurvePoint]) -> Vec<Plateau> {
        let n = curve.len();
        let x: Vec<f64> = curve
            .iter()
            .map(|p| (p.bytes.max(1) as f64).log2())
            .collect();
        let s = smoothed_ln(curve);
        let level_of = |a: usize, b: usize| {
            let v: Vec<f64> = curve[a..=b].iter().map(|p| p.gbps).collect();
            // A plateau has at least one point (a..=b); 0 only keeps this total.
            crate::stats::median(&v).unwrap_or(0.0)
        };
        // 2. Flat points: the least-squares slope over half an octave either side.
        let flat: Vec<bool> = (0..n)
            .map(|i| {
                let w: Vec<usize> = (0..n)
                    .filter(|&j| (x[j] - x[i]).abs() <= 0.5 + 1e-9)
                    .collect();
                if w.len() < 3 {
                    return false;
                }
                let k = w.len() as f64;
                let mx = w.iter().map(|&j| x[j]).sum::<f64>() / k;
                let my = w.iter().map(|&j| s[j]).sum::<f64>() / k;
                let sxx: f64 = w.iter().map(|&j| (x[j] - mx).powi(2)).sum();
                let sxy: f64 = w.iter().map(|&j| (x[j] - mx) * (s[j] - my)).sum();
                sxx > 0.0 && (sxy / sxx).abs() <= self.flat_slope
            })
            .collect();
        // 3. Cores: runs of flat points, cut where their spread exceeds the band.
        let mut cores = Vec::new();
        let mut i = 0;
        while i < n {
            if !flat[i] {
                i += 1;
                continue;
            }
            let (mut j, mut lo, mut hi) = (i, s[i], s[i]);
            while j + 1 < n && flat[j + 1] && hi.max(s[j + 1]) - lo.min(s[j + 1]) <= self.band {
                j += 1;
                lo = lo.min(s[j]);
                hi = hi.max(s[j]);
            }
            if x[j] - x[i] >= self.min_octaves - 1e-9 {
                cores.push((i, j));
            }
            i = j + 1;
        }
        // 4. Grow each core over neighbours near its level, without crossing another.
        let half = self.band / 2.0;
        let mut out: Vec<Plateau> = Vec::new();
        for (k, &(a, b)) in cores.iter().enumerate() {
            let lvl = level_of(a, b).ln();
            let left = out.last().map_or(0, |p| p.last + 1);
            let right = cores.get(k + 1).map_or(n - 1, |c| c.0 - 1);
            let (mut a, mut b) = (a, b);
            while a > left && (s[a - 1] - lvl).abs() <= half {
                a -= 1;
            }
            while b < right && (s[b + 1] - lvl).abs() <= half {
                b += 1;
            }
            let p = Plateau {
                first: a,
                last: b,
                gbps: level_of(a, b),
            };
            match out.last_mut() {
                Some(q) if (q.gbps.ln() - p.gbps.ln()).abs() <= half && p.first - q.last <= 3 => {
                    q.last = p.last;
                    q.gbps = level_of(q.first, q.last);
                }
                _ => out.push(p),
            }
        }
        out
    }
}

/// Where to look for a cache level: its sysfs size, times the instances `threads` threads
/// spread over (a private L2 per core counts once per thread).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hint {
    pub level: u32,
    pub bytes: u64,
}

/// The data and unified caches of `caches` as hints for a curve read by `threads` threads,
/// one per level, by level.
pub fn hints(caches: &[CacheLevel], threads: usize) -> Vec<Hint> {
    let mut out: Vec<Hint> = Vec::new();
    for c in caches {
        if c.kind == "Instruction" || c.size_bytes == 0 || out.iter().any(|h| h.level == c.level) {
            continue;
        }
        let sharing = tessera_engine::numa::parse_id_list(&c.shared_cpus)
            .map_or(1, |v| v.len())
            .max(1);
        let instances = threads.max(1).div_ceil(sharing) as u64;
        out.push(Hint {
            level: c.level,
            bytes: c.size_bytes * instances,
        });
    }
    out.sort_by_key(|h| h.level);
    out
}

/// One named level of one curve.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveLevel {
    pub name: String,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub gbps: f64,
}

/// Octaves between a plateau's end and a hint beyond which they are not matched; also the
/// cost of leaving a plateau unnamed.
const MATCH_OCTAVES: f64 = 3.0;

/// Names the plateaus of `curve`. The last plateau is DRAM when it reaches the curve's
/// largest size (which is past the last-level cache); without one, DRAM is the largest
/// size's smoothed rate (an upper bound: the curve was still falling). The other plateaus
/// are matched, in order, to the hinted cache levels whose size is nearest their end (in
/// octaves, within [`MATCH_OCTAVES`]), minimising the total distance plus
/// [`MATCH_OCTAVES`] per plateau left unnamed (a spurious plateau inside a transition);
/// a hinted level without a plateau is absent. Without hints the plateaus are L1, L2, L3 in
/// order (the longest three when there are more).
pub fn name_levels(curve: &[CurvePoint], plateaus: &[Plateau], hints: &[Hint]) -> Vec<CurveLevel> {
    let Some(top) = curve.len().checked_sub(1) else {
        return Vec::new();
    };
    let (caches, dram) = match plateaus.split_last() {
        Some((last, rest)) if last.last == top => (rest, *last),
        _ => (
            plateaus,
            Plateau {
                first: top,
                last: top,
                gbps: smoothed_ln(curve)[top].exp(),
            },
        ),
    };
    let level = |name: String, p: &Plateau| CurveLevel {
        name,
        min_bytes: curve[p.first].bytes,
        max_bytes: curve[p.last].bytes,
        gbps: p.gbps,
    };
    let mut out: Vec<CurveLevel> = Vec::new();
    if hints.is_empty() {
        let mut keep: Vec<usize> = (0..caches.len()).collect();
        let span = |p: &Plateau| curve[p.last].bytes as f64 / curve[p.first].bytes.max(1) as f64;
        keep.sort_by(|&a, &b| span(&caches[b]).total_cmp(&span(&caches[a])));
        keep.truncate(3);
        keep.sort();
        for (n, &k) in keep.iter().enumerate() {
            out.push(level(format!("L{}", n + 1), &caches[k]));
        }
    } else {
        let end = |p: &Plateau| (curve[p.last].bytes.max(1) as f64).log2();
        let dist = |p: &Plateau, h: &Hint| (end(p) - (h.bytes.max(1) as f64).log2()).abs();
        // best[j][h]: least cost of plateaus j.. with hints h.. still free, and the choice.
        let (np, nh) = (caches.len(), hints.len());
        let mut best = vec![vec![(0.0f64, None::<usize>); nh + 1]; np + 1];
        for j in (0..np).rev() {
            for h in (0..=nh).rev() {
                let mut b = (MATCH_OCTAVES + best[j + 1][h].0, None);
                for (g, hint) in hints.iter().enumerate().skip(h) {
                    let d = dist(&caches[j], hint);
                    if d <= MATCH_OCTAVES && d + best[j + 1][g + 1].0 <= b.0 {
                        b = (d + best[j + 1][g + 1].0, Some(g));
                    }
                }
                best[j][h] = b;
            }
        }
        let mut h = 0;
        for (j, p) in caches.iter().enumerate() {
            if let Some(g) = best[j][h].1 {
                out.push(level(format!("L{}", hints[g].level), p));
                h = g + 1;
            }
        }
    }
    let mut d = level("DRAM".into(), &dram);
    d.max_bytes = u64::MAX;
    out.push(d);
    out
}

/// The roofline's levels from the one-thread and all-thread curves. A level found on only
/// one curve is, on the other, served like the next level found there: its rate, and an
/// empty size range at the end of the level before it.
pub fn levels(
    curve_1: &[CurvePoint],
    curve_all: &[CurvePoint],
    hints_1: &[Hint],
    hints_all: &[Hint],
    det: &Detector,
) -> Vec<Level> {
    let one = name_levels(curve_1, &det.plateaus(curve_1), hints_1);
    let all = name_levels(curve_all, &det.plateaus(curve_all), hints_all);
    let rank = |n: &str| {
        n.strip_prefix('L')
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    let mut names: Vec<String> = one.iter().chain(&all).map(|l| l.name.clone()).collect();
    names.sort_by_key(|n| rank(n));
    names.dedup();
    // (rate, min, max) of `name` on `levels`, or the stand-in described above.
    let on = |levels: &[CurveLevel], name: &str| -> (f64, u64, u64) {
        if let Some(l) = levels.iter().find(|l| l.name == name) {
            return (l.gbps, l.min_bytes, l.max_bytes);
        }
        let r = rank(name);
        let prev = levels.iter().rev().find(|l| rank(&l.name) < r);
        let next = levels.iter().find(|l| rank(&l.name) > r);
        let edge = prev.map_or(0, |l| l.max_bytes);
        (next.map_or(0.0, |l| l.gbps), edge, edge)
    };
    names
        .iter()
        .map(|name| {
            let (r1, min1, max1) = on(&one, name);
            let (ra, mina, maxa) = on(&all, name);
            Level {
                name: name.clone(),
                max_bytes: max1,
                read_gbps_1: r1,
                read_gbps_all: ra,
                max_bytes_all: maxa,
                min_bytes: min1,
                min_bytes_all: mina,
            }
        })
        .collect()
}

/// How much the roofline measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RooflineOpts {
    pub threads_all: usize,
    /// Smallest and largest working set of the curves.
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub points_per_octave: u32,
    /// Rounds of the whole measurement (both curves, every peak), one after the other; each
    /// number is the best over rounds.
    pub rounds: usize,
    /// Timed passes per point and round (the best counts), each moving `pass_bytes` per
    /// thread.
    pub passes: usize,
    pub pass_bytes: u64,
    /// Seconds per peak-loop run.
    pub peak_secs: f64,
}

impl RooflineOpts {
    /// Working sets from 8 KiB (or a quarter of a smaller L1) to 4 × the largest cache, at
    /// least 256 MiB and at most 2 GiB, 4 points per octave, three rounds of two passes:
    /// about three seconds on 2 cores.
    pub fn default_for(caches: &[CacheLevel], threads_all: usize) -> Self {
        let l1 = caches
            .iter()
            .filter(|c| c.level == 1 && c.kind != "Instruction" && c.size_bytes > 0)
            .map(|c| c.size_bytes)
            .min()
            .unwrap_or(32 << 10);
        let llc = caches.iter().map(|c| c.size_bytes).max().unwrap_or(0);
        RooflineOpts {
            threads_all: threads_all.max(1),
            min_bytes: (l1 / 4).clamp(1 << 10, 8 << 10),
            max_bytes: llc.saturating_mul(4).clamp(256 << 20, 2 << 30),
            points_per_octave: 4,
            rounds: 3,
            passes: 2,
            pass_bytes: 16 << 20,
            peak_secs: 0.01,
        }
    }
}

/// Log-spaced working sets from `min` to `max` (both included), whole KiB, ascending.
pub fn sizes(min: u64, max: u64, points_per_octave: u32) -> Vec<u64> {
    let (min, max) = (min.max(1024), max.max(min.max(1024)));
    let step = 2f64.powf(1.0 / f64::from(points_per_octave.max(1)));
    let mut out = Vec::new();
    let mut s = min as f64;
    while s < max as f64 * 0.999 {
        out.push((s / 1024.0).round() as u64 * 1024);
        s *= step;
    }
    out.push(max / 1024 * 1024);
    out.dedup();
    out
}

/// `into` with each point's rate raised to `other`'s where that is higher.
fn keep_best(into: &mut Vec<CurvePoint>, other: Vec<CurvePoint>) {
    if into.is_empty() {
        *into = other;
        return;
    }
    for (a, b) in into.iter_mut().zip(other) {
        a.gbps = a.gbps.max(b.gbps);
    }
}

/// The higher of two peaks, per number.
fn best_peak(a: &mut IsaPeak, b: &IsaPeak) {
    a.int8_gops_1 = a.int8_gops_1.max(b.int8_gops_1);
    a.int8_gops_all = a.int8_gops_all.max(b.int8_gops_all);
    a.f32_gflops_1 = a.f32_gflops_1.max(b.f32_gflops_1);
    a.f32_gflops_all = a.f32_gflops_all.max(b.f32_gflops_all);
}

/// The peaks of every ISA this CPU runs, and the others with the reason.
fn measure_peaks(t: usize, secs: f64) -> (Vec<IsaPeak>, Vec<Skipped>) {
    let mut peaks = Vec::new();
    let mut skipped = Vec::new();
    for isa in Isa::ALL {
        let rate = |kind, threads| measure::isa_peak(isa, kind, threads, secs);
        let got = (|| {
            Ok::<_, String>(IsaPeak {
                isa: isa.name().into(),
                int8_gops_1: rate(PeakKind::Int8, 1)?,
                int8_gops_all: rate(PeakKind::Int8, t)?,
                f32_gflops_1: rate(PeakKind::F32, 1)?,
                f32_gflops_all: rate(PeakKind::F32, t)?,
            })
        })();
        match got {
            Ok(p) => peaks.push(p),
            Err(reason) => skipped.push(Skipped {
                isa: isa.name().into(),
                reason,
            }),
        }
    }
    (peaks, skipped)
}

/// Measures the roofline: the read curves (one thread, then `threads_all`) and the int8 and
/// f32 peaks of every ISA this CPU runs, in `rounds` rounds keeping each number's best (a
/// roof is an upper bound, and what disturbs a measurement on a shared machine, another
/// process or a neighbour VM, only ever lowers it), then the levels of the curves with
/// `caches` as hints.
pub fn measure(caches: &[CacheLevel], o: &RooflineOpts) -> Roofline {
    let t = o.threads_all.max(1);
    let sz = sizes(o.min_bytes, o.max_bytes, o.points_per_octave);
    let top = sz.last().copied().unwrap_or(1 << 20);
    // Written once, so page faults are not timed.
    let buf = vec![1u64; (top / 8) as usize];
    let (mut curve_1, mut curve_all) = (Vec::new(), Vec::new());
    let (mut peaks, mut skipped) = (Vec::<IsaPeak>::new(), Vec::new());
    for round in 0..o.rounds.max(1) {
        keep_best(
            &mut curve_1,
            measure::read_curve(&buf, &sz, 1, o.passes, o.pass_bytes),
        );
        if t > 1 {
            keep_best(
                &mut curve_all,
                measure::read_curve(&buf, &sz, t, o.passes, o.pass_bytes),
            );
        }
        let (p, s) = measure_peaks(t, o.peak_secs);
        if round == 0 {
            (peaks, skipped) = (p, s);
        } else {
            for (a, b) in peaks.iter_mut().zip(&p) {
                best_peak(a, b);
            }
        }
    }
    drop(buf);
    if t == 1 {
        curve_all = curve_1.clone();
    }
    let levels = levels(
        &curve_1,
        &curve_all,
        &hints(caches, 1),
        &hints(caches, t),
        &Detector::default(),
    );
    Roofline {
        levels,
        peaks,
        threads_all: t,
        skipped,
        read_isa: measure::read_isa().into(),
        curve_1,
        curve_all,
    }
}

fn fmt_bytes(b: u64) -> String {
    if b == u64::MAX {
        "-".into()
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", b >> 10)
    }
}

/// The roofline part of `tessera probe`'s table.
pub fn table(r: &Roofline) -> String {
    let mut s = format!(
        "\nroofline: read GB/s per level ({} loads; plateaus of the bandwidth-vs-working-set \
         curve; sizes are totals over threads)\n",
        r.read_isa
    );
    s.push_str(&format!(
        "| level | plateau, 1 thread | GB/s, 1 thread | plateau, {t} threads | GB/s, {t} threads |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
        t = r.threads_all
    ));
    for l in &r.levels {
        s.push_str(&format!(
            "| {} | {} – {} | {:.1} | {} – {} | {:.1} |\n",
            l.name,
            fmt_bytes(l.min_bytes),
            fmt_bytes(l.max_bytes),
            l.read_gbps_1,
            fmt_bytes(l.min_bytes_all),
            fmt_bytes(l.max_bytes_all),
            l.read_gbps_all
        ));
    }
    s.push_str(&format!(
        "\nroofline: peak per ISA (G ops/s; int8 multiply-add = 2 ops)\n\
         | isa | int8, 1 thread | int8, {t} threads | f32, 1 thread | f32, {t} threads |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
        t = r.threads_all
    ));
    for p in &r.peaks {
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            p.isa, p.int8_gops_1, p.int8_gops_all, p.f32_gflops_1, p.f32_gflops_all
        ));
    }
    for k in &r.skipped {
        s.push_str(&format!("not measured: {}: {}\n", k.isa, k.reason));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic ±`amp` multiplicative noise sequence.
    fn noise(seed: u64, amp: f64) -> impl FnMut() -> f64 {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1.0 + amp * ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        }
    }

    /// A staircase curve: `steps` of (GB/s, size where the step down to the next starts),
    /// each drop a smooth logistic over about an octave, 4 points per octave from 8 KiB to
    /// 256 MiB, with ±`amp` noise.
    fn stairs(steps: &[(f64, u64)], last: f64, amp: f64, seed: u64) -> Vec<CurvePoint> {
        let mut n = noise(seed, amp);
        sizes(8 << 10, 256 << 20, 4)
            .into_iter()
            .map(|b| {
                let x = (b as f64).log2();
                // ln rate: the last level plus every drop still ahead of this size.
                let mut y = last.ln();
                let mut above = last;
                for &(rate, at) in steps.iter().rev() {
                    let c = (at as f64).log2() + 0.5;
                    let w = 1.0 / (1.0 + ((x - c) * 6.0).exp());
                    y += w * (rate.ln() - above.ln());
                    above = rate;
                }
                CurvePoint {
                    bytes: b,
                    gbps: y.exp() * n(),
                }
            })
            .collect()
    }

    fn hint(level: u32, bytes: u64) -> Hint {
        Hint { level, bytes }
    }

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;

    fn names(l: &[CurveLevel]) -> Vec<&str> {
        l.iter().map(|l| l.name.as_str()).collect()
    }

    fn near(a: f64, b: f64, tol: f64) -> bool {
        (a / b - 1.0).abs() <= tol
    }

    /// Octaves between two sizes.
    fn oct(a: u64, b: u64) -> f64 {
        ((a as f64).log2() - (b as f64).log2()).abs()
    }

    #[test]
    fn four_levels_with_noise_are_found_with_their_rates_and_sizes() {
        let hints = [hint(1, 32 * KIB), hint(2, MIB), hint(3, 32 * MIB)];
        for seed in 1..=5 {
            let c = stairs(
                &[(200.0, 32 * KIB), (100.0, MIB), (45.0, 24 * MIB)],
                18.0,
                0.06,
                seed,
            );
            let p = Detector::default().plateaus(&c);
            assert_eq!(p.len(), 4, "seed {seed}: {p:?}");
            let l = name_levels(&c, &p, &hints);
            assert_eq!(names(&l), ["L1", "L2", "L3", "DRAM"], "seed {seed}");
            for (lvl, want) in l.iter().zip([200.0, 100.0, 45.0, 18.0]) {
                assert!(near(lvl.gbps, want, 0.08), "seed {seed}: {lvl:?} vs {want}");
            }
            for (lvl, end) in l.iter().zip([32 * KIB, MIB, 24 * MIB]) {
                assert!(
                    oct(lvl.max_bytes, end) <= 1.0,
                    "seed {seed}: {lvl:?} ends far from {end}"
                );
                assert!(lvl.max_bytes <= 2 * end, "{lvl:?}");
            }
            assert_eq!(l[3].max_bytes, u64::MAX);
        }
    }

    #[test]
    fn close_levels_as_on_zen_4_stay_apart() {
        // This machine's curve (2026-12-04): L2 and L3 differ by under 20 %.
        let hints = [hint(1, 32 * KIB), hint(2, MIB), hint(3, 32 * MIB)];
        for seed in 1..=5 {
            let c = stairs(
                &[(140.0, 32 * KIB), (114.0, 768 * KIB), (96.0, 12 * MIB)],
                20.0,
                0.02,
                seed,
            );
            let l = name_levels(&c, &Detector::default().plateaus(&c), &hints);
            assert_eq!(names(&l), ["L1", "L2", "L3", "DRAM"], "seed {seed}: {l:?}");
            assert!(
                near(l[1].gbps, 114.0, 0.03) && near(l[2].gbps, 96.0, 0.03),
                "{l:?}"
            );
        }
    }

    #[test]
    fn three_levels_without_an_l3_hint() {
        let c = stairs(&[(150.0, 48 * KIB), (60.0, 2 * MIB)], 25.0, 0.05, 7);
        let p = Detector::default().plateaus(&c);
        assert_eq!(p.len(), 3, "{p:?}");
        let l = name_levels(&c, &p, &[hint(1, 48 * KIB), hint(2, 2 * MIB)]);
        assert_eq!(names(&l), ["L1", "L2", "DRAM"]);
        assert!(near(l[1].gbps, 60.0, 0.08), "{l:?}");
        // Without any hints the plateaus are named in order.
        let l = name_levels(&c, &p, &[]);
        assert_eq!(names(&l), ["L1", "L2", "DRAM"]);
    }

    #[test]
    fn a_curve_without_an_l3_plateau_has_no_l3() {
        // L2 runs to 1 MiB, then the rate slides straight down to DRAM by 8 MiB.
        let mut n = noise(3, 0.04);
        let c: Vec<CurvePoint> = sizes(8 << 10, 256 << 20, 4)
            .into_iter()
            .map(|b| {
                let g = if b <= 32 * KIB {
                    200.0
                } else if b <= 48 * KIB {
                    140.0
                } else if b <= MIB {
                    100.0
                } else if b <= 8 * MIB {
                    // 100 → 20 over 3 octaves: a steep, steady slope.
                    100.0 * (b as f64 / MIB as f64).powf((0.2f64).log2() / 3.0)
                } else {
                    20.0
                };
                CurvePoint {
                    bytes: b,
                    gbps: g * n(),
                }
            })
            .collect();
        let p = Detector::default().plateaus(&c);
        let l = name_levels(
            &c,
            &p,
            &[hint(1, 32 * KIB), hint(2, MIB), hint(3, 32 * MIB)],
        );
        assert_eq!(names(&l), ["L1", "L2", "DRAM"], "{p:?}");
        // An L3-sized working set is served by DRAM, at the curve's rate in the slide.
        let r = roofline_of(
            &c,
            &c,
            &[hint(1, 32 * KIB), hint(2, MIB), hint(3, 32 * MIB)],
        );
        assert_eq!(r.level_for(4 * MIB).name, "DRAM");
        let bw = r.read_gbps(4 * MIB, 1);
        assert!(bw > 25.0 && bw < 80.0, "{bw}");
        assert!(near(r.read_gbps(64 * MIB, 1), 20.0, 0.06));
    }

    #[test]
    fn a_monotone_curve_has_no_cache_plateau() {
        // 30 % or 22 % less per octave everywhere: nothing is flat. (At 22 %, three points
        // half an octave apart stay within the band; only the slope test rejects them.)
        for per_octave in [0.7f64, 0.78] {
            let c: Vec<CurvePoint> = sizes(8 << 10, 256 << 20, 4)
                .into_iter()
                .map(|b| CurvePoint {
                    bytes: b,
                    gbps: 300.0 * per_octave.powf((b as f64 / 8192.0).log2()),
                })
                .collect();
            let p = Detector::default().plateaus(&c);
            assert!(p.is_empty(), "{per_octave}: {p:?}");
            let r = roofline_of(&c, &c, &[hint(1, 32 * KIB), hint(2, MIB)]);
            assert_eq!(r.levels.len(), 1);
            assert_eq!(r.levels[0].name, "DRAM");
            // DRAM is the largest size's rate; smaller sets follow the curve.
            assert!(near(r.levels[0].read_gbps_1, c.last().unwrap().gbps, 1e-9));
            assert!(near(
                r.read_gbps(64 * KIB, 1),
                300.0 * per_octave.powi(3),
                0.01
            ));
        }
        let c: Vec<CurvePoint> = sizes(8 << 10, 256 << 20, 4)
            .into_iter()
            .map(|b| CurvePoint {
                bytes: b,
                gbps: 1.0,
            })
            .collect();
        // A flat curve is one plateau: DRAM everywhere.
        let flat: Vec<CurvePoint> = c.iter().map(|p| CurvePoint { gbps: 40.0, ..*p }).collect();
        let l = name_levels(
            &flat,
            &Detector::default().plateaus(&flat),
            &[hint(1, 32 * KIB)],
        );
        assert_eq!(names(&l), ["DRAM"]);
        assert_eq!(l[0].min_bytes, 8 * KIB);
    }

    #[test]
    fn hints_scale_private_caches_by_threads() {
        let c = |level, kind: &str, size, shared: &str| CacheLevel {
            level,
            kind: kind.into(),
            size_bytes: size,
            shared_cpus: shared.into(),
        };
        let caches = [
            c(1, "Data", 32 * KIB, "0"),
            c(1, "Instruction", 32 * KIB, "0"),
            c(2, "Unified", MIB, "0"),
            c(3, "Unified", 32 * MIB, "0-1"),
        ];
        assert_eq!(
            hints(&caches, 1),
            [hint(1, 32 * KIB), hint(2, MIB), hint(3, 32 * MIB)]
        );
        assert_eq!(
            hints(&caches, 2),
            [hint(1, 64 * KIB), hint(2, 2 * MIB), hint(3, 32 * MIB)]
        );
    }

    fn roofline_of(c1: &[CurvePoint], call: &[CurvePoint], h: &[Hint]) -> Roofline {
        Roofline {
            levels: levels(c1, call, h, h, &Detector::default()),
            peaks: vec![],
            threads_all: 2,
            skipped: vec![],
            read_isa: "avx512".into(),
            curve_1: c1.to_vec(),
            curve_all: call.to_vec(),
        }
    }

    fn level(
        name: &str,
        max: u64,
        r1: f64,
        ra: f64,
        max_all: u64,
        min: u64,
        min_all: u64,
    ) -> Level {
        Level {
            name: name.into(),
            max_bytes: max,
            read_gbps_1: r1,
            read_gbps_all: ra,
            max_bytes_all: max_all,
            min_bytes: min,
            min_bytes_all: min_all,
        }
    }

    /// A hand-made roofline: 1 thread L1 ≤ 32K at 200, L2 ≤ 1M at 100, DRAM at 20; 4
    /// threads: L1 ≤ 128K at 800, L2 ≤ 4M at 400, DRAM at 40. No transitions (each plateau
    /// starts where the one before ends).
    fn hand() -> Roofline {
        Roofline {
            levels: vec![
                level("L1", 32 * KIB, 200.0, 800.0, 128 * KIB, 0, 0),
                level("L2", MIB, 100.0, 400.0, 4 * MIB, 32 * KIB, 128 * KIB),
                level("DRAM", u64::MAX, 20.0, 40.0, u64::MAX, MIB, 4 * MIB),
            ],
            peaks: vec![
                IsaPeak {
                    isa: "scalar".into(),
                    int8_gops_1: 10.0,
                    int8_gops_all: 40.0,
                    f32_gflops_1: 5.0,
                    f32_gflops_all: 20.0,
                },
                IsaPeak {
                    isa: "avx512".into(),
                    int8_gops_1: 500.0,
                    int8_gops_all: 2000.0,
                    f32_gflops_1: 120.0,
                    f32_gflops_all: 480.0,
                },
            ],
            threads_all: 4,
            skipped: vec![],
            read_isa: "avx512".into(),
            curve_1: vec![],
            curve_all: vec![],
        }
    }

    #[test]
    fn rows_are_measured_against_their_own_isa_level_and_thread_count() {
        let r = hand();
        // A measured ISA: its own peak, at the row's thread count (1 → _1, 4 → _all).
        assert_eq!(r.row_peak("avx512", true, 1), Some(500.0));
        assert_eq!(r.row_peak("scalar", false, 4), Some(20.0));
        // No such ISA measured (an external engine's "-", or an ISA without a peak here):
        // the best any ISA reached, never scalar's.
        assert_eq!(r.row_peak("-", true, 4), Some(2000.0));
        assert_eq!(r.row_peak("avx2", false, 1), Some(120.0));

        let mut row = crate::results::BenchRow {
            isa: "scalar".into(),
            n_threads: 1,
            model_size: 512 * KIB,
            ..Default::default()
        };
        let rp = crate::probe::RowPeaks {
            roofline: Some(r.clone()),
            fallback: crate::counters::Peaks {
                read_gbps: Some(7.0),
                int8_gops: Some(8.0),
                f32_gflops: Some(9.0),
            },
        };
        let p = rp.for_row(&row);
        // 512K with one thread is served from L2 (100 GB/s); scalar's one-thread peaks.
        assert_eq!(p.read_gbps, Some(100.0));
        assert_eq!((p.int8_gops, p.f32_gflops), (Some(10.0), Some(5.0)));
        // The same model on 4 threads fits the L1s together: 800 GB/s; scalar's _all.
        row.n_threads = 4;
        row.model_size = 100 * KIB;
        let p = rp.for_row(&row);
        assert_eq!(p.read_gbps, Some(800.0));
        assert_eq!(p.int8_gops, Some(40.0));
        // A model bigger than every cache reads at DRAM's rate.
        row.model_size = 64 * MIB;
        assert_eq!(rp.for_row(&row).read_gbps, Some(40.0));
        // A probe from before the roofline: the old whole-machine numbers, unchanged.
        let old = crate::probe::RowPeaks {
            roofline: None,
            ..rp
        };
        assert_eq!(old.for_row(&row), old.fallback);
    }

    #[test]
    fn level_for_picks_the_first_level_holding_the_set() {
        let r = hand();
        assert_eq!(r.level_for(1).name, "L1");
        assert_eq!(r.level_for(32 * KIB).name, "L1");
        assert_eq!(r.level_for(32 * KIB + 1).name, "L2");
        assert_eq!(r.level_for(MIB).name, "L2");
        assert_eq!(r.level_for(MIB + 1).name, "DRAM");
        assert_eq!(r.level_for(u64::MAX).name, "DRAM");
        // All threads: the totals over threads.
        assert_eq!(r.level_for_threads(100 * KIB, 4).name, "L1");
        assert_eq!(r.level_for_threads(3 * MIB, 4).name, "L2");
        assert_eq!(r.level_for_threads(3 * MIB, 64).name, "L2");
        // Halfway (2.5 of 1..4 threads) is not a thread count; 2 threads is a third of the
        // way: L1 up to 32K + 96K / 3 = 64K.
        assert_eq!(r.level_for_threads(64 * KIB, 2).name, "L1");
        assert_eq!(r.level_for_threads(64 * KIB + 1, 2).name, "L2");
        // An empty roofline still answers.
        let empty = Roofline {
            levels: vec![],
            ..hand()
        };
        assert_eq!(empty.level_for(5).name, "unmeasured");
    }

    #[test]
    fn roof_is_the_lower_of_peak_and_bandwidth() {
        let r = hand();
        // GEMV-like: 2 flops per byte of a 512 KiB (L2) matrix: 2 × 100 = 200 < 500.
        let ws = 512 * KIB;
        let roof = r.roof("avx512", true, 2.0 * ws as f64, ws as f64, ws, 1);
        assert_eq!(
            roof,
            Roof {
                gflops: 200.0,
                bound: "L2".into(),
                level: "L2".into()
            }
        );
        // The same with 4 threads: L2 at 400 → 800 < 2000.
        let roof = r.roof("avx512", true, 2.0 * ws as f64, ws as f64, ws, 4);
        assert_eq!((roof.gflops, roof.bound.as_str()), (800.0, "L2"));
        // In DRAM with 1 thread: 2 × 20.
        let roof = r.roof("avx512", true, 2e9, 1e9, 1 << 30, 1);
        assert_eq!(
            (roof.gflops, roof.bound.as_str(), roof.level.as_str()),
            (40.0, "DRAM", "DRAM")
        );
        // GEMM-like: 100 flops per byte in L2 → 10000 > the peak: compute bound.
        let roof = r.roof("avx512", true, 100.0 * ws as f64, ws as f64, ws, 1);
        assert_eq!(
            roof,
            Roof {
                gflops: 500.0,
                bound: "compute".into(),
                level: "L2".into()
            }
        );
        let roof = r.roof("avx512", false, 100.0 * ws as f64, ws as f64, ws, 4);
        assert_eq!((roof.gflops, roof.bound.as_str()), (480.0, "compute"));
        // Threads in between interpolate: 2 of 4 is a third of the way, 500 + 1500 / 3.
        let roof = r.roof("avx512", true, 1e12, 1.0, ws, 2);
        assert!((roof.gflops - 1000.0).abs() < 1e-9, "{roof:?}");
        // More threads than measured: the all-thread numbers.
        assert_eq!(r.roof("avx512", true, 1e12, 1.0, ws, 99).gflops, 2000.0);
        // Unknown ISAs, and ISAs not measured here, get scalar's peak.
        assert_eq!(r.roof("nosuch", true, 1e12, 1.0, ws, 1).gflops, 10.0);
        assert_eq!(r.roof("amx", false, 1e12, 1.0, ws, 4).gflops, 20.0);
        // amx-emu has no roof.
        let emu = r.roof("amx-emu", true, 1e12, 1.0, ws, 1);
        assert_eq!(
            (emu.gflops, emu.bound.as_str(), emu.level.as_str()),
            (0.0, "emulated", "L2")
        );
        // No traffic: compute bound.
        assert_eq!(r.roof("avx512", true, 1.0, 0.0, ws, 1).bound, "compute");
        // Nothing measured at all.
        let bare = Roofline {
            levels: vec![],
            peaks: vec![],
            ..hand()
        };
        let roof = bare.roof("avx512", true, 1.0, 1.0, ws, 1);
        assert_eq!((roof.gflops, roof.bound.as_str()), (0.0, "unmeasured"));
    }

    #[test]
    fn transitions_read_at_the_curve_rate_between_the_levels() {
        let mut r = hand();
        // L2's plateau starts at 128K: 32K..128K is the transition from L1 (200) to L2 (100).
        r.levels[1].min_bytes = 128 * KIB;
        let pt = |kib: u64, gbps| CurvePoint {
            bytes: kib * KIB,
            gbps,
        };
        r.curve_1 = vec![
            pt(16, 200.0),
            pt(32, 200.0),
            pt(64, 140.0),
            pt(96, 120.0),
            pt(128, 100.0),
            pt(256, 100.0),
        ];
        r.curve_all = r.curve_1.clone();
        assert_eq!(r.level_for(64 * KIB).name, "L2");
        // The smoothed curve (median of three: 200, 140, 120 at 64K → 140).
        assert!((r.read_gbps(64 * KIB, 1) - 140.0).abs() < 1e-9);
        let mid = r.read_gbps(80 * KIB, 1);
        assert!(mid > 120.0 && mid < 140.0, "{mid}");
        // On the plateau: the level's rate, whatever the curve says.
        assert_eq!(r.read_gbps(256 * KIB, 1), 100.0);
        assert_eq!(r.read_gbps(16 * KIB, 1), 200.0);
        // A curve above the upper level is clamped to it, one below the lower to that.
        r.curve_1[2].gbps = 400.0;
        r.curve_1[3].gbps = 400.0;
        assert_eq!(r.read_gbps(80 * KIB, 1), 200.0);
        r.curve_1[2].gbps = 10.0;
        r.curve_1[3].gbps = 10.0;
        assert_eq!(r.read_gbps(80 * KIB, 1), 100.0);
        // The roof follows: 2 flops per byte at 80K, the curve clamped to 100.
        let roof = r.roof(
            "avx512",
            true,
            160.0 * KIB as f64,
            80.0 * KIB as f64,
            80 * KIB,
            1,
        );
        assert_eq!((roof.gflops, roof.bound.as_str()), (200.0, "L2"));
    }

    #[test]
    fn levels_missing_on_one_curve_take_the_next_levels_rate() {
        let h = [hint(1, 32 * KIB), hint(2, MIB), hint(3, 32 * MIB)];
        let one = stairs(
            &[(200.0, 32 * KIB), (100.0, MIB), (45.0, 24 * MIB)],
            18.0,
            0.03,
            11,
        );
        // All threads: no L3 (L2 falls straight to DRAM's 40).
        let all = stairs(&[(400.0, 64 * KIB), (200.0, 2 * MIB)], 40.0, 0.03, 12);
        let r = roofline_of(&one, &all, &h);
        let l3 = r
            .levels
            .iter()
            .find(|l| l.name == "L3")
            .expect("L3 from one thread");
        assert!(near(l3.read_gbps_1, 45.0, 0.08));
        assert!(near(l3.read_gbps_all, 40.0, 0.08), "{l3:?}");
        let l2 = &r.levels[1];
        assert_eq!(l3.max_bytes_all, l2.max_bytes_all);
        assert_eq!(r.level_for_threads(8 * MIB, 2).name, "DRAM");
        assert_eq!(r.level_for_threads(8 * MIB, 1).name, "L3");
        // Boundaries ascend on both curves.
        for w in r.levels.windows(2) {
            assert!(w[0].max_bytes <= w[1].max_bytes && w[0].max_bytes_all <= w[1].max_bytes_all);
        }
    }

    #[test]
    fn sizes_are_log_spaced_whole_kib_from_min_to_max() {
        let s = sizes(8 << 10, 256 << 20, 4);
        assert_eq!(s.first(), Some(&(8 << 10)));
        assert_eq!(s.last(), Some(&(256 << 20)));
        assert_eq!(s.len(), 15 * 4 + 1);
        assert!(s.windows(2).all(|w| w[1] > w[0]));
        assert!(s.iter().all(|b| b % 1024 == 0));
        let o = RooflineOpts::default_for(&[], 2);
        assert!(o.min_bytes <= 8 << 10 && o.max_bytes >= 256 << 20);
    }

    #[test]
    fn a_short_measurement_has_every_part() {
        let caches = super::super::caches();
        let o = RooflineOpts {
            threads_all: 2,
            min_bytes: 8 << 10,
            max_bytes: 2 << 20,
            points_per_octave: 2,
            rounds: 2,
            passes: 1,
            pass_bytes: 1 << 16,
            peak_secs: 0.0005,
        };
        let r = measure(&caches, &o);
        assert_eq!(r.curve_1.len(), sizes(8 << 10, 2 << 20, 2).len());
        assert_eq!(r.curve_all.len(), r.curve_1.len());
        assert!(
            r.curve_1
                .iter()
                .chain(&r.curve_all)
                .all(|p| p.gbps.is_finite() && p.gbps > 0.0)
        );
        assert_eq!(r.levels.last().map(|l| l.name.as_str()), Some("DRAM"));
        // Every ISA is either measured or skipped with a reason; scalar always runs, AMX
        // runs exactly where the kernels crate says it may (not on this Zen 4).
        for isa in Isa::ALL {
            let measured = r.peaks.iter().find(|p| p.isa == isa.name());
            let skipped = r.skipped.iter().find(|s| s.isa == isa.name());
            assert!(measured.is_some() != skipped.is_some(), "{isa:?}");
            let runs = isa.is_available() && isa != Isa::AmxEmu;
            assert_eq!(measured.is_some(), runs, "{isa:?}: {skipped:?}");
            if let Some(p) = measured {
                for v in [
                    p.int8_gops_1,
                    p.int8_gops_all,
                    p.f32_gflops_1,
                    p.f32_gflops_all,
                ] {
                    assert!(v.is_finite() && v > 0.0, "{p:?}");
                }
            }
        }
        assert!(r.peaks.iter().any(|p| p.isa == "scalar"));
        let back: Roofline = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
