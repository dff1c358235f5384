//! The `tessera` binary: parses the command line, runs one command, maps its outcome to the
//! documented exit codes: 0 ok, 1 a fault, failure or regression found, 2 usage or input
//! error (bad flag value, unreadable or corrupt model file, ...).

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use tessera::cmd;

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "Benchmark and diagnose llama.cpp-family inference engines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmark the built-in engine with llama-bench's flags and outputs.
    Bench(cmd::bench::Args),
    /// Git bisection for faults, fixes, slowdowns, speedups and output changes; `bisect log`.
    Bisect(cmd::bisect::Args),
    /// Greedy generation from token ids.
    Generate(cmd::generate::Args),
    /// Model files: `synth`.
    #[command(subcommand)]
    Model(cmd::model::ModelCmd),
    /// Compare a candidate run with a baseline: table, verdicts, chart.
    Compare(cmd::compare::Args),
    /// Why a candidate is slower or faster than a baseline: time per op or symbol, verdict.
    Explain(cmd::explain::Args),
    /// Write report.md and a self-contained report.html (with charts) for a run.
    Report(cmd::report::Args),
    /// The history store: `history add RUN`, `history show` (series, change points, charts).
    History(cmd::history::Args),
    /// Named baselines in the history store: `baseline set NAME RUN`, `baseline show`.
    Baseline(cmd::history::BaselineArgs),
    /// Run a grid of configurations, each point in its own child process; resumable, shardable.
    Sweep(cmd::sweep::Args),
    /// Machine fingerprint, measured memory bandwidth and peak compute rates.
    Probe(cmd::probe::Args),
    /// Join the shard directories of one sweep into one run.
    Merge(cmd::merge::Args),
    /// Matmul micro-benchmarks per ISA × tile × weight shape: GFLOP/s, GB/s, roofline %.
    Kernels(cmd::kernels::Args),
    /// One night: sweep a plan, store it in the history, compare, report; exit 1 on a regression.
    Nightly(cmd::nightly::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(tessera::cli::llama_bench_aliases(std::env::args_os())) {
        Ok(cli) => cli,
        // A bad flag value is one line, like every other input error: clap's first line
        // names the value, the flag and what is valid; the "--help" hint after it is dropped.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) =>
        {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid value"));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let result = match &cli.command {
        Command::Bench(a) => cmd::bench::run_cli(a),
        Command::Bisect(a) => cmd::bisect::run_cli(a),
        Command::Generate(a) => cmd::generate::run_cli(a),
        Command::Model(c) => cmd::model::run_cli(c),
        Command::Compare(a) => cmd::compare::run_cli(a),
        Command::Explain(a) => cmd::explain::run_cli(a),
        Command::Report(a) => cmd::report::run_cli(a),
        Command::History(a) => cmd::history::run_cli(a),
        Command::Baseline(a) => cmd::history::baseline_cli(a),
        Command::Sweep(a) => cmd::sweep::run_cli(a),
        Command::Probe(a) => cmd::probe::run_cli(a),
        Command::Merge(a) => cmd::merge::run_cli(a),
        Command::Kernels(a) => cmd::kernels::run_cli(a),
        Command::Nightly(a) => cmd::nightly::run_cli(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            // One line: the chain of causes, outermost first.
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
