//! [`Store`]: typed, person-centric records over a [`Db`], with a secondary index on the
//! national ID.
//!
//! It owns the record layer's part of the keyspace (tags `C`, `I`, `M`, `R`; see `keys.rs`),
//! the catalog of collections and the stripe locks. Writes go through `write.rs`, which keeps
//! the invariant "index == f(records)"; reads of one person go through a snapshot so that the
//! index scan and the record reads see one state.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::catalog::Catalog;
use super::error::{Error, Result};
use super::keys::{meta_key, parse_index_key, person_prefix, record_key, CollectionId, MAX_PK_LEN};
use super::locks::{StripedLocks, DEFAULT_LOCK_STRIPES};
use super::national_id::{IdRules, NationalId};
use super::value::{decode_stored, encode_value, sealed_aad, Record, StoredPayload};
use super::vault::{KeyState, PersonKeys};
use super::write::Op;
use crate::{Db, Snapshot, WriteBatch, WriteOptions};

/// The record-layer format version, stored under `M|format`. It only moves forward; a store
/// written by a newer version is refused rather than misread.
pub(crate) const STORE_FORMAT_VERSION: u8 = 1;

/// Options of a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Which national IDs writes accept (e.g. extra province codes for births registered
    /// abroad). [`Store::parse_id`] parses with these rules.
    pub id_rules: IdRules,
    /// Number of lock stripes serializing writers of one primary key (rounded up to a power
    /// of two). Default: 1024.
    pub lock_stripes: usize,
    /// Write options of single-record writes (`insert`, `upsert`, `delete`). Default: not
    /// synced, like [`Db::put`]. Batches choose with [`StoreBatch::sync`](super::StoreBatch::sync);
    /// erasure is always synced.
    pub write_options: WriteOptions,
    /// The change feed: whether to turn it on, its retention bounds (see
    /// [`FeedOptions`](super::feed::FeedOptions)). Default: off.
    pub feed: super::feed::FeedOptions,
    /// The audit log and access policy (see [`AuditOptions`](super::audit::AuditOptions)):
    /// `Some` turns auditing on (persisted: once on, a store must always be opened for
    /// writing with the same audit key). Default: `None`.
    pub audit: Option<super::audit::AuditOptions>,
    /// Crypto-shredding (see [`PersonKeys`]): every payload written is sealed under its
    /// person's key in this vault, and erasure destroys the key. Persisted: once a store has
    /// used a vault, it must always be opened with the same one (readers without it see keys
    /// and the index, no sealed payload). Default: `None`.
    pub person_keys: Option<PersonKeys>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            id_rules: IdRules::default(),
            lock_stripes: DEFAULT_LOCK_STRIPES,
            write_options: WriteOptions::default(),
            feed: super::feed::FeedOptions::default(),
            audit: None,
            person_keys: None,
        }
    }
}

/// Shared state of a store.
#[derive(Debug)]
pub(crate) struct StoreInner {
    pub(crate) db: Db,
    pub(crate) catalog: Catalog,
    pub(crate) locks: StripedLocks,
    pub(crate) opts: StoreOptions,
    /// The change feed, if the store records one.
    pub(crate) feed: Option<super::feed::Feed>,
    /// The audit log and policy, if the store keeps one.
    pub(crate) audit: Option<super::audit::Audit>,
    /// The person-key vault, if the store seals payloads.
    pub(crate) vault: Option<PersonKeys>,
    /// Opened with [`Store::open_read_only`]: every mutation fails with [`Error::Engine`]`(`[`crate::Error::ReadOnly`]`)`.
    pub(crate) read_only: bool,
}

