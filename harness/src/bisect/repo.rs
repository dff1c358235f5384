//! The git side of bisection, through libgit2: resolving revisions, the commit range as a
//! graph (first-parent or full), commit descriptions, and one linked worktree per commit in
//! a cache directory, so the user's working tree, index and branch are never touched and a
//! commit's build survives for the next test of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use git2::{BranchType, Oid, Repository, Sort, WorktreeAddOptions, WorktreePruneOptions};
use serde::{Deserialize, Serialize};

use super::search::Dag;
use crate::timefmt::rfc3339_from_unix;

/// A commit as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub hash: String,
    pub author: String,
    pub email: String,
    /// Author date, RFC 3339 UTC.
    pub date: String,
    pub subject: String,
    /// Paths changed against the first parent.
    #[serde(default)]
    pub files_changed: Vec<String>,
}

/// The commits under bisection: oldest first, with the graph over them.
#[derive(Debug, Clone)]
pub struct Range {
    /// Commits reachable from the new endpoint and not from the old one, in topological
    /// order (parents before children); the last one is the new endpoint.
    pub commits: Vec<Oid>,
    pub dag: Dag,
}

impl Range {
    pub fn index_of(&self, oid: Oid) -> Option<usize> {
        self.commits.iter().position(|&c| c == oid)
    }
}

pub struct Repo {
    repo: Repository,
    dir: PathBuf,
}

impl Repo {
    /// Opens the repository containing `dir`.
    pub fn open(dir: &Path) -> Result<Repo> {
        let repo = Repository::discover(dir).map_err(|e| {
            anyhow!(
                "--repo: '{}' is not inside a git repository ({})",
                dir.display(),
                e.message()
            )
        })?;
        Ok(Repo {
            repo,
            dir: dir.to_path_buf(),
        })
    }

    /// The repository's common git directory (shared by all its worktrees).
    pub fn common_dir(&self) -> PathBuf {
        self.repo.commondir().to_path_buf()
    }

    /// Resolves a revision to a commit; the error names the flag and the revision.
    pub fn resolve(&self, flag: &str, rev: &str) -> Result<Oid> {
        let obj = self.repo.revparse_single(rev).map_err(|_| {
            anyhow!(
                "{flag}: revision '{rev}' not found in {}",
                self.dir.display()
            )
        })?;
        let commit = obj
            .peel_to_commit()
            .map_err(|_| anyhow!("{flag}: revision '{rev}' does not name a commit"))?;
        Ok(commit.id())
    }

    /// Whether `ancestor` is a proper ancestor of `commit`.
    pub fn is_ancestor(&self, ancestor: Oid, commit: Oid) -> Result<bool> {
        Ok(self.repo.graph_descendant_of(commit, ancestor)?)
    }

    /// The commits reachable from `new` and not from `old`, and their graph. With
    /// `first_parent`, merges are followed along their first parent only.
    pub fn range(&self, old: Oid, new: Oid, first_parent: bool) -> Result<Range> {
        let mut walk = self.repo.revwalk()?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
        if first_parent {
            walk.simplify_first_parent()?;
        }
        walk.push(new)?;
        walk.hide(old)?;
        let commits: Vec<Oid> = walk.collect::<Result<_, _>>()?;
        let index: HashMap<Oid, usize> = commits.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        let mut parents = Vec::with_capacity(commits.len());
        for &c in &commits {
            let commit = self.repo.find_commit(c)?;
            let ids: Vec<Oid> = if first_parent {
                commit.parent_ids().take(1).collect()
            } else {
                commit.parent_ids().collect()
            };
            parents.push(ids.iter().filter_map(|p| index.get(p).copied()).collect());
        }
        // The new endpoint must come last; topological order guarantees it only when it is
        // the single tip, which it is (everything in the walk is its ancestor).
        if commits.last() != Some(&new) {
            bail!("internal: the commit range does not end at the new endpoint");
        }
        Ok(Range {
            commits,
            dag: Dag { parents },
        })
    }

