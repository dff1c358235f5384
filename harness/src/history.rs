//! The history store: every imported run's rows in one SQLite file, series of t/s per
//! configuration across runs, named baselines, and change-point detection on a series.
//!
//! Change points come from binary segmentation: split a segment where the two halves'
//! means differ most (the split that maximises the between-group sum of squares), keep
//! the split only if Welch's t-test on the halves is significant after a Bonferroni
//! correction for the number of splits tried and the step is at least the noise
//! threshold, then recurse into both halves. It is deterministic: the same series
//! always gives the same points.
//!
//! Also the series reports built from the store ([`series_reports`]) and their two
//! renderings, the markdown table and the chart ([`markdown`], [`history_chart`], drawn
//! where [`chart_files`] says).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::chart::{LegendCorner, LineChart, Marker, Series};
use crate::compare::load::{LoadedRow, Run};
use crate::compare::matching::{display_name, varying_fields};
use crate::stats::{Alternative, mean, welch_t_test};

/// One detected step in a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePoint {
    /// Index of the first point after the step.
    pub index: usize,
    /// Mean of the segment before and after the step (between neighbouring change points).
    pub before: f64,
    pub after: f64,
    /// after / before − 1.
    pub change: f64,
    /// Welch p-value of the split when it was found (uncorrected).
    pub p_value: f64,
    /// Found only now that the series' newest point is in: the same series without its
    /// newest point shows no step here (see [`mark_new`]). `tessera nightly` fails on a new
    /// slowdown, not on an old one the team has accepted.
    #[serde(default)]
    pub new: bool,
}

/// Parameters of the detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpParams {
    /// Fewest points on each side of a step.
    pub min_segment: usize,
    /// Family-wise significance level over the splits tried in one segment.
    pub alpha: f64,
    /// Smallest relative step that counts.
    pub threshold: f64,
}

impl Default for CpParams {
    fn default() -> Self {
        CpParams {
            min_segment: 3,
            alpha: 0.01,
            threshold: 0.02,
        }
    }
}

/// Change points of `values`, in order.
pub fn change_points(values: &[f64], p: &CpParams) -> Vec<ChangePoint> {
    let mut splits = Vec::new();
    segment(values, 0, values.len(), p, &mut splits);
    splits.sort_by_key(|s: &(usize, f64)| s.0);
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(splits.iter().map(|s| s.0))
        .chain(std::iter::once(values.len()))
        .collect();
    splits
        .iter()
        .enumerate()
        .map(|(i, &(index, p_value))| {
            // Segments are never empty; 0 would read as "no change" below.
            let before = mean(&values[bounds[i]..index]).unwrap_or(0.0);
            let after = mean(&values[index..bounds[i + 2]]).unwrap_or(0.0);
            ChangePoint {
                index,
                before,
                after,
                change: if before != 0.0 {
                    after / before - 1.0
                } else {
                    0.0
                },
                p_value,
                new: false,
            }
        })
        .collect()
}

/// Marks the change points of `values` that the series without its newest value does not
/// have. A step found earlier may move by a point or two as data arrives, so a point
/// counts as old when the shorter series has a step in the same direction fewer than
/// `min_segment` points away.
pub fn mark_new(values: &[f64], cps: &mut [ChangePoint], p: &CpParams) {
    let Some((_, older)) = values.split_last() else {
        return;
    };
    let before = change_points(older, p);
    let near = p.min_segment.max(2);
    for c in cps.iter_mut() {
        c.new = !before
            .iter()
            .any(|b| b.index.abs_diff(c.index) < near && (b.change < 0.0) == (c.change < 0.0));
    }
}

