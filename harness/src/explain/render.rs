//! Markdown and charts of an explanation: per test the verdict, both sides' totals, and
//! one line per op (or symbol) with its ms/token on each side, the difference, its share
//! of the gap, and each side's kernel and roof %.

use super::{Explained, OTHER_SYMBOLS, OUTSIDE_OPS, Part, roof_use, verdict};
use crate::chart::{StackedBars, StackedGroup};
use crate::export::md_escape;
use crate::probe::roofline::Roofline;

fn ms(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn signed_ms(v: f64) -> String {
    if v >= 0.0 {
        format!("+{}", ms(v))
    } else {
        ms(v)
    }
}

/// "gemm_q4_0x16_q8_0 (avx512)", or "—".
fn kernel_cell(p: Option<&Part>) -> String {
    match p.and_then(Part::main_kernel) {
        Some((k, isa, _)) if !isa.is_empty() => md_escape(&format!("{k} ({isa})")),
        Some((k, _, _)) => md_escape(k),
        None => "—".to_string(),
    }
}

fn roof_cell(e: &Explained, p: Option<&Part>, cand: bool, roofline: Option<&Roofline>) -> String {
    let side = if cand { &e.cand } else { &e.base };
    match p.and_then(|p| roof_use(p, side, roofline)) {
        Some(r) => format!("{:.0}% of {}", r.pct(), r.bound),
        None => "—".to_string(),
    }
}

/// One test's section.
pub fn section(e: &Explained, roofline: Option<&Roofline>) -> String {
    let (bl, cl) = (md_escape(&e.base_label), md_escape(&e.cand_label));
    let mut s = format!(
        "## {}\n\n**{}**\n\n",
        md_escape(&e.test),
        md_escape(&verdict(e, roofline))
    );
    s.push_str(&format!(
        "| | base: {bl} | cand: {cl} |\n| --- | ---: | ---: |\n"
    ));
    s.push_str(&format!(
        "| t/s | {:.2} | {:.2} |\n| ms/token | {} | {} |\n| engine | {} | {} |\n| parts from | {} | {} |\n\n",
        e.base.avg_ts,
        e.cand.avg_ts,
        ms(e.base.total_ms()),
        ms(e.cand.total_ms()),
        md_escape(&e.base.engine),
        md_escape(&e.cand.engine),
        e.base.source.name(),
        e.cand.source.name(),
    ));
    let what = if e.base.source == super::Source::Profile {
        "symbol"
    } else {
        "op"
    };
    s.push_str(&format!(
        "| {what} | base ms/token | cand ms/token | Δ ms/token | share of gap | base kernel | base roof | cand kernel | cand roof |\n\
         | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |\n"
    ));
    for l in &e.lines {
        let named = l.name == OUTSIDE_OPS || l.name == OTHER_SYMBOLS;
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            if named {
                format!("*{}*", l.name)
            } else {
                md_escape(&l.name)
            },
            ms(l.base_ms),
            ms(l.cand_ms),
            signed_ms(l.delta_ms),
            if e.gap_ms != 0.0 {
                format!("{:.1}%", 100.0 * l.share)
            } else {
                "—".to_string()
            },
            kernel_cell(l.base.as_ref()),
            roof_cell(e, l.base.as_ref(), false, roofline),
            kernel_cell(l.cand.as_ref()),
            roof_cell(e, l.cand.as_ref(), true, roofline),
        ));
    }
    s.push('\n');
    s
}

/// The whole explanation as markdown: a heading, then one section per test.
pub fn markdown(
    all: &[Explained],
    base_name: &str,
    cand_name: &str,
    roofline: Option<&Roofline>,
    notes: &[String],
) -> String {
    let mut s = format!(
        "# Why {} differs from {}\n\n",
        md_escape(cand_name),
        md_escape(base_name)
    );
    s.push_str(
        "Time per token = timed region ÷ tokens processed; \"share of gap\" = the op's Δ ÷ the \
         total Δ (negative: it moved the other way). Roof = the lower of the ISA's measured \
         peak and arithmetic intensity × the bandwidth of the cache level the op's working set \
         fits in (the probe cached in the tessera cache directory).\n\n",
    );
    for n in notes {
        s.push_str(&format!("> {}\n", md_escape(n)));
    }
    if !notes.is_empty() {
        s.push('\n');
    }
    for e in all {
        s.push_str(&section(e, roofline));
    }
    s
}

/// Stacked per-op bars, base and candidate side by side for every test. Parts that are
/// under 2% of both sides of every test are folded into "other".
pub fn chart(all: &[Explained], base_name: &str, cand_name: &str) -> StackedBars {
    let mut names: Vec<String> = Vec::new();
    for e in all {
        for l in &e.lines {
            let big = l.base_ms.abs() >= 0.02 * e.base.total_ms()
                || l.cand_ms.abs() >= 0.02 * e.cand.total_ms();
            if big && !names.contains(&l.name) {
                names.push(l.name.clone());
            }
        }
    }
    let groups = all
        .iter()
        .map(|e| {
            let stack = |cand: bool| -> Vec<f64> {
                let mut v = vec![0.0; names.len() + 1];
                for l in &e.lines {
                    let x = if cand { l.cand_ms } else { l.base_ms }.max(0.0);
                    match names.iter().position(|n| *n == l.name) {
                        Some(i) => v[i] += x,
                        None => v[names.len()] += x,
                    }
                }
                v
            };
            StackedGroup {
                label: e.test.clone(),
                base: stack(false),
                cand: stack(true),
            }
        })
        .collect();
    let mut segments = names;
    segments.push("other".to_string());
    StackedBars {
        title: format!("time per token by op: {base_name} vs {cand_name}"),
        y_label: "ms / token".to_string(),
        base_name: base_name.to_string(),
        cand_name: cand_name.to_string(),
        segments,
        groups,
    }
}
