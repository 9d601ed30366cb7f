//! Installing a snapshot received from the leader: unpack the stream into the next
//! generation's directory, check it opens and holds the state the metadata names, then make
//! it live with the atomic pointer swap of `node_dir.rs`, reopen, and drop the old
//! generation.
//!
//! Crash safety: before the pointer swap the old generation is live and the new directory is
//! removed at the next open; after it the new one is live and the old directory is garbage
//! the next install or open no longer names (removed here right after the swap).

use kho::record::Store;
use openraft::SnapshotMeta;
use std::sync::Arc;

use super::{open_generation, CurrentSnapshot, SmShared};
use crate::error::{Error, Result};
use crate::snapshot::format;
use crate::types::NodeId;

/// Installs the packed checkpoint `data` described by `meta`.
pub(crate) fn install(
    shared: &SmShared,
    meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
    data: Vec<u8>,
) -> Result<()> {
    let dir = &shared.dir;
    let mut st = shared.state.lock();
    let next = st.generation + 1;
    let next_dir = dir.sm_dir(next);
    dir.remove_flat_dir(&next_dir)?;
    format::unpack(dir.fs().as_ref(), &data, &next_dir)?;
    let (store, applied, membership) = match open_generation(dir, next, &shared.store_opts) {
        Ok(s) => s,
        Err(e) => {
            let _ = dir.remove_flat_dir(&next_dir);
            return Err(e);
        }
    };
    if applied != meta.last_log_id || membership != meta.last_membership {
        let _ = store.close();
        let _ = dir.remove_flat_dir(&next_dir);
        return Err(Error::corrupt(&next_dir, "snapshot holds another state than its metadata names"));
    }
    dir.set_current_generation(next)?;
    let old: Store = std::mem::replace(&mut st.store, store);
    let old_generation = st.generation;
    st.generation = next;
    st.snapshots_installed += 1;
    st.applied = applied;
    st.membership = membership;
    st.snapshot = Some(CurrentSnapshot { meta: meta.clone(), data: Arc::new(data) });
    drop(st);
    // The old generation is no longer named: closing or removing it can only fail to free
    // space, which the next open does not need.
    let _ = old.close();
    let _ = dir.remove_flat_dir(&dir.sm_dir(old_generation));
    Ok(())
}
