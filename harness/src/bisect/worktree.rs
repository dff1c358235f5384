//! The worktrees commits are built in, made with the git command rather than libgit2,
//! because only git knows sparse checkouts, promisor remotes and partial clones. A worktree
//! is added without a checkout, given the repository's sparse-checkout patterns plus the
//! `--exclude` ones, and only then populated (`git read-tree -mu HEAD`), so that a blob the
//! object store lacks (a mirror without its largest files, a `--filter=blob:limit` clone with
//! no network) is never needed when it is left out. A checkout that does need one fails
//! with the path and the `--exclude` that would leave it out. Submodules whose repository
//! is absent are skipped with a note.
//!
//! Each commit gets its own worktree (`<cache dir>/<hash>`), except with the `reuse` build
//! cache: there every commit but the old endpoint is checked out in turn in one shared
//! worktree (`<cache dir>/shared`), so that git rewrites only the files that differ and the
//! build directory in it rebuilds incrementally. The user's checkout, index, HEAD, branches
//! and stash are never touched: everything runs in the added worktrees.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail};
use git2::Oid;
use regex::Regex;

use super::repo::Repo;
use super::report::short;

/// Name of the shared worktree of the `reuse` build cache, inside the cache dir.
pub const SHARED: &str = "shared";

/// Environment variables that would point git at another repository than the one asked.
const GIT_LOCATION_VARS: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
];

/// A checkout that failed in a way every commit would (a blob the object store lacks):
/// the bisection stops rather than skipping commit after commit.
#[derive(Debug)]
pub struct CheckoutFailed(pub String);

impl std::fmt::Display for CheckoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckoutFailed {}

/// A worktree ready for a build.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    /// It was already at this commit, build outputs included.
    pub reused: bool,
    /// What was skipped (absent submodules), for the progress output.
    pub notes: Vec<String>,
}

/// Makes and finds the worktrees of one bisection.
pub struct Worktrees {
    repo_dir: PathBuf,
    common_dir: PathBuf,
    cache_dir: PathBuf,
    /// The sparse-checkout file every worktree gets.
    patterns: String,
}

/// Runs git in `dir`, with hooks off and no prompts; stdout on success, else an error that
/// holds git's stderr.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = git_output(dir, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        bail!(
            "`git {}` in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

fn git_output(dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    let mut cmd = Command::new("git");
    cmd.args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    for v in GIT_LOCATION_VARS {
        cmd.env_remove(v);
    }
    cmd.output().map_err(|e| {
        anyhow!(
            "running git: {e}; tessera bisect checks commits out with the git command, \
             install git"
        )
    })
}

/// The arguments that make git apply our sparse-checkout file, whatever the repository's
/// own configuration says.
const SPARSE: [&str; 4] = [
    "-c",
    "core.sparseCheckout=true",
    "-c",
    "core.sparseCheckoutCone=false",
];

fn with_sparse<'a>(args: &[&'a str]) -> Vec<&'a str> {
    SPARSE.iter().copied().chain(args.iter().copied()).collect()
}

impl Worktrees {
    /// Reads the repository's sparse-checkout patterns and combines them with `exclude`.
    pub fn new(repo: &Repo, repo_dir: &Path, cache_dir: &Path, exclude: &[String]) -> Result<Self> {
        let own = repo_sparse_patterns(repo_dir)?;
        if let Some((file, text)) = &own {
            eprintln!(
                "worktrees follow the repository's sparse-checkout patterns ({} lines of {})",
                pattern_lines(text).count(),
                file.display()
            );
        }
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating cache dir {}", cache_dir.display()))?;
        Ok(Worktrees {
            repo_dir: repo_dir.to_path_buf(),
            common_dir: repo.common_dir(),
            // git records worktrees by their real path.
            cache_dir: std::fs::canonicalize(cache_dir).unwrap_or_else(|_| cache_dir.to_path_buf()),
            patterns: sparse_file(own.map(|(_, text)| text), exclude),
        })
    }

    /// The worktree of its own for `oid`, created on first use. One that exists at the
    /// commit is reused as it is, build outputs included (its patterns are brought up to
    /// date first when they changed).
    pub fn own(&self, repo: &Repo, oid: Oid) -> Result<Prepared> {
        let path = self.cache_dir.join(oid.to_string());
        if self.head_of(&path) == Some(oid) {
            self.refresh_patterns(repo, &path, oid)?;
            return Ok(Prepared {
                path,
                reused: true,
                notes: Vec::new(),
            });
        }
        self.create(repo, &path, oid)
    }

