//! tessera: the harness. CLI commands, results, exporters; never computes a matmul itself.

pub mod cache;
pub mod cli;
pub mod cmd;
pub mod export;
pub mod results;
pub mod timefmt;
