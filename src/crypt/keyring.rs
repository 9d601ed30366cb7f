//! [`Keyring`]: the database's data keys, persisted in a key registry under the master key.
//!
//! On disk (see `docs/encryption.md`): `KEYRING` (plaintext, like `CURRENT`) names the live
//! registry `KEYS-NNNNNN`, an encrypted log in the WAL framing whose segment header names the
//! master key (key id 0, label = the provider's master id) and whose sealed records are the
//! registry's edits, the whole state in every registry:
//!
//! ```text
//! edit := 1 data_key: key_id u32 | key 32 bytes
//!       | 2 current: key_id u32               -- new files use this key
//!       | 3 encrypted_from: file number u64   -- files numbered at or above must be encrypted
//! ```
//!
//! A registry file is never changed after it is written: every change (a new data key, a
//! retired key, a new master key) writes the next registry whole, fsyncs it, then switches
//! `KEYRING` (write `KEYRING.tmp`, fsync, rename, fsync the directory) and only then removes
//! the previous one. A crash at any point leaves `KEYRING` naming a complete registry (the old
//! or the new); a new data key is used for a file only after the switch that made it durable.
//!
//! Invariants: a key id is never reused; `current` is always one of `keys`; a wrong master
//! key fails here, at open, as [`Error::WrongKey`] — never as a decode failure later.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::crypt::cipher::{random_salt, FileCipher, FileRole, SecretKey, KEY_LEN};
use crate::crypt::header::SegmentHeader;
use crate::crypt::provider::KeyProvider;
use crate::crypt::CipherSource;
use crate::filename::{decode_pointer, encode_pointer, keys_name, parse_file_name, FileKind, KEYRING};
use crate::util::coding::Reader;
use crate::vfs::{FileSystem, SharedFs};
use crate::wal::{LogReader, LogWriter};
use crate::{Error, Result};

mod tag {
    pub const DATA_KEY: u8 = 1;
    pub const CURRENT: u8 = 2;
    pub const ENCRYPTED_FROM: u8 = 3;
}

/// The registry's content.
#[derive(Clone)]
struct KeyState {
    /// The live registry's number.
    number: u64,
    master_id: String,
    keys: BTreeMap<u32, Arc<SecretKey>>,
    current: u32,
    encrypted_from: u64,
}

/// The data keys of one database. See the module docs.
pub struct Keyring {
    fs: SharedFs,
    dir: PathBuf,
    state: RwLock<KeyState>,
    /// The provider of the master key the registry is under (swapped by a master rotation).
    provider: Mutex<Arc<dyn KeyProvider>>,
    /// Serialises registry changes.
    writing: Mutex<()>,
    /// Held by a database-level key operation (rotation, re-encryption, master rotation)
    /// for its whole length, so that the current key does not change under a
    /// re-encryption.
    pub(crate) rekeying: Mutex<()>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.read();
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .field("registry", &s.number)
            .field("master_id", &s.master_id)
            .field("key_ids", &s.keys.keys().collect::<Vec<_>>())
            .field("current", &s.current)
            .finish()
    }
}

impl LogReader {
    /// Opens an encrypted file's records with the data keys of `keys`.
    pub fn with_keys(self, keys: Arc<Keyring>) -> Self {
        self.with_cipher_source(Some(keys))
    }
}

/// A writer for new log or manifest `number` in `file`: encrypted under the current data key
/// of `keys`, plaintext without.
pub(crate) fn new_log_writer(
    file: Box<dyn crate::vfs::WritableFile>,
    number: u64,
    keys: Option<&Keyring>,
) -> Result<LogWriter> {
    match keys {
        Some(k) => k.log_writer(file, number),
        None => Ok(LogWriter::new(file)),
    }
}

/// A reader for the log or manifest at `path` of a database with `keys` (`None`: a
/// plaintext database, where an encrypted file is [`Error::KeyNeeded`]). In an encrypted
/// database a plaintext file is accepted only if it predates encryption (its number is below
/// the registry's encrypted-from number).
pub(crate) fn open_log_reader(data: bytes::Bytes, path: &Path, keys: Option<&Arc<Keyring>>) -> LogReader {
    let number = match path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name) {
        Some(FileKind::Log(n) | FileKind::Manifest(n)) => Some(n),
        _ => None,
    };
    let require = keys.is_some_and(|k| number.is_none_or(|n| k.requires_encryption(n)));
    LogReader::new(data, path)
        .with_cipher_source(keys.map(|k| Arc::clone(k) as Arc<dyn CipherSource>))
        .require_encrypted(require)
}

