//! Randomized in-process cluster runs (`kho_raft::testing::run`): lossy, delaying and
//! partitioned network, kills with crash images and restarts; durability on a majority after
//! each failure, no conflicting applies, equal and verified replicas at the end.
//!
//! The long version: `KHO_RAFT_SEEDS=200 cargo test -p kho-raft --test cluster_randomized -- --ignored`.

#![allow(clippy::unwrap_used, clippy::panic)]

use kho_raft::testing::{run, RunSpec};

fn run_seed(seed: u64, nodes: u64, writes: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    match rt.block_on(run(RunSpec { seed, nodes, writes })) {
        Ok(r) => eprintln!("seed {seed} nodes {nodes}: {r:?}"),
        Err(e) => panic!("seed {seed} nodes {nodes}: {e}"),
    }
}

#[test]
fn three_nodes_survive_random_failures() {
    run_seed(1, 3, 80);
}

#[test]
fn five_nodes_survive_random_failures() {
    run_seed(3, 5, 60);
}

#[test]
#[ignore = "long: KHO_RAFT_SEEDS seeds (default 50) of 3 and 5 nodes"]
fn many_seeds() {
    let seeds: u64 = std::env::var("KHO_RAFT_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    for seed in 0..seeds {
        run_seed(1000 + seed, if seed.is_multiple_of(2) { 3 } else { 5 }, 400);
    }
}
