//! Git bisection for faults, fixes, performance regressions and output changes: the search
//! (`search`), the statistics of perf verdicts (`stats`), run classification (`classify`),
//! child processes with time limits (`exec`), git access and worktrees (`repo`), metrics and
//! output comparison (`metric`), the saved state (`state`), the answer (`report`) and the
//! loop that ties them together (`driver`). The CLI is `cmd::bisect`.

pub mod classify;
pub mod driver;
pub mod exec;
pub mod metric;
pub mod repo;
pub mod report;
pub mod search;
pub mod state;
pub mod stats;
