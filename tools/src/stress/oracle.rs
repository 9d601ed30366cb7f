//! The expected-state oracle: per key, what a read may return, in the style of RocksDB's
//! `db_stress` expected state.
//!
//! Every key has a version counter. A write of a key takes the next version and writes the
//! value `codec::value(key, version)` (or deletes the key), so a read that finds a value
//! knows exactly which write produced it. Writers of one key are serialized (`locks.rs`),
//! so at most one write per key is in flight, and per key the oracle keeps four words:
//!
//! - `committed`: the state the last *acknowledged* write left (`version`, put or delete);
//!   stored after `Db::write` returns `Ok`;
//! - `issued`: the highest version handed out (stored *before* the write is issued) and the
//!   highest version that is a delete;
//! - `durable`: the state the last write acknowledged *with sync* left (what a power loss
//!   must keep);
//! - a ring of the last [`RING`] events of the key, for the failure report.
//!
//! A read brackets the database read with oracle loads: `floor` (committed or durable) before
//! it, `issued` after it. Versions only grow, so it may see any version in
//! `floor.version ..= issued.version` — the writes in flight during the read may or may not
//! have landed — and nothing else. The key may be absent only if `floor` is a delete (or the
//! key was never written) or a delete was issued after `floor`.
//!
//! The words live in a memory map: a shared file mapping in crash mode, so the state survives
//! a `SIGKILL` of the child (the stores are in the page cache, no syscall needed), and an
//! anonymous mapping otherwise. The header also holds the run's counters, so the parent sees
//! what its children did.
//!
//! `unsafe`: one block, [`Oracle::words`], views the mapping as `[AtomicU64]`.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use memmap2::MmapMut;

const MAGIC: u64 = u64::from_le_bytes(*b"khostrs1");
const HEADER_WORDS: usize = 64;
/// Events remembered per key.
pub const RING: usize = 8;
const KEY_WORDS: usize = 4 + 2 * RING;
/// Header words 0..8 describe the file; counters start here.
pub const COUNTER_BASE: usize = 8;

const H_MAGIC: usize = 0;
const H_KEYS: usize = 1;
const H_RING: usize = 2;
const H_VALUE_SIZE: usize = 3;
const H_RECORD_SLOTS: usize = 4;

/// The state one write leaves a key in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// The version of that write; 0 = never written.
    pub version: u32,
    /// The write was a delete (or the key was never written).
    pub absent: bool,
}

impl State {
    /// A key nobody wrote.
    pub const NEVER: State = State { version: 0, absent: true };

    fn from_word(w: u64) -> State {
        State { version: (w >> 32) as u32, absent: w & 1 == 1 }
    }

    fn word(self) -> u64 {
        (u64::from(self.version) << 32) | u64::from(self.absent)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.version, self.absent) {
            (0, _) => write!(f, "never written (absent)"),
            (v, true) => write!(f, "deleted by v{v} (absent)"),
            (v, false) => write!(f, "value v{v}"),
        }
    }
}

/// What has been handed out for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    /// The highest version issued.
    pub version: u32,
    /// The highest version issued as a delete (0 if none).
    pub last_delete: u32,
}

impl Issued {
    fn from_word(w: u64) -> Issued {
        Issued { version: (w >> 32) as u32, last_delete: w as u32 }
    }

    fn word(self) -> u64 {
        (u64::from(self.version) << 32) | u64::from(self.last_delete)
    }
}

/// Put or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A put.
    Put = 0,
    /// A delete.
    Delete = 1,
}

/// What happened to a key, as remembered in its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A write was issued (before `Db::write`).
    Issued = 0,
    /// It was acknowledged without sync.
    Acked = 1,
    /// It was acknowledged with sync.
    AckedSynced = 2,
    /// `Db::write` returned an error: the write may or may not have landed.
    Failed = 3,
    /// After a reopen the checker found this state.
    Recovered = 4,
    /// Test hook: acknowledged in the oracle but never written.
    InjectedLost = 5,
    /// Test hook: written behind the oracle's back.
    InjectedPhantom = 6,
}

