//! `tessera explain`: why one configuration is slower (or faster) than another.
//!
//! Each side of a matched test becomes a [`Breakdown`]: its time per token split into
//! parts — the built-in engine's ops (from `kernels_used[].ns`, which the engine measures
//! itself) or, for a profiled external engine, its hottest symbols (each symbol's share
//! of the samples times the measured time per token). [`attribute`] then lines the parts
//! of the two sides up and gives each its difference in ms/token and its share of the
//! gap; [`verdict`] names the class of ops that carries most of it, with its kernel and
//! how far that kernel is from its roof ([`crate::probe::roofline`]).
//!
//! Time per token is the timed region divided by the tokens it processed
//! (`Σ samples_ns / (repetitions × (n_prompt + n_gen))`), so pp and tg rows read in the
//! same unit. What no op accounts for (the time of an `eval` outside its ops, or the
//! samples outside the listed symbols) is its own part, "outside ops" / "other symbols",
//! so the parts always add up to the measured time.
//!
//! `tessera explain BASE [CAND]` is [`run`] of a [`Config`] (both in `run.rs`; the Config
//! is built from the flags in `cmd::explain`, which prints): the sides are loaded and
//! chosen in [`select`], paired and explained in [`pair`], and given this machine's roofline
//! ([`local_roofline`]) for roof %. This file keeps the analysis itself: breakdowns, roof
//! use, attribution and the verdict.

pub mod flame;
pub mod pair;
pub mod render;
pub mod report;
mod run;
pub mod select;

pub use run::{Config, Outcome, local_roofline, run};

use std::collections::BTreeMap;

use crate::compare::load::LoadedRow;
use crate::probe::roofline::Roofline;
use crate::results::{BenchRow, Status};

/// The part of a breakdown no op (or listed symbol) accounts for.
pub const OUTSIDE_OPS: &str = "outside ops";
/// Samples outside the profile's listed symbols.
pub const OTHER_SYMBOLS: &str = "other symbols";

/// Where a breakdown's parts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The built-in engine's own per-op timers.
    Ops,
    /// A sampled profile's symbols (`--profile`).
    Profile,
    /// Neither: only the total is known.
    Total,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Ops => "per-op timers",
            Source::Profile => "sampled profile",
            Source::Total => "total only",
        }
    }
}

/// One part of a side's time: an op (all its kernels) or a symbol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    /// Op name ("ffn_up", "attention") or symbol name.
    pub name: String,
    /// Kernels that ran it, most time first: (kernel, isa, ns). One entry for a symbol
    /// (its DSO as the "isa").
    pub kernels: Vec<(String, String, u64)>,
    /// Time, ns, over all timed repetitions of the pooled rows.
    pub ns: f64,
    pub flop: u64,
    pub bytes: u64,
    pub calls: u64,
}

impl Part {
    /// The kernel that took most of this part's time.
    pub fn main_kernel(&self) -> Option<&(String, String, u64)> {
        self.kernels.first()
    }

    /// The class the part belongs to for the verdict: "gemm ops", "gemv ops",
    /// "attention", "activation quantization", "element-wise ops", or for symbols the
    /// symbol's family ([`symbol_class`]).
    pub fn class(&self, source: Source) -> String {
        if source == Source::Profile {
            return symbol_class(&self.name).to_string();
        }
        let kernel = self.main_kernel().map_or("", |k| k.0.as_str());
        match self.name.as_str() {
            _ if kernel.starts_with("gemm") => "gemm ops".into(),
            _ if kernel.starts_with("gemv") => "gemv ops".into(),
            "attention" => "attention".into(),
            "quantize" => "activation quantization".into(),
            OUTSIDE_OPS => OUTSIDE_OPS.into(),
            _ => "element-wise ops".into(),
        }
    }
}

