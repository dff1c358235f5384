//! Git bisection for faults, fixes, performance regressions, speedups and output changes:
//! the search (`search`), the verdict of perf steps (`perf`, over `crate::stats`), run
//! classification (`classify`), child processes with time limits (`exec`), git access
//! (`repo`) and worktrees (`worktree`), builds and their cache (`build`), metrics and output
//! comparison (`metric`), the saved state (`state`), the answer (`report`), judging one
//! commit (`step`) and the loop that ties them together (`driver`). The CLI is
//! `cmd::bisect`.

pub mod build;
pub mod classify;
pub mod driver;
pub mod exec;
pub mod metric;
pub mod perf;
pub mod repo;
pub mod report;
pub mod search;
pub mod state;
mod step;
pub mod worktree;
