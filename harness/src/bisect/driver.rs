//! Drives one bisection: resolves the endpoints, verifies them (the old one first: it is the
//! perf baseline), then asks the search for the next commit, has it judged (`eval`), and
//! saves the state after every step. `--max-steps` and `--budget` stop it with the range
//! that is left; progress goes to stderr, one line per phase with its elapsed time.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use anyhow::{Result, bail};
use git2::Oid;

use super::build::{self, Cache, fmt_elapsed};
use super::config::{Config, Outcome};
use super::eval::Eval;
use super::exec;
use super::repo::{Range, Repo};
use super::search::{Bisection, Mark, Next, max_steps};
use super::state::{Mode, STATE_VERSION, State, Status, Step, StepKind, Verdict};
use super::step::StepProfile;
use super::worktree::{CheckoutFailed, Worktrees};
use crate::timefmt::now_rfc3339;

pub(super) struct Driver<'a> {
    pub(super) cfg: &'a Config,
    pub(super) repo: Repo,
    pub(super) state: State,
    /// The old endpoint (the perf baseline and output reference).
    pub(super) old: Oid,
    pub(super) worktrees: Worktrees,
    pub(super) cache: Cache,
    /// With `--profile`: the profile the step being evaluated wants.
    pub(super) profiling: RefCell<Option<StepProfile>>,
    /// Runs of the step being evaluated: how many, and their seconds.
    pub(super) runs: Cell<(usize, f64)>,
    /// When this invocation started (`--budget`).
    started: Instant,
    /// Seconds of each step evaluated by this invocation.
    step_seconds: Vec<f64>,
}

/// " (top: SYMBOL 43%)" for a step's log line, from its profile; empty without one.
fn profile_note(step: &Step) -> String {
    match (&step.profile, &step.profile_error) {
        (Some(p), _) => match p.top.first() {
            Some(t) => format!(" (top: {} {:.0}%)", t.symbol, t.share * 100.0),
            None => " (top: no samples)".to_string(),
        },
        (None, Some(_)) => " (no profile)".to_string(),
        (None, None) => String::new(),
    }
}

/// The user-facing verdict that means "has the new property" in this mode.
pub(super) fn new_verdict(mode: Mode) -> Verdict {
    if mode.new_is_good() {
        Verdict::Good
    } else {
        Verdict::Bad
    }
}

/// The verdict of the old endpoint in this mode.
pub(super) fn old_verdict(mode: Mode) -> Verdict {
    if mode.new_is_good() {
        Verdict::Bad
    } else {
        Verdict::Good
    }
}

fn to_mark(mode: Mode, v: Verdict) -> Mark {
    match v {
        Verdict::Skip => Mark::Skip,
        v if v == new_verdict(mode) => Mark::New,
        _ => Mark::Old,
    }
}

pub(super) fn short(oid: Oid) -> String {
    super::report::short(&oid.to_string()).to_string()
}

/// What the endpoints must be, for endpoint errors.
fn order_rule(mode: Mode) -> &'static str {
    match mode {
        Mode::Fix => {
            "in --mode fix the older revision (--bad or --old) must have the fault and the \
             newer one (--good or --new) not"
        }
        Mode::Speedup => {
            "in --mode speedup the newer revision (--good or --new) must be measurably faster \
             than the older one (--bad or --old)"
        }
        Mode::Perf => {
            "the newer revision (--bad or --new) must be measurably slower than the older one \
             (--good or --old)"
        }
        _ => {
            "the older revision (--good or --old) must be good and the newer one (--bad or --new) bad"
        }
    }
}

