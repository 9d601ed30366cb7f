//! Opening a database: lock, recover the manifest, replay the logs, start a fresh log and
//! manifest, delete leftovers, start the flush thread; and closing it.
//!
//! Order of an open (see `docs/durability.md`; the checks are in `recovery.rs`):
//! - `CURRENT` names the manifest; its edits give the live tables, the oldest live log
//!   (`log_number`), the next file number and the last flushed sequence number. Every live
//!   table must exist with its recorded size.
//! - The next file number is raised past every numbered file in the directory, so no file
//!   is ever created over an existing one.
//! - Every log numbered `>= log_number` is replayed in order (`recovery::replay_logs`).
//! - Replayed data is written to level-0 tables before anything is deleted, then a new
//!   manifest (full state, new log number) becomes `CURRENT`. Only then are old logs,
//!   manifests, temporary files and unreferenced tables removed (or quarantined).

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::flush::{sst_options, write_table};
use super::health::Health;
use super::recovery::{check_live_tables, delete_obsolete_files, replay_logs, RecoveryReport};
use super::{BgState, Db, DbHandle, DbInner, SuperVersion, WalState};
use crate::crypt::new_log_writer;
use crate::crypt::Keyring;
use crate::filename::{log_path, parse_file_name, FileKind, LOCK};
use crate::memtable::{Memtable, MemtableIter};
use crate::options::Options;
use crate::sst::BlockCache;
use crate::version::{TableContext, VersionEdit, VersionSet};
use crate::{Error, Result};

impl Db {
    /// Opens (or, with `create_if_missing`, creates) the database in directory `path`.
    ///
    /// Fails with [`Error::Busy`] if another process or `Db` holds it, and with
    /// [`Error::Corruption`] if its files are damaged beyond what the recovery mode accepts.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let opts = opts.resolved()?;
        let dir = path.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        if opts.create_if_missing {
            fs.create_dir_all(&dir)?;
        } else if !fs.exists(&dir)? {
            return Err(Error::NotFound(format!("database directory {} does not exist", dir.display())));
        }
        let lock = fs.lock(&dir.join(LOCK))?;
        let keys = open_keyring(&opts, &dir, true)?;
        let cache = (opts.block_cache_capacity > 0).then(|| Arc::new(BlockCache::new(opts.block_cache_capacity)));
        let ctx = TableContext::new(fs.clone(), dir.clone(), cache, keys.clone());

        let mut versions = match VersionSet::recover(ctx.clone(), opts.num_levels, opts.recovery_mode)? {
            Some(_) if opts.error_if_exists => {
                return Err(Error::InvalidArgument(format!("database {} already exists", dir.display())))
            }
            Some(v) => v,
            None if !opts.create_if_missing => {
                return Err(Error::NotFound(format!("no database in {}", dir.display())))
            }
            None => VersionSet::new_empty(ctx.clone(), opts.num_levels),
        };

        let mut report = RecoveryReport::default();
        let manifest_tail = versions.dropped_manifest_tail().cloned();
        let quarantine_from = manifest_tail.is_some().then_some(versions.next_file_number);
        if let Some(tail) = manifest_tail {
            report.add_dropped(&opts, tail);
        }
        check_live_tables(&ctx, &versions.current())?;

        // Never hand out a number a file in the directory already has (an interrupted
        // flush's table, a log of a failed open): `create` refuses existing files, and a
        // reader elsewhere may have that file mapped.
        for name in fs.list(&dir)? {
            if let Some(FileKind::Log(n) | FileKind::Table(n) | FileKind::Manifest(n)) = parse_file_name(&name) {
                versions.next_file_number = versions.next_file_number.max(n + 1);
            }
        }

        let mut edit = VersionEdit::default();
        let sst_opts = sst_options(&opts, 0);
        let mut write_l0 = |mem: Memtable, versions: &mut VersionSet| -> Result<()> {
            let mut new_number = || versions.new_file_number();
            let tables = write_table(&ctx, &mut new_number, &mut MemtableIter::new(Arc::new(mem)), &sst_opts)?;
            edit.new_files.extend(tables.into_iter().map(|m| (0, m)));
            Ok(())
        };
        let (last_seq, mem) = replay_logs(&ctx, &opts, &mut versions, Some(&mut write_l0), &mut report)?;
        if !mem.is_empty() {
            write_l0(mem, &mut versions)?;
        }
        if !edit.new_files.is_empty() {
            fs.sync_dir(&dir)?;
            versions.install_recovered(&edit)?;
        }

        let wal_number = versions.new_file_number();
        let wal_path = log_path(&dir, wal_number);
        let wal_file = fs.create(&wal_path)?;
        versions.log_number = wal_number;
        versions.last_sequence = last_seq;
        versions.write_new_manifest()?; // fsyncs the directory: the new log's entry too
        delete_obsolete_files(&ctx, &opts, &versions, quarantine_from, &mut report)?;

