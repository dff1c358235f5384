//! Drives one bisection: resolves the endpoints, verifies them, then asks the search for the
//! next commit, builds it in its cached worktree, runs and judges it per mode, and saves the
//! state after every step.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use git2::Oid;
use serde::{Deserialize, Serialize};

use super::classify::{Classification, RunOutput, classify};
use super::exec::{self, Invocation, tail};
use super::metric::compare;
use super::repo::{Range, Repo};
use super::report::{BisectResult, fmt_p};
use super::search::{Bisection, Mark, Next, max_steps};
use super::state::{
    BuildNote, Mode, PerfMeasure, STATE_VERSION, State, Status, Step, StepKind, Verdict,
};
use super::stats::Alternative;
use crate::cmd::bisect::{Config, Outcome};
use crate::timefmt::now_rfc3339;

/// The cached outcome of building one commit, next to its worktree.
#[derive(Debug, Serialize, Deserialize)]
struct BuildRecord {
    command: String,
    ok: bool,
    seconds: f64,
    log_tail: String,
}

/// Verdict of one evaluation, before it becomes a step.
struct Eval {
    verdict: Verdict,
    reason: String,
    build: BuildNote,
    class: Option<Classification>,
    perf: Option<PerfMeasure>,
    p_error: Option<f64>,
    seconds: f64,
}

impl Eval {
    fn skip(reason: String, build: BuildNote) -> Eval {
        Eval {
            verdict: Verdict::Skip,
            reason,
            build,
            class: None,
            perf: None,
            p_error: None,
            seconds: 0.0,
        }
    }
}

struct Driver<'a> {
    cfg: &'a Config,
    repo: Repo,
    state: State,
    /// The old endpoint (the perf baseline and output reference).
    old: Oid,
}

/// The user-facing verdict that means "has the new property" in this mode.
fn new_verdict(mode: Mode) -> Verdict {
    if mode == Mode::Fix {
        Verdict::Good
    } else {
        Verdict::Bad
    }
}

fn to_mark(mode: Mode, v: Verdict) -> Mark {
    match v {
        Verdict::Skip => Mark::Skip,
        v if v == new_verdict(mode) => Mark::New,
        _ => Mark::Old,
    }
}

fn short(oid: Oid) -> String {
    short_str(&oid.to_string()).to_string()
}

fn short_str(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // One bisection per state directory: a second `--resume` would test the same commits
    // again, and measure at the same time as the first in perf mode.
    let _lock = crate::lockfile::DirLock::acquire(&cfg.state_dir, "tessera bisect")?;
    let spec = &cfg.spec;
    let repo = Repo::open(&spec.repo)?;
    let good = repo.resolve("--good", &spec.good)?;
    let bad = repo.resolve("--bad", &spec.bad)?;
    if good == bad {
        bail!(
            "--good and --bad both name {}; nothing to bisect",
            short(good)
        );
    }
    let (old, new) = if spec.mode == Mode::Fix {
        (bad, good)
    } else {
        (good, bad)
    };
    if !repo.is_ancestor(old, new)? {
        if spec.mode == Mode::Fix {
            bail!(
                "--bad {} is not an ancestor of --good {}; in --mode fix the faulty revision is \
                 the older one and the fixed revision the newer one",
                spec.bad,
                spec.good
            );
        }
        bail!(
            "--good {} is not an ancestor of --bad {}; the good revision must be the older one \
             (use --mode fix to find where a fault disappears)",
            spec.good,
            spec.bad
        );
    }
    let range = repo.range(old, new, !spec.all_parents)?;
    exec::install_interrupt_handler();

    let state_path = State::path(&cfg.state_dir);
    let state = if cfg.resume {
        let s = State::load(&state_path)?;
        if s.good_commit != good.to_string() || s.bad_commit != bad.to_string() {
            bail!(
                "--resume: the saved bisection's revisions now resolve to other commits \
                 (a branch moved); start a new one"
            );
        }
        s
    } else {
        if state_path.exists()
            && let Ok(prev) = State::load(&state_path)
            && prev.status == Status::Running
        {
            bail!(
                "a bisection is in progress in {} (started {}); continue it with --resume or \
                 remove it with `tessera bisect reset`",
                cfg.state_dir.display(),
                prev.started
            );
        }
        State {
            version: STATE_VERSION,
            spec: spec.clone(),
            good_commit: good.to_string(),
            bad_commit: bad.to_string(),
            started: now_rfc3339(),
            status: Status::Running,
            steps: Vec::new(),
            reference_output: None,
            result: None,
        }
    };
    let mut d = Driver {
        cfg,
        repo,
        state,
        old,
    };
    if !cfg.resume
        && let Some(log) = &cfg.replay
    {
        d.import_replay(log, &range, new);
    }
    d.state.status = Status::Running;
    d.save()?;
    d.verify(StepKind::VerifyGood, good)?;
    d.verify(StepKind::VerifyBad, bad)?;
    d.bisect(&range)
}

