//! The per-op section of `tessera report`: for each test, the fastest and the slowest
//! configuration of the run side by side — where each one's time per token goes, the
//! difference explained as `tessera explain` explains it, a stacked chart, and each
//! one's kernel table.

use super::{
    Breakdown, Explained, OTHER_SYMBOLS, OUTSIDE_OPS, Source, attribute, breakdown, verdict,
};
use crate::compare::load::Run;

/// One kernel-table line of a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelLine {
    pub op: String,
    pub kernel: String,
    pub isa: String,
    pub calls: u64,
    pub ms_per_token: f64,
    pub share: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
}

/// A test's best and worst configuration, explained.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOps {
    pub test: String,
    pub best_label: String,
    pub worst_label: String,
    pub explained: Explained,
}

/// For each test with at least two configurations that ran ok, the fastest (base) and
/// the slowest (candidate); a test with one configuration is explained against itself
/// (its split alone). `labels[i]` names row `i`. Tests whose rows have neither per-op
/// times nor profiles are left out.
pub fn best_and_worst(run: &Run, labels: &[String]) -> Vec<TestOps> {
    let mut tests: Vec<&str> = Vec::new();
    for r in &run.rows {
        if !tests.contains(&r.row.test.as_str()) {
            tests.push(&r.row.test);
        }
    }
    let mut out = Vec::new();
    for t in tests {
        let mut ok: Vec<(usize, Breakdown)> = run
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.row.test == t)
            .filter_map(|(i, r)| breakdown(r).map(|b| (i, b)))
            .filter(|(_, b)| b.source != Source::Total)
            .collect();
        if ok.is_empty() {
            continue;
        }
        ok.sort_by(|a, b| a.1.total_ms().total_cmp(&b.1.total_ms()));
        let (bi, best) = ok.first().cloned().expect("not empty");
        let (wi, worst) = ok.last().cloned().expect("not empty");
        let (bl, wl) = (labels[bi].clone(), labels[wi].clone());
        out.push(TestOps {
            test: t.to_string(),
            explained: attribute(best, worst, &bl, &wl),
            best_label: bl,
            worst_label: wl,
        });
    }
    out
}

/// The kernel table of one side: one line per (op, kernel), most time first.
pub fn kernel_lines(b: &Breakdown) -> Vec<KernelLine> {
    let mut lines: Vec<KernelLine> = Vec::new();
    for p in &b.parts {
        if p.name == OUTSIDE_OPS || p.name == OTHER_SYMBOLS {
            continue;
        }
        // One line per part; its main kernel names it (an op that ran two kernels, e.g. a
        // GEMM and the last token's GEMV, shows the one that took longer).
        let (kernel, isa) = p
            .main_kernel()
            .map_or((p.name.clone(), String::new()), |k| {
                (k.0.clone(), k.1.clone())
            });
        let per_s = |x: u64| (p.ns > 0.0 && x > 0).then(|| x as f64 / p.ns);
        lines.push(KernelLine {
            op: p.name.clone(),
            kernel,
            isa,
            calls: p.calls,
            ms_per_token: b.ms_per_token(p.ns),
            share: if b.timed_ns > 0.0 {
                p.ns / b.timed_ns
            } else {
                0.0
            },
            gflops: per_s(p.flop),
            gbps: per_s(p.bytes),
        });
    }
    lines
}

/// The verdict line of a test (no roofline in a report: `tessera explain` adds it).
pub fn test_verdict(t: &TestOps) -> String {
    if t.best_label == t.worst_label {
        format!("{}: one configuration ({})", t.test, t.best_label)
    } else {
        verdict(&t.explained, None)
    }
}
