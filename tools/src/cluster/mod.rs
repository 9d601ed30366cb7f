//! `kho cluster`: replicated record stores (kho-raft, docs/scale-out.md). `kho cluster demo`
//! runs a 3-node cluster on 127.0.0.1 (`demo.rs`, nodes in `nodes.rs`);
//! `kho cluster bench` measures the figures of the scale-out doc (`bench.rs`).

mod bench;
mod demo;
mod nodes;

use clap::Subcommand;

use crate::out::Outcome;

/// `kho cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Three Raft replicas on 127.0.0.1 ports (TCP between them): ingest a synthetic
    /// population through the leader, kill the leader mid-ingest, watch a new leader take
    /// over and the old one catch up after a restart, and check all replicas agree. Stops by
    /// itself; exit 1 if the replicas disagree.
    Demo(demo::Args),
    /// The figures of docs/scale-out.md: replicated vs single-node ingest of the same
    /// batches, person lookups, and a follower's catch-up from a snapshot.
    Bench(bench::Args),
}

/// Runs a `kho cluster` subcommand.
pub fn run(c: Command) -> anyhow::Result<Outcome> {
    match c {
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
    }
}
