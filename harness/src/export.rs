//! Exporters that stream result rows as md, csv, json or jsonl.
//!
//! Every exporter writes and flushes each row as soon as it gets it, as llama-bench
//! prints its table progressively: a config that crashes or hangs later never costs the
//! rows already measured. All four formats carry the same rows; md is for people, the
//! others for tools.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use anyhow::Context as _;
use serde_json::Value;

use crate::results::{
    BenchRow, FIELDS, LLAMA_BENCH_DEFAULT_N_BATCH, LLAMA_BENCH_DEFAULT_N_UBATCH,
    LLAMA_BENCH_DEFAULT_TYPE_KV, ReadRow, ReadRows, RowError, STRING_FIELDS, Skipped, test_name,
};

/// Writes rows one at a time: `begin`, then `row` per finished measurement, then `end`.
pub trait Exporter {
    /// Writes whatever precedes the rows (a table header, "[").
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()>;
    /// Writes one row and flushes `out`.
    fn row(&mut self, out: &mut dyn Write, row: &BenchRow) -> io::Result<()>;
    /// Writes whatever follows the rows ("]") and flushes `out`.
    fn end(&mut self, out: &mut dyn Write) -> io::Result<()>;
}

/// An output format, as named on the command line (`-o md|csv|json|jsonl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Md,
    Csv,
    Json,
    Jsonl,
}

impl OutputFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Md,
        OutputFormat::Csv,
        OutputFormat::Json,
        OutputFormat::Jsonl,
    ];

    /// The name on the command line, also the usual file extension.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Md => "md",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An output format name that is not one of md, csv, json, jsonl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat {
    /// The name as given.
    pub value: String,
}

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<&str> = OutputFormat::ALL.iter().map(|f| f.name()).collect();
        write!(
            f,
            "unknown output format '{}': valid formats are {}",
            self.value,
            valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat {
                value: s.to_string(),
            })
    }
}

/// Optional columns of the markdown table. As in llama-bench, `n_batch`, `n_ubatch`,
/// `type_k` and `type_v` appear only when they vary across configs or differ from
/// llama-bench's defaults (2048, 512, f16, f16); the caller knows every config up
/// front and says which.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableColumns {
    pub n_batch: bool,
    pub n_ubatch: bool,
    pub type_k: bool,
    pub type_v: bool,
}

impl TableColumns {
    /// Decides the columns from the values each parameter takes across the configs.
    pub fn from_values<K: AsRef<str>, V: AsRef<str>>(
        n_batch: &[u32],
        n_ubatch: &[u32],
        type_k: &[K],
        type_v: &[V],
    ) -> TableColumns {
        let type_k: Vec<&str> = type_k.iter().map(AsRef::as_ref).collect();
        let type_v: Vec<&str> = type_v.iter().map(AsRef::as_ref).collect();
        TableColumns {
            n_batch: shows(n_batch, &LLAMA_BENCH_DEFAULT_N_BATCH),
            n_ubatch: shows(n_ubatch, &LLAMA_BENCH_DEFAULT_N_UBATCH),
            type_k: shows(&type_k, &LLAMA_BENCH_DEFAULT_TYPE_KV),
            type_v: shows(&type_v, &LLAMA_BENCH_DEFAULT_TYPE_KV),
        }
    }

    /// Decides the columns from finished rows (for re-rendering stored results).
    pub fn from_rows(rows: &[BenchRow]) -> TableColumns {
        let n_batch: Vec<u32> = rows.iter().map(|r| r.n_batch).collect();
        let n_ubatch: Vec<u32> = rows.iter().map(|r| r.n_ubatch).collect();
        let type_k: Vec<&str> = rows.iter().map(|r| r.type_k.as_str()).collect();
        let type_v: Vec<&str> = rows.iter().map(|r| r.type_v.as_str()).collect();
        TableColumns::from_values(&n_batch, &n_ubatch, &type_k, &type_v)
    }
}

/// A column is shown when any value is not the default, or the values differ.
fn shows<T: PartialEq>(values: &[T], default: &T) -> bool {
    values.iter().any(|v| v != default) || values.windows(2).any(|w| w[0] != w[1])
}

impl From<&TableColumns> for TableColumns {
    fn from(columns: &TableColumns) -> TableColumns {
        *columns
    }
}

