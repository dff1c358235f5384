//! Reads one side of a comparison: a run directory (its `results.jsonl`), a results
//! JSONL or CSV file, or llama-bench `-o json|jsonl|csv` output, keeping each row's
//! configuration as the file states it, so that a field the producer never wrote is
//! known to be unknown rather than mistaken for a default. A side may also be named
//! `baseline:NAME` ([`resolve_side`]), and has a short name for legends ([`side_name`]);
//! `--ignore` lists are checked against the key fields here ([`parse_ignore`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::results::parse_csv as read_csv_rows;
use crate::results::{BenchRow, Skipped, Status, parse_jsonl, warn_skipped};
use crate::stats;

/// Configuration fields that identify a measurement, in display order. `model` is the
/// file name (without directories) of `model_filename`; the rest are row fields of the
/// same name. `numa` and `pin` are read when a producer writes them.
pub const KEY_FIELDS: &[&str] = &[
    "model",
    "model_type",
    "engine",
    "backends",
    "n_gpu_layers",
    "n_threads",
    "isa",
    "tile",
    "numa",
    "pin",
    "n_batch",
    "n_ubatch",
    "type_k",
    "type_v",
    "test",
];

/// Splits and checks `--ignore` lists against the key fields.
pub fn parse_ignore(lists: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for item in lists.iter().flat_map(|l| l.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if item == "test" || !KEY_FIELDS.contains(&item) {
            let valid: Vec<&str> = KEY_FIELDS
                .iter()
                .copied()
                .filter(|f| *f != "test")
                .collect();
            bail!(
                "bad --ignore field '{item}': valid fields are {}",
                valid.join(", ")
            );
        }
        out.push(item.to_string());
    }
    Ok(out)
}

/// One row and the key fields its source actually stated (non-empty values only).
#[derive(Debug, Clone)]
pub struct LoadedRow {
    pub row: BenchRow,
    pub config: BTreeMap<String, String>,
}

/// One side of a comparison.
#[derive(Debug, Clone)]
pub struct Run {
    /// The path as given.
    pub path: PathBuf,
    /// The file the rows came from (`results.jsonl` inside a run directory).
    pub file: PathBuf,
    pub rows: Vec<LoadedRow>,
}

