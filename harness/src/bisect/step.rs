//! Running the run command of one step: its environment, its time limit and sanitizer,
//! and with `--profile` the run that is sampled for the step (a judged one in fault, fix
//! and output mode, an extra unmeasured one in perf and speedup mode). The evaluators of
//! `eval` call these; the counts and seconds of the runs go to the step's log line.

use std::path::Path;

use anyhow::Result;
use git2::Oid;

use super::classify::RunOutput;
use super::driver::{Driver, short};
use super::exec::{self, Invocation};
use super::state::Mode;

/// The profile of the step under evaluation: of which commit, its file name under the state
/// directory, and once taken, the outcome.
pub(super) struct StepProfile {
    pub(super) commit: Oid,
    pub(super) name: String,
    pub(super) outcome: Option<crate::profile::Outcome>,
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

    pub(super) fn env(&self, commit: Oid, wt: &Path) -> Vec<(String, String)> {
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
    pub(super) fn run_once(&self, commit: Oid, wt: &Path) -> Result<RunOutput> {
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
    pub(super) fn profile_extra_run(&self, commit: Oid, wt: &Path) -> Result<()> {
        if self.wants_profile(commit) {
            self.run_sampled(commit, wt)?;
        }
        Ok(())
    }
}