/// Optional columns by field name ("n_batch", "n_ubatch", "type_k", "type_v"); other
/// names are ignored, since every other column is always shown or never.
impl From<&[&str]> for TableColumns {
    fn from(names: &[&str]) -> TableColumns {
        TableColumns {
            n_batch: names.contains(&"n_batch"),
            n_ubatch: names.contains(&"n_ubatch"),
            type_k: names.contains(&"type_k"),
            type_v: names.contains(&"type_v"),
        }
    }
}

impl From<&Vec<&str>> for TableColumns {
    fn from(names: &Vec<&str>) -> TableColumns {
        TableColumns::from(names.as_slice())
    }
}

/// The exporter for `format`. `columns` (a [`TableColumns`] or a list of optional
/// column names) only matters for md.
pub fn exporter(format: OutputFormat, columns: impl Into<TableColumns>) -> Box<dyn Exporter> {
    match format {
        OutputFormat::Md => Box::new(MarkdownExporter::new(&columns.into())),
        OutputFormat::Csv => Box::new(CsvExporter),
        OutputFormat::Json => Box::new(JsonExporter { rows: 0 }),
        OutputFormat::Jsonl => Box::new(JsonlExporter),
    }
}

// ---------------------------------------------------------------------------------
// md

/// One markdown column: header, width as llama-bench's printf width (negative =
/// left-aligned, for text), and how to get the cell from a row.
struct MdColumn {
    header: &'static str,
    width: i32,
    cell: fn(&BenchRow) -> String,
}

/// llama-bench's markdown table with tessera's `isa` and `tile` columns after
/// `threads`.
pub struct MarkdownExporter {
    columns: Vec<MdColumn>,
}

impl MarkdownExporter {
    pub fn new(extra: &TableColumns) -> MarkdownExporter {
        let col = |header, width, cell| MdColumn {
            header,
            width,
            cell,
        };
        let mut columns = vec![
            col("model", -30, |r| r.model_type.clone()),
            col("size", 10, |r| format_size(r.model_size)),
            col("params", 10, |r| format_params(r.model_n_params)),
            col("backend", -10, |r| r.backends.clone()),
            col("threads", 7, |r| r.n_threads.to_string()),
            col("isa", -10, |r| r.isa.clone()),
            col("tile", -10, |r| r.tile.clone()),
        ];
        if extra.n_batch {
            columns.push(col("n_batch", 7, |r| r.n_batch.to_string()));
        }
        if extra.n_ubatch {
            columns.push(col("n_ubatch", 8, |r| r.n_ubatch.to_string()));
        }
        if extra.type_k {
            columns.push(col("type_k", 6, |r| r.type_k.clone()));
        }
        if extra.type_v {
            columns.push(col("type_v", 6, |r| r.type_v.clone()));
        }
        columns.push(col("test", 13, |r| {
            if r.test.is_empty() {
                test_name(r.n_prompt, r.n_gen, r.n_depth)
            } else {
                r.test.clone()
            }
        }));
        columns.push(col("t/s", 20, BenchRow::ts_display));
        MarkdownExporter { columns }
    }

    fn line(&self, out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
        let mut line = String::from("|");
        for (column, cell) in self.columns.iter().zip(cells) {
            let width = column.width.unsigned_abs() as usize;
            // Width counts chars, not bytes, so "±" needs none of llama-bench's
            // byte-count correction.
            if column.width < 0 {
                line.push_str(&format!(" {cell:<width$} |"));
            } else {
                line.push_str(&format!(" {cell:>width$} |"));
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        out.flush()
    }
}

impl Exporter for MarkdownExporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let headers: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        self.line(out, &headers)?;
        let mut rule = String::from("|");
        for column in &self.columns {
            let dashes = "-".repeat(column.width.unsigned_abs() as usize - 1);
            let end = if column.width > 0 { ':' } else { '-' };
            rule.push_str(&format!(" {dashes}{end} |"));
        }
        rule.push('\n');
        out.write_all(rule.as_bytes())?;
        out.flush()
    }

    fn row(&mut self, out: &mut dyn Write, row: &BenchRow) -> io::Result<()> {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|c| md_escape(&(c.cell)(row)))
            .collect();
        self.line(out, &cells)
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }
}