/// A symbol's family, for grouping profiled engines' time: the matmul kernels of the
/// llama.cpp family and tessera, attention, quantization, and the threading runtime.
pub fn symbol_class(symbol: &str) -> &'static str {
    let s = symbol.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if symbol == OTHER_SYMBOLS {
        OTHER_SYMBOLS
    } else if has(&["amx", "tdpb", "tinygemm"]) {
        "AMX matmul"
    } else if has(&[
        "gemm", "gemv", "mul_mat", "vec_dot", "matmul", "iqk_", "tile_x16",
    ]) {
        "matmul kernels"
    } else if has(&["flash_attn", "soft_max", "softmax", "attn", "attend"]) {
        "attention"
    } else if has(&["quantize", "from_float"]) {
        "activation quantization"
    } else if has(&[
        "barrier",
        "sched_yield",
        "futex",
        "spin",
        "omp_",
        "gomp",
        "pthread",
    ]) {
        "thread synchronisation"
    } else {
        "other code"
    }
}

/// One side of a matched test, pooled over its repeat rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    pub test: String,
    /// Tokens processed in all timed repetitions of all pooled rows.
    pub tokens: f64,
    /// Nanoseconds of all timed repetitions.
    pub timed_ns: f64,
    /// Mean tokens/s of the rows.
    pub avg_ts: f64,
    /// Parts, most time first; the last may be [`OUTSIDE_OPS`] / [`OTHER_SYMBOLS`].
    pub parts: Vec<Part>,
    pub source: Source,
    pub isa: String,
    pub threads: u32,
    /// Bytes of the model's tensors (the working set of the weight matmuls).
    pub model_size: u64,
    pub fingerprint: String,
    pub engine: String,
    /// The profile event when `source` is `Profile`.
    pub event: String,
}

impl Breakdown {
    /// ms per token of `ns` nanoseconds of this side's timed region.
    pub fn ms_per_token(&self, ns: f64) -> f64 {
        if self.tokens > 0.0 {
            ns / self.tokens / 1e6
        } else {
            0.0
        }
    }

