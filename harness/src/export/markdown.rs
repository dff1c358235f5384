//! The markdown exporter: llama-bench's table, with tessera's `isa` and `tile` columns,
//! plus the helpers only this table uses: which optional columns it shows, llama-bench's
//! size and parameter-count cells, and the one markdown-cell escape.

use std::io::{self, Write};

use super::Exporter;
use crate::results::{
    BenchRow, LLAMA_BENCH_DEFAULT_N_BATCH, LLAMA_BENCH_DEFAULT_N_UBATCH,
    LLAMA_BENCH_DEFAULT_TYPE_KV, test_name,
};

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

/// Keeps a cell on one line and inside its column: `|` becomes `\|`, and each line
/// break (`\n` or `\r`) a space. tessera's one markdown-cell escape: the results table,
/// compare, explain, report and bisect's step tables all use it. (Bisect's own copy
/// turned only `\n` into a space; a `\r` left in a table cell breaks the row in some
/// renderers, so the union of the two sets is right for every caller.)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::OutputFormat;
    use crate::export::fixtures::{export, rows};
    use crate::results::Status;

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
    fn size_and_params_formatting() {
        assert_eq!(format_size(87_662_592), "83.60 MiB");
        assert_eq!(format_size(1024 * 1024 * 1024), "1.00 GiB");
        assert_eq!(format_params(150_000_000), "150.00 M");
        assert_eq!(format_params(1_235_814_400), "1.24 B");
        assert_eq!(format_params(0), "0.00 M");
    }
}
