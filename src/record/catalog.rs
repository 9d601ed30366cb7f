//! [`Catalog`]: the persisted map from collection names to their fixed-width ids.
//!
//! Each collection has one entry `C | name -> id (u32 BE)`; ids are assigned in order from 1
//! and never reused or renamed. The whole catalog is loaded into memory at open (it is
//! bounded by [`MAX_COLLECTIONS`]).
//!
//! Invariant: a collection's catalog entry is in the log before any record that uses its id
//! (it is written, and fsynced, before the id is handed out), so after a crash every
//! recovered record's collection id resolves — the log recovers a prefix of the writes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::error::{Error, Result};
use super::keys::{
    catalog_key, decode_collection_id, encode_collection_id, parse_catalog_key, CollectionId, MAX_COLLECTION_NAME_LEN,
    TAG_CATALOG,
};
use crate::{Db, WriteBatch, WriteOptions};

/// Most collections a store holds: the catalog lives in memory, and an agency's dataset is a
/// collection, not a record.
pub const MAX_COLLECTIONS: usize = 1 << 16;

#[derive(Debug, Default)]
struct Maps {
    by_name: HashMap<Arc<str>, CollectionId>,
    by_id: HashMap<CollectionId, Arc<str>>,
}

/// Collection names and ids, loaded from and persisted to the database.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    maps: RwLock<Maps>,
    /// Serializes creation so two threads cannot assign one name two ids.
    create: Mutex<()>,
}

impl Catalog {
    /// Loads every catalog entry from `db`.
    pub(crate) fn load(db: &Db) -> Result<Catalog> {
        let mut maps = Maps::default();
        for kv in db.prefix([TAG_CATALOG])? {
            let (k, v) = kv?;
            let (Some(name), Some(cid)) = (parse_catalog_key(&k), decode_collection_id(&v)) else {
                return Err(Error::corruption_unknown_offset(
                    db.path(),
                    format!("malformed catalog entry {:?}", String::from_utf8_lossy(&k)),
                ));
            };
            let name: Arc<str> = name.into();
            if maps.by_id.insert(cid, name.clone()).is_some() {
                return Err(Error::corruption_unknown_offset(
                    db.path(),
                    format!("collection id {} assigned twice", cid.0),
                ));
            }
            maps.by_name.insert(name, cid);
        }
        Ok(Catalog { maps: RwLock::new(maps), create: Mutex::new(()) })
    }

    /// The id of collection `name`, if it exists.
    pub(crate) fn lookup(&self, name: &str) -> Option<CollectionId> {
        self.maps.read().by_name.get(name).copied()
    }

    /// The name of collection `cid`, if it exists.
    pub(crate) fn name(&self, cid: CollectionId) -> Option<Arc<str>> {
        self.maps.read().by_id.get(&cid).cloned()
    }

    /// Every collection name with its id, ordered by id.
    pub(crate) fn list(&self) -> Vec<(Arc<str>, CollectionId)> {
        let mut all: Vec<_> = self.maps.read().by_name.iter().map(|(n, c)| (n.clone(), *c)).collect();
        all.sort_by_key(|(_, c)| *c);
        all
    }

    /// The id of collection `name`, creating (and durably recording) it if needed.
    pub(crate) fn get_or_create(&self, db: &Db, name: &str) -> Result<CollectionId> {
        if let Some(cid) = self.lookup(name) {
            return Ok(cid);
        }
        validate_name(name)?;
        let _creating = self.create.lock();
        if let Some(cid) = self.lookup(name) {
            return Ok(cid);
        }
        let next = {
            let maps = self.maps.read();
            if maps.by_id.len() >= MAX_COLLECTIONS {
                return Err(Error::invalid(format!("a store holds at most {MAX_COLLECTIONS} collections")));
            }
            maps.by_id.keys().map(|c| c.0).max().unwrap_or(0) + 1
        };
        let cid = CollectionId(next);
        let mut b = WriteBatch::new();
        b.put(catalog_key(name), encode_collection_id(cid));
        db.write(b, &WriteOptions::synced())?;
        let mut maps = self.maps.write();
        let name: Arc<str> = name.into();
        maps.by_id.insert(cid, name.clone());
        maps.by_name.insert(name, cid);
        Ok(cid)
    }
}

/// Collection names: 1 to [`MAX_COLLECTION_NAME_LEN`] bytes of UTF-8 without control
/// characters (they are printed by tools).
pub(crate) fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_COLLECTION_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "collection name {name:?} must be 1 to {MAX_COLLECTION_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}
