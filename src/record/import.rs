//! [`Store::import`]: bulk-loads records of one collection straight into tables
//! (`Db::ingest_with`), for an agency's initial import.
//!
//! Semantics (docs/record-model.md, "Import"): **insert-only and all or nothing.** Every
//! row is checked first — primary key length, national ID against the store's rules,
//! payload encoding, entry sizes, a primary key repeated in the input, a primary key the
//! collection already holds — and any problem refuses the whole import with
//! [`Error::ImportRejected`] listing the rows (by 0-based position in the input) before
//! anything is written. The records, their index entries and (feed on) one insert change
//! each are then installed as one set of tables with one manifest edit, so a crash leaves
//! the store as it was or with the whole import.
//!
//! Invariants kept: "index == f(records)" (each row yields exactly `R|cid|pk` and
//! `I|id|cid|pk`, and no record of the collection had those keys — checked under every
//! stripe lock, held until the tables are installed, so no writer slips a record in between);
//! change positions are the reserved sequence numbers, one per row in primary-key order,
//! above every earlier position; with person keys, payloads are sealed exactly as the write
//! path seals them (keys created durably first, the vault's write guard held to the end).
//!
//! Memory: every row is held, encoded, until the import is installed — about
//! `|pk| + |value| + 80` bytes a row, plus `|value| + 40` more with the feed on (the
//! change repeats the payload). There is no external sort: split a larger input into
//! several imports (each is atomic on its own).

use bytes::Bytes;
use serde::Serialize;

use super::error::{Error, Result};
use super::feed::{change_key, FeedWrite};
use super::keys::{index_key, record_key, CollectionId, INDEX_PREFIX_LEN};
use super::national_id::NationalId;
use super::store::{check_pk, Store};
use super::value::encode_value;
use super::vault::{KEY_ID_LEN, NONCE_LEN, TAG_LEN};
use super::write::Op;
use crate::batch::check_entry_size;
use crate::SeqNo;

/// Bytes a change value has beyond its record value's payload and primary key: format,
/// kind, time, collection id and national ID (`feed/change.rs`), minus the record value's
/// own header, plus at most two bytes of primary-key length.
const CHANGE_OVERHEAD: usize = 1 + 1 + 8 + 4 + 12 + 2 - 13;

/// At most this many problems are listed in [`Error::ImportRejected`] (all are counted).
pub const MAX_LISTED_ROW_PROBLEMS: usize = 100;

/// Rows one import takes at most (index entries are sorted by a 32-bit row number; memory
/// runs out long before).
pub const MAX_IMPORT_ROWS: usize = u32::MAX as usize;

/// One refused row of an import.
#[derive(Debug)]
#[non_exhaustive]
pub struct RowProblem {
    /// The row's 0-based position in the input.
    pub row: u64,
    /// Why it was refused: an invalid national ID, a primary key or value over its size
    /// limit, a payload that does not encode, a primary key repeated in the input or already
    /// held by the collection ([`Error::RecordExists`]). Names no ID or payload in full.
    pub error: Error,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}: {}", self.row, self.error)
    }
}

/// What [`Store::import`] installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Records imported.
    pub rows: u64,
    /// Tables added.
    pub tables: usize,
    /// Bytes of the tables added.
    pub bytes: u64,
    /// The sequence number of the import (every imported record carries it); 0 when the
    /// input was empty.
    pub sequence: SeqNo,
}

/// A checked row, encoded.
struct Row {
    input: u64,
    op: Op,
}

