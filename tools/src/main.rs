//! The `kho` command-line tool. Each subcommand lives in its own module; `main` only parses
//! the command line and dispatches.

mod demo;
mod json;

use clap::{Parser, Subcommand};

/// kho: an embedded LSM key-value engine with a person-centric record layer.
#[derive(Debug, Parser)]
#[command(name = "kho", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a synthetic population, ingest it through the record store and show what
    /// was stored, one person's records and a province query.
    Demo(demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo(args) => demo::run(args),
    }
}
