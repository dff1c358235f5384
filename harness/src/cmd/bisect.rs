//! `tessera bisect`: git bisection for faults, fixes, performance regressions and output
//! changes on any repository with a build command and a run command; `tessera bisect log`
//! shows the steps, `tessera bisect reset` removes the state. The flags are read and
//! checked here (every message names its flag) into a [`bisect::Config`]; the bisection
//! itself is [`bisect::run`].

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use regex::{Regex, RegexBuilder};

use crate::bisect::build::parse_budget;
use crate::bisect::exec::which;
use crate::bisect::metric::{Compare, MetricSource};
use crate::bisect::perf::StatTest;
use crate::bisect::report;
use crate::bisect::state::{BuildCache, Mode, STATE_FILE, Spec, State};
use crate::bisect::worktree::check_exclude;
use crate::bisect::{self, Config, Outcome, default_state_dir};
use crate::cli::{Threshold, parse_threshold};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// The git repository (any directory inside it): a clone, a bare mirror, or a partial
    /// clone (blobs the object store lacks must be left out with --exclude).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The good revision: the OLDER one in fault, perf and output mode (no fault / fast /
    /// reference output); the NEWER one in fix and speedup mode (fixed / fast).
    #[arg(long)]
    pub good: Option<String>,
    /// The bad revision: the NEWER one in fault, perf and output mode (fault / slow /
    /// changed output); the OLDER one in fix and speedup mode (faulty / slow).
    #[arg(long)]
    pub bad: Option<String>,
    /// The older endpoint, in every mode (git's neutral term; instead of --good, or of --bad
    /// in fix and speedup mode).
    #[arg(long)]
    pub old: Option<String>,
    /// The newer endpoint, in every mode (instead of --bad, or of --good in fix and speedup
    /// mode).
    #[arg(long)]
    pub new: Option<String>,
    /// Build command, run with `sh -c` in the commit's worktree; failure = skip the commit.
    #[arg(long)]
    pub build: Option<String>,
    /// Run command, run with `sh -c` in the commit's worktree after the build.
    #[arg(long)]
    pub run: Option<String>,
    /// fault: first commit with the fault (--good older, --bad newer); fix: first commit
    /// without it (--bad older and faulty, --good newer and fixed); perf: first commit
    /// measurably slower than the old endpoint (--good older, --bad newer); speedup: first
    /// commit measurably faster than the old endpoint (--bad older and slow, --good newer
    /// and fast); output: first commit whose output differs from the old endpoint's.
    /// --old/--new name the older/newer endpoint in every mode.
    #[arg(long)]
    pub mode: Option<String>,
    /// Time limit of one run, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Time limit of one build, seconds.
    #[arg(long, default_value_t = 3600.0)]
    pub build_timeout: f64,
    /// Descend into merged branches (default: first-parent history only).
    #[arg(long)]
    pub all_parents: bool,
    /// Regex (case-insensitive) a fault must match to count, tried against e.g.
    /// "signal SIGSEGV: killed by SIGSEGV" or "cuda-illegal-address op GET_ROWS: ...".
    #[arg(long)]
    pub fault: Option<String>,
    /// Wrap runs in compute-sanitizer (fault and fix modes).
    #[arg(long)]
    pub sanitizer: bool,
    /// Perf and speedup mode settings (boxed: they would make every `tessera` command
    /// as large as this one).
    #[command(flatten)]
    pub measure: Box<MeasureArgs>,
    /// State directory (default: <git dir>/tessera-bisect).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Worktree/build cache directory (default: <state dir>/worktrees).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Leave PATH out of every worktree (repeatable; a gitignore-style glob such as
    /// 'models/*.gguf'), on top of the repository's own sparse-checkout patterns: for
    /// mirrors and partial clones whose object store lacks those blobs.
    #[arg(long, value_name = "PATH")]
    pub exclude: Vec<String>,
    /// Build cache across steps: auto (ccache when installed, else reuse), ccache (cmake
    /// builds get it as compiler launcher), reuse (one shared worktree, incremental
    /// builds; the old endpoint keeps its own), none.
    #[arg(long)]
    pub build_cache: Option<String>,
    /// Parallel build jobs, exported as JOBS and CMAKE_BUILD_PARALLEL_LEVEL (default: the
    /// number of CPUs, unless those are set).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Stop before a step that would end after this much time (e.g. 45m, 2h, 1h30m),
    /// reporting the range that is left; continue with --resume.
    #[arg(long)]
    pub budget: Option<String>,
    /// Continue the bisection saved in the state directory.
    #[arg(long, conflicts_with_all = ["good", "bad", "old", "new", "build", "run", "mode", "replay"])]
    pub resume: bool,
    /// Re-apply the verdicts of a log (`tessera bisect log --json` or a state.json).
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Stop after this many tests, reporting the range that is left (state is kept;
    /// continue with --resume).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Result format on stdout: md or json.
    #[arg(long, default_value = "md")]
    pub format: String,
    /// Sample one run of every step with perf_event; its top symbols go into the step and
    /// its log line, folded stacks and a flamegraph into <state dir>/profiles/.
    #[arg(long)]
    pub profile: bool,
}