    pub fn total_ms(&self) -> f64 {
        self.ms_per_token(self.timed_ns)
    }

    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// Timed nanoseconds and tokens of one row: its samples, or `avg_ns` × one repetition
/// when a producer left the samples out.
fn timed(row: &BenchRow) -> (f64, f64) {
    let tokens_per_rep = f64::from(row.n_prompt + row.n_gen);
    if row.samples_ns.is_empty() {
        (row.avg_ns as f64, tokens_per_rep)
    } else {
        let ns: u64 = row.samples_ns.iter().sum();
        (ns as f64, tokens_per_rep * row.samples_ns.len() as f64)
    }
}

/// The breakdown of one row (repeats of a configuration arrive pooled by
/// [`crate::compare::load::pool_repeats`], their samples and kernel records summed);
/// `None` when it did not run ok.
pub fn breakdown(loaded: &LoadedRow) -> Option<Breakdown> {
    let r = &loaded.row;
    if r.status != Status::Ok {
        return None;
    }
    let (timed_ns, tokens) = timed(r);
    let own = || r.kernels_used.iter().filter(|k| k.source.is_empty());
    let mut parts: Vec<Part> = Vec::new();
    let source = if own().any(|k| k.ns > 0) {
        for k in own() {
            let i = match parts.iter().position(|p| p.name == k.op) {
                Some(i) => i,
                None => {
                    parts.push(Part {
                        name: k.op.clone(),
                        ..Part::default()
                    });
                    parts.len() - 1
                }
            };
            let p = &mut parts[i];
            p.ns += k.ns as f64;
            p.flop += k.flop;
            p.bytes += k.bytes;
            p.calls += k.calls;
            match p
                .kernels
                .iter_mut()
                .find(|(n, i, _)| *n == k.kernel && *i == k.isa)
            {
                Some(e) => e.2 += k.ns,
                None => p.kernels.push((k.kernel.clone(), k.isa.clone(), k.ns)),
            }
        }
        for p in &mut parts {
            p.kernels.sort_by_key(|k| std::cmp::Reverse(k.2));
        }
        Source::Ops
    } else if let Some(prof) = &r.profile {
        // Each symbol's share of the samples, of the row's timed time.
        parts = prof
            .top
            .iter()
            .map(|s| Part {
                name: s.symbol.clone(),
                kernels: vec![(s.symbol.clone(), s.dso.clone(), 0)],
                ns: s.share * timed_ns,
                ..Part::default()
            })
            .collect();
        Source::Profile
    } else {
        Source::Total
    };
    parts.sort_by(|a, b| b.ns.total_cmp(&a.ns));
    // What the parts leave: time outside the ops, or the samples of unlisted symbols.
    let rest_ns = timed_ns - parts.iter().map(|p| p.ns).sum::<f64>();
    if rest_ns != 0.0 {
        parts.push(Part {
            name: if source == Source::Profile {
                OTHER_SYMBOLS
            } else {
                OUTSIDE_OPS
            }
            .to_string(),
            ns: rest_ns,
            ..Part::default()
        });
    }
    Some(Breakdown {
        test: r.test.clone(),
        tokens,
        timed_ns,
        avg_ts: r.avg_ts,
        parts,
        source,
        isa: r.isa.clone(),
        threads: r.n_threads,
        model_size: r.model_size,
        fingerprint: r.fingerprint.clone(),
        engine: r.engine.clone(),
        event: r
            .profile
            .as_ref()
            .map(|p| p.event.clone())
            .unwrap_or_default(),
    })
}

/// How fast one part ran against its roof.
#[derive(Debug, Clone, PartialEq)]
pub struct RoofUse {
    /// Achieved GFLOP/s (or GB/s for a part without arithmetic).
    pub achieved: f64,
    /// The roof in the same unit.
    pub roof: f64,
    /// "compute" or the memory level that bounds it ("L2", "DRAM").
    pub bound: String,
    /// The peak named in words ("the avx512 int8 peak", "the DRAM bandwidth").
    pub what: String,
}

impl RoofUse {
    pub fn pct(&self) -> f64 {
        if self.roof > 0.0 {
            100.0 * self.achieved / self.roof
        } else {
            0.0
        }
    }
}

/// Whether `kernel` multiplies quantized integers (its roof is the int8 peak).
fn int8_kernel(kernel: &str) -> bool {
    kernel.contains("q4_0") || kernel.contains("q8_0")
}

/// The working set a part runs over: the weight matmuls cycle through all of the model's
/// weights once per token, so theirs is the model; other ops touch only their own data
/// (what one call moves).
fn working_set(p: &Part, b: &Breakdown) -> u64 {
    let matmul = p
        .main_kernel()
        .is_some_and(|k| k.0.starts_with("gemm") || k.0.starts_with("gemv"));
    if matmul && b.model_size > 0 {
        b.model_size
    } else {
        p.bytes / p.calls.max(1)
    }
}

/// The roof use of a part of a built-in breakdown; `None` for parts without work counts,
/// for emulated kernels and without a roofline.
pub fn roof_use(p: &Part, b: &Breakdown, roofline: Option<&Roofline>) -> Option<RoofUse> {
    let roofline = roofline?;
    let (kernel, isa, _) = p.main_kernel()?;
    if p.ns <= 0.0 || (p.flop == 0 && p.bytes == 0) || isa.contains("emu") {
        return None;
    }
    let threads = b.threads.max(1) as usize;
    let ws = working_set(p, b);
    if p.flop == 0 {
        // Pure data movement: against the read rate of its working set at its thread
        // count, looked up as `Roofline::roof` looks up a bandwidth bound.
        let level = roofline.level_for_threads(ws, threads);
        return Some(RoofUse {
            achieved: p.bytes as f64 / p.ns,
            roof: roofline.read_gbps(ws, threads),
            bound: level.name.clone(),
            what: format!("the {} bandwidth", level.name),
        });
    }
    let int8 = int8_kernel(kernel);
    let roof = roofline.roof(isa, int8, p.flop as f64, p.bytes as f64, ws, threads);
    let what = if roof.bound == "compute" {
        format!("the {isa} {} peak", if int8 { "int8" } else { "f32" })
    } else {
        format!("the {} bandwidth roof", roof.bound)
    };
    Some(RoofUse {
        achieved: p.flop as f64 / p.ns,
        roof: roof.gflops,
        bound: roof.bound,
        what,
    })
}

/// One line of the attribution: a part on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub base: Option<Part>,
    pub cand: Option<Part>,
    pub base_ms: f64,
    pub cand_ms: f64,
    /// `cand_ms - base_ms`.
    pub delta_ms: f64,
    /// `delta_ms / gap` (0 when the gap is 0).
    pub share: f64,
}