impl StoreInner {
    /// Fails with [`Error::Engine`]`(`[`crate::Error::ReadOnly`]`)` on a store opened with [`Store::open_read_only`]; every
    /// path that writes (the write path `apply`, collection creation, repairs, purges) calls it
    /// first.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::Engine(crate::Error::ReadOnly));
        }
        Ok(())
    }

    /// A corruption error for a record-layer key whose value or shape is wrong. The record
    /// layer does not know files or offsets; it names the database directory and the key.
    pub(crate) fn corrupt_record(&self, key: &[u8], what: &str) -> Error {
        Error::corruption_unknown_offset(
            self.db.path(),
            format!("record layer key {}: {what}", crate::util::redact(key)),
        )
    }

    /// Opens a payload sealed under `id`'s person key `key_id` for the record at
    /// `record_key`. `None`: that key was destroyed (the person was erased).
    pub(crate) fn open_sealed(
        &self,
        record_key: &[u8],
        id: &NationalId,
        key_id: &[u8; super::vault::KEY_ID_LEN],
        sealed: &[u8],
    ) -> Result<Option<Bytes>> {
        let vault = self.vault.as_ref().ok_or(Error::PersonKeysNeeded)?;
        match vault.key(id)? {
            KeyState::Live(k) if k.id == *key_id => k
                .open(&sealed_aad(record_key, id), sealed)
                .map(|p| Some(Bytes::from(p)))
                .ok_or_else(|| self.corrupt_record(record_key, "sealed payload does not authenticate")),
            _ if vault.was_destroyed(id, key_id)? => Ok(None),
            _ => Err(self.corrupt_record(record_key, "sealed under a person key the vault does not hold")),
        }
    }

    /// Decodes a record read at `key` (already split into `cid` and `pk`), opening a sealed
    /// payload with its person's key. `None`: the payload is sealed under a destroyed key —
    /// the person was erased, and this is ciphertext nobody can read (reads skip it).
    pub(crate) fn to_record(&self, key: &[u8], cid: CollectionId, pk: Bytes, value: &Bytes) -> Result<Option<Record>> {
        let collection = self.catalog.name(cid).ok_or_else(|| self.corrupt_record(key, "unknown collection id"))?;
        let (id, stored) = decode_stored(value).map_err(|w| self.corrupt_record(key, &w))?;
        let payload = match stored {
            StoredPayload::Plain(p) => value.slice_ref(p),
            StoredPayload::Sealed { key_id, sealed } => match self.open_sealed(key, &id, &key_id, sealed)? {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        Ok(Some(Record { collection, pk, id, payload }))
    }
}

/// Person-centric records over a [`Db`]: named collections of records, each with a primary
/// key, a national ID and a `serde` payload, and an index to find every record of a person.
/// Cheap to clone and share between threads.
///
/// ```
/// use kho::record::{NationalId, Store, StoreOptions};
/// # fn main() -> kho::record::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(kho::Db::open(dir.path(), kho::Options::default())?, StoreOptions::default())?;
/// let id = NationalId::parse("079190001234")?;
/// store.insert("tax", "8012345678", &id, &("Nguyen Van An", 2024))?;
/// store.insert("vehicle", "59-X1 123.45", &id, &"Honda Wave")?;
/// let records = store.person(&id)?;
/// assert_eq!(records.len(), 2);
/// assert_eq!(records[0].decode::<(String, u32)>()?.1, 2024);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<StoreInner>,
}

impl Store {
    /// Opens the record layer on `db`, loading the catalog (and, on a fresh database,
    /// writing the record-layer format version).
    pub fn open(db: Db, opts: StoreOptions) -> Result<Store> {
        if !has_store_format(&db)? {
            let mut b = WriteBatch::new();
            b.put(meta_key("format"), [STORE_FORMAT_VERSION]);
            db.write(b, &WriteOptions::synced())?;
        }
        Store::assemble(db, opts, false)
    }

    /// Opens the record layer on `db` **without writing anything**, for inspection tools
    /// and readers of a database opened with [`Db::open_read_only`] (on which [`Store::open`]
    /// would fail when it tries to write the format version).
    ///
    /// The database must already hold a record store: without the `M|format` key that
    /// [`Store::open`] writes first, this fails with [`crate::Error::NotFound`] (as [`Error::Engine`]); an unsupported
    /// format version fails as in [`Store::open`]. The catalog is loaded as it is now and
    /// never reloaded: the store sees the collections that existed at open.
    ///
    /// The returned store never writes, whatever `db` allows: every mutation (`insert`,
    /// `upsert`, `delete`, batches, `erase_person`, `purge_erased`, `rebuild_index`) fails
    /// with [`Error::Engine`]`(`[`crate::Error::ReadOnly`]`)`. Reads (`get`, `person`, `scan`, `query`, `verify_index`)
    /// work as usual.
    pub fn open_read_only(db: Db, opts: StoreOptions) -> Result<Store> {
        if !has_store_format(&db)? {
            return Err(crate::Error::NotFound(format!(
                "{} holds no record store (no M|format key)",
                db.path().display()
            ))
            .into());
        }
        Store::assemble(db, opts, true)
    }

