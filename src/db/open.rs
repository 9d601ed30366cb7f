//! Opening a database: lock, recover the manifest, replay the logs, start a fresh log and
//! manifest, delete leftovers, start the flush thread; and closing it.
//!
//! Recovery rules (see `docs/durability.md`):
//! - `CURRENT` names the manifest; its edits give the live tables, the oldest live log
//!   (`log_number`), the next file number and the last flushed sequence number.
//! - Every log numbered `>= log_number` is replayed in order. Only the newest log may end in
//!   a torn record (older logs were fsynced before the switch; empty logs left by an open
//!   that failed before switching `CURRENT` do not count); a torn tail is dropped under
//!   [`RecoveryMode::TolerateCorruptedTail`] and is corruption otherwise.
//! - Replayed data is written to level-0 tables before anything is deleted, then a new
//!   manifest (full state, new log number) becomes `CURRENT`. Only then are old logs,
//!   manifests, temporary files and tables the manifest does not list removed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::flush::{sst_options, write_table};
use super::{BgState, Db, DbHandle, DbInner, SuperVersion, WalState};
use crate::batch::DecodedBatch;
use crate::filename::{log_path, parse_file_name, FileKind, LOCK};
use crate::memtable::{Memtable, MemtableIter};
use crate::options::{Options, RecoveryMode};
use crate::sst::BlockCache;
use crate::version::{TableContext, VersionEdit, VersionSet};
use crate::wal::{LogReader, LogWriter, TailState};
use crate::{Error, Result};

impl Db {
    /// Opens (or, with `create_if_missing`, creates) the database in directory `path`.
    ///
    /// Fails with [`Error::Busy`] if another process or `Db` holds it, and with
    /// [`Error::Corruption`] if its files are damaged beyond what the recovery mode accepts.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        opts.validate()?;
        let dir = path.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        if opts.create_if_missing {
            fs.create_dir_all(&dir)?;
        } else if !fs.exists(&dir)? {
            return Err(Error::NotFound(format!("database directory {} does not exist", dir.display())));
        }
        let lock = fs.lock(&dir.join(LOCK))?;
        let cache = (opts.block_cache_capacity > 0).then(|| Arc::new(BlockCache::new(opts.block_cache_capacity)));
        let ctx = TableContext { fs: fs.clone(), dir: dir.clone(), cache };

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
            let number = versions.new_file_number();
            if let Some(meta) = write_table(&ctx, number, &mut MemtableIter::new(Arc::new(mem)), &sst_opts)? {
                edit.new_files.push((0, meta));
            }
            Ok(())
        };
        let (last_seq, mem) = replay_logs(&ctx, &opts, &mut versions, Some(&mut write_l0))?;
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
        delete_obsolete_files(&ctx, &versions)?;

        let wal = WalState { writer: LogWriter::new(wal_file), last_seq };
        let mem = opts.new_memtable(wal_number);
        let inner = DbInner::new(opts, ctx, Some(lock), versions, mem, Some(wal));
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
    /// deleting files cannot pull them away (the open is retried if that races).
    /// Writes, `flush` and `compact_range` return [`Error::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        opts.validate()?;
        let mut attempt = 0;
        loop {
            match Self::try_open_read_only(path.as_ref(), &opts) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < 4 => {
                    attempt += 1; // a writer switched manifests or deleted files meanwhile
                }
                r => return r,
            }
        }
    }

    fn try_open_read_only(dir: &Path, opts: &Options) -> Result<Db> {
        let cache = (opts.block_cache_capacity > 0).then(|| Arc::new(BlockCache::new(opts.block_cache_capacity)));
        let ctx = TableContext { fs: opts.fs.clone(), dir: dir.to_path_buf(), cache };
        let mut versions = VersionSet::recover(ctx.clone(), opts.num_levels, opts.recovery_mode)?
            .ok_or_else(|| Error::NotFound(format!("no database in {}", dir.display())))?;
        let (last_seq, mem) = replay_logs(&ctx, opts, &mut versions, None)?;
        for (_, f) in versions.current().files() {
            f.reader()?;
        }
        versions.last_sequence = last_seq;
        let inner = DbInner::new(opts.clone(), ctx, None, versions, mem, None);
        Ok(Db { handle: Arc::new(DbHandle { inner }) })
    }
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
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            snapshots: Default::default(),
            threads: Mutex::new(Vec::new()),
            compaction_lock: Mutex::new(()),
            compaction_cursors: Mutex::new(vec![Vec::new(); num_levels]),
            compaction_debt: AtomicU64::new(0),
            counters: Default::default(),
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