/// Keeps a cell on one line and inside its column.
pub fn md_escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// "83.60 MiB" below 1 GiB, else "3.56 GiB", as llama-bench prints model sizes.
pub fn format_size(bytes: u64) -> String {
    const GIB: u64 = 1024 * 1024 * 1024;
    if bytes < GIB {
        format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", bytes as f64 / GIB as f64)
    }
}

/// "150.00 M" below a billion, else "1.24 B", as llama-bench prints parameter counts.
pub fn format_params(n: u64) -> String {
    if n < 1_000_000_000 {
        format!("{:.2} M", n as f64 / 1e6)
    } else {
        format!("{:.2} B", n as f64 / 1e9)
    }
}

// ---------------------------------------------------------------------------------
// csv

/// A header naming every field, then one record per row. Strings are written as
/// they are, numbers and booleans as JSON writes them, `null` as an empty cell, and
/// arrays and objects as compact JSON in one cell. [`read_csv`] reads it back.
struct CsvExporter;

impl Exporter for CsvExporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        write_csv_record(out, FIELDS.iter().copied())
    }

    fn row(&mut self, out: &mut dyn Write, row: &BenchRow) -> io::Result<()> {
        let value = serde_json::to_value(row).map_err(io::Error::other)?;
        let cells: Vec<String> = FIELDS
            .iter()
            .map(|field| csv_cell(value.get(field).unwrap_or(&Value::Null)))
            .collect();
        write_csv_record(out, cells.iter())
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }
}

fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Encodes one record with the csv crate (quoting as needed), then writes and
/// flushes it: the exporter does not own `out`, so the csv writer cannot either.
fn write_csv_record<I, T>(out: &mut dyn Write, record: I) -> io::Result<()>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    writer.write_record(record).map_err(io::Error::other)?;
    let bytes = writer
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    out.write_all(&bytes)?;
    out.flush()
}

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

// ---------------------------------------------------------------------------------
// json, jsonl

/// A pretty-printed JSON array, written as the rows come: "[" at begin, "," between
/// rows, "]" at end. Only complete after `end`; jsonl survives interruption.
struct JsonExporter {
    rows: usize,
}

impl Exporter for JsonExporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.rows = 0;
        out.write_all(b"[\n")?;
        out.flush()
    }

    fn row(&mut self, out: &mut dyn Write, row: &BenchRow) -> io::Result<()> {
        let pretty = serde_json::to_string_pretty(row).map_err(io::Error::other)?;
        let mut text = String::new();
        if self.rows > 0 {
            text.push_str(",\n");
        }
        // JSON strings cannot hold raw newlines, so indenting by line is safe.
        for (i, line) in pretty.lines().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str("  ");
            text.push_str(line);
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        self.rows += 1;
        Ok(())
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.rows > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(b"]\n")?;
        out.flush()
    }
}

/// One compact JSON object per line, flushed per row.
struct JsonlExporter;

