//! [`Version`]: an immutable view of the live SSTables, level by level.
//!
//! Invariants:
//! - Level 0 files may overlap; they are ordered newest first (by largest sequence number,
//!   then file number), so the first hit for a key is its newest version.
//! - Files of every level `>= 1` do not overlap and are ordered by smallest key.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::iter::InternalIterator;
use crate::key::{compare_internal, user_key, ParsedKey, ValueKind};
use crate::{Error, Result};

use super::{Counters, FileMeta, TableContext, TableFile, VersionBuilder, VersionEdit};

/// The live files at one point in time.
#[derive(Debug, Default, Clone)]
pub(crate) struct Version {
    pub levels: Vec<Vec<Arc<TableFile>>>,
}

impl Version {
    /// An empty version with `num_levels` levels.
    pub(crate) fn empty(num_levels: usize) -> Self {
        Version { levels: vec![Vec::new(); num_levels] }
    }

    /// The version that results from applying `edit` to `self`, whose counters are
    /// `counters`. The edit is checked by a [`VersionBuilder`] first; as a live edit comes
    /// from kho itself, a failed check is a bug: [`Error::Internal`]. Removed files are not
    /// touched: retiring them is the caller's job once the edit is durable.
    pub(crate) fn apply(&self, edit: &VersionEdit, counters: Counters, ctx: &TableContext) -> Result<Version> {
        let mut builder =
            VersionBuilder::with_files(self.levels.len(), self.files().map(|(l, f)| (l, &f.meta)), counters);
        let bad = builder.apply(edit, None);
        if !bad.is_empty() {
            let what: Vec<String> = bad.into_iter().map(|i| i.what).collect();
            return Err(Error::Internal(format!("a live version edit fails its checks: {}", what.join("; "))));
        }
        // Every file keeps its one `TableFile` (and open reader), a moved one too: two
        // handles for one file would let the old one delete it when dropped.
        let handles: HashMap<u64, &Arc<TableFile>> = self.files().map(|(_, f)| (f.meta.number, f)).collect();
        Ok(Self::build(&builder, ctx, |meta| handles.get(&meta.number).map(|f| Arc::clone(f))))
    }

    /// The version holding the files of `builder` (a replayed manifest), each with a new
    /// handle.
    pub(crate) fn from_builder(builder: &VersionBuilder, ctx: &TableContext) -> Version {
        Self::build(builder, ctx, |_| None)
    }

    /// The files of `builder`, each with the handle `existing` gives or a new one, sorted.
    fn build(
        builder: &VersionBuilder,
        ctx: &TableContext,
        existing: impl Fn(&FileMeta) -> Option<Arc<TableFile>>,
    ) -> Version {
        let mut v = Version::empty(builder.num_levels());
        for (level, meta) in builder.files() {
            let file = existing(meta).unwrap_or_else(|| Arc::new(TableFile::new(meta.clone(), ctx.clone())));
            if let Some(files) = v.levels.get_mut(level) {
                files.push(file);
            }
        }
        v.sort();
        v
    }

    fn sort(&mut self) {
        for (level, files) in self.levels.iter_mut().enumerate() {
            if level == 0 {
                files.sort_by_key(|f| std::cmp::Reverse((f.meta.largest_seq, f.meta.number)));
            } else {
                files.sort_by(|a, b| compare_internal(&a.meta.smallest, &b.meta.smallest));
            }
        }
    }

    /// Every live file, level by level.
    pub(crate) fn files(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels.iter().enumerate().flat_map(|(l, fs)| fs.iter().map(move |f| (l, f)))
    }