impl Store {
    /// Imports `rows` — `(primary key, national ID, payload)`, in any order — into
    /// `collection` (created if needed) as new records, all or nothing; see the module docs
    /// and docs/record-model.md, "Import". Writers wait while the tables are written.
    ///
    /// Errors: [`Error::ImportRejected`] (nothing written) for invalid rows;
    /// [`Error::AccessContextRequired`] on a store that requires an access context (imports
    /// are not audited yet); engine errors.
    ///
    /// ```
    /// use kho::record::{Error, NationalId, Store, StoreOptions};
    /// # fn main() -> kho::record::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(kho::Db::open(dir.path(), kho::Options::default())?, StoreOptions::default())?;
    /// let id = NationalId::parse("079190001234")?;
    /// let rows = vec![("8012345678", id, ("An", 3)), ("8012345679", id, ("Binh", 2))];
    /// let report = store.import("tax", rows)?;
    /// assert_eq!(report.rows, 2);
    /// assert_eq!(store.person(&id)?.len(), 2);
    /// // All or nothing: one bad row refuses the whole import.
    /// let again = vec![("8012345680", id, ("Chi", 1)), ("8012345678", id, ("An", 3))];
    /// match store.import("tax", again) {
    ///     Err(Error::ImportRejected { rows, count }) => assert_eq!((rows[0].row, count), (1, 1)),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(store.get_raw("tax", "8012345680")?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn import<K, T, I>(&self, collection: &str, rows: I) -> Result<ImportReport>
    where
        I: IntoIterator<Item = (K, NationalId, T)>,
        K: AsRef<[u8]>,
        T: Serialize,
    {
        let inner = &self.inner;
        inner.check_unaudited()?;
        inner.check_writable()?;
        super::catalog::validate_name(collection)?;
        let existing = inner.catalog.lookup(collection);
        // Rows of a new collection are checked against id 0 (record keys of one length).
        let cid = existing.unwrap_or(CollectionId(0));
        let mut problems = Problems::default();
        let rows = rows.into_iter();
        let mut checked = Vec::with_capacity(rows.size_hint().0);
        for (input, (pk, id, payload)) in (0u64..).zip(rows) {
            match self.check_row(cid, pk.as_ref(), &id, &payload) {
                Ok(op) => checked.push(Row { input, op }),
                Err(error) => problems.add(input, error),
            }
        }
        sort_rows(&mut checked);
        for pair in checked.windows(2) {
            if target_pk(&pair[0].op) == target_pk(&pair[1].op) {
                let first = pair[0].input;
                problems.add(pair[1].input, Error::invalid(format!("repeats the primary key of row {first}")));
            }
        }
        problems.check()?;
        if checked.len() > MAX_IMPORT_ROWS {
            return Err(Error::invalid(format!("an import holds at most {MAX_IMPORT_ROWS} rows")));
        }
        if checked.is_empty() {
            return Ok(ImportReport::default());
        }

        // The write path's order: the vault's guard (no key destroyed from sealing to
        // install), then the stripes. The other order could wait for the guard behind an
        // erasure's destroy, which waits for a writer holding the guard and waiting for a
        // stripe held here.
        let _sealing = inner.vault.as_ref().map(|v| v.write_guard());
        let _all = inner.locks.lock_all();
        if let Some(cid) = existing {
            self.refuse_existing(cid, &checked, &mut problems)?;
            problems.check()?;
        }
        let cid = inner.catalog.get_or_create(&inner.db, collection)?;
        // In place: a `Row` holds an `Op`, so the allocation is reused.
        let mut ops: Vec<Op> = checked.into_iter().map(|r| r.op).collect();
        for op in &mut ops {
            if let Op::Put { cid: c, .. } = op {
                *c = cid;
            }
        }
        let ops = inner.seal_payloads(ops)?;
        let puts: Vec<Put<'_>> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put { pk, id, value, .. } => Some(Put { pk, id, value }),
                _ => None,
            })
            .collect();
        let mut feed_write = inner.feed.as_ref().map(|_| FeedWrite::new());
        if let Some(fw) = feed_write.as_mut() {
            for p in &puts {
                fw.record(cid, p.pk, None, Some(*p.id), Some(p.value), false);
            }
        }
        let changes = feed_write.as_mut().map(FeedWrite::take_changes).unwrap_or_default();
        let sequences = (changes.len() as u64).max(1);
        let report = inner.db.ingest_with(sequences, |first| sorted_entries(cid, &puts, &changes, first))?;
        if let (Some(feed), Some(fw)) = (inner.feed.as_ref(), feed_write) {
            fw.committed(feed);
        }
        drop(_all);
        drop(_sealing);
        // Housekeeping, as after every write: a failed trim is retried later.
        let _ = inner.trim_feed_if_due();
        let rows = puts.len() as u64;
        Ok(ImportReport { rows, tables: report.tables.len(), bytes: report.bytes, sequence: report.sequence })
    }

    /// Checks one row and encodes it as a put (of collection `cid`, fixed up later).
    fn check_row<T: Serialize>(&self, cid: CollectionId, pk: &[u8], id: &NationalId, payload: &T) -> Result<Op> {
        check_pk(pk)?;
        self.inner.opts.id_rules.check(id)?;
        let value = encode_value(id, payload)?;
        // The largest entry the row yields, as it will be written: the index key is the
        // longest key; the record value grows when sealed, and the change (feed on) holds
        // its payload plus the change header and the primary key.
        let sealed = if self.inner.vault.is_some() { KEY_ID_LEN + NONCE_LEN + TAG_LEN } else { 0 };
        let record_len = value.len() + sealed;
        let change_len = if self.inner.feed.is_some() { record_len + pk.len() + CHANGE_OVERHEAD } else { 0 };
        check_entry_size(self.inner.db.options(), INDEX_PREFIX_LEN + pk.len(), record_len.max(change_len))?;
        Ok(Op::Put { cid, pk: Bytes::copy_from_slice(pk), id: *id, value, insert_only: true })
    }

    /// Adds a problem for every row whose primary key the collection already holds (one
    /// point read per row; bloom filters make the misses cheap). Requires every stripe held.
    fn refuse_existing(&self, cid: CollectionId, rows: &[Row], problems: &mut Problems) -> Result<()> {
        let snap = self.inner.db.snapshot();
        let collection = self.inner.catalog.name(cid).map_or_else(String::new, |n| n.to_string());
        for row in rows {
            let pk = target_pk(&row.op);
            if snap.get(record_key(cid, pk))?.is_some() {
                let error = Error::RecordExists { collection: collection.clone(), pk: crate::util::redact(pk) };
                problems.add(row.input, error);
            }
        }
        Ok(())
    }
}

