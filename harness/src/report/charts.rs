//! The report's charts: thread scaling per test, tile heatmaps, and how every chart
//! becomes a file under `charts/` (named by [`slug`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::chart::{self, Heatmap, LineChart, Series};
use crate::compare::load::{LoadedRow, Run};
use crate::compare::matching::{label, varying_fields};
use crate::results::Status;

pub(super) fn save_chart(
    chart: &impl chart::Chart,
    out: &Path,
    file: &str,
    all: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = out.join(file);
    chart::save(chart, &path).with_context(|| format!("drawing '{}'", path.display()))?;
    all.push(path);
    Ok(())
}

/// A file-name-safe form of a label: "pp512 @ d512" → "pp512-d512".
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// One chart per test whose ok rows span at least two thread counts: a line per ISA
/// (or engine when no ISA is recorded), each point the best row at that thread count
/// (other axes such as tile vary within it).
pub fn scaling_charts(run: &Run) -> Vec<(String, LineChart)> {
    let mut by_test: BTreeMap<&str, Vec<&LoadedRow>> = BTreeMap::new();
    for r in run.rows.iter().filter(|r| r.row.status == Status::Ok) {
        by_test.entry(r.row.test.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (test, rows) in by_test {
        let threads: BTreeSet<u32> = rows.iter().map(|r| r.row.n_threads).collect();
        if threads.len() < 2 {
            continue;
        }
        let mut best: BTreeMap<String, BTreeMap<u32, (f64, f64)>> = BTreeMap::new();
        for r in rows {
            let name = series_name(r);
            let e = best
                .entry(name)
                .or_default()
                .entry(r.row.n_threads)
                .or_insert((f64::MIN, 0.0));
            if r.row.avg_ts > e.0 {
                *e = (r.row.avg_ts, r.row.stddev_ts);
            }
        }
        let series = best
            .into_iter()
            .map(|(name, pts)| Series {
                name,
                points: pts
                    .into_iter()
                    .map(|(t, (m, s))| (t as f64, m, s))
                    .collect(),
            })
            .collect();
        out.push((
            test.to_string(),
            LineChart {
                title: format!("{test}: throughput vs threads"),
                x_label: "threads".into(),
                y_label: "throughput (tokens/s)".into(),
                series,
                markers: Vec::new(),
                x_ticks: Vec::new(),
                integer_x: true,
                legend: chart::LegendCorner::UpperLeft,
            },
        ));
    }
    out
}

fn series_name(r: &LoadedRow) -> String {
    if !r.row.isa.is_empty() {
        r.row.isa.clone()
    } else if !r.row.engine.is_empty() {
        r.row.engine.clone()
    } else {
        "default".into()
    }
}

/// One heatmap per configuration-except-the-tile (test, ISA, threads, ...) whose ok
/// rows cover at least two tile shapes, so that every cell differs only in its tile.
pub fn heatmaps(run: &Run) -> Result<Vec<(String, Heatmap)>> {
    let fields: Vec<String> = varying_fields(run.rows.iter().map(|r| &r.config))
        .into_iter()
        .filter(|f| f != "tile")
        .collect();
    let mut groups: BTreeMap<(String, String), Vec<(String, f64)>> = BTreeMap::new();
    for r in run
        .rows
        .iter()
        .filter(|r| r.row.status == Status::Ok && !r.row.tile.is_empty())
    {
        let mut rest = r.config.clone();
        rest.remove("tile");
        let name = label(&[&rest], &fields, &series_name(r));
        groups
            .entry((r.row.test.clone(), name))
            .or_default()
            .push((r.row.tile.clone(), r.row.avg_ts));
    }
    let mut out = Vec::new();
    for ((test, name), pts) in groups {
        let tiles: BTreeSet<&str> = pts.iter().map(|p| p.0.as_str()).collect();
        if tiles.len() < 2 {
            continue;
        }
        let key = format!("{test} {name}");
        let h = Heatmap::from_tiles(
            &format!("{test} by tile: {name}"),
            "throughput (tokens/s)",
            &pts,
        )
        .with_context(|| format!("tiles of {key}"))?;
        out.push((key, h));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("pp512 @ d512"), "pp512-d512");
        assert_eq!(slug("tg128 amx-emu"), "tg128-amx-emu");
        assert_eq!(slug("a/b\\c"), "a-b-c");
    }
}
