//! Choosing and naming the two sides of `tessera explain`: a side is a run directory or a
//! results file, or one row of it (`FILE:N`, the N-th readable row); `--base`/`--cand`
//! `KEY=VALUE` filters pick the rows of each side (one run split in two, e.g. `--base
//! isa=avx2 --cand isa=amx`). The names the output gives each side and each test's two
//! configurations come from the filters, or else from what differs between them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use crate::compare::load::{KEY_FIELDS, LoadedRow, Run, load_run};
use crate::compare::matching::display_name;

/// One `KEY=VALUE` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub key: String,
    pub value: String,
}

/// Parses `--base`/`--cand` items: KEY must be a key field of the rows.
pub fn parse_filters(items: &[String], flag: &str) -> Result<Vec<Filter>> {
    items
        .iter()
        .map(|item| {
            let Some((k, v)) = item.split_once('=') else {
                bail!("bad {flag} '{item}': give KEY=VALUE, e.g. isa=avx2");
            };
            let (k, v) = (k.trim(), v.trim());
            if !KEY_FIELDS.contains(&k) {
                bail!(
                    "bad {flag} key '{k}': valid keys are {}",
                    KEY_FIELDS.join(", ")
                );
            }
            Ok(Filter {
                key: k.to_string(),
                value: v.to_string(),
            })
        })
        .collect()
}

fn selects(filters: &[Filter], r: &LoadedRow) -> bool {
    filters
        .iter()
        .all(|f| r.config.get(&f.key).is_some_and(|v| *v == f.value))
}

/// The rows of `run` that `filters` select; an error naming the values present when none.
pub fn select(run: &Run, filters: &[Filter], flag: &str) -> Result<Vec<LoadedRow>> {
    let rows: Vec<LoadedRow> = run
        .rows
        .iter()
        .filter(|r| selects(filters, r))
        .cloned()
        .collect();
    if rows.is_empty() {
        let f = filters
            .iter()
            .find(|f| {
                !run.rows
                    .iter()
                    .any(|r| r.config.get(&f.key) == Some(&f.value))
            })
            .unwrap_or(&filters[0]);
        let mut present: Vec<&str> = run
            .rows
            .iter()
            .filter_map(|r| r.config.get(&f.key).map(String::as_str))
            .collect();
        present.sort();
        present.dedup();
        bail!(
            "{flag} {}={} selects no row of '{}': its rows have {} {}",
            f.key,
            f.value,
            run.path.display(),
            f.key,
            if present.is_empty() {
                "unset".to_string()
            } else {
                present.join(", ")
            }
        );
    }
    Ok(rows)
}

/// Loads a side: a path, or `PATH:N` for the N-th readable row of PATH.
pub fn load_side(spec: &Path) -> Result<Run> {
    if spec.exists() {
        return load_run(spec);
    }
    let s = spec.to_string_lossy();
    if let Some((path, n)) = s.rsplit_once(':')
        && let Ok(n) = n.parse::<usize>()
        && Path::new(path).exists()
    {
        let mut run = load_run(Path::new(path))?;
        let count = run.rows.len();
        if n == 0 || n > count {
            bail!("row {n} of '{path}' does not exist: it has rows 1 to {count}");
        }
        run.rows = vec![run.rows.swap_remove(n - 1)];
        return Ok(run);
    }
    bail!(
        "'{}' is neither a run directory, a results file nor FILE:N",
        spec.display()
    )
}

/// "isa=avx2": the filters, or the fields where the two configurations differ.
pub fn label(
    filters: &[Filter],
    mine: &BTreeMap<String, String>,
    other: &BTreeMap<String, String>,
    fallback: &str,
) -> String {
    if !filters.is_empty() {
        return filters
            .iter()
            .map(|f| format!("{}={}", display_name(&f.key), f.value))
            .collect::<Vec<_>>()
            .join(",");
    }
    let differing: Vec<String> = mine
        .iter()
        .filter(|(k, v)| k.as_str() != "test" && other.get(*k).is_some_and(|o| o != *v))
        .map(|(k, v)| format!("{}={v}", display_name(k)))
        .collect();
    if differing.is_empty() {
        fallback.to_string()
    } else {
        differing.join(",")
    }
}

/// The name of a side: its filters ("isa=avx2"), or else its directory or file name.
pub fn side_name(run: &Run, filters: &[Filter], fallback: &str) -> String {
    if filters.is_empty() {
        run.path.file_name().map_or_else(
            || fallback.to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    } else {
        filters
            .iter()
            .map(|f| format!("{}={}", display_name(&f.key), f.value))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::results::BenchRow;

    fn loaded(pairs: &[(&str, &str)]) -> LoadedRow {
        LoadedRow {
            row: BenchRow::default(),
            config: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_need_key_value_and_a_key_field() {
        let f = parse_filters(&strings(&[" isa = amx "]), "--cand").unwrap();
        assert_eq!(
            f,
            [Filter {
                key: "isa".into(),
                value: "amx".into()
            }]
        );
        let e = parse_filters(&strings(&["isa"]), "--base").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad --base 'isa': give KEY=VALUE, e.g. isa=avx2"
        );
        let e = parse_filters(&strings(&["colour=red"]), "--cand").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad --cand key 'colour': valid keys are "),
            "{e}"
        );
    }

    #[test]
    fn a_filter_that_selects_nothing_names_the_values_present() {
        let run = Run {
            path: PathBuf::from("r"),
            file: PathBuf::from("r/results.jsonl"),
            rows: vec![loaded(&[("isa", "avx2")]), loaded(&[("isa", "scalar")])],
        };
        let amx = parse_filters(&strings(&["isa=amx"]), "--cand").unwrap();
        let e = select(&run, &amx, "--cand").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--cand isa=amx selects no row of 'r': its rows have isa avx2, scalar"
        );
        let avx2 = parse_filters(&strings(&["isa=avx2"]), "--base").unwrap();
        assert_eq!(select(&run, &avx2, "--base").unwrap().len(), 1);
    }

    #[test]
    fn labels_come_from_the_filters_else_from_what_differs() {
        let mine = loaded(&[("test", "pp512"), ("isa", "avx2"), ("threads", "4")]).config;
        let other = loaded(&[("test", "tg128"), ("isa", "amx"), ("threads", "4")]).config;
        assert_eq!(label(&[], &mine, &other, "base"), "isa=avx2");
        assert_eq!(label(&[], &mine, &mine, "base"), "base");
        let f = parse_filters(&strings(&["isa=avx2"]), "--base").unwrap();
        assert_eq!(label(&f, &mine, &other, "base"), "isa=avx2");
    }
}