    /// The shared worktree moved to `oid`: created on first use, else only the files that
    /// differ are rewritten, so the build in it is incremental.
    pub fn shared(&self, repo: &Repo, oid: Oid) -> Result<Prepared> {
        let path = self.cache_dir.join(SHARED);
        match self.head_of(&path) {
            Some(h) if h == oid => {
                self.refresh_patterns(repo, &path, oid)?;
                Ok(Prepared {
                    path,
                    reused: true,
                    notes: Vec::new(),
                })
            }
            Some(_) => {
                self.write_patterns(&path)?;
                let target = oid.to_string();
                let out = git_output(
                    &path,
                    &with_sparse(&["checkout", "-q", "-f", "--detach", &target]),
                )?;
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr).into_owned();
                    self.remove(&path);
                    return Err(checkout_error(repo, oid, &err));
                }
                let notes = self.submodules(&path)?;
                self.mark_done(&path)?;
                Ok(Prepared {
                    path,
                    reused: false,
                    notes,
                })
            }
            None => self.create(repo, &path, oid),
        }
    }

    /// The commit a complete worktree at `path` has checked out.
    fn head_of(&self, path: &Path) -> Option<Oid> {
        if !path.join(".git").exists() || !marker(path).is_file() {
            return None;
        }
        let head = git(path, &["rev-parse", "--verify", "-q", "HEAD"]).ok()?;
        Oid::from_str(head.trim()).ok()
    }

    /// Re-applies the patterns to an existing worktree when they changed (`--exclude` on
    /// `--resume`); git only adds or removes the files concerned.
    fn refresh_patterns(&self, repo: &Repo, path: &Path, oid: Oid) -> Result<()> {
        if std::fs::read_to_string(marker(path)).ok().as_deref() == Some(self.patterns.as_str()) {
            return Ok(());
        }
        self.write_patterns(path)?;
        self.populate(repo, path, oid)?;
        self.mark_done(path)
    }

    fn create(&self, repo: &Repo, path: &Path, oid: Oid) -> Result<Prepared> {
        std::fs::create_dir_all(&self.cache_dir)
            .with_context(|| format!("creating cache dir {}", self.cache_dir.display()))?;
        self.remove(path);
        let target = oid.to_string();
        let path_s = path.to_string_lossy();
        // -f: a registration whose directory was deleted by hand would block the add.
        git(
            &self.repo_dir,
            &[
                "worktree",
                "add",
                "-f",
                "--detach",
                "--no-checkout",
                &path_s,
                &target,
            ],
        )
        .with_context(|| format!("adding a worktree for {}", short(&target)))?;
        self.write_patterns(path)?;
        if let Err(e) = self.populate(repo, path, oid) {
            self.remove(path);
            return Err(e);
        }
        let notes = self.submodules(path)?;
        self.mark_done(path)?;
        Ok(Prepared {
            path: path.to_path_buf(),
            reused: false,
            notes,
        })
    }

    /// Checks the index and files of HEAD out under the sparse patterns.
    fn populate(&self, repo: &Repo, path: &Path, oid: Oid) -> Result<()> {
        let out = git_output(path, &with_sparse(&["read-tree", "-mu", "HEAD"]))?;
        if out.status.success() {
            return Ok(());
        }
        Err(checkout_error(
            repo,
            oid,
            &String::from_utf8_lossy(&out.stderr),
        ))
    }

    fn write_patterns(&self, path: &Path) -> Result<()> {
        let admin = git(path, &["rev-parse", "--absolute-git-dir"])?;
        let info = PathBuf::from(admin.trim()).join("info");
        std::fs::create_dir_all(&info).with_context(|| format!("creating {}", info.display()))?;
        let file = info.join("sparse-checkout");
        std::fs::write(&file, &self.patterns).with_context(|| format!("writing {}", file.display()))
    }

    /// Records that the worktree is complete (a kill between add and checkout leaves none),
    /// with the patterns it was made with.
    fn mark_done(&self, path: &Path) -> Result<()> {
        let m = marker(path);
        std::fs::write(&m, &self.patterns).with_context(|| format!("writing {}", m.display()))
    }

    /// Checks out the submodules whose repository the superproject has (offline, from
    /// `<git dir>/modules/NAME`); the absent ones are skipped with a note.
    fn submodules(&self, path: &Path) -> Result<Vec<String>> {
        let staged = git(path, &["ls-files", "--stage", "-t"])?;
        let links: Vec<(String, String)> = staged
            .lines()
            .filter_map(parse_gitlink)
            .map(|(o, p)| (o.to_string(), p.to_string()))
            .collect();
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let names = submodule_names(path);
        let mut notes = Vec::new();
        for (oid, sub) in links {
            let name = names.get(&sub).cloned().unwrap_or_else(|| sub.clone());
            let modules = self.common_dir.join("modules").join(&name);
            if !modules.join("HEAD").is_file() {
                notes.push(format!(
                    "submodule {sub} is absent from the repository (no {}): skipped, its \
                     directory is empty",
                    modules.display()
                ));
                continue;
            }
            let dest = path.join(&sub);
            let modules_s = modules.to_string_lossy();
            let dest_s = dest.to_string_lossy();
            let done = git(
                path,
                &[
                    "clone",
                    "-q",
                    "--no-checkout",
                    "--shared",
                    &modules_s,
                    &dest_s,
                ],
            )
            .and_then(|_| git(&dest, &["checkout", "-q", "--detach", &oid]));
            if let Err(e) = done {
                notes.push(format!(
                    "submodule {sub}: its commit {} cannot be checked out offline: skipped ({e:#})",
                    short(&oid)
                ));
            }
        }
        Ok(notes)
    }

    /// Removes a worktree of ours: its files, and its registration in the repository
    /// (exactly that one, unlike `git worktree prune`).
    fn remove(&self, path: &Path) {
        let _ = std::fs::remove_file(marker(path));
        if path.exists() {
            let _ = std::fs::remove_dir_all(path);
        }
        for admin in self.registrations_of(path) {
            let _ = std::fs::remove_dir_all(admin);
        }
    }

    /// The admin directories (`<git dir>/worktrees/NAME`) registered for `path`.
    fn registrations_of(&self, path: &Path) -> Vec<PathBuf> {
        let want = path.join(".git");
        let Ok(entries) = std::fs::read_dir(self.common_dir.join("worktrees")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|admin| {
                std::fs::read_to_string(admin.join("gitdir"))
                    .is_ok_and(|g| Path::new(g.trim()) == want)
            })
            .collect()
    }

    /// Removes every worktree registered under `cache_dir` (those of earlier tessera versions,
    /// made by libgit2, included); returns how many.
    pub fn remove_all(repo: &Repo, repo_dir: &Path, cache_dir: &Path) -> usize {
        Worktrees {
            repo_dir: repo_dir.to_path_buf(),
            common_dir: repo.common_dir(),
            cache_dir: std::fs::canonicalize(cache_dir).unwrap_or_else(|_| cache_dir.to_path_buf()),
            patterns: String::new(),
        }
        .remove_registered()
    }

    fn remove_registered(&self) -> usize {
        let listed = git(&self.repo_dir, &["worktree", "list", "--porcelain"]).unwrap_or_default();
        let mut n = 0;
        for line in listed.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                let p = Path::new(p);
                if p.starts_with(&self.cache_dir) && p != self.cache_dir {
                    self.remove(p);
                    n += 1;
                }
            }
        }
        n
    }
}