    fn assemble(db: Db, opts: StoreOptions, read_only: bool) -> Result<Store> {
        // The change feed and the audit log are written in key order: tables of their own
        // move down the levels without being rewritten.
        db.set_table_partitions(vec![
            vec![super::audit::TAG_AUDIT],
            vec![super::audit::TAG_AUDIT + 1],
            vec![super::feed::TAG_CHANGE],
            vec![super::feed::TAG_CHANGE + 1],
        ]);
        let catalog = Catalog::load(&db)?;
        let locks = StripedLocks::new(opts.lock_stripes);
        let feed = super::feed::Feed::open(&db, &opts.feed, !read_only)?;
        let audit = super::audit::Audit::open(&db, opts.audit.as_ref(), !read_only)?;
        let vault = open_vault(&db, opts.person_keys.as_ref(), !read_only)?;
        Ok(Store { inner: Arc::new(StoreInner { db, catalog, locks, opts, feed, audit, vault, read_only }) })
    }

    /// True if this store was opened with [`Store::open_read_only`] (it never writes).
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The underlying database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// A consistent, openable copy of the store (records, index and catalog together) in
    /// `dir` at one sequence number, which it returns (see [`Db::checkpoint`]).
    pub fn checkpoint(&self, dir: impl AsRef<std::path::Path>) -> Result<crate::SeqNo> {
        Ok(self.inner.db.checkpoint(dir)?)
    }

    /// Closes the underlying database (see [`Db::close`]); an audited store first writes a
    /// signed checkpoint of its audit log.
    pub fn close(&self) -> Result<()> {
        if let Some(audit) = self.inner.audit.as_ref().filter(|a| a.chain.is_some() && !self.inner.read_only) {
            // Housekeeping: the chain is whole without it, and a closed or failed database
            // must still close.
            let _ = audit.checkpoint(&self.inner.db, &WriteOptions::synced());
        }
        Ok(self.inner.db.close()?)
    }

    /// Parses a national ID with this store's [`IdRules`].
    pub fn parse_id(&self, s: &str) -> Result<NationalId> {
        NationalId::parse_with(s, &self.inner.opts.id_rules)
    }

    /// The names of every collection, in the order they were created.
    pub fn collections(&self) -> Vec<String> {
        self.inner.catalog.list().into_iter().map(|(n, _)| n.to_string()).collect()
    }

