//! The reading policy every results reader shares (JSONL in `jsonl`, CSV in `csv`): a row
//! from one JSON object, lenient on purpose (unknown fields are ignored, since llama.cpp
//! and ik_llama.cpp add different ones, and fields some producers
//! omit default, so a llama-bench row deserializes into [`BenchRow`] as it is), a newer
//! schema refused, and the rows read kept with their line numbers beside the lines skipped.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::schema::{BenchRow, SCHEMA_VERSION};

impl BenchRow {
    /// Parses one row (ours or llama-bench's) and derives `test` when absent.
    pub fn from_json(json: &str) -> Result<BenchRow, RowError> {
        Self::parse_object(json).map(|(_, row)| row)
    }

    /// Like [`BenchRow::from_json`], also returning the object's fields as written.
    pub fn parse_object(
        json: &str,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, BenchRow), RowError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(RowError::NotJson)?;
        let row = Self::from_value_ref(&value)?;
        match value {
            serde_json::Value::Object(fields) => Ok((fields, row)),
            _ => Ok((serde_json::Map::new(), row)),
        }
    }

    /// Like [`BenchRow::from_json`], from an already parsed value.
    pub fn from_value(value: serde_json::Value) -> Result<BenchRow, RowError> {
        Self::from_value_ref(&value)
    }

    /// The row of a JSON object. A `schema_version` above [`SCHEMA_VERSION`] is refused
    /// before anything else is read: its fields may mean something else now.
    pub fn from_value_ref(value: &serde_json::Value) -> Result<BenchRow, RowError> {
        let Some(fields) = value.as_object() else {
            return Err(RowError::NotARow(serde::de::Error::custom(
                "not a JSON object",
            )));
        };
        if let Some(v) = fields.get("schema_version").and_then(|v| v.as_u64())
            && v > u64::from(SCHEMA_VERSION)
        {
            return Err(RowError::NewerSchema(v));
        }
        let mut row = BenchRow::deserialize(value).map_err(RowError::NotARow)?;
        row.fill_test_name();
        Ok(row)
    }
}

/// Why a row could not be read.
#[derive(Debug)]
pub enum RowError {
    /// The text is not JSON (a torn or damaged line).
    NotJson(serde_json::Error),
    /// JSON, but not a result row: not an object, a required field missing, a wrong type.
    NotARow(serde_json::Error),
    /// A row of a newer, unknown schema: refused rather than misread.
    NewerSchema(u64),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::NotJson(e) => {
                // serde_json says "at line 1 column 31" of the text it was given, which is
                // one line of a file whose own line number the reader prints.
                let text = e.to_string();
                let what = text
                    .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
                    .unwrap_or(&text);
                match e.line() {
                    0 => write!(f, "not JSON ({what})"),
                    1 => write!(f, "not JSON at column {} ({what})", e.column()),
                    l => write!(f, "not JSON at line {l}, column {} ({what})", e.column()),
                }
            }
            RowError::NotARow(e) => write!(f, "not a result row ({e})"),
            RowError::NewerSchema(v) => write!(
                f,
                "schema_version {v} is newer than this tessera reads (schema_version {SCHEMA_VERSION}); \
                 read it with a newer tessera"
            ),
        }
    }
}

impl std::error::Error for RowError {}

impl RowError {
    /// Whether a reader may skip the row (with a warning) and go on: true for damaged or
    /// foreign lines, false for a newer schema, which must not be half-read.
    pub fn is_skippable(&self) -> bool {
        !matches!(self, RowError::NewerSchema(_))
    }
}

/// One row read from a results file: the 1-based line (or record) it came from, the
/// fields exactly as the file wrote them (so a reader can tell "absent" from "default"),
/// and the row.
#[derive(Debug, Clone)]
pub struct ReadRow {
    pub line: usize,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub row: BenchRow,
}

/// A line (or CSV record) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub reason: String,
}

/// The rows of a results file and the lines skipped as unreadable.
#[derive(Debug, Clone, Default)]
pub struct ReadRows {
    pub rows: Vec<ReadRow>,
    pub skipped: Vec<Skipped>,
}

/// At most this many skipped lines are named one by one; the rest are counted.
const MAX_SKIP_WARNINGS: usize = 10;

impl ReadRows {
    /// Prints [`warn_skipped`]'s warnings for this file.
    pub fn warn(&self, source: &Path) {
        warn_skipped(source, &self.skipped);
    }

    /// The rows alone.
    pub fn into_rows(self) -> Vec<BenchRow> {
        self.rows.into_iter().map(|r| r.row).collect()
    }
}

/// Prints one warning line per skipped line, naming `source` and the line ("tessera:
/// warning: runs/x/results.jsonl line 6: not JSON (...); line skipped"), then a count
/// once ten are out, so a file of garbage stays readable.
pub fn warn_skipped(source: &Path, skipped: &[Skipped]) {
    for s in skipped.iter().take(MAX_SKIP_WARNINGS) {
        eprintln!(
            "tessera: warning: {} line {}: {}; line skipped",
            source.display(),
            s.line,
            s.reason
        );
    }
    if skipped.len() > MAX_SKIP_WARNINGS {
        eprintln!(
            "tessera: warning: {}: {} more unreadable lines skipped",
            source.display(),
            skipped.len() - MAX_SKIP_WARNINGS
        );
    }
}

