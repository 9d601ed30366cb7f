//! What a physical purge (the record layer's `Store::purge_erased`) needs from the engine
//! beyond `compact_range`: a fresh manifest, so that the old one — whose edits name the
//! deleted tables' boundary keys — leaves the directory; and what still pins deleted data
//! (snapshots older than a sequence number, deleted tables still open).

use super::{Db, DbInner};
use crate::filename::manifest_name;
use crate::{Error, Result, SeqNo};

impl DbInner {
    /// Writes a new manifest holding only the current state (one edit) and deletes the
    /// old one.
    pub(super) fn rewrite_manifest(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.check_open()?;
        let mut versions = self.versions.lock();
        let old = versions.manifest_number();
        versions.write_new_manifest()?;
        // Garbage now: `CURRENT` names the new one; a failure leaves it for the next open.
        let _ = self.ctx.fs.remove(&self.dir.join(manifest_name(old)));
        Ok(())
    }
}

impl Db {
    /// Claims the database for one writable audited store; false if one already has it.
    pub(crate) fn claim_audit_writer(&self) -> bool {
        !self.inner().audit_writer.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// Releases [`Self::claim_audit_writer`].
    pub(crate) fn release_audit_writer(&self) {
        self.inner().audit_writer.store(false, std::sync::atomic::Ordering::Release);
    }

    /// Writes a new manifest (the current state as one edit, `CURRENT` switched to it) and
    /// deletes the old one, whose edits name every table ever added or deleted since it was
    /// started, with their boundary keys.
    pub(crate) fn rewrite_manifest(&self) -> Result<()> {
        self.inner().rewrite_manifest()
    }

    /// The live tables whose key range holds any of `keys` (sorted): where their data (or
    /// tombstones) may physically be until compaction.
    pub(crate) fn tables_holding(&self, keys: &[bytes::Bytes]) -> Vec<u64> {
        let version = self.inner().versions.lock().current();
        let mut out: Vec<u64> = version
            .files()
            .filter(|(_, f)| {
                let (lo, hi) = (crate::key::user_key(&f.meta.smallest), crate::key::user_key(&f.meta.largest));
                keys.iter().any(|k| lo <= k.as_ref() && k.as_ref() <= hi)
            })
            .map(|(_, f)| f.meta.number)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How many live snapshots read at a sequence number below `seq` (they can still see
    /// what was deleted at `seq`, and compaction keeps it for them).
    pub(crate) fn snapshots_before(&self, seq: SeqNo) -> usize {
        self.inner().snapshots.sequences().iter().filter(|s| **s < seq).count()
    }

    /// Tables that compaction deleted but that are still open (an iterator's version or an
    /// in-flight read holds them): their files stay in the directory until released.
    pub(crate) fn pinned_tables(&self) -> Vec<u64> {
        self.inner().ctx.pinned.list()
    }

    /// How many blocks in the block cache contain `needle` (tests proving that erased data
    /// left memory as well as the files).
    #[cfg(any(test, feature = "testing"))]
    pub fn cached_blocks_containing(&self, needle: &[u8]) -> usize {
        self.inner().ctx.cache.as_ref().map_or(0, |c| c.blocks_containing(needle))
    }
}