fn segment(v: &[f64], lo: usize, hi: usize, p: &CpParams, out: &mut Vec<(usize, f64)>) {
    let min = p.min_segment.max(2);
    if hi - lo < 2 * min {
        return;
    }
    let seg = &v[lo..hi];
    let n = seg.len();
    let total: f64 = seg.iter().sum();
    let mut left = 0.0;
    let mut best: Option<(usize, f64)> = None;
    for s in 1..n {
        left += seg[s - 1];
        if s < min || n - s < min {
            continue;
        }
        let (n1, n2) = (s as f64, (n - s) as f64);
        let d = left / n1 - (total - left) / n2;
        let score = n1 * n2 / n as f64 * d * d;
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((s, score));
        }
    }
    let Some((s, _)) = best else { return };
    let (a, b) = (&seg[..s], &seg[s..]);
    let Some(w) = welch_t_test(a, b, Alternative::TwoSided) else {
        return;
    };
    let tried = (n + 1 - 2 * min) as f64;
    let (ma, mb) = (mean(a).unwrap_or(0.0), mean(b).unwrap_or(0.0));
    let step = if ma != 0.0 {
        (mb / ma - 1.0).abs()
    } else {
        0.0
    };
    if w.p_value * tried < p.alpha && step >= p.threshold {
        out.push((lo + s, w.p_value));
        segment(v, lo, lo + s, p, out);
        segment(v, lo + s, hi, p, out);
    }
}

/// One point of a series: a run's value for one configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub run: String,
    pub time: String,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub status: String,
}

/// Where the history lives unless `--db` says otherwise (ignored by git).
pub const DEFAULT_DB: &str = "results/history.sqlite";