impl Driver<'_> {
    fn save(&self) -> Result<()> {
        self.state.save(&self.cfg.state_dir)
    }

    /// Copies the verdicts of a log for commits of this range (and the endpoints), marked as
    /// replayed. A log of another mode says nothing about this one and is refused per step.
    fn import_replay(&mut self, log: &State, range: &Range, new: Oid) {
        if log.spec.mode != self.cfg.spec.mode {
            eprintln!(
                "replay: the log is a --mode {} bisection, this is --mode {}; nothing replayed",
                log.spec.mode.as_str(),
                self.cfg.spec.mode.as_str()
            );
            return;
        }
        let known: Vec<String> = range
            .commits
            .iter()
            .chain([&self.old, &new])
            .map(|c| c.to_string())
            .collect();
        for s in &log.steps {
            if known.contains(&s.commit) {
                let mut s = s.clone();
                s.n = self.state.steps.len() + 1;
                s.replayed = true;
                self.state.steps.push(s);
            }
        }
        if self.state.reference_output.is_none() {
            self.state.reference_output = log.reference_output.clone();
        }
    }

    fn recorded(&self, commit: Oid, kind: Option<StepKind>) -> Option<&Step> {
        let c = commit.to_string();
        self.state
            .steps
            .iter()
            .rev()
            .find(|s| s.commit == c && kind.is_none_or(|k| s.kind == k))
    }

    fn push_step(&mut self, kind: StepKind, commit: Oid, e: Eval) -> Result<Step> {
        let step = Step {
            n: self.state.steps.len() + 1,
            kind,
            commit: commit.to_string(),
            subject: self.repo.subject(commit),
            verdict: e.verdict,
            reason: e.reason,
            build: e.build,
            class: e.class,
            perf: e.perf,
            p_error: e.p_error,
            seconds: e.seconds,
            replayed: false,
            time: now_rfc3339(),
        };
        self.state.steps.push(step.clone());
        self.save()?;
        Ok(step)
    }

    /// Checks that an endpoint has the verdict its flag claims.
    fn verify(&mut self, kind: StepKind, commit: Oid) -> Result<()> {
        let mode = self.cfg.spec.mode;
        let (flag, rev, want) = match kind {
            StepKind::VerifyGood => ("--good", self.cfg.spec.good.clone(), Verdict::Good),
            _ => ("--bad", self.cfg.spec.bad.clone(), Verdict::Bad),
        };
        let replayed_ok = self
            .recorded(commit, Some(kind))
            .is_some_and(|s| s.verdict == want);
        let is_old = commit == self.old;
        let perf_baseline = mode == Mode::Perf && is_old;
        // The output reference must exist before a replayed bisection tests anything.
        let needs_reference =
            mode == Mode::Output && is_old && self.state.reference_output.is_none();
        if replayed_ok && !needs_reference {
            return Ok(());
        }
        eprintln!("verify {flag} {rev} ({}) ...", short(commit));
        let e = if perf_baseline {
            self.perf_baseline_check(commit)?
        } else if mode == Mode::Output && is_old {
            self.output_reference(commit)?
        } else {
            self.evaluate(commit)?
        };
        let step = self.push_step(kind, commit, e)?;
        eprintln!("  {}: {}", step.verdict.as_str(), step.reason);
        if step.verdict != want {
            let what = match step.verdict {
                Verdict::Skip => format!("cannot be judged: {}", step.reason),
                v => format!("is {}: {}", v.as_str(), step.reason),
            };
            // Not "running": a corrected command line may start afresh in this state dir.
            self.state.status = Status::Stopped;
            self.save()?;
            let order = if mode == Mode::Fix {
                "in --mode fix, --bad (older) must have the fault and --good (newer) not"
            } else {
                "--good must be good and --bad bad"
            };
            bail!(
                "{flag} {rev} ({}) {what}; {order} (see `tessera bisect log`)",
                short(commit)
            );
        }
        Ok(())
    }

    fn bisect(&mut self, range: &Range) -> Result<Outcome> {
        let mode = self.cfg.spec.mode;
        let tip = range.commits.len() - 1;
        let mut b = Bisection::new(range.dag.clone(), tip);
        for s in &self.state.steps {
            if s.kind == StepKind::Test
                && let Ok(oid) = Oid::from_str(&s.commit)
                && let Some(i) = range.index_of(oid)
            {
                b.mark(i, to_mark(mode, s.verdict));
            }
        }
        let mut tested_now = 0;
        loop {
            match b.next() {
                Next::Test(i) => {
                    if self.cfg.max_steps.is_some_and(|m| tested_now >= m) {
                        eprintln!("stopped after {tested_now} steps; continue with --resume");
                        self.state.status = Status::Stopped;
                        return self.finish(range, None, Vec::new(), Outcome::Stopped);
                    }
                    let oid = range.commits[i];
                    let left = b.remaining();
                    eprintln!(
                        "step {}: {} '{}' ({} candidates left, ~{} steps)",
                        self.test_steps() + 1,
                        short(oid),
                        self.repo.subject(oid),
                        left,
                        max_steps(left)
                    );
                    let e = self.evaluate(oid)?;
                    let step = self.push_step(StepKind::Test, oid, e)?;
                    tested_now += 1;
                    eprintln!("  {}: {}", step.verdict.as_str(), step.reason);
                    b.mark(i, to_mark(mode, step.verdict));
                }
                Next::Found(i) => {
                    self.state.status = Status::Found;
                    return self.finish(range, Some(i), Vec::new(), Outcome::Found);
                }
                Next::Range(v) => {
                    self.state.status = Status::Ambiguous;
                    return self.finish(range, None, v, Outcome::Ambiguous);
                }
            }
        }
    }

    fn test_steps(&self) -> usize {
        self.state
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Test)
            .count()
    }

    fn finish(
        &mut self,
        range: &Range,
        found: Option<usize>,
        candidates: Vec<usize>,
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
        let confidence = (mode == Mode::Perf).then(|| {
            let p_sum: f64 = self
                .state
                .steps
                .iter()
                .filter(|s| s.verdict != Verdict::Skip)
                .filter_map(|s| s.p_error)
                .sum();
            (1.0 - p_sum).clamp(0.0, 1.0)
        });
        let result = BisectResult {
            mode,
            status: self.state.status,
            term: if mode == Mode::Fix {
                "first fixed commit".into()
            } else {
                "first bad commit".into()
            },
            commit,
            candidates: candidates
                .iter()
                .map(|&i| self.repo.info(range.commits[i]))
                .collect::<Result<_>>()?,
            good: format!(
                "{} ({})",
                self.cfg.spec.good,
                short_str(&self.state.good_commit)
            ),
            bad: format!(
                "{} ({})",
                self.cfg.spec.bad,
                short_str(&self.state.bad_commit)
            ),
            n_commits: range.commits.len(),
            max_steps: max_steps(range.commits.len()),
            steps: tests.len(),
            skips: tests.iter().filter(|s| s.verdict == Verdict::Skip).count(),
            replayed: tests.iter().filter(|s| s.replayed).count(),
            confidence,
            decided_by,
        };
        self.state.result = Some(result.clone());
        self.save()?;
        Ok(wrap(result))
    }

    /// Creates the commit's worktree and builds it (or reuses the cached build).
    fn prepare(&self, commit: Oid) -> Result<(PathBuf, BuildNote, Option<String>)> {
        let spec = &self.cfg.spec;
        let (wt, reused) = self.repo.worktree(&spec.cache_dir, commit)?;
        let Some(build) = &spec.build else {
            return Ok((wt, BuildNote::None, None));
        };
        let record_path = spec.cache_dir.join(format!("{commit}.build.json"));
        if !reused {
            // A fresh checkout has no build outputs, whatever an old record says.
            let _ = std::fs::remove_file(&record_path);
        }
        if let Ok(text) = std::fs::read_to_string(&record_path)
            && let Ok(rec) = serde_json::from_str::<BuildRecord>(&text)
            && rec.command == *build
        {
            return Ok(if rec.ok {
                (wt, BuildNote::Cached, None)
            } else {
                (wt, BuildNote::CachedFailed, Some(rec.log_tail))
            });
        }
        let out = exec::run(&Invocation {
            script: build,
            dir: &wt,
            env: self.env(commit, &wt),
            timeout: self.cfg.build_timeout(),
            sanitizer: None,
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
        let rec = BuildRecord {
            command: build.clone(),
            ok,
            seconds: out.seconds,
            log_tail: log_tail.clone(),
        };
        std::fs::write(&record_path, serde_json::to_string_pretty(&rec)?)
            .with_context(|| format!("writing {}", record_path.display()))?;
        Ok(if ok {
            (wt, BuildNote::Built, None)
        } else {
            (wt, BuildNote::Failed, Some(log_tail))
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

    fn run_once(&self, commit: Oid, wt: &Path) -> Result<RunOutput> {
        exec::run(&Invocation {
            script: &self.cfg.spec.run,
            dir: wt,
            env: self.env(commit, wt),
            timeout: self.cfg.run_timeout(),
            sanitizer: self.cfg.sanitizer.as_deref(),
        })
    }

    /// Builds and judges one commit according to the mode.
    fn evaluate(&self, commit: Oid) -> Result<Eval> {
        let (wt, build, build_err) = self.prepare(commit)?;
        if let Some(err) = build_err {
            return Ok(Eval::skip(format!("build failed: {err}"), build));
        }
        match self.cfg.spec.mode {
            Mode::Fault | Mode::Fix => self.eval_fault(commit, &wt, build),
            Mode::Perf => self.eval_perf(commit, &wt, build),
            Mode::Output => self.eval_output(commit, &wt, build),
        }
    }

    fn eval_fault(&self, commit: Oid, wt: &Path, build: BuildNote) -> Result<Eval> {
        let out = self.run_once(commit, wt)?;
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
                    build,
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
            build,
            class: Some(class),
            perf: None,
            p_error: None,
            seconds: out.seconds,
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
    fn perf_baseline_check(&self, commit: Oid) -> Result<Eval> {
        let (wt, build, build_err) = self.prepare(commit)?;
        if let Some(err) = build_err {
            return Ok(Eval::skip(format!("build failed: {err}"), build));
        }
        let mut values = Vec::new();
        for _ in 0..self.cfg.spec.repeat {
            match self.measure(commit, &wt)? {
                Ok(v) => values.push(v),
                Err(reason) => return Ok(Eval::skip(reason, build)),
            }
        }
        Ok(Eval {
            verdict: Verdict::Good,
            reason: format!("baseline {values:?}"),
            build,
            class: None,
            perf: None,
            p_error: None,
            seconds: 0.0,
        })
    }

    /// A/B/A/B: the baseline build and the commit alternately, more rounds while ambiguous.
    fn eval_perf(&self, commit: Oid, wt: &Path, build: BuildNote) -> Result<Eval> {
        let spec = &self.cfg.spec;
        let (base_wt, _, base_err) = self.prepare(self.old)?;
        if let Some(err) = base_err {
            bail!("the --good build stopped working: {err}");
        }
        let mut base = Vec::new();
        let mut cand = Vec::new();
        let started = std::time::Instant::now();
        loop {
            for _ in 0..spec.repeat {
                match self.measure(self.old, &base_wt)? {
                    Ok(v) => base.push(v),
                    Err(r) => bail!("the --good baseline run failed: {r}"),
                }
                match self.measure(commit, wt)? {
                    Ok(v) => cand.push(v),
                    Err(r) => return Ok(Eval::skip(format!("run failed: {r}"), build)),
                }
            }
            let judged = judge_perf(
                &base,
                &cand,
                spec.threshold,
                spec.alpha,
                spec.lower_is_better,
                spec.stat,
            );
            let Some((verdict, measure, p_error)) = judged else {
                return Ok(Eval::skip("metric values are not comparable".into(), build));
            };
            let done = verdict != Verdict::Skip || cand.len() + spec.repeat > spec.max_repeat;
            if done {
                let reason = match verdict {
                    Verdict::Bad => format!(
                        "{:.1}% worse (> {:.1}%), p={}",
                        measure.regression * 100.0,
                        spec.threshold * 100.0,
                        fmt_p(measure.p_worse)
                    ),
                    Verdict::Good => format!(
                        "{:+.1}% worse, within {:.1}% (p={})",
                        measure.regression * 100.0,
                        spec.threshold * 100.0,
                        fmt_p(measure.p_within)
                    ),
                    Verdict::Skip => format!(
                        "ambiguous after {} runs per side: {:+.1}% worse (p worse={}, p within={})",
                        cand.len(),
                        measure.regression * 100.0,
                        fmt_p(measure.p_worse),
                        fmt_p(measure.p_within)
                    ),
                };
                return Ok(Eval {
                    verdict,
                    reason,
                    build,
                    class: None,
                    perf: Some(measure),
                    p_error,
                    seconds: started.elapsed().as_secs_f64(),
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
    fn output_reference(&mut self, commit: Oid) -> Result<Eval> {
        let (wt, build, build_err) = self.prepare(commit)?;
        if let Some(err) = build_err {
            return Ok(Eval::skip(format!("build failed: {err}"), build));
        }
        let out = self.run_once(commit, &wt)?;
        let class = classify(&out, true);
        if !class.is_ok() {
            return Ok(Eval {
                class: Some(class.clone()),
                ..Eval::skip(format!("run failed: {}", class.label()), build)
            });
        }
        match self.output_of(&wt, &out) {
            Ok(text) => {
                self.state.reference_output = Some(text);
                Ok(Eval {
                    verdict: Verdict::Good,
                    reason: "reference output recorded".into(),
                    build,
                    class: Some(class),
                    perf: None,
                    p_error: None,
                    seconds: out.seconds,
                })
            }
            Err(e) => Ok(Eval::skip(e, build)),
        }
    }

    fn eval_output(&self, commit: Oid, wt: &Path, build: BuildNote) -> Result<Eval> {
        let out = self.run_once(commit, wt)?;
        let class = classify(&out, false);
        if !class.is_ok() {
            return Ok(Eval {
                class: Some(class.clone()),
                ..Eval::skip(format!("run failed: {}", class.label()), build)
            });
        }
        let text = match self.output_of(wt, &out) {
            Ok(t) => t,
            Err(e) => return Ok(Eval::skip(e, build)),
        };
        let Some(reference) = &self.state.reference_output else {
            bail!("internal: no reference output recorded for --mode output");
        };
        let (verdict, reason) = match compare(self.cfg.compare, reference, &text) {
            None => (Verdict::Good, "same output as --good".to_string()),
            Some(diff) => (Verdict::Bad, diff),
        };
        Ok(Eval {
            verdict,
            reason,
            build,
            class: Some(class),
            perf: None,
            p_error: None,
            seconds: out.seconds,
        })
    }
}

/// Judges a perf step from baseline and candidate samples: bad when the candidate is
/// significantly worse than the baseline and by more than `threshold`; good when it is
/// significantly less worse than `threshold`; skip (ambiguous) otherwise. Returns the verdict,
/// the measurement and the p-value of the verdict being wrong; `None` when the samples cannot
/// be tested (too few, non-finite, zero baseline).
pub fn judge_perf(
    base: &[f64],
    cand: &[f64],
    threshold: f64,
    alpha: f64,
    lower_is_better: bool,
    stat: super::stats::StatTest,
) -> Option<(Verdict, PerfMeasure, Option<f64>)> {
    let mb = super::stats::mean(base)?;
    let mc = super::stats::mean(cand)?;
    if mb == 0.0 || !mb.is_finite() || !mc.is_finite() {
        return None;
    }
    // "Worse" is lower for throughput (t/s), higher for times (ns).
    let (worse, better) = if lower_is_better {
        (Alternative::Greater, Alternative::Less)
    } else {
        (Alternative::Less, Alternative::Greater)
    };
    let regression = if lower_is_better {
        (mc - mb) / mb
    } else {
        (mb - mc) / mb
    };
    let p_worse = stat.test(cand, base, worse)?.p_value;
    // The baseline moved by the threshold in the worse direction: is the commit better
    // than that?
    let factor = if lower_is_better {
        1.0 + threshold
    } else {
        1.0 - threshold
    };
    let shifted: Vec<f64> = base.iter().map(|v| v * factor).collect();
    let p_within = stat.test(cand, &shifted, better)?.p_value;
    let measure = PerfMeasure {
        baseline: base.to_vec(),
        candidate: cand.to_vec(),
        regression,
        p_worse,
        p_within,
    };
    let (verdict, p_error) = if p_worse < alpha && regression > threshold {
        (Verdict::Bad, Some(p_worse))
    } else if p_within < alpha {
        (Verdict::Good, Some(p_within))
    } else {
        (Verdict::Skip, None)
    };
    Some((verdict, measure, p_error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bisect::stats::StatTest;

    fn noisy(mean: f64, n: usize, seed: u64) -> Vec<f64> {
        // Deterministic ±5% spread.
        (0..n)
            .map(|i| {
                let x = ((i as u64 + 1) * 2_654_435_761 + seed * 40_503) % 1000;
                mean * (1.0 + (x as f64 / 1000.0 - 0.5) * 0.1)
            })
            .collect()
    }

    #[test]
    fn perf_verdicts() {
        for stat in [StatTest::Welch, StatTest::MannWhitney] {
            let base = noisy(100.0, 8, 1);
            let slow = noisy(60.0, 8, 2);
            let (v, m, p) = judge_perf(&base, &slow, 0.05, 0.05, false, stat).unwrap();
            assert_eq!(v, Verdict::Bad, "{stat:?} {m:?}");
            assert!(m.regression > 0.3 && p.unwrap() < 0.05);
            let same = noisy(100.0, 8, 3);
            let (v, m, _) = judge_perf(&base, &same, 0.05, 0.05, false, stat).unwrap();
            assert_eq!(v, Verdict::Good, "{stat:?} {m:?}");
            // 5% worse against a 5% threshold with 5% noise: cannot be told apart.
            let edge = noisy(95.0, 8, 4);
            let (v, _, p) = judge_perf(&base, &edge, 0.05, 0.05, false, stat).unwrap();
            assert_eq!((v, p), (Verdict::Skip, None), "{stat:?}");
            // Faster is never a regression.
            let fast = noisy(150.0, 8, 5);
            assert_eq!(
                judge_perf(&base, &fast, 0.05, 0.05, false, stat).unwrap().0,
                Verdict::Good
            );
            // Times: higher is worse.
            assert_eq!(
                judge_perf(&base, &fast, 0.05, 0.05, true, stat).unwrap().0,
                Verdict::Bad
            );
        }
        assert!(judge_perf(&[0.0, 0.0], &[1.0, 1.0], 0.05, 0.05, false, StatTest::Welch).is_none());
        assert!(judge_perf(&[1.0], &[1.0, 2.0], 0.05, 0.05, false, StatTest::Welch).is_none());
    }
}
