//! Merging the shard directories of one sweep (possibly measured on several machines)
//! into one run directory with one results.jsonl and manifest; `tessera merge` is its edge
//! (`cmd::merge`). It lives beside the sweep because it reads what the sweep writes: the
//! [`Manifest`] (whose `unit_keys` say which shards belong together and the plan order),
//! the rows ([`read_existing`]) and the summary ([`summarize`]).
//!
//! A merge never loses rows: when the output already holds a results.jsonl with points
//! this merge lacks (an earlier, complete merge, and now only some shards are given), it
//! refuses unless `force`; the file is replaced atomically, so an interrupted merge
//! leaves the old one whole.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::{Manifest, read_existing, summarize};
use crate::results::BenchRow;

/// A merge, resolved from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Shard run directories (each with manifest.json and results.jsonl), at least one.
    pub dirs: Vec<PathBuf>,
    /// Output run directory; `None`: the shards' common parent directory.
    pub out: Option<PathBuf>,
    /// Replace an output results.jsonl even when it holds points this merge lacks.
    pub force: bool,
    /// The command line, recorded in the merged manifest.
    pub argv: Vec<String>,
}

/// What a merge wrote.
#[derive(Clone, Debug)]
pub struct Merged {
    /// Shard directories merged.
    pub shards: usize,
    /// The output run directory.
    pub out: PathBuf,
    /// Points of the plan present in the merged run, of `total`.
    pub present: usize,
    pub total: usize,
    /// Rows dropped because an earlier shard already had their point.
    pub duplicates: usize,
    /// The run's summary, as written to summary.md.
    pub summary: String,
}

/// The directory holding `d`: "." for a bare relative name, as for "./name".
fn parent_of(d: &Path) -> Option<PathBuf> {
    let p = d.parent()?;
    Some(if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.to_path_buf()
    })
}