/// Sorts rows by primary key; of two rows with one primary key, the first in the input
/// comes first. By a cached 16-byte prefix first (integer comparisons, no pointer chasing:
/// the sort took a seventh of an import), then each run of equal prefixes by whole keys.
fn sort_rows(rows: &mut [Row]) {
    const PREFIX: usize = 16;
    let prefix = |r: &Row| {
        let pk = target_pk(&r.op);
        let mut p = [0u8; PREFIX];
        let n = pk.len().min(PREFIX);
        p[..n].copy_from_slice(&pk[..n]);
        u128::from_be_bytes(p)
    };
    rows.sort_by_cached_key(|r| (prefix(r), r.input));
    let mut start = 0;
    while start < rows.len() {
        let p = prefix(&rows[start]);
        let end = start + rows[start..].iter().take_while(|r| prefix(r) == p).count();
        if end - start > 1 {
            rows[start..end]
                .sort_unstable_by(|a, b| target_pk(&a.op).cmp(target_pk(&b.op)).then(a.input.cmp(&b.input)));
        }
        start = end;
    }
}

/// The primary key of a row's put.
fn target_pk(op: &Op) -> &[u8] {
    op.target().1
}

/// One record of the import, borrowed from its (sealed) put.
struct Put<'a> {
    pk: &'a [u8],
    id: &'a NationalId,
    value: &'a [u8],
}

/// An entry stream of [`sorted_entries`].
type Stream<'a> = Box<dyn Iterator<Item = (Vec<u8>, &'a [u8])> + Send + 'a>;

