//! The bisect state file: the settings, every step with its verdict and measurements, and the
//! result, as one JSON document rewritten (atomically) after every step. It is what
//! `--resume` continues from, what `tessera bisect log` shows, and what `--replay` re-applies.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::classify::Classification;
use super::report::BisectResult;
use super::stats::StatTest;

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
            "output" => Ok(Mode::Output),
            _ => Err(format!(
                "'{s}' is not a mode; valid: fault, fix, perf, output"
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
            Mode::Output => "output",
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

/// The measurements of a perf step: metric values of the good endpoint (baseline) and the
/// commit, taken alternately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfMeasure {
    pub baseline: Vec<f64>,
    pub candidate: Vec<f64>,
    /// Relative change in the "worse" direction: 0.40 = 40% worse than the baseline.
    pub regression: f64,
    /// p-value of "the commit is worse than the baseline".
    pub p_worse: f64,
    /// p-value of "the commit is less worse than the threshold".
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
