//! [`TableOutput`]: writes one SSTable entry by entry and produces its [`FileMeta`].
//! Shared by flushes and compactions. Both cut an output only between two user keys: a
//! flush when the index grows past `limits::INDEX_CUT_LEN` (so one memtable of huge keys
//! becomes several tables), a compaction also at the target file size and grandparent
//! overlap.

use bytes::Bytes;

use crate::filename::table_path;
use crate::key::{compare_internal, ParsedKey};
use crate::sst::{SstOptions, SstWriter};
use crate::version::{FileMeta, TableContext};
use crate::{Error, Result};

/// An SSTable being written.
pub(crate) struct TableOutput {
    number: u64,
    path: std::path::PathBuf,
    writer: SstWriter,
    smallest: Option<Bytes>,
    largest: Vec<u8>,
    min_seq: u64,
    max_seq: u64,
    entries: u64,
}

impl TableOutput {
    /// Creates table `number` in the database directory.
    pub(crate) fn create(ctx: &TableContext, number: u64, opts: &SstOptions) -> Result<Self> {
        let path = table_path(&ctx.dir, number);
        let mut writer = SstWriter::new(ctx.fs.create(&path)?, path.clone(), opts);
        if let Some(keys) = &ctx.keys {
            let (header, cipher) = keys.new_file(crate::crypt::FileRole::Table, number)?;
            writer = writer.with_encryption(header.key_id, header.salt, cipher);
        }
        Ok(TableOutput {
            number,
            path,
            writer,
            smallest: None,
            largest: Vec::new(),
            min_seq: u64::MAX,
            max_seq: 0,
            entries: 0,
        })
    }

    /// Appends an entry; keys must be internal keys arriving in strictly increasing internal
    /// order. kho's own flushes and compactions are the only callers, so a key breaking that
    /// is a bug: [`Error::Internal`] (the public [`SstWriter`] calls it `InvalidArgument`).
    pub(crate) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let bug = |what: &str| Error::Internal(format!("table {} being written was given {what}", self.path.display()));
        let p =
            ParsedKey::parse(ikey).ok_or_else(|| bug(&format!("a malformed internal key of {} bytes", ikey.len())))?;
        if self.smallest.is_some() && compare_internal(&self.largest, ikey).is_ge() {
            return Err(bug("keys out of order"));
        }
        self.writer.add(ikey, value)?;
        self.min_seq = self.min_seq.min(p.seq);
        self.max_seq = self.max_seq.max(p.seq);
        self.entries += 1;
        if self.smallest.is_none() {
            self.smallest = Some(Bytes::copy_from_slice(ikey));
        }
        self.largest.clear();
        self.largest.extend_from_slice(ikey);
        Ok(())
    }

    /// Bytes written so far (estimate, before the index and footer).
    pub(crate) fn estimated_size(&self) -> u64 {
        self.writer.estimated_size()
    }

    /// The index passed `limits::INDEX_CUT_LEN`: cut this output at the next user key.
    pub(crate) fn index_full(&self) -> bool {
        self.writer.index_size_estimate() >= crate::limits::INDEX_CUT_LEN
    }

    /// The last user key added.
    pub(crate) fn last_user_key(&self) -> &[u8] {
        crate::key::user_key(&self.largest)
    }

    /// Finishes and fsyncs the table. `None` if nothing was added (the empty file remains
    /// for the caller to remove, or for the next open to collect).
    pub(crate) fn finish(self) -> Result<Option<FileMeta>> {
        let Some(smallest) = self.smallest else { return Ok(None) };
        let props = self.writer.finish()?;
        Ok(Some(FileMeta {
            number: self.number,
            size: props.file_size,
            smallest,
            largest: Bytes::from(self.largest),
            smallest_seq: self.min_seq,
            largest_seq: self.max_seq,
            entries: self.entries,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, ValueKind};

    /// Found by issue 11: a key breaking the writer's contract was reported as corruption of
    /// the table being written, at a made-up offset 0.
    #[test]
    fn keys_breaking_the_contract_are_internal_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = TableContext::new(crate::vfs::StdFs::shared(), dir.path().into(), None, None);
        let mut out = TableOutput::create(&ctx, 5, &SstOptions::default()).unwrap();
        out.add(&internal_key(b"b", 1, ValueKind::Put), b"v").unwrap();
        for (key, what) in [
            (b"short".to_vec(), "malformed internal key of 5 bytes"),
            (internal_key(b"a", 1, ValueKind::Put), "keys out of order"),
            (internal_key(b"b", 1, ValueKind::Put), "keys out of order"),
        ] {
            match out.add(&key, b"v") {
                Err(Error::Internal(m)) => assert!(m.contains(what) && m.contains("000005.sst"), "{m}"),
                other => panic!("expected an internal error, got {other:?}"),
            }
        }
        out.add(&internal_key(b"c", 1, ValueKind::Put), b"v").unwrap();
        assert_eq!(out.finish().unwrap().map(|m| m.entries), Some(2));
    }
}