/// A matched test explained.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub test: String,
    /// The configuration fields that tell the sides apart ("isa=avx2").
    pub base_label: String,
    pub cand_label: String,
    pub base: Breakdown,
    pub cand: Breakdown,
    /// `cand.total_ms() - base.total_ms()`: positive when the candidate is slower.
    pub gap_ms: f64,
    /// Lines, largest |delta| first.
    pub lines: Vec<Line>,
}

/// Lines up the parts of two breakdowns and gives each its share of the gap.
pub fn attribute(
    base: Breakdown,
    cand: Breakdown,
    base_label: &str,
    cand_label: &str,
) -> Explained {
    let gap_ms = cand.total_ms() - base.total_ms();
    let mut names: Vec<&str> = Vec::new();
    for p in base.parts.iter().chain(&cand.parts) {
        if !names.contains(&p.name.as_str()) {
            names.push(&p.name);
        }
    }
    let mut lines: Vec<Line> = names
        .into_iter()
        .map(|n| {
            let b = base.part(n).cloned();
            let c = cand.part(n).cloned();
            let base_ms = b.as_ref().map_or(0.0, |p| base.ms_per_token(p.ns));
            let cand_ms = c.as_ref().map_or(0.0, |p| cand.ms_per_token(p.ns));
            let delta_ms = cand_ms - base_ms;
            Line {
                name: n.to_string(),
                base: b,
                cand: c,
                base_ms,
                cand_ms,
                delta_ms,
                share: if gap_ms != 0.0 {
                    delta_ms / gap_ms
                } else {
                    0.0
                },
            }
        })
        .collect();
    lines.sort_by(|a, b| b.delta_ms.abs().total_cmp(&a.delta_ms.abs()));
    Explained {
        test: base.test.clone(),
        base_label: base_label.to_string(),
        cand_label: cand_label.to_string(),
        base,
        cand,
        gap_ms,
        lines,
    }
}

/// The class of parts that carries most of the gap, with its share of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub class: String,
    pub delta_ms: f64,
    pub share: f64,
    /// The candidate's part of the class whose change is largest.
    pub part: Part,
    /// The candidate's kernel of that part (or the base's, when the candidate lacks it).
    pub kernel: String,
    pub roof: Option<RoofUse>,
}

impl Explained {
    /// Parts grouped into classes ([`Part::class`]), with the class whose delta is largest
    /// in the gap's direction.
    pub fn main_cause(&self, roofline: Option<&Roofline>) -> Option<Cause> {
        let source = if self.base.source == self.cand.source {
            self.base.source
        } else {
            Source::Total
        };
        if source == Source::Total || self.gap_ms == 0.0 {
            return None;
        }
        let mut classes: BTreeMap<String, f64> = BTreeMap::new();
        for l in &self.lines {
            let any = l.cand.as_ref().or(l.base.as_ref())?;
            let class = if l.name == OUTSIDE_OPS {
                OUTSIDE_OPS.to_string()
            } else {
                any.class(source)
            };
            *classes.entry(class).or_default() += l.delta_ms;
        }
        let sign = self.gap_ms.signum();
        let (class, delta_ms) = classes
            .into_iter()
            .max_by(|a, b| (a.1 * sign).total_cmp(&(b.1 * sign)))?;
        if delta_ms * sign <= 0.0 {
            return None;
        }
        // The line of that class with the largest change in the gap's direction.
        let line = self
            .lines
            .iter()
            .filter(|l| {
                let any = l.cand.as_ref().or(l.base.as_ref());
                any.is_some_and(|p| {
                    if l.name == OUTSIDE_OPS {
                        class == OUTSIDE_OPS
                    } else {
                        p.class(source) == class
                    }
                })
            })
            .max_by(|a, b| (a.delta_ms * sign).total_cmp(&(b.delta_ms * sign)))?;
        // The candidate's part: its kernel is what made the difference, either way.
        let side = &self.cand;
        let part = line.cand.as_ref().or(line.base.as_ref())?;
        // The class's parts on that side, summed, for the roof figure.
        let mut sum = Part {
            name: class.clone(),
            kernels: part.kernels.clone(),
            ..Part::default()
        };
        for p in &side.parts {
            if p.name != OUTSIDE_OPS && p.class(source) == class {
                sum.ns += p.ns;
                sum.flop += p.flop;
                sum.bytes += p.bytes;
                sum.calls += p.calls;
            }
        }
        let roof = if source == Source::Ops {
            roof_use(&sum, side, roofline)
        } else {
            None
        };
        Some(Cause {
            kernel: part
                .main_kernel()
                .map_or_else(|| part.name.clone(), |k| k.0.clone()),
            class,
            delta_ms,
            share: delta_ms / self.gap_ms,
            part: part.clone(),
            roof,
        })
    }
}

