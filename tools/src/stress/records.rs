//! Record-layer operations (`kho::record`): insert, upsert (which changes the national ID
//! whenever the new version belongs to another person), delete, `erase_person`, point reads
//! and person queries — and, after a recovery, the check that every record is as the oracle
//! allows and that the national-ID index verifies clean.
//!
//! Record slot `r` is the record `(COLLECTIONS[r % 4], "p{r:06}")`. Its versions live in the
//! oracle like a key's (slot `keys + r`); version `v` is the payload `(r, v)` owned by person
//! `person_of(r, v)`, a pseudo-random choice among a pool of valid national IDs, so
//! consecutive versions of a record move it between persons and the index entry must move
//! with it. `erase_person` takes an exclusive lock over all record writers (so the oracle
//! knows exactly which records are the person's); it is skipped once a record write has
//! failed in this cycle (the oracle no longer knows who owns that record).

use kho::record::{Gender, NationalId, Record, Store, StoreOptions, PROVINCE_CODES};
use kho::util::SplitMix64;
use kho::Db;

use super::checker::{Expect, Floor};
use super::oracle::{Event, Kind, Oracle, Source, State, CHECKER_THREAD};
use super::report::{Counter, Violation};
use super::rng::derive;
use super::workload::Worker;

/// The collections records are spread over.
pub const COLLECTIONS: [&str; 4] = ["residence", "tax", "vehicle", "health_insurance"];

/// Record slots for a run with `keys` key-value keys.
pub fn slots(keys: u32) -> u32 {
    (keys / 4).clamp(16, 4096)
}

/// Size of the pool of persons the records belong to (about four records each).
fn persons(slots: u32) -> u32 {
    (slots / 4).max(4)
}

fn collection(r: u32) -> &'static str {
    COLLECTIONS[(r % 4) as usize]
}

fn pk(r: u32) -> String {
    format!("p{r:06}")
}

/// The national ID of person `p`: a valid province, a birth year 1950-2009, serial `p`.
fn person_id(p: u32) -> NationalId {
    let province = PROVINCE_CODES[p as usize % PROVINCE_CODES.len()];
    let gender = if p.is_multiple_of(2) { Gender::Male } else { Gender::Female };
    NationalId::from_parts(province, gender, 1950 + (p % 60) as u16, p % 1_000_000)
        .unwrap_or_else(|| unreachable!("every part is in range"))
}

/// The person owning version `v` of record slot `r`.
fn person_of(slots: u32, r: u32, v: u32) -> u32 {
    (SplitMix64::mix(derive(u64::from(r), &[u64::from(v), 0x1d])) % u64::from(persons(slots))) as u32
}

/// How record slot `r` is named in reports.
fn label(r: u32) -> String {
    format!("record {}/{} (slot {r})", collection(r), pk(r))
}

/// The version a found record is, or why it cannot be one the workload wrote.
fn decode(slots: u32, r: u32, rec: &Record) -> Result<u32, String> {
    let (owner, v): (u32, u32) = rec.decode().map_err(|e| format!("payload does not decode: {e}"))?;
    if owner != r {
        return Err(format!("payload of record slot {owner} (v{v}), not of slot {r}"));
    }
    let id = person_id(person_of(slots, r, v));
    if rec.id != id {
        return Err(format!("version v{v} belongs to {}, the record says {}", id.as_str(), rec.id.as_str()));
    }
    Ok(v)
}

