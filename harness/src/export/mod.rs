//! Exporters that stream result rows as md, csv, json or jsonl: the [`Exporter`] trait,
//! the [`OutputFormat`] named on the command line (`-o`), and [`exporter`], the one
//! factory; one file per format beside it (hyperfine's `src/export/` is the model).
//!
//! Every exporter writes and flushes each row as soon as it gets it, as llama-bench
//! prints its table progressively: a config that crashes or hangs later never costs the
//! rows already measured. All four formats carry the same rows; md is for people, the
//! others for tools.
//!
//! Helpers live with the one format that uses them: [`TableColumns`] and the cell formats
//! (`format_size`, `format_params`: llama-bench's) are the markdown table's, so they sit in
//! `markdown.rs`, as does [`md_escape`], the one markdown-cell escape every markdown writer
//! in tessera uses (compare, explain, report, bisect). Reading rows back (CSV included) is
//! `results`' job, not an exporter's.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::results::BenchRow;

mod csv;
#[cfg(test)]
mod fixtures;
mod json;
mod jsonl;
mod markdown;

use markdown::MarkdownExporter;
pub use markdown::{TableColumns, md_escape};

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

/// The exporter for `format`. `columns` (a [`TableColumns`] or a list of optional
/// column names) only matters for md.
pub fn exporter(format: OutputFormat, columns: impl Into<TableColumns>) -> Box<dyn Exporter> {
    match format {
        OutputFormat::Md => Box::new(MarkdownExporter::new(&columns.into())),
        OutputFormat::Csv => Box::new(csv::CsvExporter),
        OutputFormat::Json => Box::new(json::JsonExporter::default()),
        OutputFormat::Jsonl => Box::new(jsonl::JsonlExporter),
    }
}

// ---------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::fixtures::rows;
    use super::*;

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
}
