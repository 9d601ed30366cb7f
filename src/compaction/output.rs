//! [`TableOutput`]: writes one SSTable entry by entry and produces its [`FileMeta`].
//! Shared by flushes and compactions. Both cut an output only between two user keys: a
//! flush when the index grows past `limits::INDEX_CUT_LEN` (so one memtable of huge keys
//! becomes several tables), a compaction also at the target file size and grandparent
//! overlap.

use bytes::Bytes;

use crate::filename::table_path;
use crate::key::ParsedKey;
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
        let writer = SstWriter::new(ctx.fs.create(&path)?, path.clone(), opts);
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

    /// Appends an entry; keys must arrive in strictly increasing internal order.
    pub(crate) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let p = ParsedKey::parse(ikey).ok_or_else(|| {
            Error::corruption(&self.path, 0, "malformed internal key given to the table being written")
        })?;
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
