//! Pairing the rows of the two sides and explaining each pair ([`explain`]): rows are
//! paired on configuration as `tessera compare` pairs them, across the fields the filters
//! name, the fields `--ignore` names, and any field with one value on each side that
//! differs between them (said in a note); two single rows are explained as they are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use super::select::{Filter, label, select, side_name};
use super::{Explained, attribute, breakdown, flame};
use crate::compare::load::{KEY_FIELDS, LoadedRow, Run};
use crate::compare::matching::{display_name, match_rows};

/// Everything `tessera explain` computed.
pub struct Explanation {
    pub tests: Vec<Explained>,
    /// Per test, the folded-stack files of each side (empty without profiles).
    pub folded: Vec<(Vec<PathBuf>, Vec<PathBuf>)>,
    pub base_name: String,
    pub cand_name: String,
    /// Unpaired or failed configurations, said in the output.
    pub notes: Vec<String>,
}

/// Pairs the two sides and explains each pair.
pub fn explain(
    base: &Run,
    cand: &Run,
    base_filter: &[Filter],
    cand_filter: &[Filter],
    ignore: &[String],
) -> Result<Explanation> {
    let b_rows = if base_filter.is_empty() {
        base.rows.clone()
    } else {
        select(base, base_filter, "--base")?
    };
    let c_rows = if cand_filter.is_empty() {
        cand.rows.clone()
    } else {
        select(cand, cand_filter, "--cand")?
    };
    let mut ignore = ignore.to_vec();
    for f in base_filter.iter().chain(cand_filter) {
        if !ignore.contains(&f.key) {
            ignore.push(f.key.clone());
        }
    }
    // A field with one value on each side, different between them (the tile that comes
    // with each ISA, the engine of each file), tells the sides apart rather than the
    // tests: pair across it, and say so.
    let mut notes = Vec::new();
    for key in KEY_FIELDS.iter().filter(|k| **k != "test") {
        let values = |rows: &[LoadedRow]| -> std::collections::BTreeSet<String> {
            rows.iter()
                .filter_map(|r| r.config.get(*key).cloned())
                .collect()
        };
        let (a, b) = (values(&b_rows), values(&c_rows));
        if a.len() == 1 && b.len() == 1 && a != b && !ignore.iter().any(|i| i == key) {
            ignore.push(key.to_string());
            if !base_filter.iter().chain(cand_filter).any(|f| f.key == *key) {
                notes.push(format!(
                    "paired across {}: {} on the baseline side, {} on the candidate side",
                    display_name(key),
                    a.iter().next().map_or("", String::as_str),
                    b.iter().next().map_or("", String::as_str)
                ));
            }
        }
    }
    let single = b_rows.len() == 1 && c_rows.len() == 1;
    // One row per configuration: the loader pooled a sweep's repeats.
    let cfg = |rows: &[LoadedRow]| -> Vec<BTreeMap<String, String>> {
        rows.iter().map(|r| r.config.clone()).collect()
    };
    let (bc, cc) = (cfg(&b_rows), cfg(&c_rows));
    // Two single rows are explained as they are, whatever their configurations.
    let pairs = if single {
        vec![(0, 0)]
    } else {
        match_rows(&bc, &cc, &ignore).pairs
    };
    if pairs.is_empty() {
        bail!(
            "no test of '{}' pairs with one of '{}': give --ignore FIELD to pair across a field that differs on purpose, or FILE:N to pick one row per side",
            base.path.display(),
            cand.path.display()
        );
    }
    let base_name = side_name(base, base_filter, "base");
    let cand_name = side_name(cand, cand_filter, "cand");
    let mut tests = Vec::new();
    let mut folded = Vec::new();
    for (i, j) in pairs {
        let test = bc[i].get("test").cloned().unwrap_or_default();
        let b = breakdown(&b_rows[i]);
        let c = breakdown(&c_rows[j]);
        match (b, c) {
            (Some(b), Some(c)) => {
                let bl = label(base_filter, &bc[i], &cc[j], &base_name);
                let cl = label(cand_filter, &cc[j], &bc[i], &cand_name);
                tests.push(attribute(b, c, &bl, &cl));
                folded.push((
                    flame::folded_files(base, &b_rows[i]),
                    flame::folded_files(cand, &c_rows[j]),
                ));
            }
            (b, _) => notes.push(format!(
                "{test}: the {} side has no row that ran ok; nothing to explain",
                if b.is_none() { "baseline" } else { "candidate" }
            )),
        }
    }
    Ok(Explanation {
        tests,
        folded,
        base_name,
        cand_name,
        notes,
    })
}
