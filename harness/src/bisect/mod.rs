//! Git bisection for faults, fixes, performance regressions, speedups and output changes:
//! what a bisection is given and ends with (`config`), the search (`search`), the
//! verdict of perf steps (`perf`, over `crate::stats`), run classification (`classify`), child
//! processes with time limits (`exec`), git access (`repo`) and worktrees (`worktree`),
//! builds and their cache (`build`), metrics and output comparison (`metric`), the saved
//! state (`state`), running one step's commit (`step`), judging it per mode (`eval`), the
//! loop that ties them together (`driver`), the answer it builds from the steps
//! (`answer`) and its types and markdown (`report`), and cleaning up (`reset`). The
//! command line is parsed and checked in `cmd::bisect`, which builds a [`Config`] and
//! calls [`run`].

mod answer;
pub mod build;
pub mod classify;
pub mod config;
pub mod driver;
mod eval;
pub mod exec;
pub mod metric;
pub mod perf;
pub mod repo;
pub mod report;
pub mod reset;
pub mod search;
pub mod state;
mod step;
pub mod worktree;

pub use config::{Config, Outcome, default_state_dir};
pub use driver::run;
pub use reset::reset;
