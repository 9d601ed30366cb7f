//! The workload: worker threads drawing operations from the mix — puts, deletes, batches,
//! point reads, iterators (forward, reverse, both ends at once, prefix, seek), snapshot
//! reads, flushes and manual compactions — over a bounded key space, checking every read
//! against the oracle. The first failed check stops every worker.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kho::{Db, DbIterator, WriteBatch, WriteOptions};

use super::checker::{Expect, Floor};
use super::codec::{self, key};
use super::config::{Op, Settings};
use super::locks::KeyLocks;
use super::oracle::{Event, Kind, Oracle, Source, State};
use super::report::{Counter, Violation};
use super::rng::{derive, Rng};

/// What the workers of one run (or one faults-mode epoch) share.
pub struct Ctx {
    pub db: Db,
    pub oracle: Arc<Oracle>,
    pub locks: Arc<KeyLocks>,
    pub settings: Arc<Settings>,
    pub cycle: u16,
    pub stop: AtomicBool,
    /// Faults mode: errors from the database are expected now (counted, not violations).
    pub errors_expected: AtomicBool,
    /// Faults mode: `Error::Corruption` is expected too (reads fail or come back damaged, or
    /// written bytes are damaged), as long as no wrong value is returned.
    pub corruption_expected: AtomicBool,
    /// Faults mode: the file system lost power under the running database; the process
    /// "is dead", so errors of any kind are expected from here on.
    pub crashed: AtomicBool,
    /// The record layer over `db`.
    pub store: kho::record::Store,
    /// Record writers share it; `erase_person` takes it exclusively.
    pub erase_lock: RwLock<()>,
    /// Record writes that failed this cycle (their outcome is unknown until the recovery).
    pub record_uncertain: AtomicU64,
    failure: Mutex<Option<Violation>>,
}

impl Ctx {
    pub fn new(
        db: Db,
        store: kho::record::Store,
        oracle: Arc<Oracle>,
        locks: Arc<KeyLocks>,
        settings: Arc<Settings>,
        cycle: u16,
    ) -> Arc<Ctx> {
        Arc::new(Ctx {
            db,
            store,
            erase_lock: RwLock::new(()),
            record_uncertain: AtomicU64::new(0),
            oracle,
            locks,
            settings,
            cycle,
            stop: AtomicBool::new(false),
            errors_expected: AtomicBool::new(false),
            corruption_expected: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            failure: Mutex::new(None),
        })
    }

    /// Records the first violation and stops every worker.
    pub fn fail(&self, v: Violation) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(v.with_history(&self.oracle));
        }
        self.stop.store(true, SeqCst);
    }

    pub fn failure(&self) -> Option<Violation> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(SeqCst)
    }
}

/// Starts `settings.args.threads` workers.
pub fn spawn_workers(ctx: &Arc<Ctx>) -> Vec<JoinHandle<()>> {
    (0..ctx.settings.args.threads)
        .map(|t| {
            let ctx = ctx.clone();
            std::thread::Builder::new()
                .name(format!("stress-{t}"))
                .spawn(move || {
                    let seed = derive(ctx.settings.seed, &[u64::from(ctx.cycle), t as u64]);
                    let mut w = Worker {
                        ctx: &ctx,
                        rng: Rng::new(seed),
                        thread: t as u8,
                        single_puts: 0,
                        record_puts: 0,
                        ops: 0,
                        held: None,
                    };
                    while !ctx.stopped() {
                        let op = ctx.settings.mix.pick(&mut w.rng);
                        w.ops += 1;
                        if let Err(v) = w.run(op).and_then(|()| w.check_held()) {
                            ctx.fail(v);
                        }
                    }
                })
                .unwrap_or_else(|e| panic!("spawning a worker thread: {e}"))
        })
        .collect()
}

