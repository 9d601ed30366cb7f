//! [`LogStore`]: openraft's log storage (`RaftLogStorage`) on its own kho [`Db`]
//! (`<node dir>/raft-log`, layout in docs/scale-out.md):
//!
//! ```text
//! entry      'e' | index: u64 BE   -> MessagePack of the openraft entry
//! vote       'm' | "vote"          -> MessagePack of the vote
//! committed  'm' | "committed"     -> MessagePack of the committed log id
//! purged     'm' | "purged"        -> MessagePack of the last purged log id
//! ```
//!
//! Invariants: entries are consecutive (no hole) from `purged + 1` to the last entry; every
//! write (append, vote, truncate, purge) is one synced kho write batch, so it is durable
//! before openraft hears of it — `append` calls openraft's callback only after its batch's
//! fsync (kho's group commit does the fsync). openraft serializes calls to one `LogStore`
//! (`&mut self`); readers share the `Db`.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

use kho::{Db, Options, WriteBatch, WriteOptions};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{read_err, write_logs_err, write_vote_err, Error, Result, StorageError};
use crate::types::{Entry, LogId, NodeId, TypeConfig};

const TAG_ENTRY: u8 = b'e';
const KEY_VOTE: &[u8] = b"mvote";
const KEY_COMMITTED: &[u8] = b"mcommitted";
const KEY_PURGED: &[u8] = b"mpurged";

/// The key of the entry at `index`.
fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [TAG_ENTRY; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The index of an entry key; `None` if it is not one.
fn entry_index(key: &[u8]) -> Option<u64> {
    match key {
        [TAG_ENTRY, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// The Raft log of one node on a kho database; cheap to clone (the clone is the log reader).
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Db,
}

impl LogStore {
    /// Opens (creating) the log database at `dir` with `opts` (whose file system it uses).
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<LogStore> {
        Ok(LogStore { db: Db::open(dir, opts)? })
    }

    /// The underlying database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Closes the database.
    pub fn close(&self) -> Result<()> {
        Ok(self.db.close()?)
    }

    fn get_value<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.db.get(key)? {
            None => Ok(None),
            Some(v) => rmp_serde::from_slice(&v)
                .map(Some)
                .map_err(|e| Error::corrupt(self.db.path(), format!("raft log metadata: {e}"))),
        }
    }

    fn put_synced<T: Serialize>(&self, key: &[u8], value: &T) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, encode(value)?);
        Ok(self.db.write(b, &WriteOptions::synced())?)
    }

    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<Entry> {
        let e: Entry =
            rmp_serde::from_slice(value).map_err(|e| Error::corrupt(self.db.path(), format!("raft log entry: {e}")))?;
        if entry_index(key) != Some(e.log_id.index) {
            return Err(Error::corrupt(self.db.path(), "raft log entry under another index's key"));
        }
        Ok(e)
    }

    /// The entries with index in `range`, in order.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(entry_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(entry_key(i)),
            Bound::Unbounded => Bound::Excluded([TAG_ENTRY + 1; 9]),
        };
        let mut out = Vec::new();
        for kv in self.db.range((Bound::Included(entry_key(start)), end))? {
            let (k, v) = kv?;
            out.push(self.decode_entry(&k, &v)?);
        }
        Ok(out)
    }

    /// The last entry's log id, if the log holds any entry.
    fn last_entry_id(&self) -> Result<Option<LogId>> {
        let last = self.db.range(entry_key(0)..[TAG_ENTRY + 1; 9])?.next_back().transpose()?;
        last.map(|(k, v)| self.decode_entry(&k, &v).map(|e| e.log_id)).transpose()
    }

    /// Deletes the entries with index in `[from, to)` into `b`.
    fn delete_entries(&self, b: &mut WriteBatch, from: u64, to: Bound<u64>) -> Result<()> {
        let end = match to {
            Bound::Excluded(i) => entry_key(i),
            _ => [TAG_ENTRY + 1; 9],
        };
        for kv in self.db.range(entry_key(from)..end)? {
            let (k, _) = kv?;
            b.delete(k);
        }
        Ok(())
    }

    /// The log's state: last purged and last log id.
    pub fn log_state(&self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId> = self.get_value(KEY_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    /// Appends `entries` in one synced batch.
    pub fn append_entries(&self, entries: impl IntoIterator<Item = Entry>) -> Result<()> {
        let mut b = WriteBatch::new();
        for e in entries {
            b.put(entry_key(e.log_id.index), encode(&e)?);
        }
        if b.is_empty() {
            return Ok(());
        }
        Ok(self.db.write(b, &WriteOptions::synced())?)
    }
}

/// MessagePack of `v`.
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(|e| Error::Encode(e.to_string()))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state().map_err(read_err)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_synced(KEY_VOTE, vote).map_err(write_vote_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_value(KEY_VOTE).map_err(read_err)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_synced(KEY_COMMITTED, &committed).map_err(write_logs_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_value::<Option<LogId>>(KEY_COMMITTED).map_err(read_err)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        // The batch is synced before `write` returns: only then is openraft told.
        match self.append_entries(entries) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_logs_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut b = WriteBatch::new();
        self.delete_entries(&mut b, log_id.index, Bound::Unbounded).map_err(write_logs_err)?;
        if b.is_empty() {
            return Ok(());
        }
        self.db.write(b, &WriteOptions::synced()).map_err(write_logs_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purged id and the deletes in one batch: never a hole between them.
        let mut b = WriteBatch::new();
        b.put(KEY_PURGED, encode(&log_id).map_err(write_logs_err)?);
        self.delete_entries(&mut b, 0, Bound::Excluded(log_id.index.saturating_add(1))).map_err(write_logs_err)?;
        self.db.write(b, &WriteOptions::synced()).map_err(write_logs_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_index_and_round_trip() {
        assert!(entry_key(1) < entry_key(256));
        assert_eq!(entry_index(&entry_key(u64::MAX)), Some(u64::MAX));
        assert_eq!(entry_index(KEY_VOTE), None);
        assert!(KEY_VOTE > &[TAG_ENTRY + 1][..] || KEY_VOTE < &[TAG_ENTRY][..]);
    }
}