    /// The newest entry for `user_key` visible at the sequence in `lookup` (an internal seek
    /// key for `user_key`, whose `xxh64` is `hash`), searching level 0 newest first, then
    /// each deeper level.
    pub(crate) fn get(&self, lookup: &[u8], hash: u64) -> Result<Option<(ValueKind, Bytes)>> {
        let ukey = user_key(lookup);
        for (level, files) in self.levels.iter().enumerate() {
            if level == 0 {
                for f in files {
                    if ukey < user_key(&f.meta.smallest) || ukey > user_key(&f.meta.largest) {
                        continue;
                    }
                    if let Some(hit) = table_get(f, lookup, hash)? {
                        return Ok(Some(hit));
                    }
                }
            } else {
                let i = files.partition_point(|f| compare_internal(&f.meta.largest, lookup) == Ordering::Less);
                if let Some(f) = files.get(i) {
                    if user_key(&f.meta.smallest) <= ukey {
                        if let Some(hit) = table_get(f, lookup, hash)? {
                            return Ok(Some(hit));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Cursors over every level: one per level-0 file, one concatenating cursor per deeper
    /// non-empty level.
    pub(crate) fn iterators(&self, out: &mut Vec<Box<dyn InternalIterator>>) -> Result<()> {
        for (level, files) in self.levels.iter().enumerate() {
            if level == 0 {
                for f in files {
                    out.push(Box::new(f.reader()?.iter()));
                }
            } else if !files.is_empty() {
                out.push(Box::new(crate::iter::LevelIter::new(files.clone())));
            }
        }
        Ok(())
    }
}

fn table_get(f: &TableFile, lookup: &[u8], hash: u64) -> Result<Option<(ValueKind, Bytes)>> {
    let Some((k, v)) = f.reader()?.get_hashed(lookup, hash)? else {
        return Ok(None);
    };
    // Blocks refuse entries whose key is not an internal key (`BlockIter`), so this is a bug.
    let p = ParsedKey::parse(&k).ok_or_else(|| {
        Error::Internal(format!("table {} returned a malformed internal key from a lookup", f.meta.number))
    })?;
    Ok(Some((p.kind, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::FileMeta;

    fn meta(number: u64) -> FileMeta {
        FileMeta::test_table(number, "a", "z", 100)
    }

    /// Found by `tests/space_reclamation.rs`: a trivial move created a second handle for
    /// the moved file, and dropping the old one deleted the file still in use.
    #[test]
    fn moved_file_keeps_its_single_handle() {
        let ctx = TableContext::new(crate::vfs::StdFs::shared(), "/nonexistent".into(), None, None);
        let v = Version::empty(3)
            .apply(&VersionEdit { new_files: vec![(1, meta(7))], ..Default::default() }, Counters::default(), &ctx)
            .unwrap();
        let moved = VersionEdit { deleted_files: vec![(1, 7)], new_files: vec![(2, meta(7))], ..Default::default() };
        let v2 = v.apply(&moved, Counters::default(), &ctx).unwrap();
        assert!(v2.levels[1].is_empty());
        assert!(Arc::ptr_eq(&v.levels[1][0], &v2.levels[2][0]));
    }

    /// A live edit failing a check is a bug in kho, not corruption, and changes nothing.
    #[test]
    fn a_live_edit_failing_its_checks_is_an_internal_error() {
        let ctx = TableContext::new(crate::vfs::StdFs::shared(), "/nonexistent".into(), None, None);
        let counters = Counters { log_number: Some(4), next_file_number: Some(10), last_sequence: Some(1) };
        let v = Version::empty(3)
            .apply(&VersionEdit { new_files: vec![(1, meta(7))], ..Default::default() }, counters, &ctx)
            .unwrap();
        for (edit, what) in [
            (VersionEdit { deleted_files: vec![(2, 7)], ..Default::default() }, "deletes table 7 which is not at L2"),
            (VersionEdit { new_files: vec![(1, meta(8))], ..Default::default() }, "overlapping table 7"),
            (VersionEdit { new_files: vec![(0, meta(12))], ..Default::default() }, "not below the next file number 10"),
            (VersionEdit { new_files: vec![(3, meta(8))], ..Default::default() }, "beyond the 3 levels"),
            (VersionEdit { log_number: Some(3), ..Default::default() }, "moves the log number back"),
        ] {
            match v.apply(&edit, counters, &ctx) {
                Err(Error::Internal(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("expected an internal error naming {what:?}, got {other:?}"),
            }
        }
    }
}
