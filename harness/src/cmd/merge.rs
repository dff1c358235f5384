//! `tessera merge DIR...`: joins the shard directories of one sweep (possibly measured on
//! several machines) into one run directory with one results.jsonl and manifest.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::cmd::sweep::read_manifest;
use crate::results::BenchRow;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shard run directories (each with manifest.json and results.jsonl).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Output run directory; default: the shards' common parent directory.
    #[arg(long = "out")]
    pub out: Option<PathBuf>,
}

/// Merges; returns whether every point of the plan is present.
pub fn run_cli(a: &Args) -> Result<bool> {
    let mut manifests = Vec::new();
    for d in &a.dirs {
        manifests.push(read_manifest(d)?);
    }
    let first = &manifests[0];
    for (m, d) in manifests.iter().zip(&a.dirs).skip(1) {
        if m.unit_keys != first.unit_keys {
            bail!(
                "'{}' belongs to a different sweep than '{}' (its plan differs); merge only shards of one sweep",
                d.display(),
                a.dirs[0].display()
            );
        }
    }
    let out = match &a.out {
        Some(o) => o.clone(),
        None => {
            let parents: BTreeSet<PathBuf> = a
                .dirs
                .iter()
                .map(|d| d.parent().map(|p| p.to_path_buf()).unwrap_or_default())
                .collect();
            match parents.into_iter().next() {
                Some(p)
                    if a.dirs.iter().all(|d| d.parent() == Some(p.as_path()))
                        && !p.as_os_str().is_empty() =>
                {
                    p
                }
                _ => bail!("the shard directories have no common parent; give --out DIR"),
            }
        }
    };
    if a.dirs.iter().any(|d| d == &out) {
        bail!(
            "--out: '{}' is one of the inputs; give another directory",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut seen = BTreeSet::new();
    let mut rows: Vec<BenchRow> = Vec::new();
    let mut dups = 0usize;
    for d in &a.dirs {
        for r in crate::sweep::read_existing(&d.join("results.jsonl"))? {
            if seen.insert(r.point_key.clone()) {
                rows.push(r);
            } else {
                dups += 1;
            }
        }
    }
    // Plan order, so a merged run reads like an unsharded one.
    let order: std::collections::HashMap<&String, usize> = first
        .unit_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    rows.sort_by_key(|r| order.get(&r.point_key).copied().unwrap_or(usize::MAX));
    let mut f = std::fs::File::create(out.join("results.jsonl"))?;
    for r in &rows {
        writeln!(f, "{}", serde_json::to_string(r)?)?;
    }
    let mut m = first.clone();
    m.shard = None;
    m.argv = std::env::args().collect();
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&m)?)?;
    if let Ok(p) = std::fs::read(a.dirs[0].join("probe.json")) {
        std::fs::write(out.join("probe.json"), p)?;
    }
    let missing = first
        .unit_keys
        .iter()
        .filter(|k| !seen.contains(*k))
        .count();
    let summary = crate::sweep::summarize(&rows);
    std::fs::write(out.join("summary.md"), &summary)?;
    print!("{summary}");
    println!(
        "\nmerged {} shard(s) into {}: {} of {} points{}{}",
        a.dirs.len(),
        out.display(),
        first.unit_keys.len() - missing,
        first.unit_keys.len(),
        if missing > 0 {
            format!(", {missing} missing")
        } else {
            String::new()
        },
        if dups > 0 {
            format!(", {dups} duplicate rows dropped")
        } else {
            String::new()
        },
    );
    Ok(missing == 0)
}