/// A side given as `baseline:NAME` is the run recorded by `tessera baseline set NAME RUN`
/// in the history database `db`; anything else is a path.
pub fn resolve_side(side: &Path, db: &Path) -> Result<PathBuf> {
    let Some(name) = side.to_str().and_then(|s| s.strip_prefix("baseline:")) else {
        return Ok(side.to_path_buf());
    };
    if !db.is_file() {
        bail!(
            "'{}' names a baseline, but there is no history database '{}': record one with `tessera baseline set {name} RUN`",
            side.display(),
            db.display()
        );
    }
    let h = crate::history::History::open(db)?;
    match h.baseline_path(name)? {
        Some(p) => Ok(PathBuf::from(p)),
        None => {
            let known: Vec<String> = h.baselines()?.into_iter().map(|b| b.0).collect();
            bail!(
                "no baseline named '{name}' in '{}': known baselines are {}",
                db.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

/// A short name for a side in legends: the directory or file name as given.
pub fn side_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Loads a run directory or a results file. An empty file is an error: comparing
/// against nothing is almost always a wrong path.
pub fn load_run(path: &Path) -> Result<Run> {
    let file = if path.is_dir() {
        let f = path.join("results.jsonl");
        if !f.is_file() {
            bail!(
                "'{}' is a directory without results.jsonl: give a run directory or a results file (jsonl, json, csv)",
                path.display()
            );
        }
        f
    } else {
        path.to_path_buf()
    };
    let text =
        fs::read_to_string(&file).with_context(|| format!("reading '{}'", file.display()))?;
    let (rows, skipped) =
        parse_rows(&text, &file).with_context(|| format!("in '{}'", file.display()))?;
    warn_skipped(&file, &skipped);
    let rows = pool_repeats(rows);
    if rows.is_empty() {
        bail!(
            "'{}' holds no result rows{}",
            file.display(),
            match skipped.len() {
                0 => String::new(),
                1 => " (its one line was unreadable)".to_string(),
                n => format!(" (all {n} lines were unreadable)"),
            }
        );
    }
    Ok(Run {
        path: path.to_path_buf(),
        file,
        rows,
    })
}

/// Pools rows that state the same configuration (a sweep's `--repeat` writes one row
/// per repeat, each a separate process): their samples are combined and the timing
/// summary recomputed, so a comparison sees every sample once. If any repeat did not
/// finish ok, the pooled row takes that repeat's status (a crash in one repeat of
/// three is still a crash). Order follows each configuration's first row.
pub fn pool_repeats(rows: Vec<LoadedRow>) -> Vec<LoadedRow> {
    let mut groups: Vec<Vec<LoadedRow>> = Vec::new();
    let mut index: BTreeMap<BTreeMap<String, String>, usize> = BTreeMap::new();
    for r in rows {
        match index.get(&r.config) {
            Some(&i) => groups[i].push(r),
            None => {
                index.insert(r.config.clone(), groups.len());
                groups.push(vec![r]);
            }
        }
    }
    groups.into_iter().map(merge).collect()
}

fn merge(mut group: Vec<LoadedRow>) -> LoadedRow {
    if group.len() == 1 {
        return group.remove(0);
    }
    let ok: Vec<&LoadedRow> = group
        .iter()
        .filter(|r| r.row.status == Status::Ok)
        .collect();
    let mut out = match group.iter().find(|r| r.row.status != Status::Ok) {
        Some(bad) => bad.clone(),
        None => group[0].clone(),
    };
    let samples_ts: Vec<f64> = ok
        .iter()
        .flat_map(|r| r.row.samples_ts.iter().copied())
        .collect();
    let samples_ns: Vec<u64> = ok
        .iter()
        .flat_map(|r| r.row.samples_ns.iter().copied())
        .collect();
    if samples_ts.is_empty() {
        // Rows without raw samples: the mean of their means is all there is.
        let means: Vec<f64> = ok.iter().map(|r| r.row.avg_ts).collect();
        out.row.avg_ts = stats::mean(&means).unwrap_or(0.0);
        out.row.stddev_ts = stats::stddev(&means).unwrap_or(0.0);
    } else {
        out.row.avg_ts = stats::mean(&samples_ts).unwrap_or(0.0);
        out.row.stddev_ts = stats::stddev(&samples_ts).unwrap_or(0.0);
    }
    if !samples_ns.is_empty() {
        let ns: Vec<f64> = samples_ns.iter().map(|&x| x as f64).collect();
        out.row.avg_ns = stats::mean(&ns).unwrap_or(0.0).round() as u64;
        out.row.stddev_ns = stats::stddev(&ns).unwrap_or(0.0).round() as u64;
    }
    out.row.samples_ts = samples_ts;
    out.row.samples_ns = samples_ns;
    out.row.kernels_used = pool_kernels(&ok);
    out
}

/// The kernel records of repeats, as one: the same kernel's calls, time and work summed
/// (the samples are pooled the same way), a profile-inferred share averaged.
fn pool_kernels(rows: &[&LoadedRow]) -> Vec<crate::results::KernelUse> {
    let mut out: Vec<crate::results::KernelUse> = Vec::new();
    let mut shares: Vec<(f64, usize)> = Vec::new();
    for k in rows.iter().flat_map(|r| &r.row.kernels_used) {
        let same = |u: &crate::results::KernelUse| {
            (&u.op, &u.isa, &u.kernel, &u.tile, &u.source)
                == (&k.op, &k.isa, &k.kernel, &k.tile, &k.source)
        };
        match out.iter().position(same) {
            Some(i) => {
                let u = &mut out[i];
                u.calls += k.calls;
                u.ns += k.ns;
                u.flop += k.flop;
                u.bytes += k.bytes;
                if let Some(s) = k.share {
                    shares[i].0 += s;
                    shares[i].1 += 1;
                }
            }
            None => {
                out.push(k.clone());
                shares.push((k.share.unwrap_or(0.0), usize::from(k.share.is_some())));
            }
        }
    }
    for (u, (sum, n)) in out.iter_mut().zip(shares) {
        if n > 0 {
            u.share = Some(sum / n as f64);
        }
    }
    out
}

/// Parses rows by content: a JSON array (llama-bench `-o json`), one JSON object
/// (possibly pretty-printed over several lines), JSON Lines, or CSV with a header (chosen
/// for a `.csv` extension or when the text is not JSON). JSON Lines and CSV follow the
/// shared policy for damaged files ([`crate::results::parse_jsonl`]): unreadable lines
/// are skipped and returned with why, for the caller to warn about.
pub fn parse_rows(text: &str, file: &Path) -> Result<(Vec<LoadedRow>, Vec<Skipped>)> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let is_csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv && trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(trimmed).context("not a JSON array of rows")?;
        let Value::Array(items) = value else {
            bail!("not a JSON array of rows");
        };
        let rows = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| from_value(v).with_context(|| format!("array element {}", i + 1)))
            .collect::<Result<_>>()?;
        return Ok((rows, Vec::new()));
    }
    let read = if is_csv || !trimmed.starts_with('{') {
        read_csv_rows(text.as_bytes())?
    } else if trimmed.trim_end().contains('\n')
        && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(trimmed)
    {
        // One object pretty-printed over several lines.
        return Ok((
            vec![from_value(value).context("the JSON object")?],
            Vec::new(),
        ));
    } else {
        parse_jsonl(text.as_bytes())?
    };
    let rows = read
        .rows
        .into_iter()
        .map(|r| LoadedRow {
            config: config_of(&r.row, &raw_fields(&r.fields)),
            row: r.row,
        })
        .collect();
    Ok((rows, read.skipped))
}

fn from_value(value: Value) -> Result<LoadedRow> {
    let row = BenchRow::from_value_ref(&value)?;
    let Value::Object(obj) = &value else {
        bail!("not a JSON object");
    };
    Ok(LoadedRow {
        config: config_of(&row, &raw_fields(obj)),
        row,
    })
}

/// A row's scalar fields as text, as the file wrote them.
fn raw_fields(obj: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    let mut raw = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        raw.insert(k.clone(), s);
    }
    raw
}

