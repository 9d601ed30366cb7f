//! The write path: group commit, memtable rotation and backpressure.
//!
//! Writers enqueue their batch; the first writer to find no active leader becomes leader,
//! takes every queued batch (up to [`MAX_GROUP_BYTES`]), and for the whole group:
//! checks the poison flag, makes room (rotating a full memtable, stalling while too many
//! frozen memtables wait for flush), assigns sequence numbers, appends all records with one
//! `append`, fsyncs once if any writer asked for `sync`, inserts into the memtable and
//! publishes the last sequence number. Then it hands every writer its result.
//!
//! Gathering: a leader whose group will fsync first waits briefly (at most half the last
//! fsync's duration, [`MAX_GATHER`] at most) for the writers of the previous group that have
//! not queued again yet. Without it, concurrent sync writers split into two alternating
//! halves — one half queues while the other's fsync runs — and a group never holds more than
//! about half of them. A writer alone never waits: the previous group was itself.
//!
//! Invariants: WAL before memtable; the sequence number is published only after the
//! memtable holds the whole group; after a failed log write or fsync the database is
//! poisoned and refuses writes (what reached the disk is unknown).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::stats::Counters;
use super::{DbInner, SuperVersion, WalState};
use crate::batch::WriteBatch;
use crate::filename::log_path;
use crate::options::WriteOptions;
use crate::wal::LogWriter;
use crate::{Error, Result};

/// Largest group one leader commits, in encoded bytes: bounds the latency a small write
/// waits behind a large group, as LevelDB's 1 MiB limit does.
const MAX_GROUP_BYTES: usize = 1 << 20;

/// The longest a leader waits to gather the previous group's writers before an fsync.
const MAX_GATHER: Duration = Duration::from_micros(500);

/// Writers remembered from the previous group (beyond this, gathering waits for no more).
const MAX_REMEMBERED_WRITERS: usize = 64;

struct Pending {
    ticket: u64,
    batch: WriteBatch,
    sync: bool,
    writer: ThreadId,
    /// Wakes this writer (and only it): when its result is ready, or when it is at the front
    /// of the queue with no leader.
    waker: Arc<Condvar>,
}

thread_local! {
    /// The condition variable a thread waits on for its write (a thread has at most one
    /// write queued, so one per thread suffices).
    static WAKER: Arc<Condvar> = Arc::new(Condvar::new());
}

/// Hashes a ticket to itself: tickets are unique consecutive integers, so SipHash's
/// protection buys nothing on this per-write path.
#[derive(Default)]
struct TicketHasher(u64);

impl Hasher for TicketHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<Pending>,
    done: HashMap<u64, Result<()>, BuildHasherDefault<TicketHasher>>,
    leader_active: bool,
    next_ticket: u64,
    /// While a leader waits for writers to queue: its waker, which new writers notify.
    gathering: Option<Arc<Condvar>>,
    /// The writers of the previous group.
    last_group: Vec<ThreadId>,
    /// How long the previous fsync took.
    last_sync: Duration,
}

/// The queue writers join to be committed by a leader. Every wait and notification happens
/// under `state`'s lock, and each writer sleeps on its own condition variable, so a finished
/// group wakes exactly its members and the next leader, never the whole queue.
#[derive(Default)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
}

impl QueueState {
    /// Writers of the previous group not queued now: those a leader about to fsync waits for.
    fn missing_writers(&self) -> usize {
        self.last_group.iter().filter(|w| !self.pending.iter().any(|p| p.writer == **w)).count()
    }
}

