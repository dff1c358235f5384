//! Judging one commit: its worktree (own or shared, per the build cache), its build (or the
//! cached one), its runs, and the verdict per mode: fault and fix by classification, perf
//! and speedup by A/B measurement against the old endpoint, output by comparison with the
//! old endpoint's output. With `--profile` one run of the step is sampled.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use git2::Oid;

use super::build::{self, BuildRecord, Cache, fmt_elapsed};
use super::classify::{Classification, RunOutput, classify};
use super::driver::{Driver, old_verdict, short};
use super::exec::{self, Invocation, tail};
use super::metric::compare;
use super::perf::{Direction, Rule, judge};
use super::report::fmt_p;
use super::state::{BuildNote, Mode, PerfMeasure, Verdict};
use super::worktree::SHARED;

/// Verdict of one evaluation, before it becomes a step.
pub(super) struct Eval {
    pub(super) verdict: Verdict,
    pub(super) reason: String,
    pub(super) build: BuildNote,
    pub(super) class: Option<Classification>,
    pub(super) perf: Option<PerfMeasure>,
    pub(super) p_error: Option<f64>,
    /// Seconds of the judged run(s).
    pub(super) seconds: f64,
    /// Seconds of the build this step ran (none when cached).
    pub(super) build_seconds: Option<f64>,
}

impl Eval {
    fn skip(reason: String, build: &Built) -> Eval {
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
}

/// The profile of the step under evaluation: of which commit, its file name under the state
/// directory, and once taken, the outcome.
pub(super) struct StepProfile {
    pub(super) commit: Oid,
    pub(super) name: String,
    pub(super) outcome: Option<crate::profile::Outcome>,
}

/// A commit's worktree after its build.
pub(super) struct Built {
    wt: PathBuf,
    note: BuildNote,
    /// Why the build failed.
    error: Option<String>,
    seconds: Option<f64>,
}

impl Driver<'_> {
    /// With `--profile`, asks for a profile of the next step, which tests `commit`.
    pub(super) fn arm_profile(&self, commit: Oid) {
        if self.cfg.spec.profile {
            let n = self.state.steps.len() + 1;
            *self.profiling.borrow_mut() = Some(StepProfile {
                commit,
                name: format!("profiles/step-{n}-{}", short(commit)),
                outcome: None,
            });
        }
    }

    /// Whether the next run of `commit` is to be sampled.
    fn wants_profile(&self, commit: Oid) -> bool {
        self.profiling
            .borrow()
            .as_ref()
            .is_some_and(|p| p.commit == commit && p.outcome.is_none())
    }