impl Exporter for JsonlExporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }

    fn row(&mut self, out: &mut dyn Write, row: &BenchRow) -> io::Result<()> {
        let mut line = serde_json::to_vec(row).map_err(io::Error::other)?;
        line.push(b'\n');
        out.write_all(&line)?;
        out.flush()
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Fault, KernelUse, Status, assert_rows_match, read_jsonl};

    fn rows() -> Vec<BenchRow> {
        let base = BenchRow {
            build_commit: "05728aa1b2c3".into(),
            build_number: 1,
            cpu_info: "AMD EPYC 9B14".into(),
            model_filename: "models/llama-150m-q4_0.gguf".into(),
            model_type: "llama 150M Q4_0".into(),
            model_size: 87_662_592,
            model_n_params: 150_000_000,
            n_threads: 2,
            test_time: "2026-11-25T20:15:42Z".into(),
            isa: "avx512".into(),
            tile: "16x16x32".into(),
            kernels_used: vec![KernelUse {
                op: "mul_mat".into(),
                isa: "avx512".into(),
                kernel: "gemm_q4_0_q8_0".into(),
                tile: "16x16x32".into(),
                calls: 4096,
                ..KernelUse::default()
            }],
            build_features: vec!["cuda".into()],
            ..BenchRow::default()
        };
        let pp = BenchRow {
            n_prompt: 512,
            test: "pp512".into(),
            avg_ns: 441_295_000,
            avg_ts: 1160.234,
            stddev_ts: 10.1149,
            samples_ns: vec![437_000_000, 445_590_000],
            samples_ts: vec![1171.6247139588102, 1149.043740882874],
            ..base.clone()
        };
        let tg = BenchRow {
            n_gen: 128,
            test: "tg128".into(),
            status: Status::Fault,
            fault: Some(Fault {
                class: "signal".into(),
                signal: Some(11),
                exit_code: None,
                message: "Segmentation fault, \"core\" dumped".into(),
                stderr_tail: "line one\nline two, with comma".into(),
            }),
            error: None,
            ..base
        };
        vec![pp, tg]
    }

    fn export(format: OutputFormat, columns: &TableColumns, rows: &[BenchRow]) -> String {
        let mut out = Vec::new();
        let mut exporter = exporter(format, columns);
        exporter.begin(&mut out).unwrap();
        for row in rows {
            exporter.row(&mut out, row).unwrap();
        }
        exporter.end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn markdown_matches_llama_bench_layout() {
        let got = export(OutputFormat::Md, &TableColumns::default(), &rows());
        let expected = "\
| model                          |       size |     params | backend    | threads | isa        | tile       |          test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | ------: | ---------- | ---------- | ------------: | -------------------: |
| llama 150M Q4_0                |  83.60 MiB |   150.00 M | CPU        |       2 | avx512     | 16x16x32   |         pp512 |      1160.23 ± 10.11 |
| llama 150M Q4_0                |  83.60 MiB |   150.00 M | CPU        |       2 | avx512     | 16x16x32   |         tg128 |       fault: SIGSEGV |
";
        assert_eq!(got, expected);
    }

    #[test]
    fn markdown_extra_columns() {
        let columns = TableColumns::from_values(&[512], &[512], &["f16"], &["q8_0", "f16"]);
        assert_eq!(
            columns,
            TableColumns {
                n_batch: true,
                n_ubatch: false,
                type_k: false,
                type_v: true
            }
        );
        let mut rows = rows();
        rows[0].n_batch = 512;
        rows[0].type_v = "q8_0".into();
        rows[0].model_n_params = 1_240_000_000;
        rows[0].model_size = 3_822_520_320;
        let got = export(OutputFormat::Md, &columns, &rows[..1]);
        let expected = "\
| model                          |       size |     params | backend    | threads | isa        | tile       | n_batch | type_v |          test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | ------: | ---------- | ---------- | ------: | -----: | ------------: | -------------------: |
| llama 150M Q4_0                |   3.56 GiB |     1.24 B | CPU        |       2 | avx512     | 16x16x32   |     512 |   q8_0 |         pp512 |      1160.23 ± 10.11 |
";
        assert_eq!(got, expected);
        assert_eq!(TableColumns::from_rows(&rows), columns);
        let by_name = vec!["n_batch", "type_v"];
        assert_eq!(TableColumns::from(&by_name), columns);
        let by_name = export(OutputFormat::Md, &TableColumns::from(&by_name), &rows[..1]);
        assert_eq!(by_name, expected);
        assert_eq!(
            TableColumns::from_values(&[2048, 2048], &[512], &["f16"], &["f16"]),
            TableColumns::default()
        );
    }

    #[test]
    fn markdown_cells_stay_on_one_line() {
        let mut row = rows().remove(0);
        row.model_type = "a|b\nc".into();
        row.test.clear();
        row.status = Status::Error;
        let got = export(OutputFormat::Md, &TableColumns::default(), &[row]);
        let last = got.lines().last().unwrap();
        assert!(last.starts_with("| a\\|b c "), "{last}");
        assert!(last.contains("pp512"), "{last}");
        assert!(last.ends_with("error |"), "{last}");
        assert_eq!(got.lines().count(), 3);
    }

    #[test]
    fn csv_round_trips_through_the_csv_crate() {
        let rows = rows();
        let text = export(OutputFormat::Csv, &TableColumns::default(), &rows);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(headers, FIELDS);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        let cell = |r: usize, name: &str| {
            let i = FIELDS.iter().position(|f| *f == name).unwrap();
            records[r][i].to_string()
        };
        assert_eq!(cell(0, "test"), "pp512");
        assert_eq!(cell(0, "avg_ns"), "441295000");
        assert_eq!(cell(0, "samples_ns"), "[437000000,445590000]");
        assert_eq!(cell(0, "fault"), "");
        assert_eq!(cell(1, "status"), "fault");
        let fault: Fault = serde_json::from_str(&cell(1, "fault")).unwrap();
        assert_eq!(fault.signal, Some(11));
        assert_eq!(fault.stderr_tail, "line one\nline two, with comma");

        assert_rows_match(&read_csv(text.as_bytes()).unwrap(), &rows);
    }

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

    #[test]
    fn json_is_one_array_of_all_rows() {
        let rows = rows();
        let text = export(OutputFormat::Json, &TableColumns::default(), &rows);
        assert!(
            text.starts_with("[\n  {\n    \"schema_version\": 1,"),
            "{text}"
        );
        assert!(text.ends_with("\n  }\n]\n"), "{text}");
        let parsed: Vec<BenchRow> = serde_json::from_str(&text).unwrap();
        assert_rows_match(&parsed, &rows);

        let empty = export(OutputFormat::Json, &TableColumns::default(), &[]);
        let parsed: Vec<BenchRow> = serde_json::from_str(&empty).unwrap();
        assert!(parsed.is_empty());
    }

    #[test]
    fn json_is_streamed_row_by_row() {
        let rows = rows();
        let mut out = Vec::new();
        let mut exporter = exporter(OutputFormat::Json, TableColumns::default());
        exporter.begin(&mut out).unwrap();
        exporter.row(&mut out, &rows[0]).unwrap();
        // The first row is out before the run ends; closing the array makes it valid.
        let mut partial = String::from_utf8(out.clone()).unwrap();
        partial.push_str("\n]");
        let parsed: Vec<BenchRow> = serde_json::from_str(&partial).unwrap();
        assert_eq!(parsed.len(), 1);
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let rows = rows();
        let text = export(OutputFormat::Jsonl, &TableColumns::default(), &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for (line, row) in lines.iter().zip(&rows) {
            assert!(line.starts_with('{') && line.ends_with('}'));
            assert_rows_match(
                &[BenchRow::from_json(line).unwrap()],
                std::slice::from_ref(row),
            );
        }
        assert_rows_match(&read_jsonl(text.as_bytes()).unwrap(), &rows);
    }

    /// Counts flushes, to show that rows leave the exporter as they come.
    struct FlushCounter {
        bytes: Vec<u8>,
        flushes: usize,
    }

    impl Write for FlushCounter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn every_format_flushes_each_row() {
        let row = rows().remove(0);
        for format in OutputFormat::ALL {
            let mut out = FlushCounter {
                bytes: Vec::new(),
                flushes: 0,
            };
            let mut exporter = exporter(format, TableColumns::default());
            exporter.begin(&mut out).unwrap();
            let (len, flushes) = (out.bytes.len(), out.flushes);
            exporter.row(&mut out, &row).unwrap();
            assert!(out.bytes.len() > len, "{format}: row not written");
            assert!(out.flushes > flushes, "{format}: row not flushed");
        }
    }

    #[test]
    fn output_format_parsing() {
        for format in OutputFormat::ALL {
            assert_eq!(format.name().parse::<OutputFormat>(), Ok(format));
        }
        assert_eq!("JSONL".parse::<OutputFormat>(), Ok(OutputFormat::Jsonl));
        let err = "xml".parse::<OutputFormat>().unwrap_err().to_string();
        assert!(err.contains("'xml'"), "{err}");
        for name in ["md", "csv", "json", "jsonl"] {
            assert!(err.contains(name), "{err}");
        }
        assert_eq!(
            err,
            "unknown output format 'xml': valid formats are md, csv, json, jsonl"
        );
    }

    #[test]
    fn size_and_params_formatting() {
        assert_eq!(format_size(87_662_592), "83.60 MiB");
        assert_eq!(format_size(1024 * 1024 * 1024), "1.00 GiB");
        assert_eq!(format_params(150_000_000), "150.00 M");
        assert_eq!(format_params(1_235_814_400), "1.24 B");
        assert_eq!(format_params(0), "0.00 M");
    }
}
