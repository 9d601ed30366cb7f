//! The `kho` command-line tool: one subcommand per module, this file only dispatches.

mod bench;
mod stress;

use clap::{Parser, Subcommand};

/// kho: an embedded storage engine for person-centric records — tools to benchmark,
/// inspect, verify and stress a database.
#[derive(Parser)]
#[command(name = "kho", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// db_bench-compatible benchmark (`--benchmarks=fillseq,readrandom,...`).
    Bench(bench::BenchArgs),
    /// Concurrent stress, process-crash (--crash) and fault-injection (--faults) testing.
    Stress(stress::StressArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Stress(args) => stress::run(args),
    }
}
