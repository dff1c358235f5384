//! Building a commit: the build cache chosen for the run (ccache reached through cmake's
//! compiler-launcher variables, or one shared worktree whose build directory is reused),
//! the build environment (`JOBS`, `CMAKE_BUILD_PARALLEL_LEVEL`, ccache's), the record of
//! each build next to its worktree, so that no finished commit is built twice (resume,
//! replay, the perf baseline), and [`Driver::prepare`], which checks a commit out and builds
//! it or reuses its build.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use git2::Oid;
use serde::{Deserialize, Serialize};

use super::driver::Driver;
use super::exec::{self, Invocation, tail, which};
use super::state::{BuildCache, BuildNote};
use super::worktree::SHARED;

/// The cached outcome of building one commit, next to its worktree.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildRecord {
    pub command: String,
    pub ok: bool,
    pub seconds: f64,
    pub log_tail: String,
    /// The commit built; records of the shared worktree change commits.
    #[serde(default)]
    pub commit: Option<String>,
}

impl BuildRecord {
    /// Reads a record that says `command` was run for `commit` in this worktree.
    pub fn load(path: &Path, command: &str, commit: &str) -> Option<BuildRecord> {
        let text = std::fs::read_to_string(path).ok()?;
        let rec: BuildRecord = serde_json::from_str(&text).ok()?;
        (rec.command == command && rec.commit.as_deref().is_none_or(|c| c == commit)).then_some(rec)
    }
}

/// The build cache of this run, with what it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Cache {
    Ccache { program: PathBuf, dir: PathBuf },
    Reuse,
    None,
}

