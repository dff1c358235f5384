//! JSON Lines rows: the reader, for ours and llama-bench's `-o jsonl`, by the policy of
//! `read`, and [`write_row`], the one writer of a row's line, which `export`'s `jsonl`
//! exporter, `sweep`'s append of each finished point and `merge` all use.

use std::io::{self, BufRead, Write};
use std::path::Path;

use anyhow::Context as _;

use super::read::{ReadRow, ReadRows, Skipped};
use super::schema::BenchRow;

/// Writes `row` as one compact JSON object and a newline, in one `write` so that a reader
/// of a file being appended to sees whole lines or a torn last one, never interleaved
/// halves, then flushes (a crash later loses no finished row).
pub fn write_row(out: &mut dyn Write, row: &BenchRow) -> io::Result<()> {
    let mut line = serde_json::to_vec(row).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Parses JSON Lines rows (ours or llama-bench `-o jsonl`). This is the one policy for
/// damaged results files, shared by every command that reads them (`sweep --resume`,
/// `merge`, `compare`, `report`, `history add`, `nightly`): blank lines are ignored; a
/// line that is not JSON or not a result row (a torn write, a stray log line) is skipped
/// and listed in [`ReadRows::skipped`], never deleted from the file; a row of a newer
/// schema is an error naming its line, since it cannot be read correctly. Errors are
/// otherwise only I/O.
pub fn parse_jsonl(reader: impl BufRead) -> anyhow::Result<ReadRows> {
    let mut out = ReadRows::default();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = line.with_context(|| format!("reading line {line_no}"))?;
        let text = String::from_utf8_lossy(&bytes);
        if text.trim().is_empty() {
            continue;
        }
        match BenchRow::parse_object(&text) {
            Ok((fields, row)) => out.rows.push(ReadRow {
                line: line_no,
                fields,
                row,
            }),
            Err(e) if e.is_skippable() => out.skipped.push(Skipped {
                line: line_no,
                reason: e.to_string(),
            }),
            Err(e) => return Err(e).with_context(|| format!("line {line_no}")),
        }
    }
    Ok(out)
}

/// [`parse_jsonl`]'s rows alone, without printing its warnings.
pub fn read_jsonl(reader: impl BufRead) -> anyhow::Result<Vec<BenchRow>> {
    Ok(parse_jsonl(reader)?.into_rows())
}

/// Reads a JSONL results file by [`parse_jsonl`]'s policy, printing its warnings.
pub fn read_jsonl_file(path: &Path) -> anyhow::Result<Vec<BenchRow>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("reading '{}'", path.display()))?;
    let read = parse_jsonl(std::io::BufReader::new(file))
        .with_context(|| format!("in '{}'", path.display()))?;
    read.warn(path);
    Ok(read.into_rows())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SCHEMA_VERSION;

    fn row_line(n_prompt: u32) -> String {
        serde_json::to_string(&BenchRow {
            n_prompt,
            ..BenchRow::default()
        })
        .unwrap()
    }

    #[test]
    fn jsonl_reader_skips_unreadable_lines_and_names_them() {
        let good = row_line(512);
        let text = format!("{good}\n\n{good}\n");
        let read = parse_jsonl(text.as_bytes()).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(read.rows[1].line, 3);
        assert!(read.skipped.is_empty());
        // A line torn in the middle of the file (it kept its newline), a torn last line,
        // JSON that is not a row, and invalid UTF-8: skipped by line number, rows kept.
        let mut text =
            format!("{good}\n{}\n{good}\n{{\"n_prompt\": 1}}\n", &good[..20]).into_bytes();
        text.extend_from_slice(b"\xff\xfe\n");
        text.extend_from_slice(&good.as_bytes()[..30]);
        let read = parse_jsonl(&text[..]).unwrap();
        assert_eq!(read.rows.len(), 2);
        let lines: Vec<usize> = read.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 5, 6]);
        assert!(
            read.skipped[0].reason.starts_with("not JSON"),
            "{:?}",
            read.skipped
        );
        assert!(
            read.skipped[1].reason.starts_with("not a result row"),
            "{:?}",
            read.skipped
        );
    }

    #[test]
    fn rows_of_a_newer_schema_are_refused_naming_both_versions() {
        let mut v: serde_json::Value = serde_json::from_str(&row_line(8)).unwrap();
        v["schema_version"] = 99.into();
        let line = v.to_string();
        let e = BenchRow::from_json(&line).unwrap_err();
        assert!(!e.is_skippable());
        assert_eq!(
            e.to_string(),
            "schema_version 99 is newer than this tessera reads (schema_version 1); read it with a newer tessera"
        );
        let text = format!("{}\n{line}\n", row_line(8));
        let err = format!("{:#}", parse_jsonl(text.as_bytes()).unwrap_err());
        assert!(err.starts_with("line 2: schema_version 99"), "{err}");
        // The current version and an absent one read fine.
        v["schema_version"] = 1.into();
        assert!(BenchRow::from_value(v.clone()).is_ok());
        v.as_object_mut().unwrap().remove("schema_version");
        assert_eq!(
            BenchRow::from_value(v).unwrap().schema_version,
            SCHEMA_VERSION
        );
    }
}
