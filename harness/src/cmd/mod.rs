//! One module per subcommand: `Args` (clap) → validated config → `run`.

pub mod bench;
pub mod bisect;
pub mod compare;
pub mod explain;
pub mod generate;
pub mod history;
pub mod kernels;
pub mod merge;
pub mod model;
pub mod nightly;
pub mod probe;
pub mod report;
pub mod sweep;
