//! `tessera explain BASE CAND`: for each test both sides ran, where the time per token
//! goes on each side (ops of the built-in engine, symbols of a profiled engine), which
//! parts make the difference, and a verdict in words. See [`crate::explain`].
//!
//! Sides: two run directories or result files (rows paired on configuration as
//! `tessera compare` pairs them), one row each (`FILE:N`, the N-th readable row), or one
//! run split by `--base KEY=VALUE... --cand KEY=VALUE...` (e.g. `--base isa=avx2 --cand
//! isa=amx`): the rows each filter selects, paired on every other field.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::compare::load::{KEY_FIELDS, LoadedRow, Run, load_run};
use crate::compare::matching::{display_name, match_rows};
use crate::explain::{self, Explained, render};
use crate::probe::roofline::Roofline;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Baseline: a run directory, a results .jsonl/.csv file, or FILE:N for its N-th row.
    pub base: PathBuf,
    /// Candidate, in the same forms; leave it out to split BASE with --base/--cand.
    pub cand: Option<PathBuf>,
    /// Rows of the baseline side: KEY=VALUE (repeatable), e.g. isa=avx2.
    #[arg(long = "base", value_name = "KEY=VALUE")]
    pub base_filter: Vec<String>,
    /// Rows of the candidate side: KEY=VALUE (repeatable), e.g. isa=amx.
    #[arg(long = "cand", value_name = "KEY=VALUE")]
    pub cand_filter: Vec<String>,
    /// Key fields to leave out of pairing (comma list), e.g. engine,model.
    #[arg(long = "ignore")]
    pub ignore: Vec<String>,
    /// Also draw stacked per-op bars, both sides per test (.png or .svg).
    #[arg(long = "chart")]
    pub chart: Option<PathBuf>,
    /// Where both sides were run with --profile: write a differential flamegraph per test
    /// into this directory (`<test>-diff.svg`).
    #[arg(long = "flamegraph", value_name = "DIR")]
    pub flamegraph: Option<PathBuf>,
    /// Leave out roof % (no probe is read or measured).
    #[arg(long = "no-roof")]
    pub no_roof: bool,
}

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
fn select(run: &Run, filters: &[Filter], flag: &str) -> Result<Vec<LoadedRow>> {
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
fn load_side(spec: &Path) -> Result<Run> {
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
fn label(
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
        let b = explain::breakdown(&b_rows[i]);
        let c = explain::breakdown(&c_rows[j]);
        match (b, c) {
            (Some(b), Some(c)) => {
                let bl = label(base_filter, &bc[i], &cc[j], &base_name);
                let cl = label(cand_filter, &cc[j], &bc[i], &cand_name);
                tests.push(explain::attribute(b, c, &bl, &cl));
                folded.push((
                    explain::flame::folded_files(base, &b_rows[i]),
                    explain::flame::folded_files(cand, &c_rows[j]),
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

fn side_name(run: &Run, filters: &[Filter], fallback: &str) -> String {
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

/// This machine's roofline (cached by `tessera probe`, measured once when absent), if the
/// rows were measured here: a roof of another machine would say nothing about them.
pub fn local_roofline(rows_fingerprints: &[&str], notes: &mut Vec<String>) -> Option<Roofline> {
    let dir = crate::cache::cache_dir();
    let desc = crate::probe::describe();
    let opts = crate::probe::MeasureOpts::default_for(&desc);
    let probe = match crate::probe::cached(&dir, opts) {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!(
                "no roof %: the probe could not be read or measured ({e:#})"
            ));
            return None;
        }
    };
    if let Some(other) = rows_fingerprints
        .iter()
        .find(|f| !f.is_empty() && **f != probe.fingerprint)
    {
        notes.push(format!(
            "no roof %: the rows were measured on machine {other}, this is {}; run explain there",
            probe.fingerprint
        ));
        return None;
    }
    probe.measured.and_then(|m| m.roofline)
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let base_filter = parse_filters(&a.base_filter, "--base")?;
    let cand_filter = parse_filters(&a.cand_filter, "--cand")?;
    let ignore = crate::compare::load::parse_ignore(&a.ignore)?;
    if let Some(c) = &a.chart {
        crate::chart::ImageFormat::from_path(c)?;
    }
    let base = load_side(&a.base)?;
    let cand = match &a.cand {
        Some(c) => load_side(c)?,
        None if !base_filter.is_empty() && !cand_filter.is_empty() => base.clone(),
        None => bail!(
            "give a candidate: a second run or file, or --base KEY=VALUE and --cand KEY=VALUE to split '{}'",
            a.base.display()
        ),
    };
    let mut e = explain(&base, &cand, &base_filter, &cand_filter, &ignore)?;
    let roofline = if a.no_roof {
        None
    } else {
        let fps: Vec<&str> = e
            .tests
            .iter()
            .flat_map(|t| [t.base.fingerprint.as_str(), t.cand.fingerprint.as_str()])
            .collect();
        local_roofline(&fps, &mut e.notes)
    };
    let md = render::markdown(
        &e.tests,
        &e.base_name,
        &e.cand_name,
        roofline.as_ref(),
        &e.notes,
    );
    let mut out = std::io::stdout().lock();
    out.write_all(md.as_bytes())?;
    out.flush()?;
    if let Some(path) = &a.chart {
        let chart = render::chart(&e.tests, &e.base_name, &e.cand_name);
        crate::chart::save(&chart, path)
            .with_context(|| format!("drawing the chart '{}'", path.display()))?;
        eprintln!("tessera: chart written to {}", path.display());
    }
    if let Some(dir) = &a.flamegraph {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the flamegraph directory '{}'", dir.display()))?;
        for (t, (bf, cf)) in e.tests.iter().zip(&e.folded) {
            let name: String = t
                .test
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let out = dir.join(format!("{name}-diff.svg"));
            let title = format!("{}: {} vs {}", t.test, t.cand_label, t.base_label);
            match explain::flame::write(bf, cf, &title, &out) {
                Ok(()) => eprintln!(
                    "tessera: differential flamegraph written to {}",
                    out.display()
                ),
                Err(err) => eprintln!("tessera: {}: no differential flamegraph: {err:#}", t.test),
            }
        }
    }
    Ok(true)
}