impl Cache {
    /// Resolves `--build-cache`: `auto` is ccache when it is on PATH, else `reuse`.
    pub fn resolve(kind: BuildCache, cache_dir: &Path) -> Result<Cache> {
        let ccache = || {
            which("ccache").map(|program| Cache::Ccache {
                program,
                dir: std::env::var_os("CCACHE_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| cache_dir.join("ccache")),
            })
        };
        Ok(match kind {
            BuildCache::Auto => ccache().unwrap_or(Cache::Reuse),
            BuildCache::Ccache => match ccache() {
                Some(c) => c,
                None => bail!(
                    "--build-cache ccache: ccache is not on PATH; install it (apt-get install \
                     ccache) or use --build-cache reuse"
                ),
            },
            BuildCache::Reuse => Cache::Reuse,
            BuildCache::None => Cache::None,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Cache::Ccache { program, dir } => {
                format!("ccache ({}, cache in {})", program.display(), dir.display())
            }
            Cache::Reuse => "one shared worktree whose build directory is reused".into(),
            Cache::None => "none (a fresh build per commit)".into(),
        }
    }
}

/// Variables the build command sees. Ones the user already set are left alone, except the
/// job count when `--jobs` was given.
pub fn env(cache: &Cache, cache_dir: &Path, jobs: Option<usize>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let n = jobs.unwrap_or_else(default_jobs).to_string();
    for k in ["JOBS", "CMAKE_BUILD_PARALLEL_LEVEL"] {
        if jobs.is_some() || std::env::var_os(k).is_none() {
            env.push((k.to_string(), n.clone()));
        }
    }
    let mut set = |k: &str, v: String| {
        if std::env::var_os(k).is_none() {
            env.push((k.to_string(), v));
        }
    };
    if let Cache::Ccache { program, dir } = cache {
        let p = program.display().to_string();
        // Read by cmake (3.17+) when a build directory is configured for the first time.
        for lang in ["C", "CXX", "CUDA"] {
            set(&format!("CMAKE_{lang}_COMPILER_LAUNCHER"), p.clone());
        }
        set("CCACHE_DIR", dir.display().to_string());
        // Every worktree sits under the cache dir: paths below it are hashed relative to
        // the build directory, so the same file in two worktrees is one cache entry.
        set("CCACHE_BASEDIR", cache_dir.display().to_string());
        set("CCACHE_NOHASHDIR", "1".into());
        // For build commands that are not cmake: CC="$TESSERA_BISECT_CCACHE cc".
        set("TESSERA_BISECT_CCACHE", p);
    }
    env
}

/// Default `--jobs`: the CPUs this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// "83.2 s", "4m12s", "1h05m": elapsed times in progress lines.
pub fn fmt_elapsed(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 100.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Parses `--budget`: "90m", "2h", "1h30m", "45s", or plain seconds.
pub fn parse_budget(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let bad = || format!("'{s}' is not a duration; give e.g. 90m, 2h, 1h30m or 3600 (seconds)");
    if let Ok(v) = t.parse::<f64>() {
        return (v > 0.0 && v.is_finite()).then_some(v).ok_or_else(bad);
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(bad()),
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        total += v * unit;
        num.clear();
    }
    if !(num.is_empty() && total > 0.0 && total.is_finite()) {
        return Err(bad());
    }
    Ok(total)
}

/// A commit's worktree after its build.
pub(super) struct Built {
    pub(super) wt: PathBuf,
    pub(super) note: BuildNote,
    /// Why the build failed.
    pub(super) error: Option<String>,
    pub(super) seconds: Option<f64>,
}

impl Driver<'_> {
    /// Checks the commit out (or reuses its worktree) and builds it (or reuses the build).
    /// `quiet` leaves out the progress lines of a reused, cached build (the perf baseline,
    /// prepared again for every step).
    pub(super) fn prepare(&self, commit: Oid, quiet: bool) -> Result<Built> {
        let spec = &self.cfg.spec;
        let shared = self.cache == Cache::Reuse && commit != self.old;
        let t = Instant::now();
        let wt = if shared {
            self.worktrees.shared(&self.repo, commit)?
        } else {
            self.worktrees.own(&self.repo, commit)?
        };
        let quiet = quiet && wt.reused;
        if !quiet {
            eprintln!(
                "  checkout: {} ({})",
                match (wt.reused, shared) {
                    (true, _) => "worktree reused",
                    (false, true) => "shared worktree moved here",
                    (false, false) => "new worktree",
                },
                fmt_elapsed(t.elapsed().as_secs_f64())
            );
        }
        for n in &wt.notes {
            eprintln!("  note: {n}");
        }
        let Some(command) = &spec.build else {
            return Ok(Built {
                wt: wt.path,
                note: BuildNote::None,
                error: None,
                seconds: None,
            });
        };
        let record_path = if shared {
            spec.cache_dir.join(format!("{SHARED}.build.json"))
        } else {
            spec.cache_dir.join(format!("{commit}.build.json"))
        };
        let hash = commit.to_string();
        if !wt.reused {
            // A fresh or moved checkout has no build outputs of this commit, whatever an old
            // record says.
            let _ = std::fs::remove_file(&record_path);
        }
        if let Some(rec) = BuildRecord::load(&record_path, command, &hash) {
            if !quiet {
                eprintln!(
                    "  build: cached ({} when built)",
                    if rec.ok { "succeeded" } else { "failed" }
                );
            }
            return Ok(Built {
                wt: wt.path,
                note: if rec.ok {
                    BuildNote::Cached
                } else {
                    BuildNote::CachedFailed
                },
                error: (!rec.ok).then_some(rec.log_tail),
                seconds: None,
            });
        }
        eprintln!("  build: running in {} ...", wt.path.display());
        // The run's variables, then the build's own ([`env`]).
        let mut vars = self.env(commit, &wt.path);
        vars.extend(env(&self.cache, &spec.cache_dir, spec.jobs));
        let out = exec::run(&Invocation {
            script: command,
            dir: &wt.path,
            env: vars,
            timeout: self.cfg.build_timeout(),
            sanitizer: None,
            heartbeat: Some("build"),
        })?;
        let ok = !out.timed_out && out.exit_code == Some(0);
        let log_tail = if out.timed_out {
            format!("build timed out after {:.0} s", out.seconds)
        } else {
            let t = tail(format!("{}\n{}", out.stdout, out.stderr).trim(), 3);
            if t.is_empty() {
                format!("build exited with {:?}", out.exit_code)
            } else {
                t
            }
        };
        eprintln!(
            "  build: {} in {}",
            if ok { "built" } else { "FAILED" },
            fmt_elapsed(out.seconds)
        );
        let rec = BuildRecord {
            command: command.clone(),
            ok,
            seconds: out.seconds,
            log_tail: log_tail.clone(),
            commit: Some(hash),
        };
        std::fs::write(&record_path, serde_json::to_string_pretty(&rec)?)
            .with_context(|| format!("writing {}", record_path.display()))?;
        Ok(Built {
            wt: wt.path,
            note: if ok {
                BuildNote::Built
            } else {
                BuildNote::Failed
            },
            error: (!ok).then_some(log_tail),
            seconds: Some(out.seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_budget("90m"), Ok(5400.0));
        assert_eq!(parse_budget("1h30m"), Ok(5400.0));
        assert_eq!(parse_budget("45s"), Ok(45.0));
        assert_eq!(parse_budget("3600"), Ok(3600.0));
        assert_eq!(parse_budget("0.5h"), Ok(1800.0));
        for bad in ["", "0", "-5", "10x", "m", "1h30", "soon"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn elapsed_times_read_well() {
        assert_eq!(fmt_elapsed(3.21), "3.2 s");
        assert_eq!(fmt_elapsed(252.0), "4m12s");
        assert_eq!(fmt_elapsed(3900.0), "1h05m");
    }

    #[test]
    fn ccache_env_points_cmake_at_it() {
        let cache = Cache::Ccache {
            program: PathBuf::from("/usr/bin/ccache"),
            dir: PathBuf::from("/c/ccache"),
        };
        let env = env(&cache, Path::new("/c"), Some(3));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        // Unless the test runner's environment has them already.
        if std::env::var_os("CMAKE_CXX_COMPILER_LAUNCHER").is_none() {
            assert_eq!(get("CMAKE_CXX_COMPILER_LAUNCHER"), Some("/usr/bin/ccache"));
        }
        if std::env::var_os("CCACHE_BASEDIR").is_none() {
            assert_eq!(get("CCACHE_BASEDIR"), Some("/c"));
        }
        assert_eq!(get("JOBS"), Some("3"));
        assert_eq!(get("CMAKE_BUILD_PARALLEL_LEVEL"), Some("3"));
        let plain = super::env(&Cache::Reuse, Path::new("/c"), None);
        assert!(plain.iter().all(|(k, _)| !k.starts_with("CCACHE")));
    }
}
