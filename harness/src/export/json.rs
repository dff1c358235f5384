//! The JSON exporter: one pretty-printed array of every row, streamed row by row.

use std::io::{self, Write};

use super::Exporter;
use crate::results::BenchRow;

/// A pretty-printed JSON array, written as the rows come: "[" at begin, "," between
/// rows, "]" at end. Only complete after `end`; jsonl survives interruption.
#[derive(Default)]
pub(super) struct JsonExporter {
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

#[cfg(test)]
mod tests {
    use crate::export::fixtures::{export, rows};
    use crate::export::{OutputFormat, TableColumns, exporter};
    use crate::results::{BenchRow, assert_rows_match};

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
}
