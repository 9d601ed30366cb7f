//! Application keys: a small reserved range of the store's keyspace (`X | name -> bytes`,
//! docs/record-model.md) that an application commits **in the same batch** as record writes,
//! so its own bookkeeping can never disagree with the records after a crash.
//!
//! The first user is the Raft state machine (`kho-raft`), which stores the last applied log
//! id and the membership with the records each log entry writes. The record layer never
//! interprets these keys: they are not records, have no index entries, no feed changes and
//! no audit entries, and `verify_index` ignores them. A checkpoint or backup carries them
//! like any other key.
//!
//! Bounds: a name is 1 to [`MAX_APP_KEY_LEN`] bytes; a value is bounded by the database's
//! `max_value_size` (checked at commit like any value).

use bytes::Bytes;

use super::batch::StoreBatch;
use super::error::{Error, Result};
use super::keys::app_key;
use super::store::Store;

/// Longest application key name accepted, in bytes: application keys are bookkeeping, not
/// data.
pub const MAX_APP_KEY_LEN: usize = 256;

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > MAX_APP_KEY_LEN {
        return Err(Error::invalid(format!("application key of {} bytes: must be 1 to {MAX_APP_KEY_LEN}", name.len())));
    }
    Ok(())
}

impl StoreBatch {
    /// Puts the application key `name` (stored as `X | name`) with `value` in the same atomic
    /// write as the batch's records: after a crash both are there or neither is. A later
    /// put of the same name in one batch wins. Works on an empty batch too (then only the
    /// application keys are written).
    pub fn put_app(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<&mut Self> {
        check_name(name.as_ref())?;
        self.app.push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        Ok(self)
    }
}

impl Store {
    /// The value of the application key `name` (see [`StoreBatch::put_app`]), if any.
    pub fn get_app(&self, name: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        check_name(name.as_ref())?;
        Ok(self.inner.db.get(app_key(name.as_ref()))?)
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{NationalId, Store, StoreOptions};

    #[test]
    fn app_keys_commit_with_the_records_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = NationalId::parse("079190001234").unwrap();
        {
            let store =
                Store::open(crate::Db::open(dir.path(), crate::Options::default()).unwrap(), StoreOptions::default())
                    .unwrap();
            let mut b = store.batch();
            b.insert("tax", "1", &id, &1u32).unwrap();
            b.put_app("applied", [7u8; 3]).unwrap();
            b.commit().unwrap();
            // An insert that fails takes its application keys with it.
            let mut b = store.batch();
            b.insert("tax", "1", &id, &2u32).unwrap();
            b.put_app("applied", [8u8; 3]).unwrap();
            assert!(b.commit().is_err());
            // Application keys alone.
            let mut b = store.batch();
            b.put_app("other", b"x").unwrap();
            b.commit().unwrap();
            assert!(store.batch().put_app("", b"x").is_err());
            assert!(store.verify_index().unwrap().is_clean());
            store.close().unwrap();
        }
        let store =
            Store::open(crate::Db::open(dir.path(), crate::Options::default()).unwrap(), StoreOptions::default())
                .unwrap();
        assert_eq!(store.get_app("applied").unwrap().as_deref(), Some(&[7u8; 3][..]));
        assert_eq!(store.get_app("other").unwrap().as_deref(), Some(&b"x"[..]));
        assert_eq!(store.get_app("none").unwrap(), None);
        assert_eq!(store.person(&id).unwrap().len(), 1);
    }
}
