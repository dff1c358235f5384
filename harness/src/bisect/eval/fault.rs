//! Fault and fix mode: one run, classified; a fault (matching `--fault`, when given) is
//! "bad" in both modes, which differ only in which verdict the search looks for.

use anyhow::Result;
use git2::Oid;

use super::Eval;
use crate::bisect::build::Built;
use crate::bisect::classify::classify;
use crate::bisect::driver::Driver;
use crate::bisect::state::Verdict;

impl Driver<'_> {
    pub(super) fn eval_fault(&self, commit: Oid, built: &Built) -> Result<Eval> {
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
        Ok(Eval::judged(verdict, reason, class, out.seconds, built))
    }
}
