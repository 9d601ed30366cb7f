//! Waiting on a set of Raft nodes, from their metrics: for the leader (the node that leads
//! in the highest term) and for convergence (every node applied its whole log, and all logs
//! end at the same index). Used by the test harness, the demo and the bench; the waits are
//! bounded by a timeout, which is a failure, never an assertion on timing.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::types::{NodeId, Raft};

/// The node that believes it leads in the highest term, with that term.
pub fn leader(nodes: &[&Raft]) -> Option<(NodeId, u64)> {
    let mut best: Option<(NodeId, u64)> = None;
    for r in nodes {
        let m = r.metrics().borrow().clone();
        if m.current_leader == Some(m.id) && best.is_none_or(|(_, t)| m.current_term > t) {
            best = Some((m.id, m.current_term));
        }
    }
    best
}

/// Each node's (last applied index, last log index).
fn progress(nodes: &[&Raft]) -> Vec<(Option<u64>, Option<u64>)> {
    nodes
        .iter()
        .map(|r| {
            let m = r.metrics().borrow().clone();
            (m.last_applied.map(|l| l.index), m.last_log_index)
        })
        .collect()
}

/// Waits up to `timeout` for a leader.
pub async fn wait_leader(nodes: &[&Raft], timeout: Duration) -> Result<(NodeId, u64)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = leader(nodes) {
            return Ok(l);
        }
        if Instant::now() > deadline {
            return Err(Error::Raft(format!("no leader within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits up to `timeout` until there is a leader and every node applied its whole log, all
/// logs ending at one index.
pub async fn wait_converged(nodes: &[&Raft], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let p = progress(nodes);
        if leader(nodes).is_some() && p.windows(2).all(|w| w[0] == w[1]) && p.iter().all(|(a, l)| a == l) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Raft(format!("no convergence within {timeout:?}: (applied, last log) {p:?}")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
