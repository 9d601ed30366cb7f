//! [`VersionBuilder`]: the one place where version edits become a file set. Every edit is
//! checked before it is applied, whoever applies it: recovery replaying the manifest
//! (`VersionSet::recover`), a flush or compaction installing a live edit (`Version::apply`),
//! and the inspection tools (`kho verify`, `kho dump manifest`).
//!
//! The checks (see `docs/manifest-format.md`, "Checks"):
//! - every level an edit names is below the number of levels;
//! - a deleted table is live at the level the edit names;
//! - an added table is not live anywhere, unless the same edit deletes it (a *move*), and a
//!   moved table keeps its metadata;
//! - an added table's number is below the next file number (the edit's own, else the one in
//!   force); an edit that sets the next file number for the first time must leave it above
//!   every table already live;
//! - an added table's keys are internal keys, its smallest key sorts at or before its
//!   largest, and its smallest sequence number is not above its largest;
//! - after the edit, the tables of each level `>= 1` do not overlap in user keys;
//! - the log number, the next file number and the last sequence never move backwards;
//! - at the end ([`VersionBuilder::finish`]), all three counters have been recorded.
//!
//! A violation is an [`Inconsistency`] naming the manifest offset of the edit's record.
//! Callers decide what it means: recovery stops at the first one (`Error::Corruption` at
//! that offset), a live edit that fails is a bug (`Error::Internal`), the tools list them all.
//! So that a tool can keep going, an inconsistent edit is still applied as far as it can be:
//! a deletion of an absent table and an addition at a level out of range or of a table
//! already live are skipped, everything else is applied.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::Bytes;

use crate::key::{compare_internal, ParsedKey, SeqNo};

use super::{FileMeta, VersionEdit};

/// One way a version edit, or a manifest as a whole, is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency {
    /// Byte offset, in the manifest, of the record holding the edit at fault. `None` for a
    /// check of the manifest as a whole (a counter it never records) and for an edit that
    /// was not read from a manifest (a live edit).
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "at offset {o}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// The counters a manifest carries besides the file set; `None` until an edit records one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Logs numbered below this hold only flushed data.
    pub log_number: Option<u64>,
    /// The next number to hand out for a log, table or manifest.
    pub next_file_number: Option<u64>,
    /// The largest sequence number in a flushed table.
    pub last_sequence: Option<SeqNo>,
}

/// The tables of one level.
#[derive(Debug, Clone, Default)]
struct Level {
    /// By file number.
    files: BTreeMap<u64, FileMeta>,
    /// Levels >= 1 only: `(smallest user key, number)` of every table, so the neighbours of
    /// an added table can be found for the overlap check.
    by_start: BTreeSet<(Bytes, u64)>,
}

/// Applies version edits one at a time to a file set and the counters, checking each (see
/// the module docs for the checks).
#[derive(Debug, Clone)]
pub struct VersionBuilder {
    levels: Vec<Level>,
    counters: Counters,
}

impl VersionBuilder {
    /// An empty file set of `num_levels` levels with no counter recorded yet: the state
    /// before a manifest's first edit.
    pub fn new(num_levels: usize) -> Self {
        VersionBuilder { levels: vec![Level::default(); num_levels], counters: Counters::default() }
    }

    /// A builder holding `files` (`(level, meta)`, taken as consistent: a live version) and
    /// `counters`, to check and apply a live edit. Files at a level beyond `num_levels` are
    /// dropped (a live version never has any).
    pub(crate) fn with_files<'a>(
        num_levels: usize,
        files: impl IntoIterator<Item = (usize, &'a FileMeta)>,
        counters: Counters,
    ) -> Self {
        let mut b = VersionBuilder { levels: vec![Level::default(); num_levels], counters };
        for (level, meta) in files {
            b.insert(level, meta.clone());
        }
        b
    }

    fn insert(&mut self, level: usize, meta: FileMeta) {
        let Some(l) = self.levels.get_mut(level) else { return };
        if level > 0 {
            l.by_start.insert(key_of(&meta));
        }
        l.files.insert(meta.number, meta);
    }