        let wal = WalState {
            writer: new_log_writer(wal_file, wal_number, keys.as_deref())?,
            last_seq,
            synced_seq: last_seq,
            failed: false,
        };
        let mem = Memtable::new(wal_number, &opts);
        let inner = DbInner::new(opts, ctx, Some(lock), versions, mem, Some(wal), report);
        // From here on the handle owns the threads: dropping it on an error below stops them.
        let db = Db { handle: Arc::new(DbHandle { inner: inner.clone() }) };
        let flusher = inner.clone();
        spawn(&inner, "kho-flush", move || flusher.flush_loop())?;
        let compactor = inner.clone();
        spawn(&inner, "kho-compact", move || compactor.compaction_loop())?;
        Ok(db)
    }

    /// Opens the database in `path` **read-only**, for inspection tools: takes no lock,
    /// writes nothing (the logs are replayed into memory only), runs no background work.
    /// It can open a copy of a damaged database, or a database a writer is using: every
    /// table of the recovered version is opened up front, so a concurrent compaction
    /// deleting files cannot pull them away afterwards.
    ///
    /// Against a running writer the view is consistent: recovery's own checks (the log the
    /// manifest names exists, sequence numbers continue from the manifest through the logs,
    /// every table opens) fail if a flush or compaction deleted a file the manifest it read
    /// still needed; such a failure is retried when the manifest (`CURRENT` and the
    /// manifest's length) changed meanwhile, and reported when it did not.
    /// Writes, `flush` and `compact_range` return [`Error::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let opts = opts.resolved()?;
        let dir = path.as_ref();
        let mut attempt = 0u32;
        loop {
            let before = manifest_identity(opts.fs.as_ref(), dir);
            let result = Self::try_open_read_only(dir, &opts);
            if result.is_ok() || manifest_identity(opts.fs.as_ref(), dir) == before {
                return result; // consistent, or a failure not caused by a concurrent change
            }
            attempt += 1;
            if attempt >= READ_ONLY_OPEN_ATTEMPTS {
                let last = result.err().map_or_else(String::new, |e| e.to_string());
                return Err(Error::Busy {
                    path: dir.to_owned(),
                    reason: format!("the database changed during each of {attempt} read-only opens (last: {last})"),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt)));
        }
    }

    fn try_open_read_only(dir: &Path, opts: &Options) -> Result<Db> {
        let keys = open_keyring(opts, dir, false)?;
        let cache = (opts.block_cache_capacity > 0).then(|| Arc::new(BlockCache::new(opts.block_cache_capacity)));
        let ctx = TableContext::new(opts.fs.clone(), dir.to_path_buf(), cache, keys);
        let mut versions = VersionSet::recover(ctx.clone(), opts.num_levels, opts.recovery_mode)?
            .ok_or_else(|| Error::NotFound(format!("no database in {}", dir.display())))?;
        let mut report = RecoveryReport::default();
        if let Some(tail) = versions.dropped_manifest_tail() {
            report.add_dropped(opts, tail.clone());
        }
        let (last_seq, mem) = replay_logs(&ctx, opts, &mut versions, None, &mut report)?;
        for (_, f) in versions.current().files() {
            f.reader()?;
        }
        versions.last_sequence = last_seq;
        let inner = DbInner::new(opts.clone(), ctx, None, versions, mem, None, report);
        Ok(Db { handle: Arc::new(DbHandle { inner }) })
    }
}

/// The keyring of the database in `dir`: `None` for a plaintext database opened without
/// encryption. An encrypted database (it has a key registry) opened without encryption is
/// [`Error::KeyNeeded`]. A writable open with encryption of a database without a registry
/// creates one (a new database, or a plaintext one being converted: its files numbered
/// below the next file number stay readable as plaintext); a read-only open never writes
/// and reads a plaintext database as it is.
fn open_keyring(opts: &Options, dir: &Path, writable: bool) -> Result<Option<Arc<Keyring>>> {
    let fs = &opts.fs;
    let has_registry = Keyring::exists(fs.as_ref(), dir)?;
    let Some(enc) = &opts.encryption else {
        return match has_registry {
            true => Err(Error::KeyNeeded { path: dir.to_owned() }),
            false => Ok(None),
        };
    };
    if has_registry {
        let ring = Keyring::load(fs.clone(), dir, enc.provider.clone())?;
        if writable {
            ring.remove_stale()?;
        }
        return Ok(Some(Arc::new(ring)));
    }
    if !writable {
        return Ok(None);
    }
    let has_database = fs.exists(&dir.join(crate::filename::CURRENT))?;
    if !has_database && !opts.create_if_missing {
        return Ok(None); // the open fails as "no database" without writing anything
    }
    let mut encrypted_from = 1;
    for name in fs.list(dir)? {
        if let Some(FileKind::Log(n) | FileKind::Table(n) | FileKind::Manifest(n)) = parse_file_name(&name) {
            if has_database && n + 1 > encrypted_from && is_encrypted_log(fs.as_ref(), &dir.join(&name))? {
                // Logs and manifests of an encrypted database, but no registry to open them.
                return Err(Error::corruption(
                    dir.join(crate::filename::KEYRING),
                    0,
                    format!("the key registry is missing, but {name} is encrypted"),
                ));
            }
            encrypted_from = encrypted_from.max(n + 1);
        }
    }
    Ok(Some(Arc::new(Keyring::create(fs.clone(), dir, enc.provider.clone(), encrypted_from)?)))
}