/// The key fields a row states. `raw` holds the source's fields as text; a field that
/// is missing or empty there is unknown and left out.
fn config_of(row: &BenchRow, raw: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    for &field in KEY_FIELDS {
        let value = match field {
            "model" => raw.get("model_filename").map(|p| {
                p.rsplit(['/', '\\'])
                    .next()
                    .unwrap_or(p.as_str())
                    .to_string()
            }),
            // Upstream llama-bench has no `test` field; the row derived it.
            "test" => Some(row.test.clone()),
            // GPU layers mean nothing to a CPU-only run (llama-bench reports its default
            // 99 there), so they identify a config only when a GPU backend is named.
            "n_gpu_layers" => {
                let backends = raw.get("backends").map(String::as_str).unwrap_or("");
                let gpu = backends
                    .split(',')
                    .any(|b| !b.trim().is_empty() && !b.trim().eq_ignore_ascii_case("cpu"));
                if gpu { raw.get(field).cloned() } else { None }
            }
            _ => raw.get(field).cloned(),
        };
        if let Some(v) = value {
            let v = v.trim().to_string();
            if !v.is_empty() {
                config.insert(field.to_string(), v);
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_unknown_not_defaults() {
        let (rows, _) = parse_rows(
            r#"{"n_threads": 2, "n_prompt": 0, "n_gen": 128, "avg_ns": 1, "avg_ts": 3.0, "model_filename": "/m/x.gguf", "backends": "CPU", "n_gpu_layers": 99}"#,
            Path::new("a.jsonl"),
        )
        .unwrap();
        let c = &rows[0].config;
        assert_eq!(c.get("model").map(String::as_str), Some("x.gguf"));
        assert_eq!(c.get("test").map(String::as_str), Some("tg128"));
        assert_eq!(c.get("n_threads").map(String::as_str), Some("2"));
        assert!(!c.contains_key("n_batch"), "{c:?}");
        assert!(!c.contains_key("isa"));
        assert!(!c.contains_key("n_gpu_layers"), "CPU-only rows ignore ngl");
    }

    #[test]
    fn repeats_of_one_config_are_pooled() {
        let line = |t: u32, ts: &str, status: &str| {
            format!(
                r#"{{"n_threads": {t}, "n_prompt": 512, "n_gen": 0, "avg_ns": 1, "avg_ts": 1.0, "samples_ts": [{ts}], "status": "{status}"}}"#
            )
        };
        let text = [
            line(2, "10, 12", "ok"),
            line(4, "20, 22", "ok"),
            line(2, "14, 16", "ok"),
        ]
        .join("\n");
        let rows = pool_repeats(parse_rows(&text, Path::new("r.jsonl")).unwrap().0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row.samples_ts, vec![10.0, 12.0, 14.0, 16.0]);
        assert_eq!(rows[0].row.avg_ts, 13.0);
        assert_eq!(rows[1].row.n_threads, 4);
        let text = [line(2, "10, 12", "ok"), line(2, "", "fault")].join("\n");
        let rows = pool_repeats(parse_rows(&text, Path::new("r.jsonl")).unwrap().0);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].row.status, Status::Fault);
        assert_eq!(rows[0].row.samples_ts, vec![10.0, 12.0]);
    }

    #[test]
    fn pooled_repeats_sum_their_kernel_records() {
        let line = |ns: u64, share: f64| {
            format!(
                r#"{{"n_threads": 2, "n_prompt": 0, "n_gen": 16, "avg_ns": 1, "avg_ts": 1.0, "samples_ts": [1.0], "kernels_used": [{{"op": "ffn_up", "isa": "avx2", "kernel": "gemv_q4_0_q8_0", "tile": "", "calls": 8, "ns": {ns}, "flop": 100, "bytes": 10}}, {{"op": "mul_mat", "isa": "", "kernel": "ggml-repack", "tile": "", "calls": 0, "source": "profile", "share": {share}}}]}}"#
            )
        };
        let text = [line(300, 0.5), line(500, 0.7)].join("\n");
        let rows = pool_repeats(parse_rows(&text, Path::new("r.jsonl")).unwrap().0);
        let k = &rows[0].row.kernels_used;
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(
            (k[0].calls, k[0].ns, k[0].flop, k[0].bytes),
            (16, 800, 200, 20)
        );
        assert!((k[1].share.unwrap() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn csv_and_json_array_are_detected() {
        let csv = "n_threads,n_prompt,n_gen,avg_ns,avg_ts,isa,samples_ts\n4,512,0,1,10.5,avx2,\"10 11\"\n";
        let (rows, _) = parse_rows(csv, Path::new("r.csv")).unwrap();
        assert_eq!(rows[0].config.get("isa").map(String::as_str), Some("avx2"));
        assert_eq!(rows[0].row.samples_ts, vec![10.0, 11.0]);
        let json = r#"[{"n_threads": 1, "n_prompt": 8, "n_gen": 0, "avg_ns": 1, "avg_ts": 2.0}]"#;
        assert_eq!(parse_rows(json, Path::new("r.json")).unwrap().0.len(), 1);
        let err = format!("{:#}", parse_rows("[1]", Path::new("r.json")).unwrap_err());
        assert!(err.contains("array element 1"), "{err}");
    }
}