/// The SQLite history store.
pub struct History {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    time TEXT NOT NULL,
    build_commit TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS rows (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    series TEXT NOT NULL,
    config TEXT NOT NULL,
    test TEXT NOT NULL,
    avg_ts REAL NOT NULL,
    stddev_ts REAL NOT NULL,
    samples_ts TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rows_series ON rows(series);
CREATE TABLE IF NOT EXISTS baselines (
    name TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE
);
";

/// The configuration a row is stored under: its stated key fields plus the machine
/// fingerprint when the row has one, so that one database can hold several machines'
/// nights without mixing their series.
pub fn stored_config(r: &LoadedRow) -> BTreeMap<String, String> {
    let mut c = r.config.clone();
    if !r.row.fingerprint.is_empty() {
        c.insert("fingerprint".into(), r.row.fingerprint.clone());
    }
    c
}

/// The series key of a configuration: its stated key fields, sorted, "k=v;k=v".
pub fn series_key(config: &BTreeMap<String, String>) -> String {
    config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

impl History {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<History> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating '{}'", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening history database '{}'", path.display()))?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("'{}' is not a tessera history database", path.display()))?;
        // Databases written before runs had a fingerprint gain the column; nothing else
        // changes, so no row is lost.
        let has_fp: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'fingerprint'")?
            .exists([])?;
        if !has_fp {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")?;
        }
        Ok(History { conn })
    }

    /// Imports `run` under `name`, replacing an earlier import of the same name (so a
    /// re-run of a nightly job does not count twice). Returns the run's id.
    pub fn import(&mut self, run: &Run, name: &str) -> Result<i64> {
        let time = run
            .rows
            .iter()
            .map(|r| r.row.test_time.as_str())
            .filter(|t| !t.is_empty())
            .min()
            .map(str::to_string)
            .unwrap_or_else(crate::timefmt::now_rfc3339);
        let commit = run
            .rows
            .first()
            .map(|r| r.row.build_commit.clone())
            .unwrap_or_default();
        let fingerprint = run
            .rows
            .iter()
            .map(|r| r.row.fingerprint.as_str())
            .find(|f| !f.is_empty())
            .unwrap_or_default()
            .to_string();
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM runs WHERE name = ?1", params![name])?;
        tx.execute(
            "INSERT INTO runs (name, path, time, build_commit, fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                name,
                run.path.display().to_string(),
                time,
                commit,
                fingerprint
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare(
                "INSERT INTO rows (run_id, series, config, test, avg_ts, stddev_ts, samples_ts, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in &run.rows {
                let config = stored_config(r);
                stmt.execute(params![
                    id,
                    series_key(&config),
                    serde_json::to_string(&config)?,
                    r.row.test,
                    r.row.avg_ts,
                    r.row.stddev_ts,
                    serde_json::to_string(&r.row.samples_ts)?,
                    r.row.status.as_str(),
                ])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// Every series: key → its configuration.
    pub fn series(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        let mut stmt = self
            .conn
            .prepare("SELECT series, MIN(config) FROM rows GROUP BY series ORDER BY series")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (key, config) = row?;
            out.insert(key, serde_json::from_str(&config)?);
        }
        Ok(out)
    }

    /// The points of one series, oldest run first (by run time, then import order).
    /// A run with several rows of the series (repeats) contributes their mean.
    pub fn points(&self, series: &str) -> Result<Vec<Point>> {
        let mut stmt = self.conn.prepare(
            "SELECT runs.name, runs.time, AVG(rows.avg_ts), AVG(rows.stddev_ts), MIN(rows.status)
             FROM rows JOIN runs ON runs.id = rows.run_id
             WHERE rows.series = ?1
             GROUP BY runs.id ORDER BY runs.time, runs.id",
        )?;
        let rows = stmt.query_map(params![series], |r| {
            Ok(Point {
                run: r.get(0)?,
                time: r.get(1)?,
                avg_ts: r.get(2)?,
                stddev_ts: r.get(3)?,
                status: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Names every imported run, oldest first.
    pub fn runs(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, time, path FROM runs ORDER BY time, id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The newest imported run (by time, then import order) other than `except`, of the
    /// machine `fingerprint` when that is not empty: (name, path).
    pub fn latest_run(&self, fingerprint: &str, except: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, path FROM runs
                 WHERE name != ?1 AND (?2 = '' OR fingerprint = ?2)
                 ORDER BY time DESC, id DESC LIMIT 1",
                params![except, fingerprint],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records `run_name` (an imported run) as baseline `name`.
    pub fn set_baseline(&mut self, name: &str, run_name: &str) -> Result<()> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM runs WHERE name = ?1",
                params![run_name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            bail!("no run named '{run_name}' in the history: import it first");
        };
        self.conn.execute(
            "INSERT INTO baselines (name, run_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET run_id = excluded.run_id",
            params![name, id],
        )?;
        Ok(())
    }

    /// The path of the run named as baseline `name`, if there is one.
    pub fn baseline_path(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT runs.path FROM baselines JOIN runs ON runs.id = baselines.run_id
                 WHERE baselines.name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The baselines: name → (run name, run path).
    pub fn baselines(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT baselines.name, runs.name, runs.path FROM baselines
             JOIN runs ON runs.id = baselines.run_id ORDER BY baselines.name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

// What `tessera history show` and the reports built on it show of the store: the series
// of the selected configurations with their change points, as a table or a chart. They
// used to live in `cmd::history`; `nightly` and `report` need them too.

/// Which series a report covers, and the threshold of their change points: what `tessera
/// history show`, `report` and `nightly` ask of the history, with their flags already read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only series of this test (e.g. pp512).
    pub test: Option<String>,
    /// Only series whose configuration has every FIELD = VALUE.
    pub fields: Vec<(String, String)>,
    /// Smallest step that counts as a change, a fraction (0.02 = 2%).
    pub threshold: f64,
}

/// One series' report.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesReport {
    pub key: String,
    pub label: String,
    pub points: Vec<Point>,
    pub change_points: Vec<ChangePoint>,
}

/// Builds the series reports of the series `sel` selects, each with its change points.
pub fn series_reports(h: &History, sel: &Selection) -> Result<Vec<SeriesReport>> {
    let params = CpParams {
        threshold: sel.threshold,
        ..CpParams::default()
    };
    let all = h.series()?;
    let selected: Vec<_> = all
        .iter()
        .filter(|(_, c)| sel.test.as_ref().is_none_or(|t| c.get("test") == Some(t)))
        .filter(|(_, c)| sel.fields.iter().all(|(k, v)| c.get(k) == Some(v)))
        .collect();
    let fields = varying_fields(selected.iter().map(|(_, c)| *c));
    let mut out = Vec::new();
    for (key, config) in selected {
        let points: Vec<Point> = h.points(key)?;
        let ok: Vec<&Point> = points.iter().filter(|p| p.status == "ok").collect();
        let values: Vec<f64> = ok.iter().map(|p| p.avg_ts).collect();
        let mut cps = change_points(&values, &params);
        if points.last().is_some_and(|p| p.status == "ok") {
            mark_new(&values, &mut cps, &params);
        }
        let mut label = config.get("test").cloned().unwrap_or_default();
        for f in &fields {
            if let Some(v) = config.get(f) {
                label.push_str(&format!(" {}={v}", display_name(f)));
            }
        }
        // Change-point indices refer to the ok points; map them to all points.
        let ok_index: Vec<usize> = points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.status == "ok")
            .map(|(i, _)| i)
            .collect();
        let cps = cps
            .into_iter()
            .map(|mut c| {
                c.index = ok_index.get(c.index).copied().unwrap_or(c.index);
                c
            })
            .collect();
        out.push(SeriesReport {
            key: key.clone(),
            label,
            points,
            change_points: cps,
        });
    }
    Ok(out)
}

/// The markdown listing: one line per series, then its change points.
pub fn markdown(reports: &[SeriesReport]) -> String {
    let mut s = String::from(
        "| series | runs | latest t/s | change points |\n| --- | ---: | ---: | --- |\n",
    );
    for r in reports {
        let latest = r
            .points
            .iter()
            .rev()
            .find(|p| p.status == "ok")
            .map(|p| format!("{:.2}", p.avg_ts))
            .unwrap_or_else(|| "-".into());
        let cps: Vec<String> = r
            .change_points
            .iter()
            .map(|c| {
                let run = r.points.get(c.index).map(|p| p.run.as_str()).unwrap_or("?");
                let run = crate::export::md_escape(run);
                format!(
                    "{:+.1}% at {run} ({:.2} → {:.2}){}",
                    c.change * 100.0,
                    c.before,
                    c.after,
                    if c.new { " **new**" } else { "" }
                )
            })
            .collect();
        let cps = if cps.is_empty() {
            "none".to_string()
        } else {
            cps.join("; ")
        };
        s.push_str(&format!(
            "| {} | {} | {latest} | {cps} |\n",
            crate::export::md_escape(&r.label),
            r.points.len()
        ));
    }
    s
}

/// The chart of one series: t/s per run with ±stddev, change points as dashed lines.
pub fn history_chart(r: &SeriesReport) -> LineChart {
    let points = r
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.status == "ok")
        .map(|(i, p)| (i as f64, p.avg_ts, p.stddev_ts))
        .collect();
    LineChart {
        title: format!("{}: history", r.label),
        x_label: "run (oldest to newest)".into(),
        y_label: "throughput (tokens/s)".into(),
        series: vec![Series {
            name: r.label.clone(),
            points,
        }],
        markers: r
            .change_points
            .iter()
            .map(|c| Marker {
                x: c.index as f64 - 0.5,
                label: format!("{:+.1}%", c.change * 100.0),
                good: c.change > 0.0,
            })
            .collect(),
        x_ticks: Vec::new(),
        integer_x: true,
        legend: LegendCorner::LowerLeft,
    }
}

/// Where `history show --chart PATH` draws each report: PATH itself for one series; for
/// several, PATH with "-<series>" (the label as a file-safe slug) before the extension.
pub fn chart_files<'r>(
    path: &Path,
    reports: &'r [SeriesReport],
) -> Vec<(PathBuf, &'r SeriesReport)> {
    reports
        .iter()
        .map(|r| {
            let file = if reports.len() == 1 {
                path.to_path_buf()
            } else {
                suffixed(path, &crate::report::slug(&r.label))
            };
            (file, r)
        })
        .collect()
}

/// `dir/stem.ext` → `dir/stem-suffix.ext`.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{suffix}.{ext}"))
}

/// Whether some series' most recent change point is a slowdown (`history show
/// --fail-on-regression`; new or not, unlike nightly, which asks only of new ones).
pub fn newest_step_is_slowdown(reports: &[SeriesReport]) -> bool {
    reports
        .iter()
        .any(|r| r.change_points.last().is_some_and(|c| c.change < 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    fn noisy(seed: u64, levels: &[(usize, f64)], noise: f64) -> Vec<f64> {
        let mut r = SplitMix64::new(seed);
        levels
            .iter()
            .flat_map(|&(n, level)| (0..n).map(move |_| level))
            .map(|level| level * (1.0 + noise * r.normal()))
            .collect()
    }

    #[test]
    fn a_known_step_is_found_where_it_is() {
        for seed in 0..10 {
            let v = noisy(seed, &[(20, 100.0), (20, 90.0)], 0.01);
            let cps = change_points(&v, &CpParams::default());
            assert_eq!(cps.len(), 1, "seed {seed}: {cps:?}");
            assert_eq!(cps[0].index, 20, "seed {seed}");
            assert!((cps[0].change + 0.10).abs() < 0.01, "{cps:?}");
        }
    }

    #[test]
    fn two_steps_are_both_found() {
        let v = noisy(3, &[(15, 100.0), (15, 88.0), (15, 97.0)], 0.01);
        let idx: Vec<usize> = change_points(&v, &CpParams::default())
            .iter()
            .map(|c| c.index)
            .collect();
        assert_eq!(idx, vec![15, 30]);
    }

    #[test]
    fn flat_noisy_series_has_no_change_points() {
        for seed in 0..30 {
            let v = noisy(seed, &[(40, 100.0)], 0.03);
            let cps = change_points(&v, &CpParams::default());
            assert!(cps.is_empty(), "seed {seed}: {cps:?}");
        }
    }

    #[test]
    fn a_step_is_new_only_on_the_run_that_reveals_it() {
        let v = noisy(5, &[(10, 100.0), (6, 85.0)], 0.01);
        let p = CpParams::default();
        // With 3 slow points the step is found; without the third it is not: new.
        let mut cps = change_points(&v[..13], &p);
        mark_new(&v[..13], &mut cps, &p);
        assert_eq!(cps.len(), 1, "{cps:?}");
        assert!(cps[0].new);
        // One more run: the same step, now old.
        let mut cps = change_points(&v[..14], &p);
        mark_new(&v[..14], &mut cps, &p);
        assert_eq!(cps.len(), 1);
        assert!(!cps[0].new);
    }

    #[test]
    fn an_older_database_gains_the_fingerprint_column_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.sqlite");
        {
            let c = Connection::open(&db).unwrap();
            c.execute_batch(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                 path TEXT NOT NULL, time TEXT NOT NULL, build_commit TEXT NOT NULL);
                 INSERT INTO runs (name, path, time, build_commit)
                 VALUES ('night-1', '/r/1', '2026-11-01T02:00:00Z', 'abc');",
            )
            .unwrap();
        }
        let h = History::open(&db).unwrap();
        assert_eq!(h.runs().unwrap().len(), 1);
        assert_eq!(
            h.latest_run("", "other").unwrap(),
            Some(("night-1".into(), "/r/1".into()))
        );
        // An old run has no fingerprint: it is nobody's previous run.
        assert_eq!(h.latest_run("794954dfe7a02b57", "other").unwrap(), None);
    }

    #[test]
    fn small_steps_and_short_series_give_nothing() {
        // A clean 1% step is below the 2% threshold.
        let mut v = vec![100.0; 10];
        v.extend(vec![99.0; 10]);
        assert!(change_points(&v, &CpParams::default()).is_empty());
        assert!(change_points(&[1.0, 2.0, 3.0], &CpParams::default()).is_empty());
        assert!(change_points(&[], &CpParams::default()).is_empty());
        // Deterministic.
        let v = noisy(1, &[(20, 100.0), (20, 80.0)], 0.02);
        assert_eq!(
            change_points(&v, &CpParams::default()),
            change_points(&v, &CpParams::default())
        );
    }

    fn report(label: &str, changes: &[f64]) -> SeriesReport {
        SeriesReport {
            key: label.into(),
            label: label.into(),
            points: Vec::new(),
            change_points: changes
                .iter()
                .enumerate()
                .map(|(i, &change)| ChangePoint {
                    index: i + 1,
                    before: 100.0,
                    after: 100.0 * (1.0 + change),
                    change,
                    p_value: 0.0,
                    new: false,
                })
                .collect(),
        }
    }

    #[test]
    fn one_series_draws_to_the_path_several_get_a_suffix_each() {
        let one = [report("pp512", &[])];
        let files: Vec<PathBuf> = chart_files(Path::new("out/h.svg"), &one)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(files, [PathBuf::from("out/h.svg")]);
        let two = [report("pp512", &[]), report("tg128", &[])];
        let files: Vec<PathBuf> = chart_files(Path::new("out/h.png"), &two)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            files,
            [
                PathBuf::from("out/h-pp512.png"),
                PathBuf::from("out/h-tg128.png")
            ]
        );
    }

    #[test]
    fn only_the_newest_change_point_decides_a_slowdown() {
        assert!(!newest_step_is_slowdown(&[report("a", &[])]));
        assert!(!newest_step_is_slowdown(&[report("a", &[-0.1, 0.05])]));
        assert!(newest_step_is_slowdown(&[
            report("a", &[0.05]),
            report("b", &[0.05, -0.1])
        ]));
    }
}
