//! The bisect state file: the settings, every step with its verdict and measurements, and the
//! result, as one JSON document rewritten (atomically) after every step. It is what
//! `--resume` continues from, what `tessera bisect log` shows, and what `--replay` re-applies.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::classify::Classification;
use super::perf::StatTest;
use super::report::BisectResult;

/// Version of the state document; bump on incompatible changes.
pub const STATE_VERSION: u32 = 1;

/// File name of the state document inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// What is being searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The first commit where the fault appears.
    Fault,
    /// The first commit where the fault disappears.
    Fix,
    /// The first commit measurably slower than the good endpoint.
    Perf,
    /// The first commit measurably faster than the old endpoint (which is `--bad`, as in
    /// fix mode: the slow revision).
    Speedup,
    /// The first commit whose output differs from the good endpoint's.
    Output,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fault" => Ok(Mode::Fault),
            "fix" => Ok(Mode::Fix),
            "perf" => Ok(Mode::Perf),
            "speedup" => Ok(Mode::Speedup),
            "output" => Ok(Mode::Output),
            _ => Err(format!(
                "'{s}' is not a mode; valid: fault, fix, perf, speedup, output"
            )),
        }
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fault => "fault",
            Mode::Fix => "fix",
            Mode::Perf => "perf",
            Mode::Speedup => "speedup",
            Mode::Output => "output",
        }
    }

    /// Whether the newer endpoint is the good one (`--good`): fix and speedup mode search for
    /// a change for the better, so the older endpoint is `--bad` there.
    pub fn new_is_good(self) -> bool {
        matches!(self, Mode::Fix | Mode::Speedup)
    }

    /// Perf and speedup mode: steps are measured against the old endpoint.
    pub fn is_perf(self) -> bool {
        matches!(self, Mode::Perf | Mode::Speedup)
    }

    /// What the answer is called.
    pub fn term(self) -> &'static str {
        match self {
            Mode::Fix => "first fixed commit",
            Mode::Speedup => "first faster commit",
            _ => "first bad commit",
        }
    }
}

/// How builds are kept cheap across steps (`--build-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BuildCache {
    /// ccache when it is installed, else `reuse`.
    #[default]
    Auto,
    /// One worktree per commit; builds see ccache through cmake's compiler-launcher
    /// variables and a ccache directory in the cache dir.
    Ccache,
    /// The old endpoint keeps its own worktree; every other commit is checked out in one
    /// shared worktree, so that its build directory is reused and only what changed is
    /// rebuilt.
    Reuse,
    /// One worktree and a fresh build per commit.
    None,
}

impl std::str::FromStr for BuildCache {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BuildCache::Auto),
            "ccache" => Ok(BuildCache::Ccache),
            "reuse" => Ok(BuildCache::Reuse),
            "none" => Ok(BuildCache::None),
            _ => Err(format!(
                "'{s}' is not a build cache; valid: auto, ccache, reuse, none"
            )),
        }
    }
}

impl BuildCache {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildCache::Auto => "auto",
            BuildCache::Ccache => "ccache",
            BuildCache::Reuse => "reuse",
            BuildCache::None => "none",
        }
    }
}

/// Every setting a bisection needs, so that `--resume` can rebuild it from the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub repo: PathBuf,
    pub good: String,
    pub bad: String,
    pub build: Option<String>,
    pub run: String,
    pub mode: Mode,
    pub timeout_s: f64,
    pub build_timeout_s: f64,
    pub all_parents: bool,
    pub fault: Option<String>,
    pub sanitizer: bool,
    /// Test name of the JSON row (e.g. "tg128"), or a label with `metric_regex`.
    pub metric: Option<String>,
    pub metric_field: String,
    pub metric_regex: Option<String>,
    pub lower_is_better: bool,
    /// Relative threshold, a fraction (0.05 = 5%).
    pub threshold: f64,
    pub repeat: usize,
    pub max_repeat: usize,
    pub alpha: f64,
    pub stat: StatTest,
    /// stdout, tokens or logits.
    pub compare: String,
    pub tolerance: f64,
    pub output_file: Option<PathBuf>,
    pub cache_dir: PathBuf,
    /// Sample one run of every step (`--profile`): the judged run in fault, fix and output
    /// mode, an extra unmeasured run of the commit in perf mode.
    #[serde(default)]
    pub profile: bool,
    /// Paths (gitignore-style globs) left out of every worktree, on top of the repository's
    /// own sparse-checkout patterns (`--exclude`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// As given; resolved once per run (`auto` depends on what is installed).
    #[serde(default = "legacy_build_cache")]
    pub build_cache: BuildCache,
    /// Parallel build jobs (`--jobs`), exported to the build as `JOBS` and
    /// `CMAKE_BUILD_PARALLEL_LEVEL`.
    #[serde(default)]
    pub jobs: Option<usize>,
    /// The flags the endpoints were given with (`--good` or `--old`/`--new`), for messages.
    #[serde(default = "good_flag")]
    pub good_flag: String,
    #[serde(default = "bad_flag")]
    pub bad_flag: String,
}

