//! Reads result rows back from CSV: ours (`export::csv` writes it), or llama-bench's
//! `-o csv`. It sits beside the JSONL reader, under the same reading policy (`read`); the
//! writers are exporters and live in `export/`.

use std::io::Read;

use anyhow::Context as _;
use serde_json::Value;

use super::{BenchRow, FIELDS, ReadRow, ReadRows, RowError, STRING_FIELDS, Skipped};

/// Reads rows from CSV with a header: ours, or llama-bench's `-o csv` (columns are
/// matched by name; unknown columns are ignored, missing ones take the row's defaults).
/// The same policy as [`crate::results::parse_jsonl`]: a record that cannot be read (a
/// bad cell, a required field missing, a torn record) is skipped and listed with its
/// line and why; a row of a newer schema, or a file without a readable header, is an
/// error.
pub fn parse_csv(reader: impl Read) -> anyhow::Result<ReadRows> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let headers = csv.headers().context("reading the CSV header")?.clone();
    let mut out = ReadRows::default();
    for (i, record) in csv.records().enumerate() {
        // 1-based, after the header; a record's own line when the reader knows it.
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .or_else(|| record.as_ref().err().and_then(|e| e.position()))
            .map_or(i + 2, |p| p.line() as usize);
        match csv_row(&headers, record) {
            Ok((fields, row)) => out.rows.push(ReadRow { line, fields, row }),
            Err(CsvRowError::Row(e)) if !e.is_skippable() => {
                return Err(e).with_context(|| format!("line {line}"));
            }
            Err(e) => out.skipped.push(Skipped {
                line,
                reason: e.to_string(),
            }),
        }
    }
    Ok(out)
}

/// [`parse_csv`]'s rows alone, without printing its warnings.
pub fn read_csv(reader: impl Read) -> anyhow::Result<Vec<BenchRow>> {
    Ok(parse_csv(reader)?.into_rows())
}

/// Why one CSV record is not a row.
#[derive(Debug)]
enum CsvRowError {
    Record(csv::Error),
    Cell {
        name: String,
        cell: String,
        error: anyhow::Error,
    },
    Row(RowError),
}

impl std::fmt::Display for CsvRowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CsvRowError::Record(e) => write!(f, "not a CSV record ({e})"),
            CsvRowError::Cell { name, cell, error } => {
                write!(f, "column '{name}': bad value '{cell}' ({error})")
            }
            CsvRowError::Row(e) => write!(f, "{e}"),
        }
    }
}

fn csv_row(
    headers: &csv::StringRecord,
    record: Result<csv::StringRecord, csv::Error>,
) -> Result<(serde_json::Map<String, Value>, BenchRow), CsvRowError> {
    let record = record.map_err(CsvRowError::Record)?;
    let mut object = serde_json::Map::new();
    for (name, cell) in headers.iter().zip(record.iter()) {
        let name = name.trim();
        if !FIELDS.contains(&name) {
            continue;
        }
        match parse_csv_cell(name, cell) {
            Ok(Some(value)) => {
                object.insert(name.to_string(), value);
            }
            Ok(None) => {}
            Err(error) => {
                return Err(CsvRowError::Cell {
                    name: name.to_string(),
                    cell: cell.to_string(),
                    error,
                });
            }
        }
    }
    let value = Value::Object(object);
    let row = BenchRow::from_value_ref(&value).map_err(CsvRowError::Row)?;
    match value {
        Value::Object(fields) => Ok((fields, row)),
        _ => Ok((serde_json::Map::new(), row)),
    }
}

/// The JSON value of one cell; `None` for an empty non-string cell (so the field takes
/// its default, or is reported missing if required).
fn parse_csv_cell(name: &str, cell: &str) -> anyhow::Result<Option<Value>> {
    if STRING_FIELDS.contains(&name) {
        // The optional strings: an empty cell is null (as CSV writes null).
        if matches!(name, "error" | "profile_error") && cell.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Value::String(cell.to_string())));
    }
    let trimmed = cell.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str(trimmed) {
        Ok(value) => Ok(Some(value)),
        // llama-bench writes sample lists as space-separated numbers.
        Err(_) if name.starts_with("samples_") => {
            let items = trimmed
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(serde_json::from_str)
                .collect::<Result<Vec<Value>, _>>()?;
            Ok(Some(Value::Array(items)))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_reads_llama_bench_columns_and_reports_bad_cells() {
        let text = "\
build_commit,build_number,cpu_mask,model_type,n_threads,n_prompt,n_gen,avg_ns,avg_ts,samples_ns
\"2f5c5e9f\",\"3610\",\"0x0\",\"llama 150M Q4_0\",\"2\",\"0\",\"128\",\"376470588\",\"340.000000\",\"376000000 377000000\"
";
        let rows = read_csv(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].test, "tg128");
        assert_eq!(rows[0].build_number, 3610);
        assert_eq!(rows[0].samples_ns, vec![376_000_000, 377_000_000]);

        // Unreadable records are skipped by line, with why; the good ones are kept.
        let bad =
            "n_threads,n_prompt,n_gen,avg_ns,avg_ts\n2,512,0,fast,1.0\n2,512,0\n2,8,0,1,1.0\n";
        let read = parse_csv(bad.as_bytes()).unwrap();
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows[0].line, 4);
        assert_eq!(read.skipped.len(), 2, "{:?}", read.skipped);
        assert_eq!(read.skipped[0].line, 2);
        assert!(
            read.skipped[0]
                .reason
                .contains("column 'avg_ns': bad value 'fast'"),
            "{:?}",
            read.skipped
        );
        assert_eq!(read.skipped[1].line, 3);
        let missing = "n_threads,n_prompt\n2,512\n";
        let read = parse_csv(missing.as_bytes()).unwrap();
        assert!(read.rows.is_empty());
        assert!(read.skipped[0].reason.starts_with("not a result row"));
        let newer = "schema_version,n_threads,n_prompt,n_gen,avg_ns,avg_ts\n99,2,8,0,1,1.0\n";
        let err = format!("{:#}", parse_csv(newer.as_bytes()).unwrap_err());
        assert!(
            err.starts_with("line 2: schema_version 99 is newer"),
            "{err}"
        );
    }
}