    fn remove(&mut self, level: usize, number: u64) -> Option<FileMeta> {
        let l = self.levels.get_mut(level)?;
        let meta = l.files.remove(&number)?;
        l.by_start.remove(&key_of(&meta));
        Some(meta)
    }

    /// Checks `edit`, read from the manifest record at `offset` (`None` for a live edit),
    /// against the current state and applies it. Returns every check it fails, in the order
    /// found; empty when it is consistent. An inconsistent edit is applied as far as it can
    /// be (see the module docs).
    pub fn apply(&mut self, edit: &VersionEdit, offset: Option<u64>) -> Vec<Inconsistency> {
        let mut bad: Vec<String> = Vec::new();
        let num_levels = self.levels.len();
        let c = self.counters;
        for (name, old, new) in [
            ("log number", c.log_number, edit.log_number),
            ("next file number", c.next_file_number, edit.next_file_number),
            ("last sequence", c.last_sequence, edit.last_sequence),
        ] {
            if let (Some(old), Some(new)) = (old, new) {
                if new < old {
                    bad.push(format!("edit moves the {name} back from {old} to {new}"));
                }
            }
        }

        // Deletions first: a table deleted and added by the same edit is a move.
        let mut moved: BTreeMap<u64, (u32, FileMeta)> = BTreeMap::new();
        for &(level, number) in &edit.deleted_files {
            if level as usize >= num_levels {
                bad.push(format!("edit deletes table {number} at L{level}, beyond the {num_levels} levels"));
            } else if let Some(meta) = self.remove(level as usize, number) {
                moved.insert(number, (level, meta));
            } else {
                bad.push(format!("edit deletes table {number} which is not at L{level}"));
            }
        }

        let next = edit.next_file_number.or(c.next_file_number);
        if let (None, Some(n)) = (c.next_file_number, edit.next_file_number) {
            // Tables added before any next file number was known are checked now.
            for (level, f) in self.files().filter(|(_, f)| f.number >= n) {
                bad.push(format!("edit sets the next file number to {n}, not above table {} at L{level}", f.number));
            }
        }

        let mut added: Vec<(usize, &FileMeta)> = Vec::new();
        for (level, f) in &edit.new_files {
            let number = f.number;
            if *level as usize >= num_levels {
                bad.push(format!("edit adds table {number} at L{level}, beyond the {num_levels} levels"));
                continue;
            }
            if let Some((l, _)) = self.find(number) {
                bad.push(format!("edit adds table {number} at L{level} which is already live at L{l}"));
                continue;
            }
            if let Some((from, old)) = moved.get(&number) {
                if old != f {
                    bad.push(format!("edit moves table {number} from L{from} to L{level} but changes its metadata"));
                }
            }
            if let Some(n) = next.filter(|&n| number >= n) {
                bad.push(format!("edit adds table {number} at L{level}, not below the next file number {n}"));
            }
            bad.extend(meta_problems(f).into_iter().map(|p| format!("edit adds table {number} at L{level}: {p}")));
            self.insert(*level as usize, f.clone());
            added.push((*level as usize, f));
        }

        // Levels >= 1 must not overlap after the edit. Deleting a table cannot make its
        // neighbours overlap, so checking each added table against the tables next to it
        // (by smallest key) finds every overlap in a level that had none.
        let mut reported: BTreeSet<(u64, u64)> = BTreeSet::new();
        for &(level, f) in added.iter().filter(|(level, _)| *level > 0) {
            let l = &self.levels[level];
            let key = key_of(f);
            let before = l.by_start.range(..key.clone()).next_back();
            let after = l.by_start.range((Bound::Excluded(key), Bound::Unbounded)).next();
            for (_, other) in before.into_iter().chain(after) {
                let Some(o) = l.files.get(other) else { continue };
                let (lo, hi) = if (start_key(o), o.number) < key_of(f) { (o, f) } else { (f, o) };
                let pair = (f.number.min(o.number), f.number.max(o.number));
                if user_key(&lo.largest) >= user_key(&hi.smallest) && reported.insert(pair) {
                    bad.push(format!(
                        "edit adds table {} at L{level} overlapping table {} (user keys {}..{} and {}..{})",
                        f.number,
                        o.number,
                        show(user_key(&f.smallest)),
                        show(user_key(&f.largest)),
                        show(user_key(&o.smallest)),
                        show(user_key(&o.largest)),
                    ));
                }
            }
        }

        self.counters = Counters {
            log_number: edit.log_number.or(c.log_number),
            next_file_number: edit.next_file_number.or(c.next_file_number),
            last_sequence: edit.last_sequence.or(c.last_sequence),
        };
        bad.into_iter().map(|what| Inconsistency { offset, what }).collect()
    }

