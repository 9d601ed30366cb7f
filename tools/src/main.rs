//! The `kho` command-line tool: one subcommand per module, this file only dispatches.

mod bench;
mod demo;
mod json;

use clap::{Parser, Subcommand};

/// kho: an embedded storage engine for person-centric records — tools to demo, benchmark,
/// inspect, verify and stress a database.
#[derive(Parser)]
#[command(name = "kho", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic population, ingest it through the record store and show what
    /// was stored, one person's records and a province query.
    Demo(demo::DemoArgs),
    /// db_bench-compatible benchmark (`--benchmarks=fillseq,readrandom,...`).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
