//! The `tessera` binary: parses the command line, runs one command, maps its outcome to the
//! documented exit codes: 0 ok, 1 a fault, failure or regression found, 2 usage or input
//! error (bad flag value, unreadable or corrupt model file, ...).

use std::process::ExitCode;

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
    /// Greedy generation from token ids.
    Generate(cmd::generate::Args),
    /// Model files: `synth`.
    #[command(subcommand)]
    Model(cmd::model::ModelCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(tessera::cli::llama_bench_aliases(std::env::args_os()));
    let result = match &cli.command {
        Command::Bench(a) => cmd::bench::run_cli(a),
        Command::Generate(a) => cmd::generate::run_cli(a),
        Command::Model(c) => cmd::model::run_cli(c),
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