/// `<worktree>.checkout`: the completion marker next to a worktree.
fn marker(path: &Path) -> PathBuf {
    let mut m = path.as_os_str().to_owned();
    m.push(".checkout");
    PathBuf::from(m)
}

/// The repository's sparse-checkout file and its text, when its checkout is sparse and the
/// file has patterns.
fn repo_sparse_patterns(repo_dir: &Path) -> Result<Option<(PathBuf, String)>> {
    // `git config` exits 1 when the key is unset.
    let on = git(repo_dir, &["config", "--bool", "core.sparseCheckout"])
        .map(|v| v.trim() == "true")
        .unwrap_or(false);
    if !on {
        return Ok(None);
    }
    let p = git(
        repo_dir,
        &["rev-parse", "--git-path", "info/sparse-checkout"],
    )?;
    let p = PathBuf::from(p.trim());
    let file = if p.is_absolute() { p } else { repo_dir.join(p) };
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    Ok((pattern_lines(&text).count() > 0).then_some((file, text)))
}

fn pattern_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The sparse-checkout file of a worktree: the repository's patterns (everything when it
/// has none), then one negated pattern per exclusion.
pub fn sparse_file(own: Option<String>, exclude: &[String]) -> String {
    let mut out = String::new();
    let own_lines: Vec<&str> = own
        .as_deref()
        .map(|t| pattern_lines(t).collect())
        .unwrap_or_default();
    if own_lines.is_empty() {
        out.push_str("/*\n");
    } else {
        for l in own_lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    for e in exclude {
        out.push('!');
        out.push_str(e);
        out.push('\n');
    }
    out
}

/// Checks an `--exclude` pattern; the error says what is wrong with it.
pub fn check_exclude(p: &str) -> std::result::Result<(), String> {
    if p.trim().is_empty() {
        return Err(
            "an empty pattern excludes nothing; give a path or glob such as 'models/*.gguf'".into(),
        );
    }
    if p.contains(['\n', '\r', '\0']) {
        return Err(format!("'{}' holds a line break", p.escape_debug()));
    }
    if p.starts_with('!') || p.starts_with('#') {
        return Err(format!(
            "'{p}' starts with '{}', which means something else in a sparse-checkout file; give \
             the path itself",
            &p[..1]
        ));
    }
    Ok(())
}

/// (oid, path) of a checked-out gitlink in `git ls-files --stage -t` output.
fn parse_gitlink(line: &str) -> Option<(&str, &str)> {
    let (meta, path) = line.split_once('\t')?;
    let mut f = meta.split_whitespace();
    let (tag, mode, oid) = (f.next()?, f.next()?, f.next()?);
    (mode == "160000" && tag != "S").then_some((oid, path))
}

/// Submodule path → name, from the worktree's `.gitmodules`.
fn submodule_names(worktree: &Path) -> HashMap<String, String> {
    let out = git(
        worktree,
        &[
            "config",
            "-f",
            ".gitmodules",
            "--get-regexp",
            r"^submodule\..*\.path$",
        ],
    )
    .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let (key, path) = l.split_once(' ')?;
            let name = key.strip_prefix("submodule.")?.strip_suffix(".path")?;
            Some((path.to_string(), name.to_string()))
        })
        .collect()
}