/// Reads the master key's registry records: only key id 0 (the master key) in a registry.
#[derive(Debug)]
struct MasterSource(SecretKey);

impl CipherSource for MasterSource {
    fn cipher_for(&self, header: &SegmentHeader, role: FileRole, number: u64, path: &Path) -> Result<FileCipher> {
        if role != FileRole::Registry || header.key_id != 0 {
            return Err(Error::corruption(path, 0, "a key registry must be under the master key (key id 0)"));
        }
        FileCipher::new(&self.0, &header.salt, role, number)
    }
}

impl CipherSource for Keyring {
    fn cipher_for(&self, header: &SegmentHeader, role: FileRole, number: u64, path: &Path) -> Result<FileCipher> {
        let key = self.key(header.key_id).ok_or_else(|| {
            Error::corruption(
                path,
                0,
                format!(
                    "encrypted under data key {}, which the key registry does not hold (retired, or a registry of \
                     another database)",
                    header.key_id
                ),
            )
        })?;
        FileCipher::new(&key, &header.salt, role, number)
    }
}

impl Keyring {
    /// True if `dir` holds a key registry (the database is encrypted).
    pub fn exists(fs: &dyn FileSystem, dir: &Path) -> Result<bool> {
        fs.exists(&dir.join(KEYRING))
    }

    /// Loads the registry of the database in `dir` with the master key from `provider`.
    /// [`Error::WrongKey`] if the master key does not open it; [`Error::NotFound`] if there is
    /// no registry.
    pub fn load(fs: SharedFs, dir: &Path, provider: Arc<dyn KeyProvider>) -> Result<Keyring> {
        let pointer = dir.join(KEYRING);
        if !fs.exists(&pointer)? {
            return Err(Error::NotFound(format!("no key registry ({KEYRING}) in {}", dir.display())));
        }
        let number = match decode_pointer(&pointer, &fs.read_all(&pointer)?)? {
            FileKind::Keys(n) => n,
            _ => return Err(Error::corruption(&pointer, 0, format!("{KEYRING} does not name a key registry"))),
        };
        let state = read_registry(fs.as_ref(), dir, number, provider.as_ref())?;
        Ok(Keyring {
            fs,
            dir: dir.to_owned(),
            state: RwLock::new(state),
            provider: Mutex::new(provider),
            writing: Mutex::new(()),
            rekeying: Mutex::new(()),
        })
    }

    /// Creates the registry of a database in `dir` (which has none) with one fresh data key;
    /// every file numbered `encrypted_from` or above must be encrypted (older ones are from
    /// before encryption was turned on).
    pub(crate) fn create(
        fs: SharedFs,
        dir: &Path,
        provider: Arc<dyn KeyProvider>,
        encrypted_from: u64,
    ) -> Result<Keyring> {
        let master_id = provider.current_master_id();
        let mut keys = BTreeMap::new();
        keys.insert(1, Arc::new(SecretKey::random()?));
        let state = KeyState { number: 0, master_id, keys, current: 1, encrypted_from };
        let ring = Keyring {
            fs,
            dir: dir.to_owned(),
            state: RwLock::new(state.clone()),
            provider: Mutex::new(provider),
            writing: Mutex::new(()),
            rekeying: Mutex::new(()),
        };
        ring.save(state)?;
        Ok(ring)
    }

    /// Removes registries other than the live one (left by a crash during a change).
    pub(crate) fn remove_stale(&self) -> Result<()> {
        let live = self.state.read().number;
        for name in self.fs.list(&self.dir)? {
            if matches!(parse_file_name(&name), Some(FileKind::Keys(n)) if n != live) {
                self.fs.remove(&self.dir.join(name))?;
            }
        }
        Ok(())
    }

    /// The data key new files use.
    pub fn current_key_id(&self) -> u32 {
        self.state.read().current
    }

    /// Every data key id the registry holds.
    pub fn key_ids(&self) -> Vec<u32> {
        self.state.read().keys.keys().copied().collect()
    }

    /// The id of the master key the registry is under.
    pub fn master_id(&self) -> String {
        self.state.read().master_id.clone()
    }

    /// The number of the live registry file (`KEYS-NNNNNN`).
    pub fn registry_number(&self) -> u64 {
        self.state.read().number
    }

    /// The first file number that must be encrypted: logs, manifests and tables numbered
    /// below it were written before encryption was turned on (1 for a database encrypted
    /// from its creation).
    pub fn encrypted_from(&self) -> u64 {
        self.state.read().encrypted_from
    }