/// The shards' common parent directory, compared as the file system resolves them (so
/// `a/s1` and `./a/s2` agree).
fn common_parent(dirs: &[PathBuf]) -> Result<PathBuf> {
    let no_common = || {
        anyhow::anyhow!(
            "the shard directories {} have no common parent; give --out DIR",
            dirs.iter()
                .map(|d| format!("'{}'", d.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut resolved = BTreeSet::new();
    for d in dirs {
        let p = parent_of(d).ok_or_else(no_common)?;
        resolved.insert(std::fs::canonicalize(&p).unwrap_or(p));
    }
    if resolved.len() != 1 {
        return Err(no_common());
    }
    parent_of(&dirs[0]).ok_or_else(no_common)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Merges the shards of `cfg` into one run directory: checks they are one sweep's, refuses
/// to lose rows, writes results.jsonl (atomically), manifest.json, probe.json and
/// summary.md. Printing is the caller's.
pub fn run(cfg: &Config) -> Result<Merged> {
    // The command line requires a directory; a caller of its own gets an error, not a panic.
    if cfg.dirs.is_empty() {
        bail!("no shard directories to merge; give at least one");
    }
    let mut manifests = Vec::new();
    for d in &cfg.dirs {
        manifests.push(Manifest::read(d)?);
    }
    let first = &manifests[0];
    for (m, d) in manifests.iter().zip(&cfg.dirs).skip(1) {
        if m.unit_keys != first.unit_keys {
            bail!(
                "'{}' belongs to a different sweep than '{}' (its plan differs); merge only shards of one sweep",
                d.display(),
                cfg.dirs[0].display()
            );
        }
    }
    let out = match &cfg.out {
        Some(o) => o.clone(),
        None => common_parent(&cfg.dirs)?,
    };
    if cfg.dirs.iter().any(|d| same_dir(d, &out)) {
        bail!(
            "--out: '{}' is one of the inputs; give another directory",
            out.display()
        );
    }
    let _lock = crate::lockfile::DirLock::acquire(&out, "tessera merge")?;
    let mut seen = BTreeSet::new();
    let mut rows: Vec<BenchRow> = Vec::new();
    let mut dups = 0usize;
    for d in &cfg.dirs {
        for r in read_existing(&d.join("results.jsonl"))? {
            if seen.insert(r.point_key.clone()) {
                rows.push(r);
            } else {
                dups += 1;
            }
        }
    }
    let results = out.join("results.jsonl");
    refuse_to_lose_rows(&results, &seen, rows.len(), cfg.force)?;
    // Plan order, so a merged run reads like an unsharded one.
    let order: std::collections::HashMap<&String, usize> = first
        .unit_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    rows.sort_by_key(|r| order.get(&r.point_key).copied().unwrap_or(usize::MAX));
    let tmp = out.join("results.jsonl.tmp");
    {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?,
        );
        for r in &rows {
            crate::results::write_row(&mut f, r)
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        f.flush()
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &results).with_context(|| format!("writing {}", results.display()))?;
    let mut m = first.clone();
    m.shard = None;
    m.argv = cfg.argv.clone();
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&m)?)?;
    if let Ok(p) = std::fs::read(cfg.dirs[0].join("probe.json")) {
        std::fs::write(out.join("probe.json"), p)?;
    }
    let missing = first
        .unit_keys
        .iter()
        .filter(|k| !seen.contains(*k))
        .count();
    let summary = summarize(&rows);
    std::fs::write(out.join("summary.md"), &summary)?;
    Ok(Merged {
        shards: cfg.dirs.len(),
        out,
        present: first.unit_keys.len() - missing,
        total: first.unit_keys.len(),
        duplicates: dups,
        summary,
    })
}

impl Merged {
    /// Points of the plan no shard has.
    pub fn missing(&self) -> usize {
        self.total - self.present
    }
}

/// Refuses to replace `results` when it holds rows (or unreadable lines) whose points the
/// merge lacks, unless `force`.
fn refuse_to_lose_rows(
    results: &Path,
    merged_keys: &BTreeSet<String>,
    merged_rows: usize,
    force: bool,
) -> Result<()> {
    if !results.exists() {
        return Ok(());
    }
    let file =
        std::fs::File::open(results).with_context(|| format!("reading {}", results.display()))?;
    let old = crate::results::parse_jsonl(std::io::BufReader::new(file))
        .with_context(|| format!("in '{}'", results.display()))?;
    let lost = old
        .rows
        .iter()
        .filter(|r| !merged_keys.contains(&r.row.point_key))
        .count();
    let unreadable = old.skipped.len();
    if lost == 0 && unreadable == 0 {
        return Ok(());
    }
    let what = format!(
        "{} already holds {} rows{} and this merge has {merged_rows}, without {}",
        results.display(),
        old.rows.len(),
        if unreadable > 0 {
            format!(" and {unreadable} unreadable lines")
        } else {
            String::new()
        },
        match (lost, unreadable) {
            (0, _) => "its unreadable lines".to_string(),
            (n, 0) => format!("{n} of its points"),
            (n, _) => format!("{n} of its points and its unreadable lines"),
        }
    );
    if !force {
        bail!("{what}; merge every shard, give another --out DIR, or add --force to replace it");
    }
    eprintln!("tessera: warning: {what}; replacing it (--force)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_of_one_parent_merge_into_it_others_need_out() {
        let dirs = [PathBuf::from("runs/s1"), PathBuf::from("runs/s2")];
        assert_eq!(common_parent(&dirs).unwrap(), PathBuf::from("runs"));
        assert_eq!(
            common_parent(&[PathBuf::from("s1")]).unwrap(),
            PathBuf::from(".")
        );
        let e = common_parent(&[PathBuf::from("a/s1"), PathBuf::from("b/s2")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the shard directories 'a/s1', 'b/s2' have no common parent; give --out DIR"
        );
    }

    #[test]
    fn no_directories_is_an_error_not_a_panic() {
        let cfg = Config {
            dirs: Vec::new(),
            out: None,
            force: false,
            argv: Vec::new(),
        };
        assert!(run(&cfg).is_err());
    }
}