impl Worker<'_> {
    fn store(&self) -> &Store {
        &self.ctx.store
    }

    fn record_violation(&self, r: u32, what: &str, expected: String, found: String, op: &str) -> Violation {
        Violation {
            key: Some(self.o().record_slot(r)),
            key_label: label(r),
            expected,
            found,
            ..Violation::general(what, self.during(op))
        }
    }

    /// Checks a found record (or its absence) of slot `r` against `expect`.
    fn check_record(&self, r: u32, e: &Expect, found: Option<&Record>, op: &str) -> Result<(), Violation> {
        Counter::Checks.add(self.o(), 1);
        let version = match found.map(|rec| decode(self.o().record_slots(), r, rec)).transpose() {
            Ok(v) => v,
            Err(why) => return Err(self.record_violation(r, "a record that was never written", e.describe(), why, op)),
        };
        e.check_version(version).map(drop).map_err(|m| self.record_violation(r, m.what, m.expected, m.found, op))
    }

    /// Insert (when the oracle knows the record is absent) or upsert of a new version.
    pub(super) fn record_put(&mut self) -> Result<(), Violation> {
        Counter::RecordWrites.add(self.o(), 1);
        let r = self.rng.below(u64::from(self.o().record_slots())) as u32;
        let (o, cycle, thread) = (&*self.ctx.oracle, self.ctx.cycle, self.thread);
        let slot = o.record_slot(r);
        let _writers = self.ctx.erase_lock.read().unwrap_or_else(|e| e.into_inner());
        let _guards = self.ctx.locks.lock(&[slot]);
        let floor = o.committed(slot);
        let certain = o.issued(slot).version == floor.version;
        let insert = floor.absent && certain && self.rng.percent(50);
        let v = o.begin(slot, Kind::Put, Source::Record, thread, cycle);
        self.record_puts += 1;
        if self.ctx.settings.args.inject_lost_write && thread == 0 && self.record_puts.is_multiple_of(50) {
            // Test hook: acknowledged (as synced) in the oracle, never given to the store.
            o.ack(slot, v, Kind::Put, true, Source::Record, thread, cycle);
            o.remember(slot, v, Kind::Put, Event::InjectedLost, Source::Record, thread, cycle);
            Counter::InjectedLost.add(o, 1);
            return Ok(());
        }
        let id = person_id(person_of(o.record_slots(), r, v));
        let done = if insert {
            self.store().insert(collection(r), pk(r), &id, &(r, v))
        } else {
            self.store().upsert(collection(r), pk(r), &id, &(r, v)).map(drop)
        };
        match done {
            Ok(()) => {
                o.ack(slot, v, Kind::Put, false, Source::Record, thread, cycle);
                Ok(())
            }
            Err(e) => {
                o.remember(slot, v, Kind::Put, Event::Failed, Source::Record, thread, cycle);
                self.ctx.record_uncertain.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if matches!(e, kho::record::Error::RecordExists { .. })
                    && !self.ctx.crashed.load(std::sync::atomic::Ordering::SeqCst)
                {
                    return Err(self.record_violation(
                        r,
                        "insert refused: a record the oracle says is absent exists",
                        format!("{floor}"),
                        e.to_string(),
                        "record insert",
                    ));
                }
                self.on_error(engine_error(e), "record insert/upsert")
            }
        }
    }

    /// Delete; when the oracle is certain of the record's state, the national ID the delete
    /// reports must be that state's.
    pub(super) fn record_delete(&mut self) -> Result<(), Violation> {
        Counter::RecordWrites.add(self.o(), 1);
        let r = self.rng.below(u64::from(self.o().record_slots())) as u32;
        let (o, cycle, thread) = (&*self.ctx.oracle, self.ctx.cycle, self.thread);
        let slot = o.record_slot(r);
        let _writers = self.ctx.erase_lock.read().unwrap_or_else(|e| e.into_inner());
        let _guards = self.ctx.locks.lock(&[slot]);
        let floor = o.committed(slot);
        let certain = o.issued(slot).version == floor.version;
        let v = o.begin(slot, Kind::Delete, Source::Record, thread, cycle);
        match self.store().delete(collection(r), pk(r)) {
            Ok(before) => {
                o.ack(slot, v, Kind::Delete, false, Source::Record, thread, cycle);
                let expected = (!floor.absent).then(|| person_id(person_of(o.record_slots(), r, floor.version)));
                if certain && before != expected {
                    let show = |id: Option<NationalId>| id.map_or("none".to_owned(), |i| i.as_str().to_owned());
                    return Err(self.record_violation(
                        r,
                        "delete reported the wrong national ID of the record it deleted",
                        format!("{} ({floor})", show(expected)),
                        show(before),
                        "record delete",
                    ));
                }
                Ok(())
            }
            Err(e) => {
                o.remember(slot, v, Kind::Delete, Event::Failed, Source::Record, thread, cycle);
                self.ctx.record_uncertain.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.on_error(engine_error(e), "record delete")
            }
        }
    }

    pub(super) fn record_get(&mut self) -> Result<(), Violation> {
        Counter::RecordReads.add(self.o(), 1);
        let r = self.rng.below(u64::from(self.o().record_slots())) as u32;
        let slot = self.o().record_slot(r);
        let floor = Floor::Committed.load(self.o(), slot);
        let got = self.store().get_raw(collection(r), pk(r));
        let e = Expect { floor, issued: self.o().issued(slot) };
        match got {
            Ok(rec) => self.check_record(r, &e, rec.as_ref(), "record get"),
            Err(err) => self.on_error(engine_error(err), "record get"),
        }
    }

    /// `person(id)`: every record it returns must be that person's, at an allowed version;
    /// every record the oracle knows for certain to be that person's must be among them.
    pub(super) fn person_query(&mut self) -> Result<(), Violation> {
        Counter::PersonQueries.add(self.o(), 1);
        let o = &*self.ctx.oracle;
        let n = o.record_slots();
        let p = self.rng.below(u64::from(persons(n))) as u32;
        let id = person_id(p);
        let floors: Vec<State> = (0..n).map(|r| o.committed(o.record_slot(r))).collect();
        let got = match self.store().person(&id) {
            Ok(got) => got,
            Err(e) => return self.on_error(engine_error(e), "person query"),
        };
        let exp: Vec<Expect> =
            (0..n).zip(&floors).map(|(r, &floor)| Expect { floor, issued: o.issued(o.record_slot(r)) }).collect();
        let mut seen = vec![false; n as usize];
        for rec in &got {
            let r = rec.pk.strip_prefix(b"p").and_then(|d| std::str::from_utf8(d).ok()?.parse::<u32>().ok());
            let Some(r) = r.filter(|&r| r < n && collection(r) == &*rec.collection && !seen[r as usize]) else {
                return Err(Violation {
                    found: format!("{}/{}", rec.collection, String::from_utf8_lossy(&rec.pk)),
                    ..Violation::general(
                        "person query returned a record that was never written (or twice)",
                        self.during("person query"),
                    )
                });
            };
            seen[r as usize] = true;
            if rec.id != id {
                return Err(self.record_violation(
                    r,
                    "person query returned another person's record",
                    id.as_str().into(),
                    rec.id.as_str().into(),
                    "person query",
                ));
            }
            self.check_record(r, &exp[r as usize], Some(rec), "person query")?;
        }
        for (r, e) in (0..n).zip(&exp) {
            let certain = e.issued.version == e.floor.version;
            if certain && !e.floor.absent && person_of(n, r, e.floor.version) == p && !seen[r as usize] {
                return Err(self.record_violation(
                    r,
                    "person query missed one of the person's records (national-ID index incomplete)",
                    format!("{} with {}", id.as_str(), e.floor),
                    "not returned".into(),
                    "person query",
                ));
            }
        }
        Ok(())
    }

    /// `erase_person`, exclusive with every record writer: it must delete exactly the records
    /// the oracle says are the person's.
    pub(super) fn erase_person(&mut self) -> Result<(), Violation> {
        let o = &*self.ctx.oracle;
        let (cycle, thread) = (self.ctx.cycle, self.thread);
        let n = o.record_slots();
        let p = self.rng.below(u64::from(persons(n))) as u32;
        let _exclusive = self.ctx.erase_lock.write().unwrap_or_else(|e| e.into_inner());
        if self.ctx.record_uncertain.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Ok(());
        }
        Counter::Erasures.add(o, 1);
        let owned: Vec<u32> = (0..n)
            .filter(|&r| {
                let st = o.committed(o.record_slot(r));
                !st.absent && person_of(n, r, st.version) == p
            })
            .collect();
        let versions: Vec<u32> =
            owned.iter().map(|&r| o.begin(o.record_slot(r), Kind::Delete, Source::Erase, thread, cycle)).collect();
        match self.store().erase_person(&person_id(p)) {
            Ok(erasure) => {
                for (&r, &v) in owned.iter().zip(&versions) {
                    o.ack(o.record_slot(r), v, Kind::Delete, true, Source::Erase, thread, cycle);
                }
                if erasure.records != owned.len() {
                    return Err(Violation {
                        expected: format!("{} records of {} ({:?})", owned.len(), person_id(p).as_str(), owned),
                        found: format!("{} records erased", erasure.records),
                        ..Violation::general(
                            "erase_person erased another number of records than the person has",
                            self.during("erase_person"),
                        )
                    });
                }
                Ok(())
            }
            Err(e) => {
                for (&r, &v) in owned.iter().zip(&versions) {
                    o.remember(o.record_slot(r), v, Kind::Delete, Event::Failed, Source::Erase, thread, cycle);
                }
                self.ctx.record_uncertain.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.on_error(engine_error(e), "erase_person")
            }
        }
    }
}

