//! The answer of a bisection (first bad or first fixed commit, or the candidate range, with
//! the measurements that decided it) and its markdown form, plus the markdown step log.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::repo::CommitInfo;
use super::state::{Mode, State, Status, Step, StepKind};
use crate::export::md_escape;

/// The result of a bisection, as written by `--json` and `--format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BisectResult {
    pub mode: Mode,
    pub status: Status,
    /// "first bad commit" or "first fixed commit".
    pub term: String,
    /// The answer, when there is exactly one.
    pub commit: Option<CommitInfo>,
    /// With status `ambiguous`: the commits the answer could be, oldest first.
    #[serde(default)]
    pub candidates: Vec<CommitInfo>,
    pub good: String,
    pub bad: String,
    /// Commits in the bisected range (old endpoint excluded, new endpoint included).
    pub n_commits: usize,
    /// ceil(log2(n_commits)): the most tests an undisturbed bisection needs.
    pub max_steps: usize,
    /// Bisection steps (endpoint checks not counted), replayed ones included.
    pub steps: usize,
    /// Steps whose verdict was skip.
    pub skips: usize,
    /// Steps taken from a replayed log.
    pub replayed: usize,
    /// For perf: 1 − the sum of the decisive verdicts' error p-values (a Bonferroni bound on
    /// the chance that every verdict was right).
    pub confidence: Option<f64>,
    /// The steps that decided it: the answer's own test and its parent's.
    pub decided_by: Vec<Step>,
    /// With status `stopped` (`--max-steps`, `--budget`): the range still to search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Remaining>,
}

/// The range a stopped bisection leaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remaining {
    /// Commits that could still be the answer.
    pub count: usize,
    /// ceil(log2(count)): the most further tests.
    pub max_steps: usize,
    /// The oldest and the newest of them.
    pub oldest: CommitInfo,
    pub newest: CommitInfo,
    /// `OLD..NEW` for `git log`: NEW is the newest candidate, OLD the newest commit known to
    /// be on the old side.
    pub git_range: String,
    /// All of them, oldest first, when there are at most 64.
    #[serde(default)]
    pub commits: Vec<CommitInfo>,
}

/// One-line detail of a step for tables.
pub fn step_detail(s: &Step) -> String {
    if let Some(p) = &s.perf {
        return format!(
            "{} (n={}+{})",
            s.reason,
            p.baseline.len(),
            p.candidate.len()
        );
    }
    s.reason.clone()
}

/// A p-value for humans: three decimals, scientific below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// A commit hash cut to the 12 characters every bisect message and table shows (the
/// whole text when shorter).
pub(super) fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The build column: what happened, with the build's time when it ran.
fn build_cell(s: &Step) -> String {
    let note = serde_json::to_value(s.build)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match s.build_seconds {
        Some(t) => format!("{note} {t:.1} s"),
        None => note,
    }
}

/// The markdown table of steps. Subjects and details go through export's `md_escape`, the
/// one markdown-cell escape (it also turns a `\r` into a space, which this file's former
/// copy did not: a stray `\r` would otherwise split the row).
pub fn steps_table(steps: &[Step]) -> String {
    let mut out = String::from("| # | check | commit | subject | verdict | build | detail |\n");
    out.push_str("| ---: | --- | --- | --- | --- | --- | --- |\n");
    for s in steps {
        let kind = match s.kind {
            StepKind::VerifyGood => "verify good",
            StepKind::VerifyBad => "verify bad",
            StepKind::Test => "test",
        };
        let _ = writeln!(
            out,
            "| {} | {}{} | `{}` | {} | **{}** | {} | {} |",
            s.n,
            kind,
            if s.replayed { " (replayed)" } else { "" },
            short(&s.commit),
            md_escape(&s.subject),
            s.verdict.as_str(),
            build_cell(s),
            md_escape(&step_detail(s)),
        );
    }
    out
}

