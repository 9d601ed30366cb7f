//! The write path: the write API of [`Db`] (`put`, `delete`, `write`), committing groups
//! formed by the [`CommitQueue`], memtable rotation and backpressure.
//!
//! A writer joins the commit queue; whoever leads commits the whole group: checks the
//! database's health, makes room (rotating a full memtable, stalling while too many frozen
//! memtables wait for flush), assigns sequence numbers, appends all records with one
//! `append`, fsyncs once if any writer asked for `sync`, inserts into the memtable and
//! publishes the last sequence number. The queue then hands every writer its result.
//!
//! Invariants: WAL before memtable; the sequence number is published only after the
//! memtable holds the whole group; after a failed log write or fsync the database is
//! failed (poisoned) and refuses writes (what reached the disk is unknown); a panic while
//! committing (a bug) fails the group and the database instead of leaving the queue
//! leaderless with every writer asleep.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commit_queue::{Group, Turn};
use super::stats::Counters;
use super::{Db, DbInner, SuperVersion, WalState};
use crate::batch::WriteBatch;
use crate::crypt::new_log_writer;
use crate::filename::log_path;
use crate::key::SeqNo;
use crate::options::WriteOptions;
use crate::{Error, Result};

impl Db {
    /// Sets `key` to `value` (not fsynced; see [`Db::write`]).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        let mut b = WriteBatch::with_capacity(key.len() + value.len() + 11);
        b.put(key, value);
        self.write(b, &WriteOptions::default())
    }

    /// Deletes `key` (not fsynced; see [`Db::write`]).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        let mut b = WriteBatch::with_capacity(key.len() + 6);
        b.delete(key);
        self.write(b, &WriteOptions::default())
    }

    /// Applies every operation of `batch` atomically: after a crash either all or none are
    /// present. With `opts.sync` the write is durable once this returns. Sizes are checked
    /// here against `Options::max_key_size`, `max_value_size` and `max_batch_size`.
    pub fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.inner().write(batch, opts)
    }

    /// Makes every write committed so far durable (fsyncs the log unless that is already
    /// done) and returns the sequence number up to which every write is durable: at least
    /// the [`Db::last_sequence`] read before the call. A no-op when nothing new was written.
    pub fn sync_wal(&self) -> Result<SeqNo> {
        self.inner().sync_wal()
    }
}

impl DbInner {
    fn sync_wal(&self) -> Result<SeqNo> {
        self.check_writable()?;
        let mut wal_guard = self.wal.lock();
        let wal = wal_guard.as_mut().ok_or(Error::Closed)?;
        self.health.check_not_failed()?;
        if wal.synced_seq < wal.last_seq {
            if let Err(e) = wal.writer.sync() {
                wal.failed = true;
                self.fail(&e);
                return Err(e);
            }
            Counters::add(&self.counters.log_syncs, 1);
            wal.synced_seq = wal.last_seq;
        }
        Ok(wal.synced_seq)
    }