    /// Checks a primary key and an ID, encodes the payload and resolves (creating if needed)
    /// the collection: everything a put needs before taking locks.
    pub(crate) fn prepare_put<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        pk: &[u8],
        id: &NationalId,
        payload: &T,
        insert_only: bool,
    ) -> Result<Op> {
        self.inner.check_writable()?;
        check_pk(pk)?;
        self.inner.opts.id_rules.check(id)?;
        // With person keys the payload is sealed at commit (`write.rs`), where one synced
        // vault write creates the keys of every new person of the unit.
        let value = encode_value(id, payload)?;
        let cid = self.inner.catalog.get_or_create(&self.inner.db, collection)?;
        Ok(Op::Put { cid, pk: Bytes::copy_from_slice(pk), id: *id, value, insert_only })
    }

    /// Adds a record; fails with [`Error::RecordExists`] if `(collection, pk)` holds one.
    /// Creates the collection on first use.
    pub fn insert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<()> {
        self.inner.check_unaudited()?;
        let op = self.prepare_put(collection, pk.as_ref(), id, payload, true)?;
        self.inner.apply(vec![op], &self.inner.opts.write_options)?;
        Ok(())
    }

    /// Adds or replaces a record, moving its index entry if the national ID changed (one
    /// atomic write). Returns the national ID of the record it replaced, if any.
    pub fn upsert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<Option<NationalId>> {
        self.inner.check_unaudited()?;
        let op = self.prepare_put(collection, pk.as_ref(), id, payload, false)?;
        let before = self.inner.apply(vec![op], &self.inner.opts.write_options)?;
        Ok(before.into_iter().next().flatten())
    }

    /// Deletes a record and its index entry (one atomic write). Returns the national ID of
    /// the deleted record, or `None` if there was none.
    pub fn delete(&self, collection: &str, pk: impl AsRef<[u8]>) -> Result<Option<NationalId>> {
        self.inner.check_unaudited()?;
        self.inner.check_writable()?;
        let Some(cid) = self.inner.catalog.lookup(collection) else {
            return Ok(None);
        };
        let op = Op::Delete { cid, pk: Bytes::copy_from_slice(pk.as_ref()) };
        let before = self.inner.apply(vec![op], &self.inner.opts.write_options)?;
        Ok(before.into_iter().next().flatten())
    }

    /// The record at `(collection, pk)` with its payload still encoded.
    pub fn get_raw(&self, collection: &str, pk: impl AsRef<[u8]>) -> Result<Option<Record>> {
        self.inner.check_unaudited()?;
        self.read_raw(collection, pk.as_ref())
    }

    /// [`Self::get_raw`] without the access check (the audited path checks first).
    pub(crate) fn read_raw(&self, collection: &str, pk: &[u8]) -> Result<Option<Record>> {
        let Some(cid) = self.inner.catalog.lookup(collection) else {
            return Ok(None);
        };
        let key = record_key(cid, pk);
        match self.inner.db.get(&key)? {
            None => Ok(None),
            Some(v) => {
                let pk = Bytes::copy_from_slice(pk);
                self.inner.to_record(&key, cid, pk, &v)
            }
        }
    }

    /// The record at `(collection, pk)` with its payload decoded as a `T`.
    pub fn get<T: DeserializeOwned>(&self, collection: &str, pk: impl AsRef<[u8]>) -> Result<Option<Record<T>>> {
        self.get_raw(collection, pk)?.map(Record::into_typed).transpose()
    }

    /// Every record of the person `id` across all collections, ordered by collection id and
    /// primary key, read from one snapshot. An index entry whose record is missing or belongs
    /// to someone else (which [`Store::verify_index`] reports) is skipped: the records are
    /// the truth.
    pub fn person(&self, id: &NationalId) -> Result<Vec<Record>> {
        self.inner.check_unaudited()?;
        let snap = self.inner.db.snapshot();
        self.person_at(&snap, id)
    }

    pub(crate) fn person_at(&self, snap: &Snapshot, id: &NationalId) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for kv in snap.prefix(person_prefix(id))? {
            let (ikey, _) = kv?;
            let (_, cid, pk) =
                parse_index_key(&ikey).ok_or_else(|| self.inner.corrupt_record(&ikey, "malformed index key"))?;
            let rkey = record_key(cid, pk);
            let Some(v) = snap.get(&rkey)? else { continue };
            let Some(rec) = self.inner.to_record(&rkey, cid, ikey.slice_ref(pk), &v)? else { continue };
            if rec.id == *id {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

/// Name of the vault id a store with person keys records (`M|person_keys`).
const VAULT_META_NAME: &str = "person_keys";

/// The vault of a store: `opts` checked against the vault id the store recorded (recording
/// it on first use when `writable`). A store that used a vault refuses to open without it.
fn open_vault(db: &Db, opts: Option<&PersonKeys>, writable: bool) -> Result<Option<PersonKeys>> {
    let stored = db.get(meta_key(VAULT_META_NAME))?;
    match (stored, opts) {
        (None, None) => Ok(None),
        (None, Some(v)) if writable => {
            let mut b = WriteBatch::new();
            b.put(meta_key(VAULT_META_NAME), v.vault_id());
            db.write(b, &WriteOptions::synced())?;
            Ok(Some(v.clone()))
        }
        (None, Some(_)) => Ok(None),
        // A reader without the vault still sees keys, IDs and the index; a sealed payload
        // it meets is `PersonKeysNeeded`.
        (Some(_), None) if !writable => Ok(None),
        (Some(_), None) => Err(Error::PersonKeysNeeded),
        (Some(id), Some(v)) if id.as_ref() == v.vault_id() => Ok(Some(v.clone())),
        (Some(_), Some(_)) => Err(Error::WrongVault),
    }
}

/// Whether `db` holds a record store: `M|format` present with the version this build reads.
/// Fails on any other version, so a store written by a newer build is refused, not misread.
fn has_store_format(db: &Db) -> Result<bool> {
    match db.get(meta_key("format"))? {
        None => Ok(false),
        Some(v) if v.as_ref() == [STORE_FORMAT_VERSION] => Ok(true),
        Some(v) => Err(Error::invalid(format!(
            "record store format {v:?} is not supported (this build reads {STORE_FORMAT_VERSION})"
        ))),
    }
}

/// Primary keys are 1 to [`MAX_PK_LEN`] bytes.
pub(crate) fn check_pk(pk: &[u8]) -> Result<()> {
    if pk.is_empty() || pk.len() > MAX_PK_LEN {
        return Err(Error::invalid(format!("primary key of {} bytes: must be 1 to {MAX_PK_LEN}", pk.len())));
    }
    Ok(())
}