/// A memtable full during replay goes here (to be written as a level-0 table).
type FullMemtableSink<'a> = &'a mut dyn FnMut(Memtable, &mut VersionSet) -> Result<()>;

/// Replays every live log in order into a memtable, handing each full one to `on_full`
/// (when `None`, everything stays in memory). Returns the last sequence number seen and the
/// memtable holding the rest.
fn replay_logs(
    ctx: &TableContext,
    opts: &Options,
    versions: &mut VersionSet,
    mut on_full: Option<FullMemtableSink<'_>>,
) -> Result<(u64, Memtable)> {
    let mut logs: Vec<u64> = ctx
        .fs
        .list(&ctx.dir)?
        .iter()
        .filter_map(|n| match parse_file_name(n) {
            Some(FileKind::Log(n)) if n >= versions.log_number => Some(n),
            _ => None,
        })
        .collect();
    logs.sort_unstable();
    let mut last_seq = versions.last_sequence;
    let mut mem = Memtable::new(0);
    for (i, &number) in logs.iter().enumerate() {
        versions.next_file_number = versions.next_file_number.max(number + 1);
        let path = log_path(&ctx.dir, number);
        let mut reader = LogReader::new(ctx.fs.read_all(&path)?, &path);
        while let Some(rec) = reader.next_record()? {
            let payload_at = rec.offset + crate::wal::format::HEADER_LEN as u64;
            let batch = DecodedBatch::parse(&rec.payload).map_err(|w| Error::corruption(&path, payload_at, w))?;
            let mut seq = batch.seq;
            for op in batch.ops() {
                let (kind, key, value) =
                    op.map_err(|e| Error::corruption(&path, payload_at + e.offset as u64, e.what))?;
                mem.insert(key, seq, kind, value);
                seq += 1;
            }
            last_seq = last_seq.max(seq.saturating_sub(1));
            if let Some(sink) = on_full.as_mut() {
                if mem.approximate_size() >= opts.write_buffer_size {
                    sink(std::mem::replace(&mut mem, Memtable::new(0)), versions)?;
                }
            }
        }
        if let Some(TailState::Torn { offset, reason }) = reader.tail() {
            // Only the newest log can end torn: older ones were fsynced before the switch.
            // Empty logs after it do not count: an open that failed (or was killed) after
            // creating its new log but before switching `CURRENT` leaves one behind, and the
            // next open replays it too.
            let mut newest = true;
            for &later in &logs[i + 1..] {
                newest &= ctx.fs.open(&log_path(&ctx.dir, later))?.is_empty();
            }
            if !newest || opts.recovery_mode == RecoveryMode::AbsoluteConsistency {
                let why = if newest {
                    "torn tail (absolute consistency requested)"
                } else {
                    "torn tail in a log that is not the newest"
                };
                return Err(Error::corruption(&path, *offset, format!("{reason}: {why}")));
            }
        }
    }
    Ok((last_seq, mem))
}

/// Removes files no longer referenced: old logs and manifests, temporary files and tables
/// the current version does not list (outputs of an interrupted flush).
fn delete_obsolete_files(ctx: &TableContext, versions: &VersionSet) -> Result<()> {
    let live: HashSet<u64> = versions.current().files().map(|(_, f)| f.meta.number).collect();
    for name in ctx.fs.list(&ctx.dir)? {
        let garbage = match parse_file_name(&name) {
            Some(FileKind::Log(n)) => n < versions.log_number,
            Some(FileKind::Manifest(n)) => n != versions.manifest_number(),
            Some(FileKind::Table(n)) => !live.contains(&n),
            Some(FileKind::Temp) => true,
            _ => false,
        };
        if garbage {
            ctx.fs.remove(&ctx.dir.join(&name))?;
        }
    }
    Ok(())
}

impl DbInner {
    /// Syncs the log, stops the background threads (a running compaction finishes first)
    /// and releases the lock. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let synced = match self.wal.lock().take() {
            Some(mut wal) if !self.poisoned.load(Ordering::Acquire) => wal.writer.sync(),
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
        self.lock.lock().take();
        synced
    }
}