/// Asserts that rows read back equal the rows written. Floats must match exactly
/// when serde_json parses them exactly (its `float_roundtrip` feature); without it,
/// serde_json's fast parser may land one ulp off, so they must agree to 1e-15.
#[cfg(test)]
pub(crate) fn assert_rows_match(got: &[BenchRow], want: &[BenchRow]) {
    let exact = serde_json::from_str::<f64>("1160.9977324263039").ok() == Some(1160.9977324263039);
    let near = |a: f64, b: f64| exact && a == b || !exact && (a - b).abs() <= 1e-15 * b.abs();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            near(g.avg_ts, w.avg_ts),
            "avg_ts {} != {}",
            g.avg_ts,
            w.avg_ts
        );
        assert!(
            near(g.stddev_ts, w.stddev_ts),
            "stddev_ts {} != {}",
            g.stddev_ts,
            w.stddev_ts
        );
        assert_eq!(g.samples_ts.len(), w.samples_ts.len());
        for (a, b) in g.samples_ts.iter().zip(&w.samples_ts) {
            assert!(near(*a, *b), "samples_ts {a} != {b}");
        }
        let g = BenchRow {
            avg_ts: w.avg_ts,
            stddev_ts: w.stddev_ts,
            samples_ts: w.samples_ts.clone(),
            ..g.clone()
        };
        assert_eq!(&g, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Fault, KernelUse, Status};

    #[test]
    fn json_round_trip() {
        let mut row = BenchRow {
            model_type: "llama 150M Q4_0".into(),
            n_threads: 2,
            n_prompt: 512,
            test: "pp512".into(),
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
            ..BenchRow::default()
        };
        row.set_samples(vec![441_000_000, 452_000_000, 437_000_000]);
        let json = serde_json::to_string(&row).unwrap();
        assert_rows_match(
            &[BenchRow::from_json(&json).unwrap()],
            std::slice::from_ref(&row),
        );

        let fault = BenchRow {
            status: Status::Fault,
            fault: Some(Fault {
                class: "signal".into(),
                signal: Some(11),
                exit_code: None,
                message: "Segmentation fault".into(),
                stderr_tail: "...".into(),
            }),
            ..row.clone()
        };
        let json = serde_json::to_string(&fault).unwrap();
        assert!(json.contains("\"status\":\"fault\""));
        assert_rows_match(
            &[BenchRow::from_json(&json).unwrap()],
            std::slice::from_ref(&fault),
        );
        assert_eq!(fault.ts_display(), "fault: SIGSEGV");
    }

    /// A row as ik_llama.cpp's `llama-bench -o json` writes it, with fields we do not
    /// model (`cpu_mask`, `poll`, ...).
    const LLAMA_BENCH_ROW: &str = r#"{
    "build_commit": "2f5c5e9f",
    "build_number": 3610,
    "cpu_info": "AMD EPYC 9B14",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "/models/llama-150m-q4_0.gguf",
    "model_type": "llama 150M Q4_0",
    "model_size": 87662592,
    "model_n_params": 151000000,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": 99,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": false,
    "tensor_split": "0.00",
    "use_mmap": true,
    "embeddings": false,
    "n_prompt": 512,
    "n_gen": 0,
    "n_depth": 0,
    "test": "pp512",
    "test_time": "2026-11-25T20:15:42Z",
    "avg_ns": 443333333,
    "stddev_ns": 7767453,
    "avg_ts": 1155.121936,
    "stddev_ts": 20.095611,
    "samples_ns": [ 441000000, 452000000, 437000000 ],
    "samples_ts": [ 1160.9977, 1132.74, 1171.62 ]
  }"#;

    #[test]
    fn llama_bench_row_deserializes_ignoring_unknown_fields() {
        let row = BenchRow::from_json(LLAMA_BENCH_ROW).unwrap();
        assert_eq!(row.build_commit, "2f5c5e9f");
        assert_eq!(row.build_number, 3610);
        assert_eq!(row.model_size, 87_662_592);
        assert_eq!(row.n_gpu_layers, 99);
        assert_eq!(row.test, "pp512");
        assert_eq!(row.avg_ns, 443_333_333);
        assert_eq!(row.samples_ns, vec![441_000_000, 452_000_000, 437_000_000]);
        assert_eq!(row.samples_ts.len(), 3);
        // tessera-only fields take their defaults.
        assert_eq!(row.schema_version, SCHEMA_VERSION);
        assert_eq!(row.status, Status::Ok);
        assert!(row.kernels_used.is_empty());
        assert!(row.fault.is_none());
        assert_eq!(row.engine, "");
    }

    #[test]
    fn upstream_row_without_test_field_gets_a_derived_name() {
        let mut value: serde_json::Value = serde_json::from_str(LLAMA_BENCH_ROW).unwrap();
        let obj = value.as_object_mut().unwrap();
        obj.remove("test");
        obj.insert("n_gen".into(), 128.into());
        obj.insert("n_depth".into(), 512.into());
        let row = BenchRow::from_value(value).unwrap();
        assert_eq!(row.test, "pp512+tg128 @ d512");
    }

    #[test]
    fn rows_missing_required_fields_are_errors_not_panics() {
        assert!(BenchRow::from_json(r#"{"n_prompt": 512}"#).is_err());
        assert!(BenchRow::from_json("[1, 2]").is_err());
        assert!(
            BenchRow::from_json(
                r#"{"n_threads": -1, "n_prompt": 1, "n_gen": 0, "avg_ns": 1, "avg_ts": 1.0}"#
            )
            .is_err()
        );
        let minimal =
            r#"{"n_threads": 4, "n_prompt": 0, "n_gen": 128, "avg_ns": 1, "avg_ts": 2.5}"#;
        let row = BenchRow::from_json(minimal).unwrap();
        assert_eq!(row.test, "tg128");
    }
}