    /// Checks the commit out (or reuses its worktree) and builds it (or reuses the build).
    /// `quiet` leaves out the progress lines of a reused, cached build (the perf baseline,
    /// prepared again for every step).
    fn prepare(&self, commit: Oid, quiet: bool) -> Result<Built> {
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
        let mut env = self.env(commit, &wt.path);
        env.extend(build::env(&self.cache, &spec.cache_dir, spec.jobs));
        let out = exec::run(&Invocation {
            script: command,
            dir: &wt.path,
            env,
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

    fn env(&self, commit: Oid, wt: &Path) -> Vec<(String, String)> {
        let mut env = vec![
            ("TESSERA_BISECT_COMMIT".to_string(), commit.to_string()),
            (
                "TESSERA_BISECT_WORKTREE".to_string(),
                wt.display().to_string(),
            ),
        ];
        if matches!(self.cfg.spec.mode, Mode::Fault | Mode::Fix) {
            // Asynchronous CUDA errors surface at a later call; blocking launches make the
            // reported op the one that faulted.
            env.push(("CUDA_LAUNCH_BLOCKING".to_string(), "1".to_string()));
        }
        env
    }

    /// One run of the run command. In fault, fix and output mode the step's profile is of
    /// its (first) judged run; perf and speedup mode sample an extra run instead
    /// ([`Driver::profile_extra_run`]), so sampling never slows a measured one.
    fn run_once(&self, commit: Oid, wt: &Path) -> Result<RunOutput> {
        let out = if !self.cfg.spec.mode.is_perf() && self.wants_profile(commit) {
            self.run_sampled(commit, wt)?
        } else {
            exec::run(&self.invocation(commit, wt))?
        };
        let (n, s) = self.runs.get();
        self.runs.set((n + 1, s + out.seconds));
        Ok(out)
    }

    fn invocation<'b>(&'b self, commit: Oid, wt: &'b Path) -> Invocation<'b> {
        Invocation {
            script: &self.cfg.spec.run,
            dir: wt,
            env: self.env(commit, wt),
            timeout: self.cfg.run_timeout(),
            sanitizer: self.cfg.sanitizer.as_deref(),
            heartbeat: None,
        }
    }

    /// A run that is sampled; its profile goes to the step under evaluation.
    fn run_sampled(&self, commit: Oid, wt: &Path) -> Result<RunOutput> {
        let settings = crate::profile::Settings::default();
        let (out, rec) = exec::run_profiled(&self.invocation(commit, wt), Some(&settings))?;
        if let Some(p) = self.profiling.borrow_mut().as_mut() {
            let rec = rec.unwrap_or_else(|| Err("the run was not sampled".into()));
            p.outcome = Some(crate::profile::conclude(rec, &self.cfg.state_dir, &p.name));
        }
        Ok(out)
    }

    /// Perf mode: one more, unmeasured run of `commit`, sampled for the step's profile.
    fn profile_extra_run(&self, commit: Oid, wt: &Path) -> Result<()> {
        if self.wants_profile(commit) {
            self.run_sampled(commit, wt)?;
        }
        Ok(())
    }

    /// Builds and judges one commit according to the mode.
    pub(super) fn evaluate(&self, commit: Oid) -> Result<Eval> {
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

    fn eval_fault(&self, commit: Oid, built: &Built) -> Result<Eval> {
        let out = self.run_once(commit, &built.wt)?;
        let class = classify(&out, true);
        let label = class.label();
        let faulty = !class.is_ok();
        if faulty
            && let Some(re) = &self.cfg.fault
            && !re.is_match(&label)
        {
            return Ok(Eval {
                class: Some(class),
                seconds: out.seconds,
                ..Eval::skip(
                    format!("a different fault ({label}) does not match --fault"),
                    built,
                )
            });
        }
        // A fault present is "bad" in both fault and fix mode; the mode only decides which
        // verdict is the new property being searched for.
        let (verdict, reason) = if faulty {
            (Verdict::Bad, label)
        } else {
            (Verdict::Good, "ran cleanly".to_string())
        };
        Ok(Eval {
            verdict,
            reason,
            build: built.note,
            class: Some(class),
            perf: None,
            p_error: None,
            seconds: out.seconds,
            build_seconds: built.seconds,
        })
    }

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
    pub(super) fn perf_baseline_check(&self, commit: Oid) -> Result<Eval> {
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
            reason: format!("baseline {values:?}"),
            build: built.note,
            class: None,
            perf: None,
            p_error: None,
            seconds: 0.0,
            build_seconds: built.seconds,
        })
    }

    /// A/B/A/B: the old endpoint's build and the commit alternately, more rounds while
    /// ambiguous.
    fn eval_perf(&self, commit: Oid, built: &Built) -> Result<Eval> {
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
                let verdict = match (j.changed, speedup) {
                    (None, _) => Verdict::Skip,
                    (Some(changed), false) => {
                        if changed {
                            Verdict::Bad
                        } else {
                            Verdict::Good
                        }
                    }
                    (Some(changed), true) => {
                        if changed {
                            Verdict::Good
                        } else {
                            Verdict::Bad
                        }
                    }
                };
                let reason =
                    perf_reason(&j.measure, j.changed, speedup, spec.threshold, cand.len());
                return Ok(Eval {
                    verdict,
                    reason,
                    build: built.note,
                    class: None,
                    perf: Some(j.measure),
                    p_error: j.p_error,
                    seconds: started.elapsed().as_secs_f64(),
                    build_seconds: built.seconds,
                });
            }
            eprintln!(
                "  ambiguous with {} runs per side; measuring more",
                cand.len()
            );
        }
    }

    fn output_of(&self, wt: &Path, out: &RunOutput) -> std::result::Result<String, String> {
        match &self.cfg.spec.output_file {
            Some(f) => std::fs::read_to_string(wt.join(f))
                .map_err(|e| format!("--output-file {}: {e}", f.display())),
            None => Ok(out.stdout.clone()),
        }
    }

    /// Runs the old endpoint and keeps its output as the reference.
    pub(super) fn output_reference(&mut self, commit: Oid) -> Result<Eval> {
        let built = self.prepare(commit, false)?;
        if let Some(err) = &built.error {
            return Ok(Eval::skip(format!("build failed: {err}"), &built));
        }
        let out = self.run_once(commit, &built.wt)?;
        let class = classify(&out, true);
        if !class.is_ok() {
            return Ok(Eval {
                class: Some(class.clone()),
                ..Eval::skip(format!("run failed: {}", class.label()), &built)
            });
        }
        match self.output_of(&built.wt, &out) {
            Ok(text) => {
                self.state.reference_output = Some(text);
                Ok(Eval {
                    verdict: Verdict::Good,
                    reason: "reference output recorded".into(),
                    build: built.note,
                    class: Some(class),
                    perf: None,
                    p_error: None,
                    seconds: out.seconds,
                    build_seconds: built.seconds,
                })
            }
            Err(e) => Ok(Eval::skip(e, &built)),
        }
    }

    fn eval_output(&self, commit: Oid, built: &Built) -> Result<Eval> {
        let out = self.run_once(commit, &built.wt)?;
        let class = classify(&out, false);
        if !class.is_ok() {
            return Ok(Eval {
                class: Some(class.clone()),
                ..Eval::skip(format!("run failed: {}", class.label()), built)
            });
        }
        let text = match self.output_of(&built.wt, &out) {
            Ok(t) => t,
            Err(e) => return Ok(Eval::skip(e, built)),
        };
        let Some(reference) = &self.state.reference_output else {
            bail!("internal: no reference output recorded for --mode output");
        };
        let (verdict, reason) = match compare(self.cfg.compare, reference, &text) {
            None => (Verdict::Good, "same output as the old endpoint".to_string()),
            Some(diff) => (Verdict::Bad, diff),
        };
        Ok(Eval {
            verdict,
            reason,
            build: built.note,
            class: Some(class),
            perf: None,
            p_error: None,
            seconds: out.seconds,
            build_seconds: built.seconds,
        })
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
