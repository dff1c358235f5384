//! Perf and speedup mode: the old endpoint's build and the commit run alternately
//! (A/B/A/B), more rounds while the verdict is ambiguous, up to `--max-repeat` runs per
//! side; [`judge`] decides from the samples. The old endpoint's own check (it must build
//! and give the metric on every run) is here too.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use git2::Oid;

use super::Eval;
use crate::bisect::build::Built;
use crate::bisect::classify::classify;
use crate::bisect::driver::{Driver, new_verdict, old_verdict};
use crate::bisect::perf::{Direction, Rule, judge};
use crate::bisect::report::fmt_p;
use crate::bisect::state::{Mode, PerfMeasure, Verdict};

impl Driver<'_> {
    /// One metric value from one run; Err(reason) when the run failed or gave no metric.
    fn measure(&self, commit: Oid, wt: &Path) -> Result<std::result::Result<f64, String>> {
        let out = self.run_once(commit, wt)?;
        let class = classify(&out, true);
        if !class.is_ok() {
            return Ok(Err(class.label()));
        }
        let Some(metric) = &self.cfg.metric else {
            return Ok(Err("no metric configured".into()));
        };
        Ok(metric.extract(&out.stdout).map_err(|e| format!("{e:#}")))
    }

    /// The perf baseline (old endpoint) must build and give the metric on every run.
    pub(in crate::bisect) fn perf_baseline_check(&self, commit: Oid) -> Result<Eval> {
        let built = self.prepare(commit, false)?;
        if let Some(err) = &built.error {
            return Ok(Eval::skip(format!("build failed: {err}"), &built));
        }
        let mut values = Vec::new();
        for _ in 0..self.cfg.spec.repeat {
            match self.measure(commit, &built.wt)? {
                Ok(v) => values.push(v),
                Err(reason) => return Ok(Eval::skip(reason, &built)),
            }
        }
        self.profile_extra_run(commit, &built.wt)?;
        Ok(Eval {
            verdict: old_verdict(self.cfg.spec.mode),
            ..Eval::skip(format!("baseline {values:?}"), &built)
        })
    }

    /// A/B/A/B: the old endpoint's build and the commit alternately, more rounds while
    /// ambiguous.
    pub(super) fn eval_perf(&self, commit: Oid, built: &Built) -> Result<Eval> {
        let spec = &self.cfg.spec;
        let speedup = spec.mode == Mode::Speedup;
        let old_flag = if speedup {
            &spec.bad_flag
        } else {
            &spec.good_flag
        };
        let base = self.prepare(self.old, true)?;
        if let Some(err) = &base.error {
            bail!("the old endpoint's ({old_flag}) build stopped working: {err}");
        }
        let rule = Rule {
            threshold: spec.threshold,
            alpha: spec.alpha,
            lower_is_better: spec.lower_is_better,
            stat: spec.stat,
            direction: if speedup {
                Direction::Faster
            } else {
                Direction::Slower
            },
        };
        eprintln!(
            "  run: A/B against the old endpoint, {} runs per side ...",
            spec.repeat
        );
        let mut base_v = Vec::new();
        let mut cand = Vec::new();
        let started = Instant::now();
        loop {
            for _ in 0..spec.repeat {
                match self.measure(self.old, &base.wt)? {
                    Ok(v) => base_v.push(v),
                    Err(r) => bail!("the old endpoint's ({old_flag}) baseline run failed: {r}"),
                }
                match self.measure(commit, &built.wt)? {
                    Ok(v) => cand.push(v),
                    Err(r) => return Ok(Eval::skip(format!("run failed: {r}"), built)),
                }
            }
            let Some(j) = judge(&base_v, &cand, rule) else {
                return Ok(Eval::skip("metric values are not comparable".into(), built));
            };
            let done = j.changed.is_some() || cand.len() + spec.repeat > spec.max_repeat;
            if done {
                self.profile_extra_run(commit, &built.wt)?;
                // A changed commit has the new property (slower in perf mode, faster in
                // speedup mode); an unchanged one is still like the old endpoint.
                let verdict = match j.changed {
                    None => Verdict::Skip,
                    Some(true) => new_verdict(spec.mode),
                    Some(false) => old_verdict(spec.mode),
                };
                let reason =
                    perf_reason(&j.measure, j.changed, speedup, spec.threshold, cand.len());
                return Ok(Eval {
                    verdict,
                    perf: Some(j.measure),
                    p_error: j.p_error,
                    seconds: started.elapsed().as_secs_f64(),
                    ..Eval::skip(reason, built)
                });
            }
            eprintln!(
                "  ambiguous with {} runs per side; measuring more",
                cand.len()
            );
        }
    }
}

/// The one-line reason of a perf or speedup verdict.
fn perf_reason(
    m: &PerfMeasure,
    changed: Option<bool>,
    speedup: bool,
    threshold: f64,
    runs: usize,
) -> String {
    let t = threshold * 100.0;
    if speedup {
        let faster = -m.regression * 100.0;
        return match changed {
            Some(true) => format!("{faster:.1}% faster (> {t:.1}%), p={}", fmt_p(m.p_change)),
            Some(false) => format!(
                "{faster:+.1}% faster, less than {t:.1}% (p={})",
                fmt_p(m.p_within)
            ),
            None => format!(
                "ambiguous after {runs} runs per side: {faster:+.1}% faster (p faster={}, p less={})",
                fmt_p(m.p_change),
                fmt_p(m.p_within)
            ),
        };
    }
    let worse = m.regression * 100.0;
    match changed {
        Some(true) => format!("{worse:.1}% worse (> {t:.1}%), p={}", fmt_p(m.p_change)),
        Some(false) => format!(
            "{worse:+.1}% worse, within {t:.1}% (p={})",
            fmt_p(m.p_within)
        ),
        None => format!(
            "ambiguous after {runs} runs per side: {worse:+.1}% worse (p worse={}, p within={})",
            fmt_p(m.p_change),
            fmt_p(m.p_within)
        ),
    }
}
