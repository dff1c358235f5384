//! Output mode: the old endpoint's output (stdout or `--output-file`) is the reference;
//! a commit is "bad" when its output differs by the `--compare` rule.

use std::path::Path;

use anyhow::{Result, bail};
use git2::Oid;

use super::Eval;
use crate::bisect::build::Built;
use crate::bisect::classify::{RunOutput, classify};
use crate::bisect::driver::Driver;
use crate::bisect::metric::compare;
use crate::bisect::state::Verdict;

impl Driver<'_> {
    fn output_of(&self, wt: &Path, out: &RunOutput) -> std::result::Result<String, String> {
        match &self.cfg.spec.output_file {
            Some(f) => std::fs::read_to_string(wt.join(f))
                .map_err(|e| format!("--output-file {}: {e}", f.display())),
            None => Ok(out.stdout.clone()),
        }
    }

    /// Runs the old endpoint and keeps its output as the reference.
    pub(in crate::bisect) fn output_reference(&mut self, commit: Oid) -> Result<Eval> {
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
                Ok(Eval::judged(
                    Verdict::Good,
                    "reference output recorded".into(),
                    class,
                    out.seconds,
                    &built,
                ))
            }
            Err(e) => Ok(Eval::skip(e, &built)),
        }
    }

    pub(super) fn eval_output(&self, commit: Oid, built: &Built) -> Result<Eval> {
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
        Ok(Eval::judged(verdict, reason, class, out.seconds, built))
    }
}