/// Which operation a write belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A single put or delete.
    Single = 0,
    /// A multi-key batch.
    Batch = 1,
    /// The write inside a snapshot-isolation check.
    Snapshot = 2,
    /// The checker's write after a recovery, fixing versions lost in flight as dead.
    Reconcile = 3,
    /// The checker itself.
    Checker = 4,
    /// A record-layer write (insert, upsert, delete).
    Record = 5,
    /// A record deleted by `erase_person`.
    Erase = 6,
}

/// One remembered event of a key.
#[derive(Debug, Clone, Copy)]
pub struct HistoryEntry {
    pub version: u32,
    pub kind: u8,
    pub event: u8,
    pub source: u8,
    pub thread: u8,
    pub cycle: u16,
    pub micros: u64,
}

impl HistoryEntry {
    fn encode(&self) -> (u64, u64) {
        let lo = (u64::from(self.kind & 0xF) << 28)
            | (u64::from(self.event & 0xF) << 24)
            | (u64::from(self.source & 0xF) << 20)
            | (u64::from(self.thread) << 12)
            | u64::from(self.cycle & 0xFFF);
        ((u64::from(self.version) << 32) | lo, self.micros)
    }

    fn decode(w0: u64, w1: u64) -> HistoryEntry {
        HistoryEntry {
            version: (w0 >> 32) as u32,
            kind: ((w0 >> 28) & 0xF) as u8,
            event: ((w0 >> 24) & 0xF) as u8,
            source: ((w0 >> 20) & 0xF) as u8,
            thread: ((w0 >> 12) & 0xFF) as u8,
            cycle: (w0 & 0xFFF) as u16,
            micros: w1,
        }
    }
}

impl fmt::Display for HistoryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.micros / 1_000_000;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let kind = if self.kind == Kind::Delete as u8 { "delete" } else { "put" };
        let event = [
            "issued",
            "acked",
            "acked (synced)",
            "FAILED (may or may not have landed)",
            "found after recovery",
            "INJECTED: acknowledged but never written",
            "INJECTED: written behind the oracle's back",
        ]
        .get(usize::from(self.event))
        .copied()
        .unwrap_or("?");
        let source = ["single", "batch", "snapshot-check", "reconcile", "checker", "record", "erase_person"]
            .get(usize::from(self.source))
            .copied();
        let who = if self.thread == u8::MAX { "checker".to_owned() } else { format!("thread {}", self.thread) };
        write!(
            f,
            "{h:02}:{m:02}:{s:02}.{:06} UTC  cycle {:>3}  {who:<10} {:<14} {kind:<6} v{:<6} {event}",
            self.micros % 1_000_000,
            self.cycle,
            source.unwrap_or("?"),
            self.version
        )
    }
}

/// Thread number the checker (the parent, or the recovery step) writes history as.
pub const CHECKER_THREAD: u8 = u8::MAX;

/// The expected state of every key. See the module docs.
///
/// Slots `0..keys` are the key-value keys; slots `keys..keys + record_slots` are the record
/// layer's (collection, primary key) slots, tracked the same way.
pub struct Oracle {
    map: MmapMut,
    keys: u32,
    record_slots: u32,
    value_size: usize,
}

impl Oracle {
    fn len_bytes(keys: u32) -> usize {
        (HEADER_WORDS + keys as usize * KEY_WORDS) * 8
    }