/// Opens the record layer on a recovered database.
pub fn open_store(db: &Db) -> kho::Result<Store> {
    Store::open(db.clone(), StoreOptions::default()).map_err(engine_error)
}

/// After a recovery: every record slot is within `floor ..= issued`, and the national-ID
/// index verifies clean. Returns each slot's recovered state.
pub fn verify_records(store: &Store, o: &Oracle, floor: Floor, during: &str) -> Result<Vec<State>, Violation> {
    let n = o.record_slots();
    let err =
        |what: &str, e: kho::record::Error| Violation::general(format!("{what} failed after recovery: {e}"), during);
    let mut states = Vec::with_capacity(n as usize);
    for r in 0..n {
        let slot = o.record_slot(r);
        let e = Expect { floor: floor.load(o, slot), issued: o.issued(slot) };
        let rec = store.get_raw(collection(r), pk(r)).map_err(|e| err("record get", e))?;
        let fail = |what: &str, expected: String, found: String| {
            Violation {
                key: Some(slot),
                key_label: label(r),
                expected,
                found,
                ..Violation::general(what, format!("{during} (floor: {floor:?})"))
            }
            .with_history(o)
        };
        let version = match rec.as_ref().map(|rec| decode(n, r, rec)).transpose() {
            Ok(v) => v,
            Err(why) => return Err(fail("a record that was never written", e.describe(), why)),
        };
        let v = e.check_version(version).map_err(|m| fail(m.what, m.expected, m.found))?;
        states.push(e.recovered_state(v));
    }
    Counter::Checks.add(o, u64::from(n));
    let report = store.verify_index().map_err(|e| err("verify_index", e))?;
    if !report.is_clean() {
        return Err(Violation {
            expected: "index == f(records)".into(),
            found: format!(
                "{} records, {} index entries: {} missing, {} dangling, {} malformed; first problems: {:?}",
                report.records,
                report.index_entries,
                report.missing,
                report.dangling,
                report.malformed,
                report.problems
            ),
            ..Violation::general("the national-ID index does not verify after recovery", during)
        });
    }
    Ok(states)
}

