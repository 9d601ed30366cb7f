//! [`Store::verify_index`] and [`Store::rebuild_index`]: prove, or restore, the invariant
//! "the index is exactly the function of the records" — `I | id | cid | pk` exists iff
//! `R | cid | pk` holds a record whose national ID is `id`.
//!
//! Both stream over one snapshot in two passes, holding one block per file and one batch of
//! fixes in memory, so they work on stores far larger than memory:
//! 1. every record: is its index entry there? (a point read) — else it is *missing*;
//! 2. every index entry: does its record exist with that ID? — else it is *dangling*.
//!
//! Malformed keys or values (an undecodable record, an index key of the wrong shape, an
//! unknown collection id) are reported as *malformed* rather than aborting the scan.
//! `rebuild_index` applies each fix through the normal write path (`write.rs`), re-reading
//! the record under its stripe lock, so it is safe while writers run: a fix computed from
//! the snapshot is only applied if it is still right.

use bytes::Bytes;

use super::error::Result;
use super::keys::{index_key, parse_index_key, parse_record_key, record_key, TAG_INDEX, TAG_RECORD};
use super::national_id::NationalId;
use super::store::Store;
use super::value::decode_value;
use super::write::Op;
use crate::{Snapshot, WriteBatch, WriteOptions};

/// Problems listed in an [`IndexReport`] at most; the counts are always exact. Use
/// [`Store::verify_index_with`] to see every one of an unbounded number.
pub const MAX_LISTED_PROBLEMS: usize = 10_000;

/// Fixes applied per atomic batch by [`Store::rebuild_index`].
const REPAIR_BATCH: usize = 1024;

/// One discrepancy between the records and the index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexProblem {
    /// A record without its index entry.
    Missing {
        /// Collection name.
        collection: String,
        /// Primary key.
        pk: Bytes,
        /// The record's national ID.
        id: NationalId,
    },
    /// An index entry whose record does not exist or belongs to another ID.
    Dangling {
        /// The ID in the index entry.
        id: NationalId,
        /// Collection name.
        collection: String,
        /// Primary key.
        pk: Bytes,
        /// The ID the record actually has, if it exists.
        record_id: Option<NationalId>,
    },
    /// A record-layer key or value that cannot be decoded.
    Malformed {
        /// The key.
        key: Bytes,
        /// What is wrong with it.
        what: String,
    },
}

/// The outcome of [`Store::verify_index`] or [`Store::rebuild_index`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Records scanned.
    pub records: u64,
    /// Index entries scanned.
    pub index_entries: u64,
    /// Records without their index entry.
    pub missing: u64,
    /// Index entries without their record.
    pub dangling: u64,
    /// Undecodable keys or values.
    pub malformed: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] problems, in scan order.
    pub problems: Vec<IndexProblem>,
}

impl IndexReport {
    /// True if the index matches the records exactly.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.dangling == 0 && self.malformed == 0
    }

    fn count(&mut self, p: &IndexProblem) {
        match p {
            IndexProblem::Missing { .. } => self.missing += 1,
            IndexProblem::Dangling { .. } => self.dangling += 1,
            IndexProblem::Malformed { .. } => self.malformed += 1,
        }
    }
}

/// The fix for one problem, if it has one.
fn fix_of(store: &Store, p: &IndexProblem) -> Option<Op> {
    let cid = |c: &str| store.inner.catalog.lookup(c);
    match p {
        IndexProblem::Missing { collection, pk, .. } => {
            Some(Op::EnsureIndexed { cid: cid(collection)?, pk: pk.clone() })
        }
        IndexProblem::Dangling { id, collection, pk, .. } => {
            Some(Op::DropIndexUnlessOwner { cid: cid(collection)?, pk: pk.clone(), id: *id })
        }
        IndexProblem::Malformed { .. } => None,
    }
}

impl Store {
    /// Checks that the index is exactly what the records imply; see [`IndexReport`].
    pub fn verify_index(&self) -> Result<IndexReport> {
        let mut listed = Vec::new();
        let mut report = self.verify_index_with(|p| {
            if listed.len() < MAX_LISTED_PROBLEMS {
                listed.push(p);
            }
        })?;
        report.problems = listed;
        Ok(report)
    }