    /// The checks of the state after the last edit: every counter has been recorded.
    pub fn finish(&self) -> Vec<Inconsistency> {
        let c = self.counters;
        [
            ("log number", c.log_number.is_none()),
            ("next file number", c.next_file_number.is_none()),
            ("last sequence", c.last_sequence.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| Inconsistency { offset: None, what: format!("the manifest never records the {name}") })
        .collect()
    }

    /// Number of levels.
    pub fn num_levels(&self) -> usize {
        self.levels.len()
    }

    /// The live tables of `level`, by file number (`None` beyond the last level).
    pub fn level(&self, level: usize) -> Option<&BTreeMap<u64, FileMeta>> {
        self.levels.get(level).map(|l| &l.files)
    }

    /// Every live table as `(level, meta)`, level by level, by number.
    pub fn files(&self) -> impl Iterator<Item = (usize, &FileMeta)> {
        self.levels.iter().enumerate().flat_map(|(l, level)| level.files.values().map(move |f| (l, f)))
    }

    /// The level and metadata of live table `number`.
    pub fn find(&self, number: u64) -> Option<(usize, &FileMeta)> {
        self.levels.iter().enumerate().find_map(|(l, level)| level.files.get(&number).map(|f| (l, f)))
    }

    /// The live tables per level (index = level), by file number.
    pub fn into_levels(self) -> Vec<BTreeMap<u64, FileMeta>> {
        self.levels.into_iter().map(|l| l.files).collect()
    }

    /// The log number recorded last (logs numbered below it hold only flushed data).
    pub fn log_number(&self) -> Option<u64> {
        self.counters.log_number
    }

    /// The next file number recorded last.
    pub fn next_file_number(&self) -> Option<u64> {
        self.counters.next_file_number
    }

    /// The last sequence recorded last.
    pub fn last_sequence(&self) -> Option<SeqNo> {
        self.counters.last_sequence
    }
}

/// What is wrong with one table's own metadata.
fn meta_problems(f: &FileMeta) -> Vec<String> {
    let mut v = Vec::new();
    let smallest = ParsedKey::parse(&f.smallest);
    let largest = ParsedKey::parse(&f.largest);
    if smallest.is_none() {
        v.push(format!("its smallest key ({} bytes) is not an internal key", f.smallest.len()));
    }
    if largest.is_none() {
        v.push(format!("its largest key ({} bytes) is not an internal key", f.largest.len()));
    }
    if smallest.is_some() && largest.is_some() && compare_internal(&f.smallest, &f.largest).is_gt() {
        v.push(format!(
            "its smallest key {} sorts after its largest key {}",
            show(user_key(&f.smallest)),
            show(user_key(&f.largest))
        ));
    }
    if f.smallest_seq > f.largest_seq {
        v.push(format!("its smallest sequence {} is above its largest {}", f.smallest_seq, f.largest_seq));
    }
    v
}

/// The user key of an internal key (empty when it is too short to be one; such a key is
/// reported by `meta_problems`).
fn user_key(ikey: &[u8]) -> &[u8] {
    crate::key::user_key(ikey)
}

/// The smallest user key of a table, sharing the metadata's bytes.
fn start_key(f: &FileMeta) -> Bytes {
    f.smallest.slice(..user_key(&f.smallest).len())
}

/// A table's place in `Level::by_start`.
fn key_of(f: &FileMeta) -> (Bytes, u64) {
    (start_key(f), f.number)
}

/// A user key for a message: redacted (keys may hold national IDs).
fn show(key: &[u8]) -> String {
    crate::util::redact(key)
}

#[cfg(test)]
mod tests;