/// As [`super::checker::reconcile`] for record slots: records the recovered states, and for
/// every slot whose newest issued version did not survive writes version `issued + 1` (same
/// presence), then flushes so those writes are durable. Returns the number of slots fixed.
pub fn reconcile_records(store: &Store, o: &Oracle, states: &[State], cycle: u16) -> kho::Result<u64> {
    let n = o.record_slots();
    let mut fixed = Vec::new();
    for (r, &state) in (0u32..).zip(states) {
        let slot = o.record_slot(r);
        o.set_recovered(slot, state, cycle);
        if state.version >= o.issued(slot).version {
            continue;
        }
        let kind = if state.absent { Kind::Delete } else { Kind::Put };
        let v = o.begin(slot, kind, Source::Reconcile, CHECKER_THREAD, cycle);
        match kind {
            Kind::Put => {
                store.upsert(collection(r), pk(r), &person_id(person_of(n, r, v)), &(r, v)).map_err(engine_error)?;
            }
            Kind::Delete => {
                store.delete(collection(r), pk(r)).map_err(engine_error)?;
            }
        }
        fixed.push((slot, v, kind));
    }
    if !fixed.is_empty() {
        store.db().flush()?;
    }
    for &(slot, v, kind) in &fixed {
        o.ack(slot, v, kind, true, Source::Reconcile, CHECKER_THREAD, cycle);
    }
    Ok(fixed.len() as u64)
}

/// The engine error inside a record-layer error. The workload only makes valid record calls,
/// so any other record-layer error is a bug, reported as [`kho::Error::Internal`].
pub fn engine_error(e: kho::record::Error) -> kho::Error {
    match e {
        kho::record::Error::Engine(e) => e,
        other => kho::Error::Internal(format!("record layer: {other}")),
    }
}
