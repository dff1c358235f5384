//! The JSONL exporter: one compact JSON object per line, the format `results.jsonl` keeps.

use std::io::{self, Write};

use super::Exporter;
use crate::results::BenchRow;

/// One compact JSON object per line, flushed per row.
pub(super) struct JsonlExporter;

impl Exporter for JsonlExporter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }

    fn row(&mut self, out: &mut dyn Write, row: &BenchRow) -> io::Result<()> {
        crate::results::write_row(out, row)
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use crate::export::fixtures::{export, rows};
    use crate::export::{OutputFormat, TableColumns};
    use crate::results::{BenchRow, assert_rows_match, read_jsonl};

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
}