/// Every entry of the import in key order, as two streams of about equal cost that the
/// engine writes concurrently: the changes (`F`, positions `first..`), the index entries
/// (`I`, by national ID and primary key) and the first records (`R`, by primary key); then
/// the other records. The tags sort `F` < `I` < `R`, and `puts` is sorted by primary key,
/// so sorting `(ID, position in puts)` sorts the index entries without comparing keys.
fn sorted_entries<'a>(cid: CollectionId, puts: &'a [Put<'a>], changes: &'a [Vec<u8>], first: SeqNo) -> Vec<Stream<'a>> {
    let mut by_id: Vec<([u8; crate::record::NATIONAL_ID_LEN], u32)> =
        puts.iter().zip(0u32..).map(|(p, i)| (*p.id.as_bytes(), i)).collect();
    by_id.sort_unstable();
    // Where the records split: the first stream also writes the changes and the index.
    // An entry costs about as much as `ENTRY_COST` bytes on top of its own (measured: an
    // index entry takes ~0.6 of a ~170-byte record's time to write).
    const ENTRY_COST: usize = 160;
    let record_cost = |p: &Put<'_>| ENTRY_COST + 5 + p.pk.len() + p.value.len();
    let total: usize = puts.iter().map(record_cost).sum();
    let head: usize = changes.iter().map(|c| ENTRY_COST + 9 + c.len()).sum::<usize>()
        + puts.iter().map(|p| ENTRY_COST + 17 + p.pk.len()).sum::<usize>();
    let mut split = 0;
    let mut first_cost = head;
    while split < puts.len() && first_cost < total.saturating_sub(first_cost - head) {
        first_cost += record_cost(&puts[split]);
        split += 1;
    }
    let (early, late) = puts.split_at(split);
    let feed = (first..).zip(changes).map(|(pos, v)| (change_key(pos).to_vec(), v.as_slice()));
    let index = by_id.into_iter().map(move |(_, i)| {
        let p = &puts[i as usize];
        (index_key(p.id, cid, p.pk), &[][..])
    });
    let records = move |part: &'a [Put<'a>]| part.iter().map(move |p| (record_key(cid, p.pk), p.value));
    vec![Box::new(feed.chain(index).chain(records(early))), Box::new(records(late))]
}

/// The problems found so far: the first [`MAX_LISTED_ROW_PROBLEMS`] listed, all counted.
#[derive(Default)]
struct Problems {
    listed: Vec<RowProblem>,
    count: u64,
}

impl Problems {
    fn add(&mut self, row: u64, error: Error) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED_ROW_PROBLEMS {
            self.listed.push(RowProblem { row, error });
        }
    }

    /// `Err(ImportRejected)` if any problem was found (listed by row).
    fn check(&mut self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.listed);
        rows.sort_by_key(|p| p.row);
        Err(Error::ImportRejected { rows, count: self.count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefix sort agrees with a plain sort by `(pk, input)`, also for keys that share
    /// their first 16 bytes, are prefixes of each other or end in zero bytes.
    #[test]
    fn rows_sort_by_primary_key_then_input() {
        let id = NationalId::parse("079190001234").unwrap_or_else(|e| panic!("{e}"));
        let pks: [&[u8]; 9] = [
            b"aaaaaaaaaaaaaaaa2",
            b"aaaaaaaaaaaaaaaa1",
            b"b",
            b"aaaaaaaaaaaaaaaa1",
            b"ab\0",
            b"ab",
            b"aaaaaaaaaaaaaaaa",
            b"aaaaaaaaaaaaaaaa\0",
            b"ab",
        ];
        let row = |(input, pk): (u64, &&[u8])| Row {
            input,
            op: Op::Put {
                cid: CollectionId(1),
                pk: Bytes::copy_from_slice(pk),
                id,
                value: Vec::new(),
                insert_only: true,
            },
        };
        let mut rows: Vec<Row> = (0u64..).zip(pks.iter()).map(row).collect();
        sort_rows(&mut rows);
        let got: Vec<(Vec<u8>, u64)> = rows.iter().map(|r| (target_pk(&r.op).to_vec(), r.input)).collect();
        let mut want: Vec<(Vec<u8>, u64)> = (0u64..).zip(pks.iter()).map(|(i, pk)| (pk.to_vec(), i)).collect();
        want.sort();
        assert_eq!(got, want);
    }
}
