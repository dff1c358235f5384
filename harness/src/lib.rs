//! tessera: the harness. CLI commands, results, exporters; never computes a matmul itself.

pub mod bench;
pub mod bisect;
pub mod cache;
pub mod chart;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod counters;
pub mod explain;
pub mod export;
pub mod fsutil;
pub mod generate;
pub mod gpu;
pub mod grid;
pub mod history;
pub mod lockfile;
pub mod microbench;
pub mod nightly;
pub mod probe;
pub mod profile;
pub mod report;
pub mod results;
pub mod stats;
pub mod sweep;
pub mod timefmt;