pub fn run(cfg: &Config) -> Result<Outcome> {
    // One bisection per state directory: a second `--resume` would test the same commits
    // again, and measure at the same time as the first in perf mode.
    let _lock = crate::lockfile::DirLock::acquire(&cfg.state_dir, "tessera bisect")?;
    let spec = &cfg.spec;
    let repo = Repo::open(&spec.repo)?;
    let good = repo.resolve(&spec.good_flag, &spec.good)?;
    let bad = repo.resolve(&spec.bad_flag, &spec.bad)?;
    if good == bad {
        bail!(
            "{} and {} both name {}; nothing to bisect",
            spec.good_flag,
            spec.bad_flag,
            short(good)
        );
    }
    let ((old, old_flag, old_rev), (new, new_flag, new_rev)) = if spec.mode.new_is_good() {
        (
            (bad, &spec.bad_flag, &spec.bad),
            (good, &spec.good_flag, &spec.good),
        )
    } else {
        (
            (good, &spec.good_flag, &spec.good),
            (bad, &spec.bad_flag, &spec.bad),
        )
    };
    if !repo.is_ancestor(old, new)? {
        bail!(
            "{old_flag} {old_rev} is not an ancestor of {new_flag} {new_rev}; {old_flag} must \
             name the older revision in --mode {}: {}",
            spec.mode.as_str(),
            order_rule(spec.mode)
        );
    }
    let range = repo.range(old, new, !spec.all_parents)?;
    exec::install_interrupt_handler();

    let state_path = State::path(&cfg.state_dir);
    let state = if cfg.resume {
        let mut s = State::load(&state_path)?;
        if s.good_commit != good.to_string() || s.bad_commit != bad.to_string() {
            bail!(
                "--resume: the saved bisection's revisions now resolve to other commits \
                 (a branch moved); start a new one"
            );
        }
        // --exclude, --jobs, --build-cache and --profile may change on resume.
        s.spec = spec.clone();
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
    let cache = Cache::resolve(spec.build_cache, &spec.cache_dir)?;
    let worktrees = Worktrees::new(&repo, &spec.repo, &spec.cache_dir, &spec.exclude)?;
    eprintln!(
        "bisecting {} commits ({}..{}, --mode {}); build cache: {}; {} build jobs",
        range.commits.len(),
        short(old),
        short(new),
        spec.mode.as_str(),
        cache.describe(),
        spec.jobs.unwrap_or_else(build::default_jobs)
    );
    let mut d = Driver {
        cfg,
        repo,
        state,
        old,
        worktrees,
        cache,
        profiling: RefCell::new(None),
        runs: Cell::new((0, 0.0)),
        started: Instant::now(),
        step_seconds: Vec::new(),
    };
    if !cfg.resume
        && let Some(log) = &cfg.replay
    {
        d.import_replay(log, &range, new);
    }
    d.state.status = Status::Running;
    d.save()?;
    let (first, second) = if spec.mode.new_is_good() {
        ((StepKind::VerifyBad, bad), (StepKind::VerifyGood, good))
    } else {
        ((StepKind::VerifyGood, good), (StepKind::VerifyBad, bad))
    };
    let out = d
        .verify(first.0, first.1)
        .and_then(|()| d.verify(second.0, second.1))
        .and_then(|()| d.bisect(&range));
    if let Err(e) = &out
        && e.downcast_ref::<CheckoutFailed>().is_some()
    {
        // Every commit would fail alike; a corrected command line (--exclude) may start
        // afresh in this state dir, and --resume --exclude continues.
        d.state.status = Status::Stopped;
        d.save()?;
    }
    out
}

impl Driver<'_> {
    pub(super) fn save(&self) -> Result<()> {
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

    pub(super) fn recorded(&self, commit: Oid, kind: Option<StepKind>) -> Option<&Step> {
        let c = commit.to_string();
        self.state
            .steps
            .iter()
            .rev()
            .find(|s| s.commit == c && kind.is_none_or(|k| s.kind == k))
    }

    fn push_step(&mut self, kind: StepKind, commit: Oid, e: Eval, seconds: f64) -> Result<Step> {
        let profile = self.profiling.borrow_mut().take().and_then(|p| p.outcome);
        if let Some(Err(why)) = &profile {
            crate::profile::notice_once(why);
        }
        let (runs, run_seconds) = self.runs.replace((0, 0.0));
        if runs > 0 {
            eprintln!(
                "  run: {runs} run{} in {}",
                if runs == 1 { "" } else { "s" },
                fmt_elapsed(run_seconds)
            );
        }
        self.step_seconds.push(seconds);
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
            profile_error: profile.as_ref().and_then(|o| o.as_ref().err().cloned()),
            profile: profile.and_then(|o| o.ok()).map(|(p, _)| p),
            build_seconds: e.build_seconds,
        };
        self.state.steps.push(step.clone());
        self.save()?;
        eprintln!(
            "  {}: {}{} [step {}, total {}]",
            step.verdict.as_str(),
            step.reason,
            profile_note(&step),
            fmt_elapsed(seconds),
            fmt_elapsed(self.started.elapsed().as_secs_f64())
        );
        Ok(step)
    }

    /// Checks that an endpoint has the verdict its flag claims.
    fn verify(&mut self, kind: StepKind, commit: Oid) -> Result<()> {
        let spec = &self.cfg.spec;
        let mode = spec.mode;
        let (flag, rev, want) = match kind {
            StepKind::VerifyGood => (spec.good_flag.clone(), spec.good.clone(), Verdict::Good),
            _ => (spec.bad_flag.clone(), spec.bad.clone(), Verdict::Bad),
        };
        let replayed_ok = self
            .recorded(commit, Some(kind))
            .is_some_and(|s| s.verdict == want);
        let is_old = commit == self.old;
        let perf_baseline = mode.is_perf() && is_old;
        // The output reference must exist before a replayed bisection tests anything.
        let needs_reference =
            mode == Mode::Output && is_old && self.state.reference_output.is_none();
        if replayed_ok && !needs_reference {
            return Ok(());
        }
        eprintln!(
            "verify {flag} {rev} ({}, the {} endpoint) ...",
            short(commit),
            if is_old { "old" } else { "new" }
        );
        let t = Instant::now();
        self.arm_profile(commit);
        let e = if perf_baseline {
            self.perf_baseline_check(commit)?
        } else if mode == Mode::Output && is_old {
            self.output_reference(commit)?
        } else {
            self.evaluate(commit)?
        };
        let step = self.push_step(kind, commit, e, t.elapsed().as_secs_f64())?;
        if step.verdict != want {
            let what = match step.verdict {
                Verdict::Skip => format!("cannot be judged: {}", step.reason),
                v => format!("is {}: {}", v.as_str(), step.reason),
            };
            // Not "running": a corrected command line may start afresh in this state dir.
            self.state.status = Status::Stopped;
            self.save()?;
            bail!(
                "{flag} {rev} ({}) {what}; {} (see `tessera bisect log`)",
                short(commit),
                order_rule(mode)
            );
        }
        Ok(())
    }

    /// Why the next step is not to be started, if it is not.
    fn stop_reason(&self, tested_now: usize) -> Option<String> {
        if let Some(m) = self.cfg.max_steps
            && tested_now >= m
        {
            return Some(format!("stopped by --max-steps {m}"));
        }
        let budget = self.cfg.budget?;
        let spent = self.started.elapsed().as_secs_f64();
        let per_step = crate::stats::mean(&self.step_seconds).unwrap_or(0.0);
        (spent + per_step > budget).then(|| {
            format!(
                "stopped by --budget {}: {} spent, and a step takes about {}",
                fmt_elapsed(budget),
                fmt_elapsed(spent),
                fmt_elapsed(per_step)
            )
        })
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
                    if let Some(why) = self.stop_reason(tested_now) {
                        let left = b.candidates();
                        eprintln!(
                            "{why}; {} commits left (~{} steps); continue with --resume",
                            left.len(),
                            max_steps(left.len())
                        );
                        self.state.status = Status::Stopped;
                        let remaining = self.remaining(range, &b)?;
                        return self.finish(
                            range,
                            None,
                            Vec::new(),
                            Some(remaining),
                            Outcome::Stopped,
                        );
                    }
                    let oid = range.commits[i];
                    let left = b.remaining();
                    eprintln!(
                        "step {} (~{} to go): {} '{}' ({} candidates left)",
                        self.test_steps() + 1,
                        max_steps(left),
                        short(oid),
                        self.repo.subject(oid),
                        left,
                    );
                    let t = Instant::now();
                    self.arm_profile(oid);
                    let e = self.evaluate(oid)?;
                    let step = self.push_step(StepKind::Test, oid, e, t.elapsed().as_secs_f64())?;
                    tested_now += 1;
                    b.mark(i, to_mark(mode, step.verdict));
                }
                Next::Found(i) => {
                    self.state.status = Status::Found;
                    return self.finish(range, Some(i), Vec::new(), None, Outcome::Found);
                }
                Next::Range(v) => {
                    self.state.status = Status::Ambiguous;
                    return self.finish(range, None, v, None, Outcome::Ambiguous);
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
}
