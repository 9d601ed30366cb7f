//! [`RaftStore`]: one replica — an openraft [`Raft`] over kho's [`LogStore`] and
//! [`StateMachine`] in one node directory — with the small record API applications use:
//! [`RaftStore::write`] (replicated, answered once applied on the leader),
//! [`RaftStore::person`] and [`RaftStore::get`] at a chosen [`Consistency`].
//!
//! Reads: `Linearizable` confirms leadership with a quorum (openraft's read index,
//! `ensure_linearizable`) and waits until the local store has applied that index, so it sees
//! every write acknowledged before it began; it fails on a follower with `NotLeader`.
//! `Stale` reads the local store as it is: possibly behind the leader, never a state that
//! was not committed.

use std::sync::Arc;

use kho::record::{NationalId, Record, StoreOptions};
use openraft::{Config, RaftNetworkFactory};

use crate::error::{Error, Result};
use crate::log_store::LogStore;
use crate::node_dir::NodeDir;
use crate::state_machine::{ApplyObserver, StateMachine};
use crate::types::{LogId, NodeId, Raft, RecordOp, TypeConfig, WriteRequest, WriteResponse};

/// Largest encoded write request accepted, in bytes. An entry must fit kho's value limit
/// in every replica's log database (32 MiB by default) — a larger one would be refused there
/// only after it was proposed, stopping the replicas — and an append of
/// `max_payload_entries` entries must fit one transport frame (`tcp::MAX_FRAME`, 64 MiB:
/// the demo sends at most 10 entries an append). 4 MiB is ~10,000 records of the demo's size.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Sees every write acknowledged before the read began (leader only).
    Linearizable,
    /// The local replica's state, possibly behind the leader.
    Stale,
}

/// What a replicated write returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The write's log id.
    pub log_id: LogId,
    /// What applying it did.
    pub response: WriteResponse,
}

/// One replica of a replicated record store.
#[derive(Clone)]
pub struct RaftStore {
    id: NodeId,
    raft: Raft,
    sm: StateMachine,
    log: LogStore,
}

impl std::fmt::Debug for RaftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftStore").field("id", &self.id).finish()
    }
}

fn raft_err(e: impl std::fmt::Display) -> Error {
    Error::Raft(e.to_string())
}

impl RaftStore {
    /// Opens (or creates) the replica `id` in `dir` and starts its Raft node on `network`.
    pub async fn start<N>(
        id: NodeId,
        dir: NodeDir,
        store_opts: StoreOptions,
        config: Arc<Config>,
        network: N,
    ) -> Result<RaftStore>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        RaftStore::start_observed(id, dir, store_opts, config, network, None).await
    }

    /// [`RaftStore::start`], with `observer` told of every entry the state machine applies
    /// (from the first, including those re-applied at start).
    pub async fn start_observed<N>(
        id: NodeId,
        dir: NodeDir,
        store_opts: StoreOptions,
        config: Arc<Config>,
        network: N,
        observer: Option<ApplyObserver>,
    ) -> Result<RaftStore>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        let log = LogStore::open(dir.log_dir(), dir.db_options())?;
        let sm = StateMachine::open(dir, store_opts)?;
        if let Some(f) = observer {
            sm.set_apply_observer(f);
        }
        let raft = Raft::new(id, config, network, log.clone(), sm.clone()).await.map_err(raft_err)?;
        Ok(RaftStore { id, raft, sm, log })
    }

    /// This replica's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The openraft node (membership changes, metrics, the RPC entry points).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The state machine.
    pub fn state_machine(&self) -> &StateMachine {
        &self.sm
    }

    /// The Raft log.
    pub fn log_store(&self) -> &LogStore {
        &self.log
    }

    /// The leader this replica knows of.
    pub async fn leader(&self) -> Option<NodeId> {
        self.raft.current_leader().await
    }

    /// Replicates `ops` as one atomic store batch; returns once a majority holds it and this
    /// (leader) replica applied it. On a follower it fails with `NotLeader`.
    pub async fn write(&self, ops: Vec<RecordOp>) -> Result<Applied> {
        let req = WriteRequest { ops };
        // Refused here, before it is a log entry: every replica's log database and the
        // transport must take it (see MAX_REQUEST_BYTES).
        let size = crate::log_store::encode(&req)?.len();
        if size > MAX_REQUEST_BYTES {
            return Err(Error::Invalid(format!("write request of {size} bytes: at most {MAX_REQUEST_BYTES}")));
        }
        match self.raft.client_write(req).await {
            Ok(r) => Ok(Applied { log_id: r.log_id, response: r.data }),
            Err(e) => match e.forward_to_leader() {
                Some(f) => Err(Error::NotLeader { leader: f.leader_id }),
                None => Err(raft_err(e)),
            },
        }
    }

    async fn ready(&self, c: Consistency) -> Result<()> {
        if c == Consistency::Linearizable {
            if let Err(e) = self.raft.ensure_linearizable().await {
                return Err(match e.forward_to_leader() {
                    Some(f) => Error::NotLeader { leader: f.leader_id },
                    None => raft_err(e),
                });
            }
        }
        Ok(())
    }

    /// Every record of the person `id` (see [`kho::record::Store::person`]).
    pub async fn person(&self, id: &NationalId, c: Consistency) -> Result<Vec<Record>> {
        self.ready(c).await?;
        Ok(self.sm.store().person(id)?)
    }

    /// The record at `(collection, pk)`, payload still encoded.
    pub async fn get(&self, collection: &str, pk: impl AsRef<[u8]>, c: Consistency) -> Result<Option<Record>> {
        self.ready(c).await?;
        Ok(self.sm.store().get_raw(collection, pk)?)
    }

    /// Stops the Raft node and closes both databases.
    pub async fn shutdown(&self) -> Result<()> {
        self.raft.shutdown().await.map_err(raft_err)?;
        self.sm.close()?;
        self.log.close()
    }
}
