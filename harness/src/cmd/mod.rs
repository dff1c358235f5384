//! One module per subcommand: `Args` (clap) → validated config → `run`.

pub mod bench;
pub mod generate;
pub mod model;
