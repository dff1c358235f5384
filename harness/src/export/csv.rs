//! The CSV exporter: a header naming every field, then one record per row, quoted by
//! the `csv` crate. [`crate::results::read_csv`] reads it back.

use std::io::{self, Write};

use serde_json::Value;

use super::Exporter;
use crate::results::{BenchRow, FIELDS};

/// A header naming every field, then one record per row. Strings are written as
/// they are, numbers and booleans as JSON writes them, `null` as an empty cell, and
/// arrays and objects as compact JSON in one cell. [`crate::results::read_csv`] reads it back.
pub(super) struct CsvExporter;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fixtures::{export, rows};
    use crate::export::{OutputFormat, TableColumns};
    use crate::results::read_csv;
    use crate::results::{Fault, assert_rows_match};

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
}