/// The result as markdown.
pub fn result_markdown(r: &BisectResult) -> String {
    let mut out = String::new();
    match (&r.status, &r.commit) {
        (Status::Found, Some(c)) => {
            let _ = writeln!(out, "# {}: `{}`\n", r.term, short(&c.hash));
            commit_block(&mut out, c);
        }
        (Status::Ambiguous, _) => {
            let _ = writeln!(
                out,
                "# {} not determined: skipped commits border it\n\nThe {} is one of:\n",
                r.term, r.term
            );
            for c in &r.candidates {
                let _ = writeln!(out, "- `{}` {} ({})", c.hash, c.subject, c.date);
            }
            out.push('\n');
        }
        _ => {
            let _ = writeln!(out, "# bisection stopped before an answer\n");
            if let Some(left) = &r.remaining {
                let _ = writeln!(
                    out,
                    "The {} is one of {} commits (at most {} more steps), `git log {}`:\n",
                    r.term, left.count, left.max_steps, left.git_range
                );
                if left.commits.is_empty() {
                    let _ = writeln!(
                        out,
                        "- oldest: `{}` {} ({})\n- newest: `{}` {} ({})",
                        left.oldest.hash,
                        left.oldest.subject,
                        left.oldest.date,
                        left.newest.hash,
                        left.newest.subject,
                        left.newest.date
                    );
                }
                for c in &left.commits {
                    let _ = writeln!(out, "- `{}` {} ({})", c.hash, c.subject, c.date);
                }
                out.push('\n');
            }
            let _ = writeln!(out, "Continue with `tessera bisect --resume`.\n");
        }
    }
    let _ = writeln!(
        out,
        "Mode `{}`, good `{}`, bad `{}`: {} commits, {} steps ({} skipped, {} replayed; \
         an undisturbed bisection needs at most {}).",
        r.mode.as_str(),
        r.good,
        r.bad,
        r.n_commits,
        r.steps,
        r.skips,
        r.replayed,
        r.max_steps
    );
    if let Some(conf) = r.confidence {
        let _ = writeln!(out, "Confidence: {:.1}%.", conf * 100.0);
    }
    if !r.decided_by.is_empty() {
        out.push_str("\n## Decided by\n\n");
        out.push_str(&steps_table(&r.decided_by));
        for s in &r.decided_by {
            if let Some(p) = &s.perf {
                let _ = writeln!(
                    out,
                    "\n`{}` baseline {:?}\n`{}` commit   {:?}",
                    short(&s.commit),
                    p.baseline,
                    short(&s.commit),
                    p.candidate
                );
            }
        }
    }
    out
}

fn commit_block(out: &mut String, c: &CommitInfo) {
    let _ = writeln!(out, "**{}**\n", c.subject);
    let _ = writeln!(out, "- commit: `{}`", c.hash);
    let _ = writeln!(out, "- author: {} <{}>", c.author, c.email);
    let _ = writeln!(out, "- date: {}", c.date);
    let _ = writeln!(
        out,
        "- files changed ({}): {}\n",
        c.files_changed.len(),
        c.files_changed
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// `tessera bisect log` as markdown.
pub fn log_markdown(state: &State) -> String {
    let mut out = format!(
        "# tessera bisect log: mode {}, good `{}` ({}), bad `{}` ({}), status {}\n\n",
        state.spec.mode.as_str(),
        state.spec.good,
        short(&state.good_commit),
        state.spec.bad,
        short(&state.bad_commit),
        serde_json::to_value(state.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    out.push_str(&steps_table(&state.steps));
    if let Some(r) = &state.result {
        out.push('\n');
        match &r.commit {
            Some(c) => {
                let _ = writeln!(out, "{}: `{}` {}", r.term, c.hash, c.subject);
            }
            None if !r.candidates.is_empty() => {
                let _ = writeln!(
                    out,
                    "{} is one of: {}",
                    r.term,
                    r.candidates
                        .iter()
                        .map(|c| format!("`{}`", short(&c.hash)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            None => {}
        }
    }
    out
}
