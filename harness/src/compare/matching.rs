//! Pairs baseline rows with candidate rows on their configuration.
//!
//! Two rows are compatible when every key field that both state has the same value; a
//! field missing from either row is unknown and matches anything (llama-bench never
//! writes `isa`, an older run may lack `numa`). Among compatible pairs, those agreeing
//! on more stated fields are taken first, then file order; each row is used at most
//! once, and whatever is left is reported as unmatched, never dropped.

use std::collections::{BTreeMap, BTreeSet};

/// A key field's name as shown in labels.
pub fn display_name(field: &str) -> &str {
    match field {
        "n_threads" => "threads",
        "n_batch" => "batch",
        "n_ubatch" => "ubatch",
        "n_gpu_layers" => "ngl",
        other => other,
    }
}

/// The result of matching: index pairs (baseline, candidate) in baseline order, and
/// the indices left over on each side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matching {
    pub pairs: Vec<(usize, usize)>,
    pub base_only: Vec<usize>,
    pub cand_only: Vec<usize>,
}

type Config = BTreeMap<String, String>;

/// How many stated fields agree, or `None` if any stated field disagrees. `test` must
/// be stated by both: rows of different tests are never the same measurement.
fn agreement(a: &Config, b: &Config, ignore: &[String]) -> Option<usize> {
    let mut n = 0;
    for (k, va) in a {
        if ignore.iter().any(|i| i == k) {
            continue;
        }
        if let Some(vb) = b.get(k) {
            if va != vb {
                return None;
            }
            n += 1;
        }
    }
    (a.contains_key("test") && b.contains_key("test")).then_some(n)
}

/// Matches `base` rows to `cand` rows; fields named in `ignore` take no part.
pub fn match_rows(base: &[Config], cand: &[Config], ignore: &[String]) -> Matching {
    let mut candidates = Vec::new();
    for (i, a) in base.iter().enumerate() {
        for (j, b) in cand.iter().enumerate() {
            if let Some(score) = agreement(a, b, ignore) {
                candidates.push((score, i, j));
            }
        }
    }
    // Most agreeing fields first; ties in file order, so the result is deterministic.
    candidates.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut used_a = vec![false; base.len()];
    let mut used_b = vec![false; cand.len()];
    let mut pairs = Vec::new();
    for (_, i, j) in candidates {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            pairs.push((i, j));
        }
    }
    pairs.sort();
    Matching {
        pairs,
        base_only: (0..base.len()).filter(|&i| !used_a[i]).collect(),
        cand_only: (0..cand.len()).filter(|&j| !used_b[j]).collect(),
    }
}

/// Key fields (other than `test`) that take more than one value across all rows:
/// the ones worth printing to tell configurations apart.
pub fn varying_fields<'a>(configs: impl IntoIterator<Item = &'a Config>) -> Vec<String> {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in configs {
        for (k, v) in c {
            values.entry(k).or_default().insert(v);
        }
    }
    super::load::KEY_FIELDS
        .iter()
        .filter(|f| **f != "test")
        .filter(|f| values.get(**f).is_some_and(|v| v.len() > 1))
        .map(|f| f.to_string())
        .collect()
}

/// A short label "threads=2, isa=avx512" from the varying fields, taking each value
/// from the first config that states it; `fallback` when nothing varies.
pub fn label(configs: &[&Config], fields: &[String], fallback: &str) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|f| {
            configs
                .iter()
                .find_map(|c| c.get(f))
                .map(|v| format!("{}={v}", display_name(f)))
        })
        .collect();
    if parts.is_empty() {
        fallback.to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_fields_match_and_specific_matches_win() {
        let base = vec![
            cfg(&[("test", "pp512"), ("n_threads", "2")]),
            cfg(&[("test", "tg128"), ("n_threads", "2")]),
        ];
        let cand = vec![
            cfg(&[("test", "tg128"), ("n_threads", "2"), ("isa", "avx512")]),
            cfg(&[("test", "pp512"), ("n_threads", "4"), ("isa", "avx512")]),
            cfg(&[("test", "pp512"), ("n_threads", "2"), ("isa", "avx512")]),
        ];
        let m = match_rows(&base, &cand, &[]);
        assert_eq!(m.pairs, vec![(0, 2), (1, 0)]);
        assert!(m.base_only.is_empty());
        assert_eq!(m.cand_only, vec![1]);
    }

    #[test]
    fn conflicting_fields_do_not_match_unless_ignored() {
        let base = vec![cfg(&[("test", "pp512"), ("engine", "builtin")])];
        let cand = vec![cfg(&[("test", "pp512"), ("engine", "llama-bench")])];
        let m = match_rows(&base, &cand, &[]);
        assert!(m.pairs.is_empty());
        assert_eq!((m.base_only.len(), m.cand_only.len()), (1, 1));
        let m = match_rows(&base, &cand, &["engine".to_string()]);
        assert_eq!(m.pairs, vec![(0, 0)]);
    }

    #[test]
    fn each_row_is_used_once() {
        let base = vec![cfg(&[("test", "pp512")]), cfg(&[("test", "pp512")])];
        let cand = vec![cfg(&[("test", "pp512")])];
        let m = match_rows(&base, &cand, &[]);
        assert_eq!(m.pairs, vec![(0, 0)]);
        assert_eq!(m.base_only, vec![1]);
    }

    #[test]
    fn labels_show_only_varying_fields() {
        let a = cfg(&[
            ("test", "pp512"),
            ("n_threads", "2"),
            ("isa", "avx2"),
            ("model", "m"),
        ]);
        let b = cfg(&[
            ("test", "pp512"),
            ("n_threads", "4"),
            ("isa", "avx2"),
            ("model", "m"),
        ]);
        let fields = varying_fields([&a, &b]);
        assert_eq!(fields, vec!["n_threads".to_string()]);
        assert_eq!(label(&[&a], &fields, "m"), "threads=2");
        assert_eq!(label(&[&a], &[], "m"), "m");
    }
}