    /// Commits `batch` atomically; returns once it is in the log (fsynced if asked) and
    /// visible to reads.
    pub(crate) fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.check_writable()?;
        batch.validate(&self.opts)?;
        if batch.is_empty() {
            return Ok(());
        }
        let (ticket, mut turn) = self.commit.join(batch, opts.sync);
        loop {
            match turn {
                Turn::Committed(result) => return result,
                Turn::Lead => {
                    let mut group = self.commit.lead(&ticket);
                    let mut synced_in = None;
                    let outcome =
                        std::panic::catch_unwind(AssertUnwindSafe(|| self.commit_group(&mut group, &mut synced_in)));
                    match outcome {
                        Ok(result) => self.commit.finish(group, &result, synced_in),
                        Err(panic) => {
                            let e = Error::Internal("a commit group panicked".into());
                            self.fail(&e);
                            self.commit.finish(group, &Err(Error::Poisoned), synced_in);
                            // This writer stops waiting: its own batch may still be queued.
                            self.commit.abandon(&ticket);
                            std::panic::resume_unwind(panic);
                        }
                    }
                    turn = self.commit.next_turn(&ticket);
                }
            }
        }
    }

    /// Leader only: logs, applies and publishes one group; reports how long its fsync took.
    fn commit_group(&self, group: &mut Group, synced_in: &mut Option<Duration>) -> Result<()> {
        let mut wal_guard = self.wal.lock();
        let wal = wal_guard.as_mut().ok_or(Error::Closed)?;
        self.health.check_not_failed()?;
        self.throttle()?;
        self.make_room(wal)?;

        let first = wal.last_seq + 1;
        let mut seq = first;
        for p in group.members.iter_mut() {
            p.batch.encode_with_seq(seq);
            seq += p.batch.len() as u64;
        }
        let last = seq - 1;
        let sync = group.wants_sync();
        let logged = wal.writer.add_records(group.members.iter().map(|p| p.batch.encoded())).and_then(|()| {
            if sync {
                let start = Instant::now();
                let r = wal.writer.sync();
                *synced_in = Some(start.elapsed());
                r
            } else {
                Ok(())
            }
        });
        if let Err(e) = logged {
            wal.failed = true;
            self.fail(&e);
            return Err(e);
        }
        wal.last_seq = last;
        if sync {
            wal.synced_seq = last;
        }
        Counters::add(&self.counters.user_bytes, group.members.iter().map(|p| p.batch.encoded_size() as u64).sum());
        Counters::add(&self.counters.write_batches, group.members.len() as u64);
        Counters::add(&self.counters.write_groups, 1);
        Counters::add(&self.counters.log_syncs, u64::from(sync));

        let mem = self.super_version.read().mem.clone();
        let mut seq = first;
        for p in &group.members {
            // The batch was validated before it was queued, so every operation decodes.
            for (kind, key, value) in p.batch.ops().flatten() {
                mem.insert(key, seq, kind, value);
                seq += 1;
            }
        }
        self.visible_seq.store(last, Ordering::Release);
        Ok(())
    }

    /// Leader only: if the active memtable is full, waits for room among the frozen ones and
    /// rotates to a new memtable and log.
    fn make_room(&self, wal: &mut WalState) -> Result<()> {
        if self.super_version.read().mem.approximate_size() < self.opts.write_buffer_size {
            return Ok(());
        }
        self.wait_for_room()?;
        self.rotate(wal)
    }

    /// Blocks while the number of frozen memtables is at its limit.
    pub(super) fn wait_for_room(&self) -> Result<()> {
        self.wait_until(|| self.super_version.read().imm.len() < self.opts.max_immutable_memtables)
    }

    /// Write backpressure: stops writers while level 0 or the compaction debt is at its stop
    /// threshold, and delays each write group by 1 ms while it is past the slowdown one.
    fn throttle(&self) -> Result<()> {
        let o = &self.opts;
        let l0 = || self.super_version.read().version.levels.first().map_or(0, Vec::len);
        let debt = || self.compaction_debt.load(Ordering::Relaxed);
        if l0() >= o.level0_stop_trigger || debt() >= o.hard_pending_compaction_bytes {
            self.wait_until(|| l0() < o.level0_stop_trigger && debt() < o.hard_pending_compaction_bytes)?;
        } else if l0() >= o.level0_slowdown_trigger || debt() >= o.soft_pending_compaction_bytes {
            Counters::add(&self.counters.slowdowns, 1);
            let start = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            Counters::add(&self.counters.stall_micros, start.elapsed().as_micros() as u64);
        }
        Ok(())
    }

    /// Blocks until `ready()` (re-checked whenever background work finishes), counting the
    /// wait as a write stop; fails if background work failed or the database closes.
    fn wait_until(&self, ready: impl Fn() -> bool) -> Result<()> {
        let mut bg = self.bg.lock();
        let mut start = None;
        let result = loop {
            if let Some(e) = self.health.failure() {
                break Err(e);
            }
            if bg.shutting_down {
                break Err(Error::Closed);
            }
            if ready() {
                break Ok(());
            }
            if start.is_none() {
                Counters::add(&self.counters.stops, 1);
                start = Some(Instant::now());
            }
            self.bg_cv.wait(&mut bg);
        };
        if let Some(start) = start {
            Counters::add(&self.counters.stall_micros, start.elapsed().as_micros() as u64);
        }
        result
    }

    /// Freezes the active memtable and starts a new one with a new log. The old log is
    /// fsynced first, so only the newest log can ever have a torn tail.
    pub(super) fn rotate(&self, wal: &mut WalState) -> Result<()> {
        if let Err(e) = wal.writer.sync() {
            wal.failed = true;
            self.fail(&e);
            return Err(e);
        }
        wal.synced_seq = wal.last_seq;
        let number = self.versions.lock().new_file_number();
        let path = log_path(&self.dir, number);
        let writer = self
            .ctx
            .fs
            .create(&path)
            .and_then(|f| new_log_writer(f, number, self.ctx.keys.as_deref()))
            .and_then(|w| self.ctx.fs.sync_dir(&self.dir).map(|()| w));
        wal.writer = match writer {
            Ok(w) => w,
            Err(e) => {
                self.fail(&e);
                return Err(e);
            }
        };
        {
            let mut sv = self.super_version.write();
            let mut imm = Vec::with_capacity(sv.imm.len() + 1);
            imm.push(sv.mem.clone());
            imm.extend(sv.imm.iter().cloned());
            let mem = Arc::new(crate::memtable::Memtable::new(number, &self.opts));
            *sv = Arc::new(SuperVersion { mem, imm, version: sv.version.clone() });
        }
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
        Ok(())
    }
}