    /// True if file `number` must be encrypted (it was written after encryption was on).
    pub fn requires_encryption(&self, number: u64) -> bool {
        number >= self.state.read().encrypted_from
    }

    pub(crate) fn key(&self, id: u32) -> Option<Arc<SecretKey>> {
        self.state.read().keys.get(&id).cloned()
    }

    /// A segment header and cipher for a new file: the current key, a fresh salt.
    pub(crate) fn new_file(&self, role: FileRole, number: u64) -> Result<(SegmentHeader, FileCipher)> {
        let (id, key) = {
            let s = self.state.read();
            let key = s.keys.get(&s.current).cloned().ok_or_else(|| Error::Internal("current key missing".into()))?;
            (s.current, key)
        };
        let header = SegmentHeader::new(id, random_salt()?, String::new());
        let cipher = FileCipher::new(&key, &header.salt, role, number)?;
        Ok((header, cipher))
    }

    /// A new log writer for file `number` in `file`: encrypted under the current key.
    pub(crate) fn log_writer(&self, file: Box<dyn crate::vfs::WritableFile>, number: u64) -> Result<LogWriter> {
        let (header, cipher) = self.new_file(FileRole::Log, number)?;
        LogWriter::encrypted(file, &header, cipher)
    }

    /// Adds a fresh data key and makes it current: files written from now on use it.
    /// Returns its id.
    pub(crate) fn rotate(&self) -> Result<u32> {
        let _w = self.writing.lock();
        let mut next = self.state.read().clone();
        let id = next.keys.keys().next_back().map_or(1, |k| k + 1);
        next.keys.insert(id, Arc::new(SecretKey::random()?));
        next.current = id;
        self.save(next)?;
        Ok(id)
    }

    /// Drops every data key not in `used` (the current key always stays); returns the ids
    /// dropped. The caller guarantees no live file uses a dropped key.
    pub(crate) fn retain(&self, used: &BTreeSet<u32>) -> Result<Vec<u32>> {
        let _w = self.writing.lock();
        let mut next = self.state.read().clone();
        let current = next.current;
        let dropped: Vec<u32> = next.keys.keys().copied().filter(|id| *id != current && !used.contains(id)).collect();
        if dropped.is_empty() {
            return Ok(dropped);
        }
        next.keys.retain(|id, _| *id == current || used.contains(id));
        self.save(next)?;
        Ok(dropped)
    }

    /// Puts the registry under the master key of `provider` (its current master id); no
    /// data file is rewritten.
    pub(crate) fn rewrap(&self, provider: Arc<dyn KeyProvider>) -> Result<()> {
        let _w = self.writing.lock();
        let mut next = self.state.read().clone();
        next.master_id = provider.current_master_id();
        *self.provider.lock() = provider;
        self.save(next)
    }

    /// The registry's state now, for [`Keyring::write_snapshot`]: every key a file written
    /// so far can use.
    pub(crate) fn snapshot(&self) -> KeyringSnapshot {
        KeyringSnapshot(self.state.read().clone())
    }

    /// Writes `snapshot` as the key registry of the database copy in `dir` (a checkpoint),
    /// with its `KEYRING`; fsyncs both and the directory.
    pub(crate) fn write_snapshot(&self, fs: &dyn FileSystem, dir: &Path, snapshot: &KeyringSnapshot) -> Result<()> {
        let master = self.provider.lock().master_key(&snapshot.0.master_id)?;
        write_registry(fs, dir, &snapshot.0, &master)
    }

    /// Writes `next` as the next registry, switches `KEYRING` to it and installs it.
    fn save(&self, mut next: KeyState) -> Result<()> {
        let fs = self.fs.as_ref();
        let old = self.state.read().number;
        next.number = next.number.max(old) + 1;
        let master = self.provider.lock().master_key(&next.master_id)?;
        write_registry(fs, &self.dir, &next, &master)?;
        *self.state.write() = next;
        if old != 0 {
            // Garbage now; a failure leaves it for the next open's `remove_stale`.
            let _ = fs.remove(&self.dir.join(keys_name(old)));
        }
        Ok(())
    }
}

/// A copy of a keyring's state (see [`Keyring::snapshot`]).
pub(crate) struct KeyringSnapshot(KeyState);