fn good_flag() -> String {
    "--good".into()
}

fn bad_flag() -> String {
    "--bad".into()
}

/// State files written before `--build-cache` existed built every commit afresh.
fn legacy_build_cache() -> BuildCache {
    BuildCache::None
}

/// A verdict in the user's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Good,
    Bad,
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::Skip => "skip",
        }
    }
}

/// Which check a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    VerifyGood,
    VerifyBad,
    Test,
}

/// What happened to the build of a step's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildNote {
    /// No build command.
    None,
    Built,
    /// A previous successful build of this commit was reused.
    Cached,
    Failed,
    /// A previous failed build of this commit was reused.
    CachedFailed,
}

/// The measurements of a perf or speedup step: metric values of the old endpoint (baseline)
/// and the commit, taken alternately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfMeasure {
    pub baseline: Vec<f64>,
    pub candidate: Vec<f64>,
    /// Relative change in the "worse" direction: 0.40 = 40% worse than the baseline,
    /// -0.25 = 25% better.
    pub regression: f64,
    /// p-value of "the commit changed in the direction searched for": worse than the
    /// baseline in perf mode, better in speedup mode.
    #[serde(alias = "p_worse")]
    pub p_change: f64,
    /// p-value of "the change in that direction is smaller than the threshold".
    pub p_within: f64,
}

/// One step of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub n: usize,
    pub kind: StepKind,
    pub commit: String,
    pub subject: String,
    pub verdict: Verdict,
    /// Why, in one line.
    pub reason: String,
    pub build: BuildNote,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Classification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<PerfMeasure>,
    /// p-value of the verdict being wrong, for perf steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_error: Option<f64>,
    #[serde(default)]
    pub seconds: f64,
    /// Taken from a `--replay` log rather than tested.
    #[serde(default)]
    pub replayed: bool,
    #[serde(default)]
    pub time: String,
    /// The sampled profile of one run of the step (`--profile`); its paths are relative to
    /// the state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::results::Profile>,
    /// Why `profile` is missing although `--profile` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_error: Option<String>,
    /// Seconds of the build this step ran; absent when the build was cached or there is no
    /// build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_seconds: Option<f64>,
}

/// Where a bisection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Found,
    Ambiguous,
    Stopped,
}

/// The whole state document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub spec: Spec,
    pub good_commit: String,
    pub bad_commit: String,
    pub started: String,
    pub status: Status,
    pub steps: Vec<Step>,
    /// The good endpoint's output, for `--mode output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<BisectResult>,
}

impl State {
    /// Reads a state document (a state dir's file, or a log passed to `--replay`).
    pub fn load(path: &Path) -> Result<State> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading bisect state {}", path.display()))?;
        let state: State = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a tessera bisect state/log (from `tessera bisect log --json`)",
                path.display()
            )
        })?;
        if state.version != STATE_VERSION {
            bail!(
                "{}: state version {} is not supported (this tessera writes {STATE_VERSION})",
                path.display(),
                state.version
            );
        }
        Ok(state)
    }

    /// Writes the document atomically (temp file + rename), so an interruption never leaves
    /// a half-written state behind.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating state dir {}", dir.display()))?;
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Path of the state file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }
}
