//! [`PersonKeys`]: the person-key vault behind crypto-shredding (`docs/privacy.md`,
//! "Provable erasure").
//!
//! With person keys on, every record payload is sealed (AES-256-GCM) under a key of its own
//! person; the keys live in a separate database, the vault, which the application opens
//! beside the store (its own directory, encrypted at rest under the same master key if the
//! store is). Checkpoints and backups of the store copy the store's files only, never the
//! vault, so they hold ciphertext whose keys stay in the live vault: when a person is erased,
//! their key is destroyed there — deleted, then compacted out of the vault's files and its
//! manifest rewritten — and every copy of their records made before becomes unreadable.
//!
//! Vault keys: `K | id (12 digits)` -> `key_id: [u8; 8] | key: [u8; 32]` (the live key);
//! `D | id | key_id` -> `time_ms: u64 BE` (a destroyed key: what its records now are);
//! `M|vault` -> `vault id: [u8; 16]` (the store records it, so a wrong vault is refused).
//!
//! Invariants: (1) a person's key is durable (synced) before any record sealed under it is
//! written; (2) creation is serialized (one key per person at a time, never two writers
//! racing to create different keys); (3) erasure destroys the key (synced, then physically
//! purged) before it deletes the records, so after a crash at any point the person is either
//! whole, with their key, or their key is gone and what remains of their records is
//! ciphertext nobody can read (reads skip such records as erased); (4) keys are zeroed when
//! dropped from memory, and a destroyed key leaves the in-memory cache before the erasure
//! returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use quick_cache::sync::Cache;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::national_id::{NationalId, NATIONAL_ID_LEN};
use crate::crypt::fill_random;
use crate::{Db, WriteBatch, WriteOptions};

/// Bytes of a person key's id.
pub const KEY_ID_LEN: usize = 8;
/// Bytes of a sealed payload's nonce.
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes of a sealed payload's tag.
pub(crate) const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const VAULT_ID_LEN: usize = 16;
const TAG_KEY: u8 = b'K';
const TAG_DESTROYED: u8 = b'D';
const VAULT_META: &[u8] = b"M|vault";
/// Unwrapped keys kept in memory.
const CACHE_KEYS: usize = 65_536;

/// One person's key.
pub(crate) struct PersonKey {
    pub(crate) id: [u8; KEY_ID_LEN],
    aead: LessSafeKey,
}

impl PersonKey {
    fn new(id: [u8; KEY_ID_LEN], bytes: &[u8]) -> Result<PersonKey> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| Error::invalid("person key rejected by AES-256-GCM"))?;
        Ok(PersonKey { id, aead: LessSafeKey::new(unbound) })
    }

    /// Appends `nonce | ciphertext | tag` of `plain` to `out`. `nonce` must be fresh random
    /// bytes (never used before with this key: 96 random bits make a repeat negligible at a
    /// person's number of writes).
    pub(crate) fn seal_into(&self, nonce: [u8; NONCE_LEN], aad: &[u8], plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.reserve(NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[start..])
            .map_err(|_| Error::invalid("sealing a payload failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `nonce | ciphertext | tag`; `None` if it does not authenticate.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = body.to_vec();
        let plain = self.aead.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
        let n = plain.len();
        buf.truncate(n);
        Some(buf)
    }
}

/// Where a key id stands in a vault ([`PersonKeys::key_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Someone's live key: records under it can be read.
    Live,
    /// Destroyed: records under it are ciphertext nobody can open.
    Destroyed,
    /// This vault never held it.
    Unknown,
}

/// A person's key state in the vault.
pub(crate) enum KeyState {
    Live(Arc<PersonKey>),
    None,
}

/// The person-key vault; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct PersonKeys {
    inner: Arc<VaultInner>,
}

struct VaultInner {
    db: Db,
    vault_id: [u8; VAULT_ID_LEN],
    cache: Cache<NationalId, Arc<PersonKey>>,
    /// Serializes key creation and destruction.
    change: Mutex<()>,
    /// Held shared by every record write from sealing to commit, exclusively by a
    /// destruction: no write sealed under a key commits after that key is destroyed.
    writes: RwLock<()>,
    /// Bumped by every destruction: a reader caches a key only if no destruction ran since
    /// it read it (so a destroyed key never comes back into the cache).
    epoch: AtomicU64,
}