impl DbInner {
    /// Commits `batch` atomically; returns once it is in the log (fsynced if asked) and
    /// visible to reads.
    pub(crate) fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.check_writable()?;
        batch.validate(&self.opts)?;
        if batch.is_empty() {
            return Ok(());
        }
        // `try_with`: a write from another thread-local's destructor may run after ours is gone.
        let waker = WAKER.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(Condvar::new()));
        let mut st = self.commit.state.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        let writer = std::thread::current().id();
        st.pending.push_back(Pending { ticket, batch, sync: opts.sync, writer, waker: Arc::clone(&waker) });
        if let Some(leader) = &st.gathering {
            leader.notify_one();
        }
        loop {
            if let Some(r) = st.done.remove(&ticket) {
                return r;
            }
            if st.leader_active {
                waker.wait(&mut st);
                continue;
            }
            st.leader_active = true;
            if st.pending.iter().any(|p| p.sync) && st.missing_writers() > 0 {
                let deadline = Instant::now() + (st.last_sync / 2).min(MAX_GATHER);
                st.gathering = Some(Arc::clone(&waker));
                while st.missing_writers() > 0 && !waker.wait_until(&mut st, deadline).timed_out() {}
                st.gathering = None;
            }
            let mut group = Vec::new();
            let mut bytes = 0;
            while let Some(p) = st.pending.front() {
                if !group.is_empty() && bytes + p.batch.encoded_size() > MAX_GROUP_BYTES {
                    break;
                }
                bytes += p.batch.encoded_size();
                group.extend(st.pending.pop_front());
            }
            st.last_group.clear();
            for p in &group {
                if st.last_group.len() < MAX_REMEMBERED_WRITERS && !st.last_group.contains(&p.writer) {
                    st.last_group.push(p.writer);
                }
            }
            let mut synced_in = None;
            // A panic while committing (a bug) must not leave the queue leaderless with every
            // writer asleep: the group fails, the database is poisoned (the log's state is
            // unknown), the queue moves on, and then the panic continues in this thread.
            let outcome = MutexGuard::unlocked(&mut st, || {
                std::panic::catch_unwind(AssertUnwindSafe(|| self.commit_group(&mut group, &mut synced_in)))
            });
            let (result, panic) = match outcome {
                Ok(r) => (r, None),
                Err(p) => {
                    self.poison();
                    (Err(Error::Poisoned), Some(p))
                }
            };
            if let Some(d) = synced_in {
                st.last_sync = d;
            }
            for p in &group {
                st.done.insert(p.ticket, result.as_ref().map(|_| ()).map_err(Error::replicate));
                p.waker.notify_one();
            }
            st.leader_active = false;
            // The writer now at the front (queued during this group) leads the next one.
            if let Some(next) = st.pending.front() {
                next.waker.notify_one();
            }
            if let Some(p) = panic {
                drop(st);
                std::panic::resume_unwind(p);
            }
        }
    }

    /// Leader only: logs, applies and publishes one group; reports how long its fsync took.
    fn commit_group(&self, group: &mut [Pending], synced_in: &mut Option<Duration>) -> Result<()> {
        let mut wal_guard = self.wal.lock();
        let wal = wal_guard.as_mut().ok_or(Error::Closed)?;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        self.throttle()?;
        self.make_room(wal)?;

        let first = wal.last_seq + 1;
        let mut seq = first;
        for p in group.iter_mut() {
            p.batch.encode_with_seq(seq);
            seq += p.batch.len() as u64;
        }
        let last = seq - 1;
        let sync = group.iter().any(|p| p.sync);
        let logged = wal.writer.add_records(group.iter().map(|p| p.batch.encoded())).and_then(|()| {
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
            self.poison();
            return Err(e);
        }
        wal.last_seq = last;
        Counters::add(&self.counters.user_bytes, group.iter().map(|p| p.batch.encoded_size() as u64).sum());
        Counters::add(&self.counters.write_batches, group.len() as u64);
        Counters::add(&self.counters.write_groups, 1);
        Counters::add(&self.counters.log_syncs, u64::from(sync));

        let mem = self.super_version.read().mem.clone();
        let mut seq = first;
        for p in group.iter() {
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
            if let Some(e) = &bg.error {
                break Err(e.replicate());
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
            self.poison();
            return Err(e);
        }
        let number = self.versions.lock().new_file_number();
        let path = log_path(&self.dir, number);
        let file = self.ctx.fs.create(&path).and_then(|f| self.ctx.fs.sync_dir(&self.dir).map(|()| f));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                self.poison();
                return Err(e);
            }
        };
        wal.writer = LogWriter::new(file);
        {
            let mut sv = self.super_version.write();
            let mut imm = Vec::with_capacity(sv.imm.len() + 1);
            imm.push(sv.mem.clone());
            imm.extend(sv.imm.iter().cloned());
            let mem = Arc::new(self.opts.new_memtable(number));
            *sv = Arc::new(SuperVersion { mem, imm, version: sv.version.clone() });
        }
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
        Ok(())
    }
}
