//! The `kho` command-line tool.

use clap::{Parser, Subcommand};

mod stress;

/// kho: an embedded log-structured key-value engine for person-centric records.
#[derive(Debug, Parser)]
#[command(name = "kho", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Concurrent stress, process-crash (--crash) and fault-injection (--faults) testing.
    Stress(stress::StressArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Stress(args) => stress::run(args),
    }
}
