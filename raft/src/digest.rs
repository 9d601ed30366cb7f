//! [`digest`]: a replica's content summary (record count and a 64-bit digest of every
//! catalog, index and record key and value, in key order), to compare replicas. Application
//! keys (`X|`, the Raft bookkeeping) and the change feed are left out: they legitimately
//! differ between replicas at one state (feed positions are each replica's own sequence
//! numbers). Equal digests mean equal record-layer contents (up to hash collisions).

use std::hash::{Hash, Hasher};

use kho::record::Store;

use crate::error::Result;

/// A replica's content summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreDigest {
    /// Records (`R|` keys).
    pub records: u64,
    /// Index entries (`I|` keys).
    pub index_entries: u64,
    /// SipHash-1-3 (std's `DefaultHasher`, fixed keys) of every `C|`, `I|`, `R|` key and value.
    pub digest: u64,
}

/// The summary of `store`'s current contents, read from one snapshot.
pub fn digest(store: &Store) -> Result<StoreDigest> {
    let snap = store.db().snapshot();
    let mut h = std::hash::DefaultHasher::new();
    let (mut records, mut index_entries) = (0, 0);
    for tag in [b'C', b'I', b'R'] {
        for kv in snap.prefix([tag])? {
            let (k, v) = kv?;
            k.hash(&mut h);
            v.hash(&mut h);
            match tag {
                b'R' => records += 1,
                b'I' => index_entries += 1,
                _ => {}
            }
        }
    }
    Ok(StoreDigest { records, index_entries, digest: h.finish() })
}