/// What git names in a failed checkout: paths, and object ids to be turned into paths.
#[derive(Debug, Default, PartialEq)]
pub struct Missing {
    pub paths: Vec<String>,
    pub oids: Vec<String>,
}

/// Reads git's complaints about missing objects.
pub fn parse_missing(stderr: &str) -> Missing {
    static PATH_RES: OnceLock<[Regex; 2]> = OnceLock::new();
    static OID_RES: OnceLock<[Regex; 3]> = OnceLock::new();
    // Constant patterns; a typo fails every test, not a user.
    let path_res = PATH_RES.get_or_init(|| {
        [
            Regex::new(r"unable to read sha1 file of (.+?) \([0-9a-f]{7,64}\)").expect("regex"),
            Regex::new(r"invalid object [0-7]+ [0-9a-f]{40,64} for '(.+?)'").expect("regex"),
        ]
    });
    let oid_res = OID_RES.get_or_init(|| {
        [
            Regex::new(r"could not fetch ([0-9a-f]{40,64}) from promisor remote").expect("regex"),
            Regex::new(r"missing blob object '([0-9a-f]{40,64})'").expect("regex"),
            Regex::new(r"unable to read ([0-9a-f]{40,64})").expect("regex"),
        ]
    });
    let mut m = Missing::default();
    for re in path_res {
        for c in re.captures_iter(stderr) {
            let p = c[1].to_string();
            if !m.paths.contains(&p) {
                m.paths.push(p);
            }
        }
    }
    for re in oid_res {
        for c in re.captures_iter(stderr) {
            let o = c[1].to_string();
            if !m.oids.contains(&o) {
                m.oids.push(o);
            }
        }
    }
    m
}

/// The `--exclude` that would leave `path` out: its directory's files of the same
/// extension (`models/*.gguf`), or the path itself.
pub fn exclude_suggestion(path: &str) -> String {
    let (dir, file) = match path.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, path),
    };
    match (dir, file.rsplit_once('.')) {
        (Some(d), Some((stem, ext))) if !stem.is_empty() && !ext.is_empty() => {
            format!("{d}/*.{ext}")
        }
        (None, Some((stem, ext))) if !stem.is_empty() && !ext.is_empty() => format!("/*.{ext}"),
        _ => path.to_string(),
    }
}