/// How perf and speedup steps are measured and judged, and how output mode compares.
#[derive(clap::Args, Debug)]
pub struct MeasureArgs {
    /// Perf metric: the test whose row to read (e.g. tg128), from tessera or llama-bench JSON.
    #[arg(long)]
    pub metric: Option<String>,
    /// Field of the metric row.
    #[arg(long, default_value = "avg_ts")]
    pub metric_field: String,
    /// Perf metric from a regex over stdout (first capture group of the last match).
    #[arg(long)]
    pub metric_regex: Option<String>,
    /// Smaller metric values are better (default: larger, except *_ns fields).
    #[arg(long)]
    pub lower_is_better: bool,
    /// Smallest regression (perf) or speedup (speedup mode) that counts, in percent ("5%" or "5").
    #[arg(long, default_value = "5%")]
    pub threshold: String,
    /// Runs per side (baseline and commit) in a perf or speedup step.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Most runs per side when a perf step is ambiguous (default 4 x --repeat).
    #[arg(long)]
    pub max_repeat: Option<usize>,
    /// Significance level of perf verdicts.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Perf significance test: welch or mann-whitney.
    #[arg(long, default_value = "welch")]
    pub stat: String,
    /// Output mode comparison: stdout (exact), tokens (integer sequence), logits (numbers
    /// within --tolerance).
    #[arg(long, default_value = "stdout")]
    pub compare: String,
    /// Absolute tolerance of --compare logits.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// Compare this file (relative to the worktree) instead of stdout in output mode.
    #[arg(long)]
    pub output_file: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Show the steps of the current (or last) bisection.
    Log(LogArgs),
    /// Remove the bisection state (and with --worktrees the cached worktrees).
    Reset(ResetArgs),
}

#[derive(clap::Args, Debug)]
pub struct LogArgs {
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Print the full state as JSON (usable with --replay).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ResetArgs {
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Also remove the worktrees (and their builds) tessera created.
    #[arg(long)]
    pub worktrees: bool,
}

/// Result format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

/// The endpoints of a fresh bisection, from --good/--bad or --old/--new.
struct Endpoints {
    good: String,
    bad: String,
    good_flag: &'static str,
    bad_flag: &'static str,
}

/// Reads the endpoints: --old names the older one in every mode, which is --good in fault,
/// perf and output mode and --bad in fix and speedup mode; --new the newer one.
fn endpoints(a: &Args, mode: Mode) -> Result<Endpoints> {
    let new_is_good = mode.new_is_good();
    let (old_classic, new_classic, old_name, new_name) = if new_is_good {
        (&a.bad, &a.good, "--bad", "--good")
    } else {
        (&a.good, &a.bad, "--good", "--bad")
    };
    let pick = |neutral: &Option<String>,
                classic: &Option<String>,
                nflag: &'static str,
                cflag: &'static str,
                which: &str|
     -> Result<(String, &'static str)> {
        match (neutral, classic) {
            (Some(_), Some(_)) => bail!(
                "{nflag} and {cflag} both name the {which} revision in --mode {}; give one of them",
                mode.as_str()
            ),
            (Some(r), None) => Ok((r.clone(), nflag)),
            (None, Some(r)) => Ok((r.clone(), cflag)),
            (None, None) => bail!(
                "{cflag}: missing; name the {which} revision with {cflag} or {nflag} in --mode {} \
                 (or use --resume)",
                mode.as_str()
            ),
        }
    };
    let (old, old_flag) = pick(&a.old, old_classic, "--old", old_name, "older")?;
    let (new, new_flag) = pick(&a.new, new_classic, "--new", new_name, "newer")?;
    Ok(if new_is_good {
        Endpoints {
            good: new,
            bad: old,
            good_flag: new_flag,
            bad_flag: old_flag,
        }
    } else {
        Endpoints {
            good: old,
            bad: new,
            good_flag: old_flag,
            bad_flag: new_flag,
        }
    })
}

/// `--format`.
fn format(a: &Args) -> Result<Format> {
    Ok(match a.format.as_str() {
        "md" | "markdown" => Format::Markdown,
        "json" => Format::Json,
        other => bail!("--format: '{other}' is not valid; give md or json"),
    })
}

// `Config` is the domain's (`bisect::Config`); turning flags into it is this module's job,
// as `cmd::sweep` does for `sweep::Config`.
impl Config {
    /// The validated settings of `tessera bisect` (`--format` and `--json` are this
    /// module's own: see [`run_cli`]).
    pub fn from_args(a: &Args) -> Result<Self> {
        if a.max_steps == Some(0) {
            bail!("--max-steps: 0 is not valid; give at least 1");
        }
        let state_dir = match &a.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir(&a.repo)?,
        };
        let spec = if a.resume {
            let path = State::path(&state_dir);
            if !path.exists() {
                bail!(
                    "--resume: no bisection saved in {}; start one with --good, --bad and --run",
                    state_dir.display()
                );
            }
            let mut state = State::load(&path)?;
            let spec = &mut state.spec;
            spec.profile |= a.profile;
            for e in &a.exclude {
                if !spec.exclude.contains(e) {
                    spec.exclude.push(e.clone());
                }
            }
            if let Some(j) = a.jobs {
                spec.jobs = Some(j);
            }
            if let Some(c) = &a.build_cache {
                spec.build_cache = c.parse().map_err(|e| anyhow!("--build-cache: {e}"))?;
            }
            state.spec
        } else {
            Self::spec_from_args(a, &state_dir)?
        };
        let replay = match &a.replay {
            Some(p) => Some(State::load(p).with_context(|| "--replay".to_string())?),
            None => None,
        };
        Self::from_spec(spec, state_dir, a, replay)
    }

