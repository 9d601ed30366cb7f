//! Key rotation and re-encryption of a live encrypted database: [`Db::rotate_key`],
//! [`Db::reencrypt`], [`Db::rotate_master_key`] (see `docs/encryption.md`).
//!
//! Invariant: a data key leaves the registry only after no live file uses it: re-encryption
//! moves the log to a new file under the current key, flushes every memtable, rewrites every
//! table under an older key (entry for entry, the same level: nothing a snapshot sees
//! changes), starts a new manifest, and only then retires the keys nothing names.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::flush::sst_options;
use super::{Db, DbInner};
use crate::compaction::output::TableOutput;
use crate::crypt::{KeyProvider, Keyring};
use crate::filename::manifest_name;
use crate::version::{TableFile, VersionEdit};
use crate::{Error, Result};

/// What [`Db::reencrypt`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReencryptReport {
    /// The data key every file is now under.
    pub key_id: u32,
    /// Tables rewritten (they were under an older key).
    pub tables_rewritten: u64,
    /// Bytes of the tables rewritten.
    pub bytes_rewritten: u64,
    /// Data keys removed from the registry.
    pub retired_keys: Vec<u32>,
}

impl Db {
    /// Starts a new data key: files written from now on (logs, tables, manifests) use it;
    /// files under older keys stay readable until compaction or [`Db::reencrypt`] rewrites
    /// them. Returns the new key's id. [`Error::InvalidArgument`] on a plaintext database.
    pub fn rotate_key(&self) -> Result<u32> {
        let inner = self.inner();
        inner.check_writable()?;
        let keys = inner.keyring()?;
        let _rekeying = keys.rekeying.lock();
        keys.rotate()
    }

    /// Rewrites everything under the current data key — the log, every memtable, every
    /// table under an older key, the manifest — then retires the keys no file uses any more.
    /// Writers and readers go on meanwhile; background compactions wait.
    pub fn reencrypt(&self) -> Result<ReencryptReport> {
        self.inner().reencrypt()
    }

    /// Puts the key registry under the master key of `provider` (its current master id). No
    /// data file is rewritten; from now on the database opens only with the new master key.
    pub fn rotate_master_key(&self, provider: Arc<dyn KeyProvider>) -> Result<()> {
        let inner = self.inner();
        inner.check_writable()?;
        let keys = inner.keyring()?;
        let _rekeying = keys.rekeying.lock();
        keys.rewrap(provider)
    }

    /// The database's keyring; `None` for a plaintext database.
    pub fn keyring(&self) -> Option<&Arc<Keyring>> {
        self.inner().ctx.keys.as_ref()
    }
}

impl DbInner {
    fn keyring(&self) -> Result<&Arc<Keyring>> {
        self.ctx.keys.as_ref().ok_or_else(|| Error::InvalidArgument("the database is not encrypted".into()))
    }

    fn reencrypt(&self) -> Result<ReencryptReport> {
        self.check_writable()?;
        let keys = self.keyring()?.clone();
        let _rekeying = keys.rekeying.lock(); // the current key stays current throughout
        let mut report = ReencryptReport { key_id: keys.current_key_id(), ..ReencryptReport::default() };
        // 1. A new log under the current key, even if the memtable is empty (the active log
        //    may be under an older key); then every memtable into tables.
        {
            let mut wal = self.wal.lock();
            let wal = wal.as_mut().ok_or(Error::Closed)?;
            self.health.check_not_failed()?;
            self.wait_for_room()?;
            self.rotate(wal)?;
        }
        self.flush()?;
        // 2. Tables under older keys, rewritten in place (same level, same entries).
        let _running = self.compaction_lock.lock();
        self.check_open()?;
        let version = self.versions.lock().current();
        for (level, f) in version.files() {
            if f.reader()?.key_id() == Some(report.key_id) {
                continue;
            }
            self.check_open()?;
            report.bytes_rewritten += f.meta.size;
            report.tables_rewritten += 1;
            self.rewrite_table(level, f)?;
        }
        // 3. A new manifest under the current key.
        let used: BTreeSet<u32> = {
            let mut versions = self.versions.lock();
            let old = versions.manifest_number();
            versions.write_new_manifest()?;
            // Garbage now; a failure leaves it for the next open.
            let _ = self.ctx.fs.remove(&self.dir.join(manifest_name(old)));
            let mut used = BTreeSet::from([report.key_id]); // the log's and the manifest's
            for (_, f) in versions.current().files() {
                used.extend(f.reader()?.key_id());
            }
            used
        };
        // 4. Retire what nothing names.
        report.retired_keys = keys.retain(&used)?;
        Ok(report)
    }

    /// Rewrites table `f` of `level` under the current key: same entries, same level.
    /// Requires `compaction_lock`.
    fn rewrite_table(&self, level: usize, f: &Arc<TableFile>) -> Result<()> {
        let number = self.versions.lock().new_file_number();
        let mut out = TableOutput::create(&self.ctx, number, &sst_options(&self.opts, level))?;
        let mut it = f.reader()?.iter();
        it.seek_to_first()?;
        while it.valid() {
            out.add(it.key(), &it.value())?;
            it.next()?;
        }
        let mut edit = VersionEdit::default();
        edit.deleted_files.push((level as u32, f.meta.number));
        edit.new_files.extend(out.finish()?.map(|m| (level as u32, m)));
        self.ctx.fs.sync_dir(&self.dir)?;
        let mut versions = self.versions.lock();
        let version = versions.log_and_apply(edit)?;
        self.install_version(version);
        Ok(())
    }
}