    /// Describes a commit.
    pub fn info(&self, oid: Oid) -> Result<CommitInfo> {
        let c = self.repo.find_commit(oid)?;
        let author = c.author();
        let tree = c.tree()?;
        let parent_tree = match c.parents().next() {
            Some(p) => Some(p.tree()?),
            None => None,
        };
        let diff = self
            .repo
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)?;
        let files_changed = diff
            .deltas()
            .filter_map(|d| {
                d.new_file()
                    .path()
                    .or(d.old_file().path())
                    .map(|p| p.display().to_string())
            })
            .collect();
        Ok(CommitInfo {
            hash: oid.to_string(),
            author: author.name().unwrap_or("").to_string(),
            email: author.email().unwrap_or("").to_string(),
            date: rfc3339_from_unix(author.when().seconds()),
            subject: c.summary().ok().flatten().unwrap_or("").to_string(),
            files_changed,
        })
    }

    /// A commit's subject line, for progress messages.
    pub fn subject(&self, oid: Oid) -> String {
        self.repo
            .find_commit(oid)
            .ok()
            .and_then(|c| c.summary().ok().flatten().map(str::to_string))
            .unwrap_or_default()
    }

    /// The linked worktree of `oid` under `cache_dir`, created on first use (detached HEAD at
    /// the commit). An existing one at the right commit is reused as it is, build outputs
    /// included; the flag says whether it was reused.
    pub fn worktree(&self, cache_dir: &Path, oid: Oid) -> Result<(PathBuf, bool)> {
        let path = cache_dir.join(oid.to_string());
        if path.join(".git").exists()
            && let Ok(wt) = Repository::open(&path)
            && wt.head().ok().and_then(|h| h.target()) == Some(oid)
        {
            return Ok((path, true));
        }
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating cache dir {}", cache_dir.display()))?;
        let name = format!("tessera-{}", &oid.to_string()[..16]);
        // A stale registration (its directory deleted by hand) blocks re-adding; prune it.
        if let Ok(old) = self.repo.find_worktree(&name) {
            let _ = old.prune(Some(
                WorktreePruneOptions::new()
                    .valid(true)
                    .locked(true)
                    .working_tree(true),
            ));
        }
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing stale worktree {}", path.display()))?;
        }
        // libgit2 checks a worktree out on a branch; make a short-lived one at the commit,
        // detach the worktree's HEAD, then delete the branch again.
        let commit = self.repo.find_commit(oid)?;
        let mut branch = self
            .repo
            .branch(&name, &commit, true)
            .with_context(|| format!("creating temporary branch {name}"))?;
        let result = (|| -> Result<()> {
            let reference = branch.get();
            let mut opts = WorktreeAddOptions::new();
            opts.reference(Some(reference));
            self.repo
                .worktree(&name, &path, Some(&opts))
                .with_context(|| format!("adding worktree {}", path.display()))?;
            let wt = Repository::open(&path)?;
            wt.set_head_detached(oid)?;
            Ok(())
        })();
        let deleted = branch.delete();
        result?;
        if let Err(e) = deleted
            && let Ok(mut b) = self.repo.find_branch(&name, BranchType::Local)
        {
            b.delete()
                .with_context(|| format!("deleting temporary branch {name}: {e}"))?;
        }
        Ok((path, false))
    }

    /// Removes every worktree this tool registered (those named `tessera-*`).
    pub fn remove_worktrees(&self) -> Result<usize> {
        let mut n = 0;
        let names = self.repo.worktrees()?;
        for name in names.iter().filter_map(|n| n.ok().flatten()) {
            if !name.starts_with("tessera-") {
                continue;
            }
            let wt = self.repo.find_worktree(name)?;
            let path = wt.path().to_path_buf();
            wt.prune(Some(
                WorktreePruneOptions::new()
                    .valid(true)
                    .locked(true)
                    .working_tree(true),
            ))?;
            if path.exists() {
                let _ = std::fs::remove_dir_all(&path);
            }
            n += 1;
        }
        Ok(n)
    }
}