    fn spec_from_args(a: &Args, state_dir: &Path) -> Result<Spec> {
        let mode: Mode = match &a.mode {
            Some(m) => m.parse().map_err(|e| anyhow!("--mode: {e}"))?,
            None => Mode::Fault,
        };
        let ends = endpoints(a, mode)?;
        let m = &a.measure;
        let run = a
            .run
            .clone()
            .ok_or_else(|| anyhow!("--run: missing; give the command that tests a commit"))?;
        let stat: StatTest = m.stat.parse().map_err(|e| anyhow!("--stat: {e}"))?;
        let threshold = parse_threshold(&m.threshold, Threshold::Effect)?;
        // Absolute paths, so that `--resume` works from any directory.
        let repo = std::fs::canonicalize(&a.repo)
            .map_err(|e| anyhow!("--repo: '{}': {e}", a.repo.display()))?;
        let cache_dir = a
            .cache_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("worktrees"));
        let cache_dir = if cache_dir.is_absolute() {
            cache_dir
        } else {
            std::env::current_dir()
                .context("reading the current directory")?
                .join(cache_dir)
        };
        let lower_is_better = m.lower_is_better || m.metric_field.ends_with("_ns");
        let build_cache = match &a.build_cache {
            Some(c) => c.parse().map_err(|e| anyhow!("--build-cache: {e}"))?,
            None => BuildCache::Auto,
        };
        Ok(Spec {
            repo,
            good: ends.good,
            bad: ends.bad,
            good_flag: ends.good_flag.into(),
            bad_flag: ends.bad_flag.into(),
            exclude: a.exclude.clone(),
            build_cache,
            jobs: a.jobs,
            build: a.build.clone().filter(|b| !b.trim().is_empty()),
            run,
            mode,
            timeout_s: a.timeout,
            build_timeout_s: a.build_timeout,
            all_parents: a.all_parents,
            fault: a.fault.clone(),
            sanitizer: a.sanitizer,
            metric: m.metric.clone(),
            metric_field: m.metric_field.clone(),
            metric_regex: m.metric_regex.clone(),
            lower_is_better,
            threshold,
            repeat: m.repeat,
            max_repeat: m.max_repeat.unwrap_or(m.repeat.saturating_mul(4)),
            alpha: m.alpha,
            stat,
            compare: m.compare.clone(),
            tolerance: m.tolerance,
            output_file: m.output_file.clone(),
            cache_dir,
            profile: a.profile,
        })
    }

    /// Checks a spec (fresh or loaded) and compiles what it needs.
    fn from_spec(spec: Spec, state_dir: PathBuf, a: &Args, replay: Option<State>) -> Result<Self> {
        for (flag, v) in [
            ("--timeout", spec.timeout_s),
            ("--build-timeout", spec.build_timeout_s),
        ] {
            if !(v > 0.0 && v.is_finite() && v < 1e7) {
                bail!("{flag}: {v} is not valid; give a positive number of seconds");
            }
        }
        if spec.repeat < 2 && spec.mode.is_perf() {
            bail!(
                "--repeat: {} is not valid in {} mode; give at least 2",
                spec.repeat,
                spec.mode.as_str()
            );
        }
        for e in &spec.exclude {
            check_exclude(e).map_err(|why| anyhow!("--exclude: {why}"))?;
        }
        if spec.jobs == Some(0) {
            bail!("--jobs: 0 is not valid; give at least 1");
        }
        let budget = match &a.budget {
            Some(b) => Some(parse_budget(b).map_err(|e| anyhow!("--budget: {e}"))?),
            None => None,
        };
        if spec.max_repeat < spec.repeat {
            bail!(
                "--max-repeat: {} is smaller than --repeat {}",
                spec.max_repeat,
                spec.repeat
            );
        }
        if !(spec.alpha > 0.0 && spec.alpha < 0.5) {
            bail!(
                "--alpha: {} is not valid; give a level between 0 and 0.5, e.g. 0.05",
                spec.alpha
            );
        }
        if !(spec.tolerance >= 0.0 && spec.tolerance.is_finite()) {
            bail!(
                "--tolerance: {} is not valid; give a non-negative number",
                spec.tolerance
            );
        }
        let fault = match &spec.fault {
            Some(p) => Some(
                RegexBuilder::new(p)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| anyhow!("--fault: '{p}' is not a valid regex: {e}"))?,
            ),
            None => None,
        };
        if fault.is_some() && !matches!(spec.mode, Mode::Fault | Mode::Fix) {
            bail!("--fault: only meaningful with --mode fault or fix");
        }
        let metric = if spec.mode.is_perf() {
            Some(match (&spec.metric_regex, &spec.metric) {
                (Some(r), _) => MetricSource::Regex(
                    Regex::new(r)
                        .map_err(|e| anyhow!("--metric-regex: '{r}' is not a valid regex: {e}"))?,
                ),
                (None, Some(m)) => MetricSource::Json {
                    test: m.clone(),
                    field: spec.metric_field.clone(),
                },
                (None, None) => bail!(
                    "--metric: missing; --mode {} needs --metric TEST (e.g. tg128) or --metric-regex",
                    spec.mode.as_str()
                ),
            })
        } else {
            None
        };
        let compare = match spec.compare.as_str() {
            "stdout" | "text" => Compare::Text,
            "tokens" => Compare::Tokens,
            "logits" => Compare::Logits {
                tolerance: spec.tolerance,
            },
            other => bail!("--compare: '{other}' is not valid; give stdout, tokens or logits"),
        };
        let sanitizer = if spec.sanitizer {
            if !matches!(spec.mode, Mode::Fault | Mode::Fix) {
                bail!("--sanitizer: only meaningful with --mode fault or fix");
            }
            let found = which("compute-sanitizer").or_else(|| {
                std::env::var_os("CUDA_HOME")
                    .map(|h| PathBuf::from(h).join("bin/compute-sanitizer"))
                    .filter(|p| p.is_file())
            });
            Some(found.ok_or_else(|| {
                anyhow!(
                    "--sanitizer: compute-sanitizer not found on PATH or in $CUDA_HOME/bin; \
                     install the CUDA toolkit or drop --sanitizer"
                )
            })?)
        } else {
            None
        };
        Ok(Config {
            spec,
            state_dir,
            resume: a.resume,
            replay,
            max_steps: a.max_steps,
            budget,
            fault,
            metric,
            compare,
            sanitizer,
        })
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    match &a.action {
        Some(Action::Log(l)) => return log(l),
        Some(Action::Reset(r)) => return reset(r),
        None => {}
    }
    // --format is checked before every other flag, as it always was.
    let format = format(a)?;
    let cfg = Config::from_args(a)?;
    let outcome = bisect::run(&cfg)?;
    let result = outcome.result();
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(result)?)
            .with_context(|| format!("--json: writing {}", path.display()))?;
    }
    match format {
        Format::Markdown => print!("{}", report::result_markdown(result)),
        Format::Json => println!("{}", serde_json::to_string_pretty(result)?),
    }
    Ok(matches!(outcome, Outcome::Found(_)))
}

fn log(l: &LogArgs) -> Result<bool> {
    let dir = match &l.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir(&l.repo)?,
    };
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        bail!(
            "no bisection log in {}; start one with `tessera bisect --good ... --bad ...`",
            dir.display()
        );
    }
    let state = State::load(&path)?;
    if l.json {
        println!("{}", serde_json::to_string_pretty(&state)?);
    } else {
        print!("{}", report::log_markdown(&state));
    }
    Ok(true)
}

fn reset(r: &ResetArgs) -> Result<bool> {
    let dir = match &r.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir(&r.repo)?,
    };
    bisect::reset(&dir, &r.repo, r.worktrees)?;
    Ok(true)
}