/// The verdict in plain words, e.g. "pp512: amx is 3.0x slower than avx2; 85% of the
/// extra time is in gemm ops (gemm_q4_0_q8_0_amx) running at 2% of the amx int8 peak".
pub fn verdict(e: &Explained, roofline: Option<&Roofline>) -> String {
    let (b, c) = (e.base.total_ms(), e.cand.total_ms());
    if b <= 0.0 || c <= 0.0 {
        return format!("{}: no timing on one side", e.test);
    }
    let head = if (c - b).abs() / b < 0.01 {
        format!(
            "{}: {} and {} take the same time (within 1%)",
            e.test, e.cand_label, e.base_label
        )
    } else if c > b {
        format!(
            "{}: {} is {:.2}x slower than {}",
            e.test,
            e.cand_label,
            c / b,
            e.base_label
        )
    } else {
        format!(
            "{}: {} is {:.2}x faster than {}",
            e.test,
            e.cand_label,
            b / c,
            e.base_label
        )
    };
    let Some(cause) = e.main_cause(roofline).filter(|_| (c - b).abs() / b >= 0.01) else {
        return head;
    };
    let what = if c > b {
        "of the extra time"
    } else {
        "of the time saved"
    };
    let mut s = format!(
        "{head}; {:.0}% {what} is in {} ({})",
        100.0 * cause.share,
        cause.class,
        cause.kernel
    );
    if let Some(r) = &cause.roof {
        s.push_str(&format!(" running at {:.0}% of {}", r.pct(), r.what));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{KernelUse, Profile, ProfileSymbol};

    fn ku(op: &str, kernel: &str, ns: u64, flop: u64) -> KernelUse {
        KernelUse {
            op: op.into(),
            isa: "avx2".into(),
            kernel: kernel.into(),
            calls: 10,
            ns,
            flop,
            bytes: flop / 4,
            ..KernelUse::default()
        }
    }

    fn row(isa: &str, samples: Vec<u64>, kernels: Vec<KernelUse>) -> LoadedRow {
        let mut r = BenchRow {
            test: "pp512".into(),
            n_prompt: 512,
            isa: isa.into(),
            n_threads: 2,
            kernels_used: kernels,
            ..BenchRow::default()
        };
        r.set_samples(samples);
        LoadedRow {
            row: r,
            config: BTreeMap::new(),
        }
    }

    #[test]
    fn parts_add_up_to_the_timed_region_with_outside_ops() {
        let r = row(
            "avx2",
            vec![1_000_000_000, 1_000_000_000],
            vec![
                ku("ffn_up", "gemm_q4_0_q8_0", 1_200_000_000, 1),
                ku("attention", "attn_kv_f16", 600_000_000, 1),
            ],
        );
        let b = breakdown(&r).unwrap();
        assert_eq!(b.source, Source::Ops);
        assert_eq!(b.tokens, 1024.0);
        let names: Vec<_> = b.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ffn_up", "attention", OUTSIDE_OPS]);
        assert_eq!(b.part(OUTSIDE_OPS).unwrap().ns, 200_000_000.0);
        let total: f64 = b.parts.iter().map(|p| p.ns).sum();
        assert_eq!(total, b.timed_ns);
        // 2 s over 1024 tokens.
        assert!((b.total_ms() - 2000.0 / 1024.0).abs() < 1e-9);
    }

    #[test]
    fn the_gap_is_attributed_to_the_op_that_changed() {
        let base = row(
            "avx2",
            vec![1_000_000_000],
            vec![
                ku("ffn_up", "gemm_q4_0_q8_0", 500_000_000, 1),
                ku("attention", "attn_kv_f16", 400_000_000, 1),
            ],
        );
        let cand = row(
            "scalar",
            vec![3_000_000_000],
            vec![
                ku("ffn_up", "gemm_q4_0_q8_0", 2_400_000_000, 1),
                ku("attention", "attn_kv_f16", 500_000_000, 1),
            ],
        );
        let e = attribute(
            breakdown(&base).unwrap(),
            breakdown(&cand).unwrap(),
            "isa=avx2",
            "isa=scalar",
        );
        assert_eq!(e.lines[0].name, "ffn_up");
        // 1.9 s of the 2 s gap.
        assert!((e.lines[0].share - 0.95).abs() < 1e-9, "{:?}", e.lines[0]);
        let shares: f64 = e.lines.iter().map(|l| l.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        let v = verdict(&e, None);
        assert!(
            v.starts_with("pp512: isa=scalar is 3.00x slower than isa=avx2; 95% of the extra time is in gemm ops (gemm_q4_0_q8_0)"),
            "{v}"
        );
        // The other way round it is time saved.
        let e = attribute(e.cand, e.base, "isa=scalar", "isa=avx2");
        let v = verdict(&e, None);
        assert!(
            v.contains("3.00x faster") && v.contains("95% of the time saved is in gemm ops"),
            "{v}"
        );
    }

    #[test]
    fn repeats_pool_their_ops_and_samples() {
        let a = row(
            "avx2",
            vec![100],
            vec![ku("ffn_up", "gemv_q4_0_q8_0", 60, 1)],
        );
        let b = row(
            "avx2",
            vec![300],
            vec![ku("ffn_up", "gemv_q4_0_q8_0", 180, 1)],
        );
        // Repeats arrive pooled by the loader (samples and kernel records summed).
        let mut a = a;
        a.config.insert("test".into(), "pp512".into());
        let mut b = b;
        b.config = a.config.clone();
        let pooled = crate::compare::load::pool_repeats(vec![a, b]);
        assert_eq!(pooled.len(), 1);
        let bd = breakdown(&pooled[0]).unwrap();
        assert_eq!(bd.timed_ns, 400.0);
        assert_eq!(bd.part("ffn_up").unwrap().ns, 240.0);
        assert_eq!(bd.part("ffn_up").unwrap().calls, 20);
        assert_eq!(bd.part(OUTSIDE_OPS).unwrap().ns, 160.0);
    }

    #[test]
    fn profiled_rows_split_time_by_symbol_share() {
        let mut r = row("", vec![1_000_000], vec![]);
        r.row.engine = "llama-bench".into();
        r.row.profile = Some(Profile {
            event: "cpu-clock".into(),
            samples: 1000,
            top: vec![
                ProfileSymbol {
                    symbol: "ggml_gemm_q4_0_8x8_q8_0".into(),
                    dso: "llama-bench".into(),
                    share: 0.75,
                },
                ProfileSymbol {
                    symbol: "ggml_barrier".into(),
                    dso: "llama-bench".into(),
                    share: 0.05,
                },
            ],
            ..Profile::default()
        });
        let b = breakdown(&r).unwrap();
        assert_eq!(b.source, Source::Profile);
        assert_eq!(b.parts[0].name, "ggml_gemm_q4_0_8x8_q8_0");
        assert!((b.parts[0].ns - 750_000.0).abs() < 1e-6);
        let other = b.part(OTHER_SYMBOLS).unwrap();
        assert!((other.ns - 200_000.0).abs() < 1e-6);
        assert_eq!(b.parts[0].class(Source::Profile), "matmul kernels");
        assert_eq!(symbol_class("ggml_backend_amx_mul_mat"), "AMX matmul");
        assert_eq!(symbol_class("ggml_barrier"), "thread synchronisation");
    }

    #[test]
    fn rows_without_ops_or_profile_have_only_a_total() {
        let r = row("avx2", vec![1_000], vec![]);
        let b = breakdown(&r).unwrap();
        assert_eq!(b.source, Source::Total);
        assert_eq!(b.parts.len(), 1);
        assert_eq!(b.parts[0].name, OUTSIDE_OPS);
        let e = attribute(b.clone(), b, "a", "b");
        assert_eq!(
            verdict(&e, None),
            "pp512: b and a take the same time (within 1%)"
        );
    }

    #[test]
    fn failed_rows_give_no_breakdown() {
        let mut r = row("avx2", vec![1_000], vec![]);
        r.row.status = Status::Fault;
        assert!(breakdown(&r).is_none());
    }
}
