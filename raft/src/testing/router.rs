//! [`Router`]: an in-memory network between the Raft nodes of one process, with faults
//! chosen by a seeded generator: a message (request or response) is dropped with a given
//! probability, delayed by a random time (so concurrent messages arrive out of order), and
//! never crosses a partition or reaches a stopped node. A dropped or blocked message is an
//! `Unreachable` error to openraft, as a lost TCP connection would be.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kho::util::SplitMix64;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;

use crate::types::{NodeId, Raft, TypeConfig};

/// The faults in force.
#[derive(Debug, Clone, Default)]
struct Faults {
    /// Per mille of messages dropped.
    drop_per_mille: u64,
    /// Longest delay of a message, in milliseconds.
    max_delay_ms: u64,
    /// If set, a message crosses only within one group.
    groups: Option<Vec<BTreeSet<NodeId>>>,
}

#[derive(Default)]
struct RouterInner {
    nodes: Mutex<HashMap<NodeId, Raft>>,
    faults: Mutex<Faults>,
    rng: Mutex<Option<SplitMix64>>,
    delivered: Mutex<u64>,
    dropped: Mutex<u64>,
}

/// The network of one in-process cluster; cheap to clone.
#[derive(Clone, Default)]
pub struct Router {
    inner: Arc<RouterInner>,
}

#[derive(Debug)]
struct Lost(&'static str);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message {}", self.0)
    }
}
impl std::error::Error for Lost {}

impl Router {
    /// A router whose faults are drawn from `seed`.
    pub fn new(seed: u64) -> Router {
        let r = Router::default();
        *r.inner.rng.lock() = Some(SplitMix64::new(seed));
        r
    }

    /// Makes node `id` reachable.
    pub fn add(&self, id: NodeId, raft: Raft) {
        self.inner.nodes.lock().insert(id, raft);
    }

    /// Makes node `id` unreachable (it stopped).
    pub fn remove(&self, id: NodeId) {
        self.inner.nodes.lock().remove(&id);
    }

    /// Drops `per_mille` of messages and delays each by up to `max_delay_ms`.
    pub fn set_lossy(&self, per_mille: u64, max_delay_ms: u64) {
        let mut f = self.inner.faults.lock();
        f.drop_per_mille = per_mille;
        f.max_delay_ms = max_delay_ms;
    }

    /// Lets messages cross only within each of `groups` (nodes in no group reach nobody).
    pub fn partition(&self, groups: Vec<BTreeSet<NodeId>>) {
        self.inner.faults.lock().groups = Some(groups);
    }

    /// Removes the partition.
    pub fn heal(&self) {
        self.inner.faults.lock().groups = None;
    }

    /// Messages delivered and dropped (or blocked) so far.
    pub fn counts(&self) -> (u64, u64) {
        (*self.inner.delivered.lock(), *self.inner.dropped.lock())
    }

    /// A network factory for node `from`.
    pub fn network(&self, from: NodeId) -> RouterNetwork {
        RouterNetwork { from, to: from, router: self.clone() }
    }

    /// Whether a message from `from` to `to` is lost, and its delay.
    fn decide(&self, from: NodeId, to: NodeId) -> (bool, Duration) {
        let f = self.inner.faults.lock().clone();
        let (roll, delay) = match self.inner.rng.lock().as_mut() {
            Some(r) => (r.below(1000), if f.max_delay_ms > 0 { r.below(f.max_delay_ms + 1) } else { 0 }),
            None => (1000, 0),
        };
        let blocked = f.groups.as_ref().is_some_and(|g| !g.iter().any(|s| s.contains(&from) && s.contains(&to)));
        (blocked || roll < f.drop_per_mille, Duration::from_millis(delay))
    }

    /// The target's Raft handle, if the message gets through (after its delay).
    async fn deliver(&self, from: NodeId, to: NodeId) -> Result<Raft, Unreachable> {
        let (lost, delay) = self.decide(from, to);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let target = self.inner.nodes.lock().get(&to).cloned();
        match target {
            Some(raft) if !lost => {
                *self.inner.delivered.lock() += 1;
                Ok(raft)
            }
            _ => {
                *self.inner.dropped.lock() += 1;
                Err(Unreachable::new(&Lost("dropped")))
            }
        }
    }

    /// Whether the response from `to` back to `from` is lost.
    async fn respond(&self, from: NodeId, to: NodeId) -> Result<(), Unreachable> {
        let (lost, delay) = self.decide(to, from);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if lost {
            *self.inner.dropped.lock() += 1;
            return Err(Unreachable::new(&Lost("response dropped")));
        }
        Ok(())
    }
}

/// A connection from one node to another through the [`Router`] (also its factory).
#[derive(Clone)]
pub struct RouterNetwork {
    from: NodeId,
    to: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetwork {
    type Network = RouterNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> RouterNetwork {
        RouterNetwork { from: self.from, to: target, router: self.router.clone() }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl RaftNetwork<TypeConfig> for RouterNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let raft = self.router.deliver(self.from, self.to).await.map_err(RPCError::Unreachable)?;
        let resp = raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        self.router.respond(self.from, self.to).await.map_err(RPCError::Unreachable)?;
        Ok(resp)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        let raft = self.router.deliver(self.from, self.to).await.map_err(RPCError::Unreachable)?;
        let resp = raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        self.router.respond(self.from, self.to).await.map_err(RPCError::Unreachable)?;
        Ok(resp)
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, _option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        let raft = self.router.deliver(self.from, self.to).await.map_err(RPCError::Unreachable)?;
        let resp = raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        self.router.respond(self.from, self.to).await.map_err(RPCError::Unreachable)?;
        Ok(resp)
    }
}