impl std::fmt::Debug for PersonKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonKeys").field("path", &self.inner.db.path()).finish_non_exhaustive()
    }
}

fn key_key(id: &NationalId) -> [u8; 1 + NATIONAL_ID_LEN] {
    let mut k = [TAG_KEY; 1 + NATIONAL_ID_LEN];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

fn destroyed_key(id: &NationalId, key_id: &[u8; KEY_ID_LEN]) -> Vec<u8> {
    let mut k = vec![TAG_DESTROYED];
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(key_id);
    k
}

impl PersonKeys {
    /// The vault in `db` (a database of its own, never the store's), initialized on first
    /// use. Open it with the store's encryption options so its keys are encrypted at rest.
    pub fn open(db: Db) -> Result<PersonKeys> {
        let vault_id = match db.get(VAULT_META)? {
            Some(v) => v
                .as_ref()
                .try_into()
                .map_err(|_| Error::corruption_unknown_offset(db.path(), "M|vault is not a 16-byte vault id"))?,
            None => {
                let mut id = [0u8; VAULT_ID_LEN];
                fill_random(&mut id)?;
                let mut b = WriteBatch::new();
                b.put(VAULT_META, id);
                db.write(b, &WriteOptions::synced())?;
                id
            }
        };
        Ok(PersonKeys {
            inner: Arc::new(VaultInner {
                db,
                vault_id,
                cache: Cache::new(CACHE_KEYS),
                change: Mutex::new(()),
                writes: RwLock::new(()),
                epoch: AtomicU64::new(0),
            }),
        })
    }

    /// The vault's id (what a store records to refuse another vault).
    pub fn vault_id(&self) -> [u8; VAULT_ID_LEN] {
        self.inner.vault_id
    }

    /// The vault's database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::corruption_unknown_offset(self.inner.db.path(), format!("person-key vault: {what}"))
    }

    /// Reads `id`'s live key from the vault.
    fn read(&self, id: &NationalId) -> Result<Option<Arc<PersonKey>>> {
        let Some(v) = self.inner.db.get(key_key(id))? else { return Ok(None) };
        if v.len() != KEY_ID_LEN + KEY_LEN {
            return Err(self.corrupt("a key entry of the wrong size"));
        }
        let bytes = Zeroizing::new(v[KEY_ID_LEN..].to_vec());
        let mut kid = [0u8; KEY_ID_LEN];
        kid.copy_from_slice(&v[..KEY_ID_LEN]);
        Ok(Some(Arc::new(PersonKey::new(kid, &bytes)?)))
    }

    /// `id`'s live key, if it has one.
    pub(crate) fn key(&self, id: &NationalId) -> Result<KeyState> {
        if let Some(k) = self.inner.cache.get(id) {
            return Ok(KeyState::Live(k));
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        match self.read(id)? {
            Some(k) => {
                let _change = self.inner.change.lock();
                if self.inner.epoch.load(Ordering::Acquire) == epoch {
                    self.inner.cache.insert(*id, k.clone());
                }
                Ok(KeyState::Live(k))
            }
            None => Ok(KeyState::None),
        }
    }

    /// Held by a record write from sealing its payloads until its commit (see `writes`).
    pub(crate) fn write_guard(&self) -> RwLockReadGuard<'_, ()> {
        self.inner.writes.read()
    }

    /// The live keys of `ids`, creating the missing ones in one synced vault write.
    pub(crate) fn keys_or_create(&self, ids: &[NationalId]) -> Result<HashMap<NationalId, Arc<PersonKey>>> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.key(id)? {
                KeyState::Live(k) => {
                    out.insert(*id, k);
                }
                KeyState::None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        // Creation is serialized: a second writer finds the first one's key on re-reading.
        let _change = self.inner.change.lock();
        let mut batch = WriteBatch::new();
        let mut created = Vec::new();
        for id in missing {
            if let Some(k) = self.read(&id)? {
                out.insert(id, k);
                continue;
            }
            let mut material = Zeroizing::new([0u8; KEY_ID_LEN + KEY_LEN]);
            fill_random(&mut *material)?;
            batch.put(key_key(&id), material.as_slice());
            let mut kid = [0u8; KEY_ID_LEN];
            kid.copy_from_slice(&material[..KEY_ID_LEN]);
            created.push((id, Arc::new(PersonKey::new(kid, &material[KEY_ID_LEN..])?)));
        }
        if !created.is_empty() {
            self.inner.db.write(batch, &WriteOptions::synced())?;
        }
        for (id, k) in created {
            self.inner.cache.insert(id, k.clone());
            out.insert(id, k);
        }
        Ok(out)
    }

    /// Whether `key_id` is a destroyed key of `id`.
    pub(crate) fn was_destroyed(&self, id: &NationalId, key_id: &[u8; KEY_ID_LEN]) -> Result<bool> {
        Ok(self.inner.db.get(destroyed_key(id, key_id))?.is_some())
    }

    /// Destroys `id`'s key: deletes it and records its destruction (one synced write), drops
    /// it from memory, then compacts it out of the vault's files and rewrites the vault's
    /// manifest. Returns the destroyed key's id (`None`: the person had no key).
    pub(crate) fn destroy(&self, id: &NationalId, time_ms: u64) -> Result<Option<[u8; KEY_ID_LEN]>> {
        // No record write is between sealing and commit while the key goes.
        let _writes = self.inner.writes.write();
        let _change = self.inner.change.lock();
        self.forget(id);
        let key_id = match self.read(id)? {
            Some(key) => {
                let mut b = WriteBatch::new();
                b.delete(key_key(id));
                b.put(destroyed_key(id, &key.id), time_ms.to_be_bytes());
                self.inner.db.write(b, &WriteOptions::synced())?;
                Some(key.id)
            }
            // Destroyed before (an erasure cut short, or repeated): name that key again.
            None => self.destroyed_key_ids(id)?.pop(),
        };
        // Again after the delete is visible: a reader that read the key before it may not
        // cache it now (its epoch is stale).
        self.forget(id);
        if key_id.is_some() {
            self.purge_key(id)?;
        }
        Ok(key_id)
    }

    /// Drops `id`'s key from memory and invalidates every read in flight.
    fn forget(&self, id: &NationalId) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.cache.remove(id);
    }

    /// Compacts `id`'s key entry (and its old versions and tombstone) out of the vault's
    /// files and writes a new vault manifest. Idempotent.
    pub(crate) fn purge_key(&self, id: &NationalId) -> Result<()> {
        let k = key_key(id);
        self.inner.db.compact_range_rewriting_bottom(&k[..]..=&k[..])?;
        self.inner.db.rewrite_manifest()?;
        Ok(())
    }

    /// The ids of `id`'s destroyed keys (for receipts and checks), in key-id order.
    pub fn destroyed_key_ids(&self, id: &NationalId) -> Result<Vec<[u8; KEY_ID_LEN]>> {
        let mut prefix = vec![TAG_DESTROYED];
        prefix.extend_from_slice(id.as_bytes());
        let mut out = Vec::new();
        for kv in self.inner.db.prefix(&prefix)? {
            let (k, _) = kv?;
            let kid: [u8; KEY_ID_LEN] =
                k.get(prefix.len()..).and_then(|b| b.try_into().ok()).ok_or_else(|| self.corrupt("malformed D key"))?;
            out.push(kid);
        }
        Ok(out)
    }

    /// Where the key `key_id` stands: held live by someone, recorded as destroyed, or
    /// unknown to this vault (a full scan of the vault: for checks, not hot paths).
    pub fn key_status(&self, key_id: &[u8; KEY_ID_LEN]) -> Result<KeyStatus> {
        for kv in self.inner.db.prefix([TAG_KEY])? {
            let (_, v) = kv?;
            if v.get(..KEY_ID_LEN) == Some(&key_id[..]) {
                return Ok(KeyStatus::Live);
            }
        }
        for kv in self.inner.db.prefix([TAG_DESTROYED])? {
            let (k, _) = kv?;
            if k.ends_with(key_id) {
                return Ok(KeyStatus::Destroyed);
            }
        }
        Ok(KeyStatus::Unknown)
    }

    /// Whether `id` has a live key.
    pub fn has_key(&self, id: &NationalId) -> Result<bool> {
        Ok(self.inner.db.get(key_key(id))?.is_some())
    }
}