/// The error of a checkout that failed: the missing paths and the `--exclude` that helps,
/// or git's own words when it was something else.
fn checkout_error(repo: &Repo, oid: Oid, stderr: &str) -> anyhow::Error {
    let found = parse_missing(stderr);
    let mut paths = found.paths;
    if !found.oids.is_empty() || paths.is_empty() {
        let blobs = repo.blob_paths(oid).unwrap_or_default();
        for o in &found.oids {
            if let Some((_, p)) = blobs.iter().find(|(b, _)| b.to_string() == *o)
                && !paths.contains(p)
            {
                paths.push(p.clone());
            }
        }
        if paths.is_empty() {
            paths = blobs
                .iter()
                .filter(|(b, _)| !repo.has_object(*b))
                .map(|(_, p)| p.clone())
                .collect();
        }
    }
    let git_said = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    if paths.is_empty() {
        return anyhow::Error::new(CheckoutFailed(format!(
            "checking out {} failed: git said: {git_said}",
            short(&oid.to_string())
        )));
    }
    let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
    let more = if paths.len() > 5 {
        format!(" and {} more", paths.len() - 5)
    } else {
        String::new()
    };
    anyhow::Error::new(CheckoutFailed(format!(
        "checking out {} failed: the repository's object store has no copy of {}{more} (a \
         mirror or partial clone without its largest files, with no way to fetch them); if \
         the build does not need it, leave it out with --exclude '{}' (repeatable; \
         gitignore-style globs) (git said: {git_said})",
        short(&oid.to_string()),
        shown.join(", "),
        exclude_suggestion(&paths[0])
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_objects_are_read_from_git_messages() {
        let read_tree = "error: unable to read sha1 file of models/big.gguf \
            (3472cc467be3d8599da93fe06198d641f3213e73)\n";
        assert_eq!(
            parse_missing(read_tree).paths,
            vec!["models/big.gguf".to_string()]
        );
        let cache_tree = "error: invalid object 100644 3472cc467be3d8599da93fe06198d641f3213e73 \
            for 'models/a b.gguf'\n";
        assert_eq!(parse_missing(cache_tree).paths, vec!["models/a b.gguf"]);
        let promisor = "fatal: '/tmp/src' does not appear to be a git repository\n\
            fatal: could not fetch d420acb8bb1d34b5e6110d6e11bbace0a46be281 from promisor remote\n";
        let m = parse_missing(promisor);
        assert!(m.paths.is_empty());
        assert_eq!(m.oids, vec!["d420acb8bb1d34b5e6110d6e11bbace0a46be281"]);
        assert_eq!(
            parse_missing("fatal: not a git repository"),
            Missing::default()
        );
    }

    #[test]
    fn exclude_suggestions_are_globs_of_the_same_kind() {
        assert_eq!(
            exclude_suggestion("models/ggml-vocab-aquila.gguf"),
            "models/*.gguf"
        );
        assert_eq!(exclude_suggestion("big.bin"), "/*.bin");
        assert_eq!(
            exclude_suggestion("tools/server/public/index.html.gz"),
            "tools/server/public/*.gz"
        );
        assert_eq!(exclude_suggestion("data/blob"), "data/blob");
        assert_eq!(exclude_suggestion("data/.hidden"), "data/.hidden");
    }

    #[test]
    fn sparse_files_combine_the_repository_patterns_and_exclusions() {
        assert_eq!(sparse_file(None, &[]), "/*\n");
        assert_eq!(
            sparse_file(None, &["models/*.gguf".into(), "docs/".into()]),
            "/*\n!models/*.gguf\n!docs/\n"
        );
        let cone = "# written by git\n/*\n!/*/\n/src/\n\n";
        assert_eq!(
            sparse_file(Some(cone.into()), &["src/big.bin".into()]),
            "/*\n!/*/\n/src/\n!src/big.bin\n"
        );
        // A sparse-checkout file with no patterns means the whole tree.
        assert_eq!(sparse_file(Some("# nothing\n".into()), &[]), "/*\n");
    }

    #[test]
    fn exclude_patterns_are_checked() {
        assert!(check_exclude("models/*.gguf").is_ok());
        assert!(check_exclude("/big.bin").is_ok());
        for bad in ["", "  ", "!models", "#x", "a\nb"] {
            assert!(check_exclude(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gitlinks_in_ls_files() {
        assert_eq!(
            parse_gitlink("H 160000 4565194ed7c32d1d2efa32ceab4d3c6cae006306 0\tggml/src/kompute"),
            Some((
                "4565194ed7c32d1d2efa32ceab4d3c6cae006306",
                "ggml/src/kompute"
            ))
        );
        assert_eq!(
            parse_gitlink("S 160000 4565194ed7c32d1d2efa32ceab4d3c6cae006306 0\tsub"),
            None
        );
        assert_eq!(parse_gitlink("H 100644 91d79162 0\tREADME.md"), None);
    }
}
