//! [`StateMachine`]: openraft's state machine (`RaftStateMachine`) as a kho record
//! [`Store`] in `<node>/sm-<gen>/` (see `node_dir.rs`).
//!
//! Owns the live store, its generation, the last applied log id and membership (mirrors of
//! `X|raft/applied` and `X|raft/membership`, written with the data they describe, see
//! `apply.rs`) and the current snapshot (in memory: after a restart the leader builds a new
//! one when it needs one).
//!
//! Invariants: the in-memory applied id and membership equal what the live store holds;
//! every access to the live store's writes, its swap and a checkpoint of it happen under one
//! lock, so a snapshot's metadata is exactly the checkpoint's state. Applies are not synced:
//! after a crash the applied id may go back, never past the Raft log's purge point (a
//! snapshot's checkpoint first fsyncs the store's log), and openraft re-applies from the
//! synced log.

mod apply;
mod install;

use std::io::Cursor;
use std::sync::Arc;

use kho::record::{Store, StoreOptions};
use kho::Db;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, Snapshot, SnapshotMeta};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::error::{write_sm_err, Error, Result, StorageError};
use crate::log_store::encode;
use crate::node_dir::NodeDir;
use crate::snapshot::SnapshotBuilder;
use crate::types::{Entry, LogId, NodeId, StoredMembership, TypeConfig, WriteResponse};
pub(crate) use apply::{APPLIED_KEY, MEMBERSHIP_KEY};

/// The current snapshot: its metadata and packed bytes.
#[derive(Clone)]
pub(crate) struct CurrentSnapshot {
    pub(crate) meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    pub(crate) data: Arc<Vec<u8>>,
}

/// The mutable state behind the lock.
pub(crate) struct SmState {
    pub(crate) store: Store,
    pub(crate) generation: u64,
    pub(crate) applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    pub(crate) snapshot: Option<CurrentSnapshot>,
    /// Snapshots built by this process (part of their ids).
    pub(crate) snapshots_built: u64,
    /// Snapshots installed by this process.
    pub(crate) snapshots_installed: u64,
}

/// Called with every entry's log id and a digest of its payload as it is applied (tests
/// check that no two replicas apply different entries at one index).
pub type ApplyObserver = Arc<dyn Fn(&LogId, u64) + Send + Sync>;

/// What the state machine, its snapshot builders and readers share.
pub(crate) struct SmShared {
    pub(crate) dir: NodeDir,
    pub(crate) store_opts: StoreOptions,
    pub(crate) state: Mutex<SmState>,
    pub(crate) observer: Mutex<Option<ApplyObserver>>,
}

/// The state machine of one node; cheap to clone.
#[derive(Clone)]
pub struct StateMachine {
    pub(crate) shared: Arc<SmShared>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").field("dir", &self.shared.dir.path()).finish()
    }
}

fn get_app<T: DeserializeOwned>(store: &Store, key: &str) -> Result<Option<T>> {
    match store.get_app(key)? {
        None => Ok(None),
        Some(v) => rmp_serde::from_slice(&v)
            .map(Some)
            .map_err(|e| Error::corrupt(store.db().path(), format!("raft state-machine key {key}: {e}"))),
    }
}

/// Opens the store of generation `generation`, with its applied id and membership.
pub(crate) fn open_generation(
    dir: &NodeDir,
    generation: u64,
    opts: &StoreOptions,
) -> Result<(Store, Option<LogId>, StoredMembership)> {
    let db = Db::open(dir.sm_dir(generation), dir.db_options())?;
    let store = Store::open(db, opts.clone())?;
    let applied = get_app::<Option<LogId>>(&store, APPLIED_KEY)?.flatten();
    let membership = get_app::<StoredMembership>(&store, MEMBERSHIP_KEY)?.unwrap_or_default();
    Ok((store, applied, membership))
}

impl StateMachine {
    /// Opens the live generation in `dir`, removing what an interrupted install or snapshot
    /// build left.
    pub fn open(dir: NodeDir, store_opts: StoreOptions) -> Result<StateMachine> {
        let generation = dir.current_generation()?;
        dir.remove_flat_dir(&dir.sm_dir(generation + 1))?;
        dir.remove_flat_dir(&dir.snapshot_build_dir())?;
        let (store, applied, membership) = open_generation(&dir, generation, &store_opts)?;
        let state = SmState {
            store,
            generation,
            applied,
            membership,
            snapshot: None,
            snapshots_built: 0,
            snapshots_installed: 0,
        };
        let observer = Mutex::new(None);
        Ok(StateMachine { shared: Arc::new(SmShared { dir, store_opts, state: Mutex::new(state), observer }) })
    }

    /// The live store, for reads. A snapshot install closes it (a read through it then fails
    /// with `Closed`; take the store again).
    pub fn store(&self) -> Store {
        self.shared.state.lock().store.clone()
    }

    /// Calls `f` for every entry applied from now on (see [`ApplyObserver`]).
    pub fn set_apply_observer(&self, f: ApplyObserver) {
        *self.shared.observer.lock() = Some(f);
    }

    /// Snapshots built and installed since this state machine was opened.
    pub fn snapshot_counts(&self) -> (u64, u64) {
        let st = self.shared.state.lock();
        (st.snapshots_built, st.snapshots_installed)
    }

    /// The last applied log id.
    pub fn applied(&self) -> Option<LogId> {
        self.shared.state.lock().applied
    }

    /// Closes the live store.
    pub fn close(&self) -> Result<()> {
        Ok(self.shared.state.lock().store.close()?)
    }

    fn apply_entries(&self, entries: impl IntoIterator<Item = Entry>) -> Result<Vec<WriteResponse>> {
        let mut st = self.shared.state.lock();
        let observer = self.shared.observer.lock().clone();
        let mut out = Vec::new();
        for e in entries {
            if let Some(f) = &observer {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(&encode(&e.payload)?, &mut h);
                f(&e.log_id, std::hash::Hasher::finish(&h));
            }
            let mut app = vec![(APPLIED_KEY, encode(&Some(e.log_id))?)];
            let mut membership = None;
            let req = match &e.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(r) => Some(r),
                EntryPayload::Membership(m) => {
                    let sm = StoredMembership::new(Some(e.log_id), m.clone());
                    app.push((MEMBERSHIP_KEY, encode(&sm)?));
                    membership = Some(sm);
                    None
                }
            };
            out.push(apply::apply_entry(&st.store, req, &app)?);
            st.applied = Some(e.log_id);
            if let Some(m) = membership {
                st.membership = m;
            }
        }
        Ok(out)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let st = self.shared.state.lock();
        Ok((st.applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<WriteResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        self.apply_entries(entries).map_err(write_sm_err)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(self.shared.clone())
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        install::install(&self.shared, meta, snapshot.into_inner()).map_err(crate::error::snapshot_err)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let cur = self.shared.state.lock().snapshot.clone();
        Ok(cur.map(|c| Snapshot { meta: c.meta, snapshot: Box::new(Cursor::new(c.data.as_ref().clone())) }))
    }
}