    /// Like [`verify_index`](Self::verify_index), calling `visit` with every problem (the
    /// returned report lists none).
    pub fn verify_index_with(&self, mut visit: impl FnMut(IndexProblem)) -> Result<IndexReport> {
        let snap = self.inner.db.snapshot();
        let mut report = IndexReport::default();
        self.scan_problems(&snap, &mut report, &mut |p| visit(p))?;
        Ok(report)
    }

    /// Restores the index from the records: adds every missing entry, deletes every dangling
    /// one (and every malformed index key). Returns what it found; a malformed *record* is
    /// reported, not fixed. Safe to run while other threads write.
    pub fn rebuild_index(&self) -> Result<IndexReport> {
        self.inner.check_writable()?;
        let snap = self.inner.db.snapshot();
        let mut report = IndexReport::default();
        let mut pending: Vec<Op> = Vec::new();
        let mut bad_index_keys = WriteBatch::new();
        let mut first_error = None;
        let mut visit = |p: IndexProblem| {
            if first_error.is_some() {
                return;
            }
            match fix_of(self, &p) {
                Some(op) => pending.push(op),
                None => {
                    if let IndexProblem::Malformed { key, .. } = &p {
                        if key.first() == Some(&TAG_INDEX) {
                            bad_index_keys.delete(key);
                        }
                    }
                }
            }
            if pending.len() >= REPAIR_BATCH {
                let ops = std::mem::take(&mut pending);
                if let Err(e) = self.inner.apply(ops, &WriteOptions::default()) {
                    first_error = Some(e);
                }
            }
        };
        let mut listed = Vec::new();
        self.scan_problems(&snap, &mut report, &mut |p| {
            if listed.len() < MAX_LISTED_PROBLEMS {
                listed.push(p.clone());
            }
            visit(p);
        })?;
        if let Some(e) = first_error {
            return Err(e);
        }
        if !pending.is_empty() {
            self.inner.apply(pending, &WriteOptions::default())?;
        }
        // Nothing writes malformed index keys, so no lock is needed to remove them.
        self.inner.db.write(bad_index_keys, &WriteOptions::synced())?;
        report.problems = listed;
        Ok(report)
    }

    /// The two verification passes over `snap`, counting into `report` and handing every
    /// problem to `visit`.
    fn scan_problems(
        &self,
        snap: &Snapshot,
        report: &mut IndexReport,
        visit: &mut dyn FnMut(IndexProblem),
    ) -> Result<()> {
        let mut emit = |report: &mut IndexReport, p: IndexProblem| {
            report.count(&p);
            visit(p);
        };
        let malformed = |key: &Bytes, what: &str| IndexProblem::Malformed { key: key.clone(), what: what.to_owned() };
        let catalog = &self.inner.catalog;

        for kv in snap.prefix([TAG_RECORD])? {
            let (k, v) = kv?;
            report.records += 1;
            let Some((cid, pk)) = parse_record_key(&k) else {
                emit(report, malformed(&k, "record key too short"));
                continue;
            };
            let Some(collection) = catalog.name(cid) else {
                emit(report, malformed(&k, "record of an unknown collection id"));
                continue;
            };
            let id = match decode_value(&v) {
                Ok((id, _)) => id,
                Err(what) => {
                    emit(report, malformed(&k, &what));
                    continue;
                }
            };
            if snap.get(index_key(&id, cid, pk))?.is_none() {
                emit(report, IndexProblem::Missing { collection: collection.to_string(), pk: k.slice_ref(pk), id });
            }
        }

        for kv in snap.prefix([TAG_INDEX])? {
            let (k, _) = kv?;
            report.index_entries += 1;
            let Some((id, cid, pk)) = parse_index_key(&k) else {
                emit(report, malformed(&k, "malformed index key"));
                continue;
            };
            let Some(collection) = catalog.name(cid) else {
                emit(report, malformed(&k, "index entry of an unknown collection id"));
                continue;
            };
            let record_id = match snap.get(record_key(cid, pk))? {
                None => None,
                // An undecodable record was reported by the first pass.
                Some(v) => match decode_value(&v) {
                    Ok((rid, _)) => Some(rid),
                    Err(_) => continue,
                },
            };
            if record_id != Some(id) {
                emit(
                    report,
                    IndexProblem::Dangling { id, collection: collection.to_string(), pk: k.slice_ref(pk), record_id },
                );
            }
        }
        Ok(())
    }
}