/// Writes registry `state.number` in `dir` under `master`, then points `KEYRING` at it:
/// registry fsynced, directory fsynced, `KEYRING.tmp` written and fsynced, renamed over
/// `KEYRING`, directory fsynced.
fn write_registry(fs: &dyn FileSystem, dir: &Path, state: &KeyState, master: &SecretKey) -> Result<()> {
    let path = dir.join(keys_name(state.number));
    if fs.exists(&path)? {
        fs.remove(&path)?; // a registry a crash left before the switch
    }
    let header = SegmentHeader::new(0, random_salt()?, state.master_id.clone());
    let cipher = FileCipher::new(master, &header.salt, FileRole::Registry, state.number)?;
    let mut w = LogWriter::encrypted(fs.create(&path)?, &header, cipher)?;
    w.add_records(encode_state(state).iter().map(Vec::as_slice))?;
    w.sync()?;
    drop(w);
    fs.sync_dir(dir)?;
    let tmp = dir.join(format!("{KEYRING}.tmp"));
    if fs.exists(&tmp)? {
        fs.remove(&tmp)?;
    }
    let mut f = fs.create(&tmp)?;
    f.append(encode_pointer(&keys_name(state.number)).as_bytes())?;
    f.sync()?;
    drop(f);
    fs.rename(&tmp, &dir.join(KEYRING))?;
    fs.sync_dir(dir)
}

fn encode_state(s: &KeyState) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (id, key) in &s.keys {
        let mut e = zeroize::Zeroizing::new(Vec::with_capacity(5 + KEY_LEN));
        e.push(tag::DATA_KEY);
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(key.bytes());
        out.push(e.to_vec());
    }
    let mut e = vec![tag::CURRENT];
    e.extend_from_slice(&s.current.to_le_bytes());
    out.push(e);
    let mut e = vec![tag::ENCRYPTED_FROM];
    e.extend_from_slice(&s.encrypted_from.to_le_bytes());
    out.push(e);
    out
}

/// Reads registry `number` in `dir`.
fn read_registry(fs: &dyn FileSystem, dir: &Path, number: u64, provider: &dyn KeyProvider) -> Result<KeyState> {
    let path = dir.join(keys_name(number));
    let data = fs.read_all(&path)?;
    // The master id is in the plaintext header: read it first to ask for the right key.
    let master_id =
        peek_label(&data).ok_or_else(|| Error::corruption(&path, 0, "key registry has no segment header"))?;
    let master = provider.master_key(&master_id)?;
    let mut reader = LogReader::new(data, &path).with_cipher_source(Some(Arc::new(MasterSource(master))));
    let mut keys = BTreeMap::new();
    let (mut current, mut encrypted_from) = (None, None);
    let mut first = true;
    loop {
        let rec = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(Error::Corruption { what, .. }) if first && what.contains("does not authenticate") => {
                return Err(Error::WrongKey(format!(
                    "master key {master_id} does not open the key registry {}",
                    path.display()
                )))
            }
            Err(e) => return Err(e),
        };
        first = false;
        let bad = |what: &str| Error::corruption(&path, rec.offset, what);
        let mut r = Reader::new(&rec.payload);
        match r.u8() {
            Some(tag::DATA_KEY) => {
                let id = r.u32().ok_or_else(|| bad("truncated data key"))?;
                let bytes: [u8; KEY_LEN] =
                    r.bytes(KEY_LEN).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("truncated data key"))?;
                if keys.insert(id, Arc::new(SecretKey::from_bytes(bytes))).is_some() {
                    return Err(bad("data key id listed twice"));
                }
            }
            Some(tag::CURRENT) => current = Some(r.u32().ok_or_else(|| bad("truncated current key id"))?),
            Some(tag::ENCRYPTED_FROM) => encrypted_from = Some(r.u64().ok_or_else(|| bad("truncated file number"))?),
            _ => return Err(bad("unknown key registry edit")),
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes in a key registry edit"));
        }
    }
    if let Some(tail) = reader.dropped_tail() {
        // Registries are synced before KEYRING names them: a damaged end is damage.
        return Err(Error::corruption(&path, tail.offset, format!("key registry damaged: {}", tail.reason)));
    }
    let (Some(current), Some(encrypted_from)) = (current, encrypted_from) else {
        return Err(Error::corruption(&path, 0, "key registry lacks its current key or its encrypted-from number"));
    };
    if !keys.contains_key(&current) {
        return Err(Error::corruption(&path, 0, format!("current data key {current} is not in the registry")));
    }
    Ok(KeyState { number, master_id, keys, current, encrypted_from })
}

/// The label (master id) of the segment header a registry starts with.
fn peek_label(data: &[u8]) -> Option<String> {
    crate::wal::peek_segment_header(data).map(|h| h.label)
}
