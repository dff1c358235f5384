//! Reads one side of a comparison: a run directory (its `results.jsonl`), a results
//! JSONL or CSV file, or llama-bench `-o json|jsonl|csv` output, keeping each row's
//! configuration as the file states it, so that a field the producer never wrote is
//! known to be unknown rather than mistaken for a default.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::stats;
use crate::export::read_csv;
use crate::results::{BenchRow, Status};

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
    let rows = parse_rows(&text, &file).with_context(|| format!("in '{}'", file.display()))?;
    let rows = pool_repeats(rows);
    if rows.is_empty() {
        bail!("'{}' holds no result rows", file.display());
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
        out.row.avg_ts = stats::mean(&means);
        out.row.stddev_ts = stats::stddev(&means);
    } else {
        out.row.avg_ts = stats::mean(&samples_ts);
        out.row.stddev_ts = stats::stddev(&samples_ts);
    }
    if !samples_ns.is_empty() {
        let ns: Vec<f64> = samples_ns.iter().map(|&x| x as f64).collect();
        out.row.avg_ns = stats::mean(&ns).round() as u64;
        out.row.stddev_ns = stats::stddev(&ns).round() as u64;
    }
    out.row.samples_ts = samples_ts;
    out.row.samples_ns = samples_ns;
    out
}

/// Parses rows by content: a JSON array (llama-bench `-o json`), JSON Lines, or CSV
/// with a header (chosen for a `.csv` extension or when the text is not JSON).
pub fn parse_rows(text: &str, file: &Path) -> Result<Vec<LoadedRow>> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let is_csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv && trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(trimmed).context("not a JSON array of rows")?;
        let Value::Array(items) = value else {
            bail!("not a JSON array of rows");
        };
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| from_value(v).with_context(|| format!("array element {}", i + 1)))
            .collect();
    }
    if !is_csv && trimmed.starts_with('{') {
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                // A single pretty-printed object spans lines; accept it whole.
                Err(_) if i == 0 => match serde_json::from_str::<Value>(trimmed) {
                    Ok(v) => return Ok(vec![from_value(v).context("the JSON object")?]),
                    Err(e) => return Err(e).context("line 1: not JSON"),
                },
                Err(e) => return Err(e).with_context(|| format!("line {}: not JSON", i + 1)),
            };
            rows.push(from_value(value).with_context(|| format!("line {}", i + 1))?);
        }
        return Ok(rows);
    }
    parse_csv(text)
}

fn from_value(value: Value) -> Result<LoadedRow> {
    let Value::Object(obj) = &value else {
        bail!("not a JSON object");
    };
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
    let row = BenchRow::from_value(value).context("not a result row")?;
    Ok(LoadedRow {
        config: config_of(&row, &raw),
        row,
    })
}

fn parse_csv(text: &str) -> Result<Vec<LoadedRow>> {
    let rows = read_csv(text.as_bytes())?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("reading the CSV header")?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for (row, record) in rows.into_iter().zip(reader.records()) {
        let record = record.context("reading a CSV record")?;
        let raw: BTreeMap<String, String> = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        out.push(LoadedRow {
            config: config_of(&row, &raw),
            row,
        });
    }
    Ok(out)
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
        let rows = parse_rows(
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
        let rows = pool_repeats(parse_rows(&text, Path::new("r.jsonl")).unwrap());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row.samples_ts, vec![10.0, 12.0, 14.0, 16.0]);
        assert_eq!(rows[0].row.avg_ts, 13.0);
        assert_eq!(rows[1].row.n_threads, 4);
        let text = [line(2, "10, 12", "ok"), line(2, "", "fault")].join("\n");
        let rows = pool_repeats(parse_rows(&text, Path::new("r.jsonl")).unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].row.status, Status::Fault);
        assert_eq!(rows[0].row.samples_ts, vec![10.0, 12.0]);
    }

    #[test]
    fn csv_and_json_array_are_detected() {
        let csv = "n_threads,n_prompt,n_gen,avg_ns,avg_ts,isa,samples_ts\n4,512,0,1,10.5,avx2,\"10 11\"\n";
        let rows = parse_rows(csv, Path::new("r.csv")).unwrap();
        assert_eq!(rows[0].config.get("isa").map(String::as_str), Some("avx2"));
        assert_eq!(rows[0].row.samples_ts, vec![10.0, 11.0]);
        let json = r#"[{"n_threads": 1, "n_prompt": 8, "n_gen": 0, "avg_ns": 1, "avg_ts": 2.0}]"#;
        assert_eq!(parse_rows(json, Path::new("r.json")).unwrap().len(), 1);
        let err = format!("{:#}", parse_rows("[1]", Path::new("r.json")).unwrap_err());
        assert!(err.contains("array element 1"), "{err}");
    }
}
