//! Stamps the harness with the git state it was built from, so every result row can
//! say which build produced it: TESSERA_BUILD_COMMIT (short hash of HEAD, "unknown"
//! outside git), TESSERA_BUILD_DIRTY ("true" when tracked files differ from HEAD) and
//! TESSERA_BUILD_NUMBER (commit count of HEAD, 0 when unknown).
//!
//! Never fails the build: without git, or outside a repository, the values fall back.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");

    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    let number = git(&["rev-list", "--count", "HEAD"])
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0);

    println!("cargo:rustc-env=TESSERA_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=TESSERA_BUILD_DIRTY={dirty}");
    println!("cargo:rustc-env=TESSERA_BUILD_NUMBER={number}");

    for path in watched_paths() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Runs git in the package directory; `None` if git is missing or fails. Output is
/// trimmed. GIT_OPTIONAL_LOCKS=0 stops `git status` from rewriting the index, which
/// would touch a watched file and make every build rerun this script, and from taking
/// a lock that a concurrent git command in the same checkout would trip over.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_string())
}

/// Files whose change can change the stamp: HEAD, the branch it points to, the index,
/// packed refs, and every tracked file (an edit makes the tree dirty without touching
/// the index). Only existing paths are listed, except tracked files deleted from the
/// work tree, whose absence keeps the stamp fresh while the tree is dirty. Outside
/// git this is empty and `build.rs` alone triggers a rerun.
fn watched_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let cwd = std::env::current_dir().unwrap_or_default();
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        }
    };

    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(|p| resolve(&p)) else {
        return paths;
    };
    // Linked worktrees keep HEAD and index in their own dir, refs in the common one.
    let common_dir = git(&["rev-parse", "--git-common-dir"])
        .map(|p| resolve(&p))
        .unwrap_or_else(|| git_dir.clone());

    paths.push(git_dir.join("HEAD"));
    paths.push(git_dir.join("index"));
    paths.push(common_dir.join("packed-refs"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(common_dir.join(branch));
    }
    paths.retain(|p| p.exists());

    if let Some(top) = git(&["rev-parse", "--show-toplevel"]) {
        let top = resolve(&top);
        if let Some(files) = git(&["-C", &top.to_string_lossy(), "ls-files", "-z"]) {
            paths.extend(
                files
                    .split('\0')
                    // A newline would end the cargo directive early.
                    .filter(|f| !f.is_empty() && !f.contains(['\n', '\r']))
                    .map(|f| top.join(f)),
            );
        }
    }
    paths
}
