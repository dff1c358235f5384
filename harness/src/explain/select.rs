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
