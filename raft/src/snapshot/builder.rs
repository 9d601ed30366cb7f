//! [`SnapshotBuilder`]: builds a snapshot of the live store — a kho checkpoint taken under the
//! state machine's lock (so the metadata is exactly the checkpoint's state: nothing applies
//! in between), packed into the stream of `format.rs` after the lock is released (the
//! checkpoint's files are immutable), then removed.

use std::io::Cursor;
use std::sync::Arc;

use openraft::{RaftSnapshotBuilder, Snapshot, SnapshotMeta};

use super::format;
use crate::error::{snapshot_err, Result, StorageError};
use crate::state_machine::{CurrentSnapshot, SmShared};
use crate::types::TypeConfig;

/// Builds snapshots of one state machine.
pub struct SnapshotBuilder {
    shared: Arc<SmShared>,
}

impl SnapshotBuilder {
    pub(crate) fn new(shared: Arc<SmShared>) -> SnapshotBuilder {
        SnapshotBuilder { shared }
    }

    fn build(&self) -> Result<Snapshot<TypeConfig>> {
        let dir = &self.shared.dir;
        let out = dir.snapshot_build_dir();
        let meta = {
            let mut st = self.shared.state.lock();
            dir.remove_flat_dir(&out)?;
            st.store.checkpoint(&out)?;
            st.snapshots_built += 1;
            let last = st.applied;
            let snapshot_id = match last {
                Some(l) => format!("{}-{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index, st.snapshots_built),
                None => format!("none-{}", st.snapshots_built),
            };
            SnapshotMeta { last_log_id: last, last_membership: st.membership.clone(), snapshot_id }
        };
        let packed = format::pack(dir.fs().as_ref(), &out);
        dir.remove_flat_dir(&out)?;
        let data = Arc::new(packed?);
        self.shared.state.lock().snapshot = Some(CurrentSnapshot { meta: meta.clone(), data: data.clone() });
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data.as_ref().clone())) })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        self.build().map_err(snapshot_err)
    }
}
