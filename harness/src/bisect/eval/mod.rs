//! Judging one commit per mode, once it is built: one evaluator per kind of question.
//! Fault and fix mode ask the same one (does the run fault?) and differ only in which
//! verdict is the new property, so they share [`fault`]; perf and speedup mode are one A/B
//! measurement against the old endpoint with the searched direction turned round, so they
//! share [`perf`] (whose statistics are `bisect::perf`); output mode compares with the old
//! endpoint's output ([`output`]). Here: the verdict of one evaluation and the dispatch.

mod fault;
mod output;
mod perf;

use anyhow::Result;
use git2::Oid;

use super::build::Built;
use super::classify::Classification;
use super::driver::Driver;
use super::state::{BuildNote, Mode, PerfMeasure, Verdict};

/// Verdict of one evaluation, before it becomes a step.
pub(in crate::bisect) struct Eval {
    pub(in crate::bisect) verdict: Verdict,
    pub(in crate::bisect) reason: String,
    pub(in crate::bisect) build: BuildNote,
    pub(in crate::bisect) class: Option<Classification>,
    pub(in crate::bisect) perf: Option<PerfMeasure>,
    pub(in crate::bisect) p_error: Option<f64>,
    /// Seconds of the judged run(s).
    pub(in crate::bisect) seconds: f64,
    /// Seconds of the build this step ran (none when cached).
    pub(in crate::bisect) build_seconds: Option<f64>,
}

impl Eval {
    pub(super) fn skip(reason: String, build: &Built) -> Eval {
        Eval {
            verdict: Verdict::Skip,
            reason,
            build: build.note,
            class: None,
            perf: None,
            p_error: None,
            seconds: 0.0,
            build_seconds: build.seconds,
        }
    }

    /// The verdict of one classified run that took `seconds` (fault, fix and output modes:
    /// no perf measurement).
    pub(super) fn judged(
        verdict: Verdict,
        reason: String,
        class: Classification,
        seconds: f64,
        build: &Built,
    ) -> Eval {
        Eval {
            verdict,
            class: Some(class),
            seconds,
            ..Eval::skip(reason, build)
        }
    }
}

impl Driver<'_> {
    /// Builds and judges one commit according to the mode.
    pub(in crate::bisect) fn evaluate(&self, commit: Oid) -> Result<Eval> {
        let built = self.prepare(commit, false)?;
        if let Some(err) = &built.error {
            return Ok(Eval::skip(format!("build failed: {err}"), &built));
        }
        match self.cfg.spec.mode {
            Mode::Fault | Mode::Fix => self.eval_fault(commit, &built),
            Mode::Perf | Mode::Speedup => self.eval_perf(commit, &built),
            Mode::Output => self.eval_output(commit, &built),
        }
    }
}