/// True if the file at `path` is a log or manifest that starts with a segment header.
fn is_encrypted_log(fs: &dyn crate::vfs::FileSystem, path: &Path) -> Result<bool> {
    if !matches!(
        path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name),
        Some(FileKind::Log(_) | FileKind::Manifest(_))
    ) {
        return Ok(false);
    }
    let data = fs.read_all(path)?;
    Ok(crate::wal::format::decode_header(&data)
        .is_some_and(|h| h.transform == crate::wal::format::TRANSFORM_SEGMENT_HEADER))
}

/// How often a read-only open is tried against a database that keeps changing under it.
const READ_ONLY_OPEN_ATTEMPTS: u32 = 32;

/// What identifies the manifest state a read-only open saw: `CURRENT`'s bytes and the length
/// of the manifest it names (manifests only grow). `None` if either cannot be read.
fn manifest_identity(fs: &dyn crate::vfs::FileSystem, dir: &Path) -> Option<(bytes::Bytes, u64)> {
    let current_path = dir.join(crate::filename::CURRENT);
    let current = fs.read_all(&current_path).ok()?;
    let number = crate::filename::decode_current(&current_path, &current).ok()?;
    let size = fs.file_size(&dir.join(crate::filename::manifest_name(number))).ok()?;
    Some((current, size))
}

impl DbInner {
    /// Assembles an open database; `wal` is `None` for a read-only one.
    fn new(
        opts: Options,
        ctx: TableContext,
        lock: Option<Box<dyn crate::vfs::FileLock>>,
        versions: VersionSet,
        mem: Memtable,
        wal: Option<WalState>,
        recovery: RecoveryReport,
    ) -> Arc<DbInner> {
        let version = versions.current();
        let num_levels = opts.num_levels;
        let last_seq = versions.last_sequence;
        let inner = Arc::new(DbInner {
            dir: ctx.dir.clone(),
            read_only: wal.is_none(),
            opts,
            ctx,
            lock: Mutex::new(lock),
            super_version: RwLock::new(Arc::new(SuperVersion { mem: Arc::new(mem), imm: Vec::new(), version })),
            visible_seq: AtomicU64::new(last_seq),
            versions: Mutex::new(versions),
            commit: Default::default(),
            wal: Mutex::new(wal),
            bg: Mutex::new(BgState::default()),
            bg_cv: Condvar::new(),
            health: Health::default(),
            snapshots: Default::default(),
            threads: Mutex::new(Vec::new()),
            compaction_lock: Mutex::new(()),
            compaction_cursors: Mutex::new(vec![Vec::new(); num_levels]),
            compaction_debt: AtomicU64::new(0),
            counters: Default::default(),
            recovery,
            audit_writer: std::sync::atomic::AtomicBool::new(false),
        });
        inner.install_version(inner.versions.lock().current());
        inner
    }
}

/// Starts a background thread owned by `inner` (joined by `close`).
fn spawn(inner: &DbInner, name: &str, body: impl FnOnce() + Send + 'static) -> Result<()> {
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(|e| Error::io("spawn background thread", &inner.dir, e))?;
    inner.threads.lock().push(thread);
    Ok(())
}

impl DbInner {
    /// Syncs the log, stops the background threads (a running compaction finishes first)
    /// and releases the lock; returns the database's failure if it failed (a log write, a
    /// flush, a compaction). Idempotent (a second call returns `Ok`).
    pub(crate) fn close(&self) -> Result<()> {
        if !self.health.close() {
            return Ok(());
        }
        let synced = match self.wal.lock().take() {
            // After a background failure the log is sound: acknowledged writes must still
            // become durable. Only a failed log write or fsync makes a sync pointless.
            Some(mut wal) if !wal.failed => wal.writer.sync(),
            _ => Ok(()),
        };
        {
            let mut bg = self.bg.lock();
            bg.shutting_down = true;
            self.bg_cv.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        // A `compact_range` on another thread finishes its current step and then sees the
        // database closed: it must not log an edit or delete a table after the lock is
        // released and another `Db` may have opened the directory.
        drop(self.compaction_lock.lock());
        self.lock.lock().take();
        // Cached blocks and memtables are of no use to a closed database: their memory goes
        // back now, not when the last handle drops. The memtables' writes are in the log
        // (synced above); cursors opened before keep the view they hold, and a read racing
        // with this sees the database closed (`open_read_view`).
        if let Some(cache) = &self.ctx.cache {
            cache.release();
        }
        {
            let mut sv = self.super_version.write();
            let mem = Arc::new(Memtable::unfiltered(sv.mem.wal_number()));
            *sv = Arc::new(SuperVersion { mem, imm: Vec::new(), version: sv.version.clone() });
        }
        // A failure is reported here too: writes since it may not be durable, and a failed
        // flush may have been holding some.
        match self.health.failure() {
            Some(e) => Err(e),
            None => synced,
        }
    }
}