/// Stops the workers and waits for them; a worker that panicked or does not stop within
/// `patience` (a hang in the database) is a violation.
pub fn stop_workers(ctx: &Ctx, handles: Vec<JoinHandle<()>>, patience: Duration) -> Option<Violation> {
    ctx.stop.store(true, SeqCst);
    let deadline = Instant::now() + patience;
    while handles.iter().any(|h| !h.is_finished()) {
        if Instant::now() > deadline {
            let stuck: Vec<String> = handles
                .iter()
                .filter(|h| !h.is_finished())
                .filter_map(|h| h.thread().name().map(str::to_owned))
                .collect();
            return Some(Violation::general(
                format!(
                    "workers {stuck:?} did not finish their operation within {patience:?} (a hang in the database?)"
                ),
                format!("stopping the workers of cycle {}", ctx.cycle),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for h in handles {
        let name = h.thread().name().unwrap_or("?").to_owned();
        if let Err(p) = h.join() {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            ctx.fail(Violation::general(
                format!("worker {name} panicked: {}", msg.unwrap_or_default()),
                format!("cycle {}", ctx.cycle),
            ));
        }
    }
    ctx.failure()
}

pub(super) struct Worker<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) rng: Rng,
    pub(super) thread: u8,
    /// Single puts issued, for the test hooks' schedule.
    single_puts: u64,
    /// Record puts issued, for the test hooks' schedule.
    pub(super) record_puts: u64,
    /// Operations run.
    ops: u64,
    /// A snapshot (and an iterator over it, partly consumed) held across many operations.
    held: Option<Held>,
}

/// A snapshot held while the worker goes on (and flushes and compactions run): reading it
/// again later must give exactly what it gave at first.
struct Held {
    snap: kho::Snapshot,
    range: Range<u32>,
    /// What the snapshot's point reads found at first (checked against the oracle then).
    got: Seen,
    it: DbIterator,
    /// What the iterator yielded before it was put aside.
    consumed: Seen,
    /// Check and release at this operation count.
    due: u64,
}

/// The collected output of an iterator: key index -> value, in the order seen.
type Seen = Vec<(u32, Bytes)>;

/// One step of an iterator.
enum Pulled {
    Item(u32, Bytes),
    End,
    /// The iterator returned an error that is expected now (and ends).
    Failed,
}

impl Worker<'_> {
    pub(super) fn o(&self) -> &Oracle {
        &self.ctx.oracle
    }

    fn db(&self) -> &Db {
        &self.ctx.db
    }

    fn keys(&self) -> u32 {
        self.o().keys()
    }

    pub(super) fn during(&self, what: &str) -> String {
        format!("{what} by thread {}, cycle {}", self.thread, self.ctx.cycle)
    }

    fn run(&mut self, op: Op) -> Result<(), Violation> {
        match op {
            Op::Put | Op::Delete => {
                let k = self.pick_key();
                let kind = if op == Op::Put { Kind::Put } else { Kind::Delete };
                Counter::add(if op == Op::Put { Counter::Puts } else { Counter::Deletes }, self.o(), 1);
                self.write(&[(k, kind)], Source::Single, op.name())
            }
            Op::Batch => self.batch(),
            Op::Get => self.get(),
            Op::Iter => self.iter(),
            Op::Snapshot => self.snapshot(),
            Op::Flush => {
                Counter::Flushes.add(self.o(), 1);
                self.db().flush().or_else(|e| self.on_error(e, "flush"))
            }
            Op::Compact => {
                Counter::Compactions.add(self.o(), 1);
                let r = if self.rng.percent(20) {
                    self.db().compact_range::<&[u8], _>(..)
                } else {
                    let r = self.pick_range(256);
                    self.db().compact_range(key(r.start)..key(r.end))
                };
                r.or_else(|e| self.on_error(e, "compact_range"))
            }
            Op::RecordPut => self.record_put(),
            Op::RecordDelete => self.record_delete(),
            Op::RecordGet => self.record_get(),
            Op::PersonQuery => self.person_query(),
            Op::ErasePerson => self.erase_person(),
        }
    }

    /// A key: mostly uniform, a fifth of the time from a hot 1% so writers and readers of
    /// one key collide.
    fn pick_key(&mut self) -> u32 {
        let n = self.keys();
        let hot = (n / 100).max(1);
        (if self.rng.percent(20) { self.rng.below(u64::from(hot)) } else { self.rng.below(u64::from(n)) }) as u32
    }

    /// A non-empty range of at most `max_len` key indices.
    fn pick_range(&mut self, max_len: u32) -> Range<u32> {
        let lo = self.pick_key();
        let len = self.rng.between(1, u64::from(max_len)) as u32;
        lo..lo.saturating_add(len).min(self.keys())
    }

    /// An error from the database: expected in faults mode, a violation otherwise.
    pub(super) fn on_error(&self, e: kho::Error, op: &str) -> Result<(), Violation> {
        Counter::Errors.add(self.o(), 1);
        let crashed = self.ctx.crashed.load(SeqCst);
        let expected =
            self.ctx.errors_expected.load(SeqCst) && (!e.is_corruption() || self.ctx.corruption_expected.load(SeqCst));
        if crashed || expected {
            return Ok(());
        }
        let why = if e.is_corruption() { "corruption reported" } else { "unexpected error" };
        Err(Violation::general(format!("{why} by {op}: {e}"), self.during(op)))
    }

    // ---- writes ----

    fn batch(&mut self) -> Result<(), Violation> {
        let n = (self.rng.between(2, 8) as u32).min(self.keys());
        let mut entries: Vec<(u32, Kind)> = Vec::with_capacity(n as usize + 1);
        if self.rng.percent(50) {
            let r = self.pick_range(n);
            entries.extend(r.map(|k| (k, Kind::Put)));
        } else {
            while entries.len() < n as usize {
                let k = self.pick_key();
                if !entries.iter().any(|e| e.0 == k) {
                    entries.push((k, Kind::Put));
                }
            }
        }
        for e in &mut entries {
            if self.rng.percent(25) {
                e.1 = Kind::Delete;
            }
        }
        if self.rng.percent(10) {
            // The same key twice in one batch: the later operation must win.
            let (k, kind) = entries[0];
            entries.push((k, if kind == Kind::Put { Kind::Delete } else { Kind::Put }));
        }
        Counter::Batches.add(self.o(), 1);
        Counter::BatchOps.add(self.o(), entries.len() as u64);
        self.write(&entries, Source::Batch, "batch")
    }

    /// Writes `entries` in one batch under their keys' locks, bracketed by the oracle.
    fn write(&mut self, entries: &[(u32, Kind)], source: Source, op: &str) -> Result<(), Violation> {
        let keys: Vec<u32> = entries.iter().map(|e| e.0).collect();
        let _guards = self.ctx.locks.lock(&keys);
        let (o, cycle, thread) = (&*self.ctx.oracle, self.ctx.cycle, self.thread);
        let sync = self.rng.percent(self.ctx.settings.args.sync_percent);
        if let [(k, Kind::Put)] = entries {
            if source == Source::Single && thread == 0 {
                self.single_puts += 1;
                if self.single_puts.is_multiple_of(50) && self.inject(*k)? {
                    return Ok(());
                }
            }
        }
        let versions: Vec<u32> = entries.iter().map(|&(k, kind)| o.begin(k, kind, source, thread, cycle)).collect();
        let mut batch = WriteBatch::new();
        for (&(k, kind), &v) in entries.iter().zip(&versions) {
            match kind {
                Kind::Put => batch.put(key(k), codec::value(k, v, o.value_size())),
                Kind::Delete => batch.delete(key(k)),
            }
        }
        match self.db().write(batch, &WriteOptions { sync }) {
            Ok(()) => {
                for (&(k, kind), &v) in entries.iter().zip(&versions) {
                    o.ack(k, v, kind, sync, source, thread, cycle);
                }
                if sync {
                    Counter::SyncedWrites.add(o, 1);
                }
                Ok(())
            }
            Err(e) => {
                for (&(k, kind), &v) in entries.iter().zip(&versions) {
                    o.remember(k, v, kind, Event::Failed, source, thread, cycle);
                }
                self.on_error(e, op)
            }
        }
    }

    /// The test hooks (`--inject-lost-write`, `--inject-phantom-write`), applied to a single
    /// put of key `k` whose lock is held. True if the put was replaced.
    fn inject(&mut self, k: u32) -> Result<bool, Violation> {
        let args = &self.ctx.settings.args;
        let (o, cycle, thread) = (&*self.ctx.oracle, self.ctx.cycle, self.thread);
        if args.inject_lost_write {
            // Acknowledged (as synced) in the oracle, never given to the database.
            let v = o.begin(k, Kind::Put, Source::Single, thread, cycle);
            o.ack(k, v, Kind::Put, true, Source::Single, thread, cycle);
            o.remember(k, v, Kind::Put, Event::InjectedLost, Source::Single, thread, cycle);
            Counter::InjectedLost.add(o, 1);
            return Ok(true);
        }
        if args.inject_phantom_write {
            // A value of a version the oracle never handed out.
            let v = o.issued(k).version + 1000;
            o.remember(k, v, Kind::Put, Event::InjectedPhantom, Source::Single, thread, cycle);
            Counter::InjectedPhantom.add(o, 1);
            self.db().put(key(k), codec::value(k, v, o.value_size())).or_else(|e| self.on_error(e, "put"))?;
            return Ok(true);
        }
        Ok(false)
    }

    // ---- reads ----

    fn expect_range(&self, r: &Range<u32>, floors: &[State]) -> Vec<Expect> {
        r.clone().zip(floors).map(|(k, &floor)| Expect { floor, issued: self.o().issued(k) }).collect()
    }

    fn floors(&self, r: &Range<u32>) -> Vec<State> {
        r.clone().map(|k| Floor::Committed.load(self.o(), k)).collect()
    }

    fn check_one(&self, k: u32, e: &Expect, found: Option<&[u8]>, during: &str) -> Result<Option<u32>, Violation> {
        Counter::Checks.add(self.o(), 1);
        e.check(k, found, self.o().value_size()).map_err(|m| m.into_violation(k, self.during(during)))
    }

    fn get(&mut self) -> Result<(), Violation> {
        Counter::Gets.add(self.o(), 1);
        let k = self.pick_key();
        let floor = Floor::Committed.load(self.o(), k);
        let got = self.db().get(key(k));
        let e = Expect { floor, issued: self.o().issued(k) };
        match got {
            Ok(v) => self.check_one(k, &e, v.as_deref(), "get").map(drop),
            Err(err) => self.on_error(err, "get"),
        }
    }

    /// Checks that every key of `r` is as the oracle allows, given what an iterator yielded.
    fn check_covered(&self, r: &Range<u32>, exp: &[Expect], seen: &Seen, during: &str) -> Result<(), Violation> {
        let found: BTreeMap<u32, &Bytes> = seen.iter().map(|(k, v)| (*k, v)).collect();
        Counter::IterKeys.add(self.o(), seen.len() as u64);
        for (k, e) in r.clone().zip(exp) {
            self.check_one(k, e, found.get(&k).map(|v| v.as_ref()), during)?;
        }
        Ok(())
    }

    /// Pulls one item from the front or back of `it`, checking the key is a stress key inside
    /// `r`.
    fn pull(&self, it: &mut DbIterator, back: bool, r: &Range<u32>, during: &str) -> Result<Pulled, Violation> {
        let item = if back { it.next_back() } else { it.next() };
        match item {
            None => Ok(Pulled::End),
            Some(Err(e)) => self.on_error(e, during).map(|()| Pulled::Failed),
            Some(Ok((k, v))) => match codec::parse_key(&k).filter(|i| r.contains(i)) {
                Some(i) => Ok(Pulled::Item(i, v)),
                None => Err(Violation {
                    expected: format!("keys of indices {r:?}"),
                    found: format!("key {:?}", String::from_utf8_lossy(&k)),
                    ..Violation::general("an iterator yielded a key outside its range", self.during(during))
                }),
            },
        }
    }

    /// Drains one end of `it`, checking strict order; `None` if an (expected) error ended it
    /// early, so coverage cannot be checked.
    fn drain(&self, it: &mut DbIterator, back: bool, r: &Range<u32>, during: &str) -> Result<Option<Seen>, Violation> {
        let mut seen: Seen = Vec::new();
        loop {
            match self.pull(it, back, r, during)? {
                Pulled::Item(i, v) => {
                    self.check_order(&seen, i, back, during)?;
                    seen.push((i, v));
                }
                Pulled::End => return Ok(Some(seen)),
                Pulled::Failed => return Ok(None),
            }
        }
    }

    fn check_order(&self, seen: &Seen, next: u32, back: bool, during: &str) -> Result<(), Violation> {
        match seen.last() {
            Some(&(prev, _)) if (!back && prev >= next) || (back && prev <= next) => Err(Violation {
                key: Some(next),
                expected: format!("keys strictly {}", if back { "descending" } else { "ascending" }),
                found: format!("index {next} after index {prev}"),
                ..Violation::general("iterator out of order", self.during(during))
            }),
            _ => Ok(()),
        }
    }

    fn iter(&mut self) -> Result<(), Violation> {
        Counter::Iters.add(self.o(), 1);
        let variant = self.rng.below(5);
        let name = ["forward iterator", "reverse iterator", "two-ended iterator", "prefix iterator", "seek iterator"]
            [variant as usize];
        let (r, prefix_digits) = if variant == 3 {
            let k = self.pick_key();
            let digits = self.rng.between(1, 2) as u32;
            let step = 10u32.pow(digits);
            let lo = k - k % step;
            (lo..(lo + step).min(self.keys()), digits as usize)
        } else {
            (self.pick_range(64), 0)
        };
        let floors = self.floors(&r);
        let it = match variant {
            3 => self.db().prefix(codec::key_prefix(r.start, prefix_digits)),
            _ => self.db().range(key(r.start)..key(r.end)),
        };
        let mut it = match it {
            Ok(it) => it,
            Err(e) => return self.on_error(e, name),
        };
        let (checked, seen) = match variant {
            0 | 3 => (r.clone(), self.drain(&mut it, false, &r, name)?),
            1 => (r.clone(), self.drain(&mut it, true, &r, name)?),
            2 => (r.clone(), self.two_ended(&mut it, &r, name)?),
            _ => {
                let mid = r.start + self.rng.below(r.len() as u64) as u32;
                it.seek(key(mid));
                let back = self.rng.percent(50);
                let sub = mid..r.end;
                (sub.clone(), self.drain(&mut it, back, &sub, name)?)
            }
        };
        let Some(seen) = seen else { return Ok(()) };
        let offset = (checked.start - r.start) as usize;
        let exp = self.expect_range(&r, &floors);
        self.check_covered(&checked, &exp[offset..], &seen, name)
    }

    /// Takes items from both ends in random order until they meet; once one end is done the
    /// other must be too.
    fn two_ended(&mut self, it: &mut DbIterator, r: &Range<u32>, during: &str) -> Result<Option<Seen>, Violation> {
        let (mut front, mut back): (Seen, Seen) = (Vec::new(), Vec::new());
        loop {
            let from_back = self.rng.percent(50);
            match self.pull(it, from_back, r, during)? {
                Pulled::Item(i, v) => {
                    let side = if from_back { &mut back } else { &mut front };
                    self.check_order(side, i, from_back, during)?;
                    side.push((i, v));
                }
                Pulled::Failed => return Ok(None),
                Pulled::End => match self.pull(it, !from_back, r, during)? {
                    Pulled::Item(i, _) => {
                        return Err(Violation {
                            key: Some(i),
                            expected: "both ends exhausted once one is".into(),
                            found: format!("the other end still yields index {i}"),
                            ..Violation::general("iterator ends did not meet", self.during(during))
                        })
                    }
                    Pulled::Failed => return Ok(None),
                    Pulled::End => break,
                },
            }
        }
        if let (Some(f), Some(b)) = (front.last(), back.last()) {
            if f.0 >= b.0 {
                return Err(Violation {
                    key: Some(b.0),
                    expected: "the front stays below the back".into(),
                    found: format!("front at index {}, back at index {}", f.0, b.0),
                    ..Violation::general("iterator ends crossed", self.during(during))
                });
            }
        }
        back.reverse();
        front.extend(back);
        Ok(Some(front))
    }

    /// Snapshot isolation: bracket `snapshot()` with oracle loads, write one of the keys,
    /// then read through the snapshot (point reads and an iterator, which must agree
    /// exactly); nothing written after the snapshot may show.
    fn snapshot(&mut self) -> Result<(), Violation> {
        Counter::Snapshots.add(self.o(), 1);
        let r = self.pick_range(16);
        let floors = self.floors(&r);
        let snap = self.db().snapshot();
        let exp = self.expect_range(&r, &floors);
        if self.rng.percent(70) {
            let k = r.start + self.rng.below(r.len() as u64) as u32;
            let kind = if self.rng.percent(70) { Kind::Put } else { Kind::Delete };
            self.write(&[(k, kind)], Source::Snapshot, "write during snapshot check")?;
        }
        let mut got: Seen = Vec::new();
        for (k, e) in r.clone().zip(&exp) {
            match snap.get(key(k)) {
                Ok(v) => {
                    self.check_one(k, e, v.as_deref(), "snapshot get")?;
                    got.extend(v.map(|v| (k, v)));
                }
                Err(err) => return self.on_error(err, "snapshot get"),
            }
        }
        let mut it = match snap.range(key(r.start)..key(r.end)) {
            Ok(it) => it,
            Err(e) => return self.on_error(e, "snapshot iterator"),
        };
        if self.held.is_none() && self.rng.percent(30) {
            // Keep it for a while: consume part of the iterator now, the rest later.
            let mut consumed: Seen = Vec::new();
            for _ in 0..self.rng.below(got.len() as u64 + 1) {
                match self.pull(&mut it, false, &r, "held snapshot iterator")? {
                    Pulled::Item(i, v) => {
                        self.check_order(&consumed, i, false, "held snapshot iterator")?;
                        consumed.push((i, v));
                    }
                    Pulled::End => break,
                    Pulled::Failed => return Ok(()),
                }
            }
            let due = self.ops + self.rng.between(20, 2000);
            Counter::HeldSnapshots.add(self.o(), 1);
            self.held = Some(Held { snap, range: r, got, it, consumed, due });
            return Ok(());
        }
        let back = self.rng.percent(50);
        let Some(mut seen) = self.drain(&mut it, back, &r, "snapshot iterator")? else { return Ok(()) };
        if back {
            seen.reverse();
        }
        self.same_as_gets(&seen, &got, r.start, "snapshot iterator and snapshot gets disagree")
    }

    fn same_as_gets(&self, seen: &Seen, got: &Seen, lo: u32, what: &str) -> Result<(), Violation> {
        if seen != got {
            let at = seen.iter().zip(got).position(|(a, b)| a != b).unwrap_or(seen.len().min(got.len()));
            let key = seen.get(at).or(got.get(at)).map(|x| x.0).or(Some(lo));
            return Err(Violation {
                key,
                expected: format!("the {} keys the snapshot's point reads found at first", got.len()),
                found: format!("{} keys; first difference at position {at}", seen.len()),
                ..Violation::general(what, self.during("snapshot"))
            });
        }
        Ok(())
    }

    /// Re-reads the held snapshot when it is due: its point reads and the rest of its iterator
    /// must give exactly what they gave when it was taken.
    fn check_held(&mut self) -> Result<(), Violation> {
        if self.held.as_ref().is_none_or(|h| self.ops < h.due) {
            return Ok(());
        }
        let Some(mut h) = self.held.take() else { return Ok(()) };
        let mut again: Seen = Vec::new();
        for k in h.range.clone() {
            match h.snap.get(key(k)) {
                Ok(v) => again.extend(v.map(|v| (k, v))),
                Err(e) => return self.on_error(e, "held snapshot get"),
            }
        }
        self.same_as_gets(&again, &h.got, h.range.start, "a held snapshot's point reads changed")?;
        let rest_range = h.consumed.last().map_or(h.range.start, |&(i, _)| i + 1)..h.range.end;
        let Some(rest) = self.drain(&mut h.it, false, &rest_range, "held snapshot iterator")? else { return Ok(()) };
        h.consumed.extend(rest);
        self.same_as_gets(&h.consumed, &h.got, h.range.start, "a held snapshot's iterator changed")
    }
}
