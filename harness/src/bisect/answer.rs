//! The answer of a bisection, from its steps: the commit found (and the steps that decided
//! it), the range an ambiguous one ends with, or the range a stopped one leaves, with the
//! confidence of a perf verdict. Saved with the state and returned as the [`Outcome`].

use anyhow::Result;

use super::config::Outcome;
use super::driver::Driver;
use super::repo::Range;
use super::report::short;
use super::report::{BisectResult, Remaining};
use super::search::{Bisection, max_steps};
use super::state::{Step, StepKind, Verdict};

/// Candidates listed one by one in a stopped bisection's result; a longer range is given by
/// its ends only.
const LIST_REMAINING: usize = 64;

impl Driver<'_> {
    /// The range a stopped bisection leaves: its ends, its size, and the commits themselves
    /// when there are few.
    pub(super) fn remaining(&self, range: &Range, b: &Bisection) -> Result<Remaining> {
        let left = b.candidates();
        let (olds, new) = b.bounds();
        let newest_old = olds
            .iter()
            .copied()
            .max()
            .map_or(self.old, |i| range.commits[i]);
        let oldest = left.first().map_or(new, |&i| i);
        let commits = if left.len() <= LIST_REMAINING {
            left.iter()
                .map(|&i| self.repo.info(range.commits[i]))
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Remaining {
            count: left.len(),
            max_steps: max_steps(left.len()),
            oldest: self.repo.info(range.commits[oldest])?,
            newest: self.repo.info(range.commits[new])?,
            git_range: format!("{}..{}", newest_old, range.commits[new]),
            commits,
        })
    }

    pub(super) fn finish(
        &mut self,
        range: &Range,
        found: Option<usize>,
        candidates: Vec<usize>,
        remaining: Option<Remaining>,
        wrap: fn(BisectResult) -> Outcome,
    ) -> Result<Outcome> {
        let mode = self.cfg.spec.mode;
        let tests: Vec<&Step> = self
            .state
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Test)
            .collect();
        let commit = match found {
            Some(i) => Some(self.repo.info(range.commits[i])?),
            None => None,
        };
        let mut decided_by = Vec::new();
        if let Some(i) = found {
            let culprit = range.commits[i];
            // The parent that was judged old: in the range, or the old endpoint.
            let parent = range.dag.parents[i]
                .first()
                .map(|&p| range.commits[p])
                .unwrap_or(self.old);
            for c in [parent, culprit] {
                if let Some(s) = self.recorded(c, None) {
                    decided_by.push(s.clone());
                }
            }
        }
        let confidence = mode.is_perf().then(|| {
            let p_sum: f64 = self
                .state
                .steps
                .iter()
                .filter(|s| s.verdict != Verdict::Skip)
                .filter_map(|s| s.p_error)
                .sum();
            (1.0 - p_sum).clamp(0.0, 1.0)
        });
        let spec = &self.cfg.spec;
        let result = BisectResult {
            mode,
            status: self.state.status,
            term: mode.term().into(),
            commit,
            candidates: candidates
                .iter()
                .map(|&i| self.repo.info(range.commits[i]))
                .collect::<Result<_>>()?,
            good: format!("{} ({})", spec.good, short(&self.state.good_commit)),
            bad: format!("{} ({})", spec.bad, short(&self.state.bad_commit)),
            n_commits: range.commits.len(),
            max_steps: max_steps(range.commits.len()),
            steps: tests.len(),
            skips: tests.iter().filter(|s| s.verdict == Verdict::Skip).count(),
            replayed: tests.iter().filter(|s| s.replayed).count(),
            confidence,
            decided_by,
            remaining,
        };
        self.state.result = Some(result.clone());
        self.save()?;
        Ok(wrap(result))
    }
}