    /// A fresh oracle for `keys` keys and `record_slots` records, in a new file at `path`
    /// (shared with children) or in anonymous memory.
    pub fn create(path: Option<&Path>, keys: u32, record_slots: u32, value_size: usize) -> anyhow::Result<Oracle> {
        let slots = keys + record_slots;
        let len = Self::len_bytes(slots);
        let map = match path {
            Some(path) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                file.set_len(len as u64)?;
                // SAFETY: the file is ours (just created in the run directory) and no one
                // truncates it while mapped.
                unsafe { MmapMut::map_mut(&file) }.with_context(|| format!("mapping {}", path.display()))?
            }
            None => MmapMut::map_anon(len).context("mapping anonymous memory for the oracle")?,
        };
        let o = Oracle { map, keys, record_slots, value_size };
        let h = o.words();
        h[H_KEYS].store(u64::from(keys), SeqCst);
        h[H_RECORD_SLOTS].store(u64::from(record_slots), SeqCst);
        h[H_RING].store(RING as u64, SeqCst);
        h[H_VALUE_SIZE].store(value_size as u64, SeqCst);
        for k in 0..slots {
            o.slot(k, 0).store(State::NEVER.word(), SeqCst);
            o.slot(k, 2).store(State::NEVER.word(), SeqCst);
        }
        h[H_MAGIC].store(MAGIC, SeqCst);
        Ok(o)
    }

    /// Maps the oracle file a parent created (crash mode child).
    pub fn open(path: &Path) -> anyhow::Result<Oracle> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening the expected-state file {}", path.display()))?;
        // SAFETY: as in `create`: the run directory's file, never truncated while mapped.
        let map = unsafe { MmapMut::map_mut(&file) }?;
        if map.len() < HEADER_WORDS * 8 {
            bail!("{} is too short to be an expected-state file", path.display());
        }
        let mut o = Oracle { map, keys: 0, record_slots: 0, value_size: 0 };
        let h = o.words();
        let (magic, keys, ring) = (h[H_MAGIC].load(SeqCst), h[H_KEYS].load(SeqCst), h[H_RING].load(SeqCst));
        let value_size = h[H_VALUE_SIZE].load(SeqCst) as usize;
        let keys = u32::try_from(keys).unwrap_or(u32::MAX);
        let record_slots = u32::try_from(h[H_RECORD_SLOTS].load(SeqCst)).unwrap_or(u32::MAX);
        let slots = keys.saturating_add(record_slots);
        if magic != MAGIC || ring != RING as u64 || o.map.len() != Self::len_bytes(slots) {
            bail!("{} is not an expected-state file of this version", path.display());
        }
        o.keys = keys;
        o.record_slots = record_slots;
        o.value_size = value_size;
        Ok(o)
    }

    fn words(&self) -> &[AtomicU64] {
        let len = self.map.len() / 8;
        // SAFETY: the mapping is page-aligned (so 8-aligned), `len * 8` bytes long, and lives
        // as long as `self` (never remapped). `AtomicU64` has the layout of `u64` and every
        // bit pattern is valid. All access, from this process and the other one sharing the
        // file, goes through these atomics; no `&[u8]` to the mapping is ever handed out.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), len) }
    }

    fn slot(&self, key: u32, word: usize) -> &AtomicU64 {
        &self.words()[HEADER_WORDS + key as usize * KEY_WORDS + word]
    }

    /// Number of key-value keys.
    pub fn keys(&self) -> u32 {
        self.keys
    }

    /// Number of record slots.
    pub fn record_slots(&self) -> u32 {
        self.record_slots
    }

    /// The oracle slot of record slot `r`.
    pub fn record_slot(&self, r: u32) -> u32 {
        self.keys + r
    }

    /// The filler bound of the values (must match the writer's).
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Header counter `i` (see `report::Counter`).
    pub fn counter(&self, i: usize) -> &AtomicU64 {
        &self.words()[COUNTER_BASE + i]
    }

    /// The state the last acknowledged write of `key` left.
    pub fn committed(&self, key: u32) -> State {
        State::from_word(self.slot(key, 0).load(SeqCst))
    }

    /// What has been issued for `key`.
    pub fn issued(&self, key: u32) -> Issued {
        Issued::from_word(self.slot(key, 1).load(SeqCst))
    }

    /// The state the last write of `key` acknowledged with sync left.
    pub fn durable(&self, key: u32) -> State {
        State::from_word(self.slot(key, 2).load(SeqCst))
    }

    /// Writer side, under the key's lock: hands out the next version of `key` and records
    /// it as issued *before* the write reaches the database.
    pub fn begin(&self, key: u32, kind: Kind, source: Source, thread: u8, cycle: u16) -> u32 {
        let mut issued = self.issued(key);
        issued.version += 1;
        if kind == Kind::Delete {
            issued.last_delete = issued.version;
        }
        self.slot(key, 1).store(issued.word(), SeqCst);
        self.remember(key, issued.version, kind, Event::Issued, source, thread, cycle);
        issued.version
    }

    /// Writer side, under the key's lock: the write of `version` was acknowledged.
    #[allow(clippy::too_many_arguments, reason = "one flat record of the event")]
    pub fn ack(&self, key: u32, version: u32, kind: Kind, synced: bool, source: Source, thread: u8, cycle: u16) {
        let state = State { version, absent: kind == Kind::Delete };
        self.slot(key, 0).store(state.word(), SeqCst);
        if synced {
            self.slot(key, 2).store(state.word(), SeqCst);
        }
        let event = if synced { Event::AckedSynced } else { Event::Acked };
        self.remember(key, version, kind, event, source, thread, cycle);
    }

    /// After a recovery, under the key's lock: `state` is what the database now holds, and
    /// it is durable (recovery writes what it replays to synced tables).
    pub fn set_recovered(&self, key: u32, state: State, cycle: u16) {
        self.slot(key, 0).store(state.word(), SeqCst);
        self.slot(key, 2).store(state.word(), SeqCst);
        let kind = if state.absent { Kind::Delete } else { Kind::Put };
        self.remember(key, state.version, kind, Event::Recovered, Source::Checker, CHECKER_THREAD, cycle);
    }

    /// Appends an event to `key`'s ring (writer side, under the key's lock).
    #[allow(clippy::too_many_arguments, reason = "one flat record of the event")]
    pub fn remember(&self, key: u32, version: u32, kind: Kind, event: Event, source: Source, thread: u8, cycle: u16) {
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let e =
            HistoryEntry { version, kind: kind as u8, event: event as u8, source: source as u8, thread, cycle, micros };
        let pos = self.slot(key, 3).fetch_add(1, SeqCst) as usize % RING;
        let (w0, w1) = e.encode();
        self.slot(key, 4 + 2 * pos).store(w0, SeqCst);
        self.slot(key, 5 + 2 * pos).store(w1, SeqCst);
    }

    /// The remembered events of `key`, oldest first.
    pub fn history(&self, key: u32) -> Vec<HistoryEntry> {
        let written = self.slot(key, 3).load(SeqCst) as usize;
        let first = written.saturating_sub(RING);
        (first..written)
            .map(|i| {
                let pos = i % RING;
                HistoryEntry::decode(self.slot(key, 4 + 2 * pos).load(SeqCst), self.slot(key, 5 + 2 * pos).load(SeqCst))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_move_committed_durable_and_issued() {
        let o = Oracle::create(None, 4, 0, 16).unwrap();
        assert_eq!(o.committed(1), State::NEVER);
        let v = o.begin(1, Kind::Put, Source::Single, 0, 0);
        assert_eq!((v, o.issued(1).version, o.committed(1)), (1, 1, State::NEVER));
        o.ack(1, v, Kind::Put, false, Source::Single, 0, 0);
        assert_eq!(o.committed(1), State { version: 1, absent: false });
        assert_eq!(o.durable(1), State::NEVER, "not synced");
        let v = o.begin(1, Kind::Delete, Source::Batch, 2, 0);
        o.ack(1, v, Kind::Delete, true, Source::Batch, 2, 0);
        assert_eq!(o.durable(1), State { version: 2, absent: true });
        assert_eq!(o.issued(1), Issued { version: 2, last_delete: 2 });
        for _ in 0..20 {
            o.begin(1, Kind::Put, Source::Single, 1, 3);
        }
        let h = o.history(1);
        assert_eq!(h.len(), RING);
        assert_eq!(h.last().unwrap().version, 22);
        assert!(h.last().unwrap().to_string().contains("thread 1"), "{}", h.last().unwrap());
    }

    #[test]
    fn a_file_oracle_reopens_with_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected");
        let o = Oracle::create(Some(&path), 3, 2, 10).unwrap();
        let v = o.begin(2, Kind::Put, Source::Single, 0, 0);
        o.ack(2, v, Kind::Put, true, Source::Single, 0, 0);
        o.counter(1).fetch_add(5, SeqCst);
        drop(o);
        let o = Oracle::open(&path).unwrap();
        assert_eq!((o.keys(), o.record_slots(), o.value_size()), (3, 2, 10));
        assert_eq!(o.committed(2), State { version: 1, absent: false });
        assert_eq!(o.counter(1).load(SeqCst), 5);
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(Oracle::open(&path).is_err());
    }
}
