//! The demo's nodes: each a `RaftStore` in its own directory with a TCP listener on
//! 127.0.0.1; a node can be killed (its Raft node stopped, its listener and connections
//! dropped) and restarted on the same port and directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kho::record::StoreOptions;
use kho_raft::tcp::{serve, TcpNetwork};
use kho_raft::{NodeDir, NodeId, RaftStore};
use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One node of the demo.
pub struct Node {
    pub id: NodeId,
    pub addr: String,
    pub dir: PathBuf,
    pub store: Option<RaftStore>,
    server: Option<JoinHandle<()>>,
}

/// openraft settings of the demo: timeouts for a loaded 2-core machine; snapshots every 20
/// entries (batches), 5 kept after one, so a node that was down catches up from a snapshot.
pub fn config() -> anyhow::Result<Arc<Config>> {
    let c = Config {
        cluster_name: "kho-demo".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20),
        max_in_snapshot_log_to_keep: 5,
        // 10 entries of at most `MAX_REQUEST_BYTES` fit one frame of `tcp::MAX_FRAME`.
        max_payload_entries: 10,
        ..Config::default()
    };
    Ok(Arc::new(c.validate()?))
}

impl Node {
    /// Binds `addr` (port 0: any free port) and starts the node in `dir`.
    pub async fn start(id: NodeId, dir: &Path, addr: &str, config: Arc<Config>) -> anyhow::Result<Node> {
        let mut n = Node { id, addr: addr.to_string(), dir: dir.to_path_buf(), store: None, server: None };
        n.restart(config).await?;
        Ok(n)
    }

    /// (Re)starts the node on its address and directory.
    pub async fn restart(&mut self, config: Arc<Config>) -> anyhow::Result<()> {
        let listener = TcpListener::bind(&self.addr).await.with_context(|| format!("bind {}", self.addr))?;
        self.addr = listener.local_addr()?.to_string();
        let dir = NodeDir::std(&self.dir)?;
        let store = RaftStore::start(self.id, dir, StoreOptions::default(), config, TcpNetwork).await?;
        self.server = Some(serve(listener, store.raft().clone()));
        self.store = Some(store);
        Ok(())
    }

    /// Stops the node as a crash would look to its peers: connections drop, nothing answers.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
        if let Some(s) = self.store.take() {
            s.shutdown().await?;
        }
        Ok(())
    }

    /// The running replica.
    pub fn store(&self) -> anyhow::Result<&RaftStore> {
        self.store.as_ref().with_context(|| format!("node {} is down", self.id))
    }
}

/// The members of `nodes`, for `initialize`.
pub fn members(nodes: &[Node]) -> BTreeMap<NodeId, BasicNode> {
    nodes.iter().map(|n| (n.id, BasicNode::new(&n.addr))).collect()
}

fn rafts(nodes: &[Node]) -> Vec<&kho_raft::types::Raft> {
    nodes.iter().filter_map(|n| n.store.as_ref()).map(|s| s.raft()).collect()
}

/// Waits for a running node that leads in the highest term, up to `timeout`.
pub async fn wait_leader(nodes: &[Node], timeout: Duration) -> anyhow::Result<(NodeId, u64)> {
    Ok(kho_raft::wait::wait_leader(&rafts(nodes), timeout).await?)
}

/// Waits until every running node applied the leader's last log entry, up to `timeout`.
pub async fn wait_converged(nodes: &[Node], timeout: Duration) -> anyhow::Result<()> {
    Ok(kho_raft::wait::wait_converged(&rafts(nodes), timeout).await?)
}
