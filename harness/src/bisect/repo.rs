//! The git side of bisection that reads the repository, through libgit2: resolving
//! revisions, the commit range as a graph (first-parent or full), commit descriptions, and
//! which blobs a commit's tree has. Worktrees are made by the git command (`worktree`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use git2::{ObjectType, Oid, Repository, Sort, TreeWalkMode, TreeWalkResult};
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

/// Lets libgit2 open repositories that declare extensions it does not implement but can
/// read safely: partial clones (objects may be missing, which lookups report) and
/// precious-objects repositories (we never prune).
fn allow_extensions() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: libgit2's global options are set once, before any repository is opened
        // by this process (Repo::open is the only way in).
        let _ = unsafe { git2::opts::set_extensions(&["partialclone", "preciousobjects"]) };
    });
}

pub struct Repo {
    repo: Repository,
    dir: PathBuf,
}

impl Repo {
    /// Opens the repository containing `dir`.
    pub fn open(dir: &Path) -> Result<Repo> {
        allow_extensions();
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

    /// Every blob of `oid`'s tree with its path (trees are present even where blobs are
    /// not), to name the files a failed checkout lacked.
    pub fn blob_paths(&self, oid: Oid) -> Result<Vec<(Oid, String)>> {
        let tree = self.repo.find_commit(oid)?.tree()?;
        let mut out = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob)
                && let Ok(name) = entry.name()
            {
                out.push((entry.id(), format!("{dir}{name}")));
            }
            TreeWalkResult::Ok
        })?;
        Ok(out)
    }

    /// Whether the object store holds the object.
    pub fn has_object(&self, oid: Oid) -> bool {
        self.repo.odb().is_ok_and(|odb| odb.exists(oid))
    }
}
