//! `tessera bisect reset`: removing what a bisection left behind, its state file and, when
//! asked, the worktrees, builds, ccache and build records under its cache directory.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::repo::Repo;
use super::state::{STATE_FILE, State};
use super::worktree::Worktrees;

/// Removes the bisection state in `dir`, and with `worktrees` the worktrees (and builds,
/// ccache and build records) tessera created for `repo`. Refused while a bisection runs
/// there: it would go on with its state file gone.
pub fn reset(dir: &Path, repo: &Path, worktrees: bool) -> Result<()> {
    let _lock = dir
        .is_dir()
        .then(|| crate::lockfile::DirLock::acquire(dir, "tessera bisect reset"))
        .transpose()?;
    let path = dir.join(STATE_FILE);
    let cache_dir = State::load(&path)
        .map(|s| s.spec.cache_dir)
        .unwrap_or_else(|_| dir.join("worktrees"));
    if path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        eprintln!("removed {}", path.display());
    }
    if worktrees {
        let git = Repo::open(repo)?;
        let repo_dir = std::fs::canonicalize(repo)
            .map_err(|e| anyhow::anyhow!("--repo: '{}': {e}", repo.display()))?;
        let n = Worktrees::remove_all(&git, &repo_dir, &cache_dir);
        let _ = std::fs::remove_dir_all(cache_dir.join("ccache"));
        // Build records describe builds that are gone now.
        if let Ok(entries) = std::fs::read_dir(&cache_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".build.json") || name.ends_with(".checkout") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        eprintln!("removed {n} worktrees");
    }
    Ok(())
}
