//! [`VersionSet`]: the current [`Version`], the counters that must survive a restart (next
//! file number, last flushed sequence, oldest live log), and the manifest they are logged in.
//!
//! Durability protocol (see `docs/durability.md`):
//! - Every change is a [`VersionEdit`] appended to the manifest and fsynced **before** the
//!   new version is installed; a failed append or fsync is returned and the caller poisons
//!   the database. The set itself then refuses every further edit ([`Error::Poisoned`]): the
//!   failed edit may be in the manifest's bytes although it was never installed, and an edit
//!   appended after it would make the next open apply both.
//! - A new manifest starts with one edit holding the full state; `CURRENT` is switched to it
//!   by write `CURRENT.tmp` -> fsync -> rename over `CURRENT` -> fsync the directory.
//! - Every edit, replayed or live, goes through the checks of [`super::VersionBuilder`]. In
//!   recovery a failed check is [`Error::Corruption`] at the edit's manifest offset; on a live
//!   edit it is a bug, [`Error::Internal`], and nothing is logged.
//! - A torn manifest tail is dropped or is corruption as the [`RecoveryMode`] says; a
//!   dropped one is kept ([`VersionSet::dropped_manifest_tail`]) to be reported.

use std::path::Path;
use std::sync::Arc;

use crate::filename::{decode_current, encode_current, manifest_name, CURRENT};
use crate::options::RecoveryMode;
use crate::wal::{DroppedTail, LogWriter};
use crate::{Error, Result};

use super::manifest::{read_manifest, replay};
use super::{Counters, TableContext, Version, VersionEdit};

/// The current version plus the persistent counters and the manifest writer.
pub(crate) struct VersionSet {
    ctx: TableContext,
    manifest: Option<LogWriter>,
    manifest_number: u64,
    current: Arc<Version>,
    /// The next number to hand out for a log, table or manifest.
    pub next_file_number: u64,
    /// Logs numbered below this hold only flushed data.
    pub log_number: u64,
    /// The largest sequence number stored in a flushed table (or recovered).
    pub last_sequence: u64,
    /// A manifest append or fsync failed: no further edit may be logged.
    manifest_failed: bool,
    /// The torn tail recovery dropped from the end of the manifest it read.
    dropped_manifest_tail: Option<DroppedTail>,
}

impl std::fmt::Debug for VersionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSet")
            .field("manifest_number", &self.manifest_number)
            .field("next_file_number", &self.next_file_number)
            .field("log_number", &self.log_number)
            .field("last_sequence", &self.last_sequence)
            .finish_non_exhaustive()
    }
}

impl VersionSet {
    /// A fresh, empty set for a new database (nothing written yet; call
    /// [`Self::write_new_manifest`]).
    pub(crate) fn new_empty(ctx: TableContext, num_levels: usize) -> Self {
        VersionSet {
            ctx,
            manifest: None,
            manifest_number: 0,
            current: Arc::new(Version::empty(num_levels)),
            next_file_number: 1,
            log_number: 0,
            last_sequence: 0,
            manifest_failed: false,
            dropped_manifest_tail: None,
        }
    }

    /// Recovers the state named by `CURRENT`; `Ok(None)` when there is no `CURRENT`. Every
    /// edit is checked ([`super::VersionBuilder`]); the first inconsistency is
    /// [`Error::Corruption`] at its edit's offset. A torn manifest tail is corruption under
    /// [`RecoveryMode::AbsoluteConsistency`] and is dropped (and kept, see
    /// [`Self::dropped_manifest_tail`]) otherwise.
    pub(crate) fn recover(ctx: TableContext, num_levels: usize, mode: RecoveryMode) -> Result<Option<Self>> {
        let current_path = ctx.dir.join(CURRENT);
        if !ctx.fs.exists(&current_path)? {
            return Ok(None);
        }
        let manifest_number = decode_current(&current_path, &ctx.fs.read_all(&current_path)?)?;
        let manifest_path = ctx.dir.join(manifest_name(manifest_number));
        if !ctx.fs.exists(&manifest_path)? {
            // The manifest's name is CURRENT's first line, at offset 0.
            return Err(Error::corruption(
                &current_path,
                0,
                format!("CURRENT names {} which does not exist", manifest_path.display()),
            ));
        }
        let manifest = read_manifest(ctx.fs.as_ref(), &manifest_path, mode, ctx.keys.as_ref())?;
        let builder = replay(&manifest_path, &manifest.edits, num_levels)?;
        let (Some(log_number), Some(next_file_number), Some(last_sequence)) =
            (builder.log_number(), builder.next_file_number(), builder.last_sequence())
        else {
            return Err(Error::Internal("a replayed manifest passed its checks without its counters".into()));
        };
        let current = Arc::new(Version::from_builder(&builder, &ctx));
        Ok(Some(VersionSet {
            ctx,
            manifest: None,
            manifest_number,
            current,
            next_file_number,
            log_number,
            last_sequence,
            manifest_failed: false,
            dropped_manifest_tail: manifest.dropped_tail,
        }))
    }

    /// The torn tail recovery dropped from the end of the manifest (under
    /// [`RecoveryMode::TolerateCorruptedTail`]), for the open path to report.
    pub(crate) fn dropped_manifest_tail(&self) -> Option<&DroppedTail> {
        self.dropped_manifest_tail.as_ref()
    }

    /// The counters, as a live edit's checks start from them.
    fn counters(&self) -> Counters {
        Counters {
            log_number: Some(self.log_number),
            next_file_number: Some(self.next_file_number),
            last_sequence: Some(self.last_sequence),
        }
    }

    /// Hands out a new file number.
    pub(crate) fn new_file_number(&mut self) -> u64 {
        let n = self.next_file_number;
        self.next_file_number += 1;
        n
    }

    /// The current version.
    pub(crate) fn current(&self) -> Arc<Version> {
        self.current.clone()
    }

    /// The live manifest's number.
    pub(crate) fn manifest_number(&self) -> u64 {
        self.manifest_number
    }

    /// Logs `edit` durably in the manifest, then installs the resulting version. Counters
    /// the edit leaves unset are filled in from the set. An edit failing its checks is
    /// [`Error::Internal`] and is not logged.
    pub(crate) fn log_and_apply(&mut self, mut edit: VersionEdit) -> Result<Arc<Version>> {
        edit.next_file_number = Some(self.next_file_number);
        edit.last_sequence = Some(edit.last_sequence.unwrap_or(self.last_sequence).max(self.last_sequence));
        let next = self.current.apply(&edit, self.counters(), &self.ctx)?;
        if self.manifest_failed {
            return Err(Error::Poisoned);
        }
        let manifest = self.manifest.as_mut().ok_or(Error::Closed)?;
        let mut buf = Vec::new();
        edit.encode(&mut buf);
        if let Err(e) = manifest.add_record(&buf).and_then(|()| manifest.sync()) {
            // Whether the edit reached the disk is unknown; a later edit behind it would make
            // the next open apply this one, which is not installed here.
            self.manifest_failed = true;
            return Err(e);
        }
        // Durable: now retire removed files (not those merely moved to another level).
        for &(level, number) in &edit.deleted_files {
            if edit.new_files.iter().any(|(_, f)| f.number == number) {
                continue;
            }
            if let Some(f) =
                self.current.levels.get(level as usize).and_then(|l| l.iter().find(|f| f.meta.number == number))
            {
                f.mark_obsolete();
            }
        }
        self.log_number = edit.log_number.unwrap_or(self.log_number);
        self.last_sequence = edit.last_sequence.unwrap_or(self.last_sequence);
        self.current = Arc::new(next);
        Ok(self.current.clone())
    }

    /// Installs `edit` (tables written during recovery) without logging it; the caller then
    /// writes a new manifest holding the full state.
    pub(crate) fn install_recovered(&mut self, edit: &VersionEdit) -> Result<()> {
        self.current = Arc::new(self.current.apply(edit, self.counters(), &self.ctx)?);
        Ok(())
    }

    /// The whole current state as one edit: what a new manifest starts with.
    pub(crate) fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            log_number: Some(self.log_number),
            next_file_number: Some(self.next_file_number),
            last_sequence: Some(self.last_sequence),
            deleted_files: Vec::new(),
            new_files: self.current.files().map(|(l, f)| (l as u32, f.meta.clone())).collect(),
        }
    }

    /// Starts a new manifest holding the full current state and points `CURRENT` at it.
    /// The old manifest becomes garbage for the caller to delete.
    pub(crate) fn write_new_manifest(&mut self) -> Result<()> {
        let number = self.new_file_number();
        let writer = write_manifest(
            self.ctx.fs.as_ref(),
            &self.ctx.dir,
            number,
            &self.snapshot_edit(),
            self.ctx.keys.as_deref(),
        )?;
        self.manifest = Some(writer);
        self.manifest_number = number;
        Ok(())
    }
}

/// Writes manifest `number` in `dir` holding `edit` (encrypted under the current data key of
/// `keys`, if given), fsyncs it and points `CURRENT` at it (write `CURRENT.tmp`, fsync,
/// rename, fsync the directory). Returns the manifest's writer.
pub(crate) fn write_manifest(
    fs: &dyn crate::vfs::FileSystem,
    dir: &Path,
    number: u64,
    edit: &VersionEdit,
    keys: Option<&crate::crypt::Keyring>,
) -> Result<LogWriter> {
    let mut buf = Vec::new();
    edit.encode(&mut buf);
    let mut writer = crate::crypt::new_log_writer(fs.create(&dir.join(manifest_name(number)))?, number, keys)?;
    writer.add_record(&buf)?;
    writer.sync()?;
    let tmp = dir.join("CURRENT.tmp");
    if fs.exists(&tmp)? {
        fs.remove(&tmp)?; // left by a crash between create and rename
    }
    let mut f = fs.create(&tmp)?;
    f.append(encode_current(number).as_bytes())?;
    f.sync()?;
    drop(f);
    fs.rename(&tmp, &dir.join(CURRENT))?;
    fs.sync_dir(dir)?;
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{FaultFs, FileSystem};
    use std::path::Path;

    /// A database directory on `fs` whose manifest holds two edits (the full state, then a
    /// counters-only edit); returns the manifest's path and the offset of the second edit.
    fn two_edits(fs: &Arc<FaultFs>) -> (TableContext, std::path::PathBuf, u64) {
        fs.create_dir_all(Path::new("/db")).unwrap();
        let ctx = TableContext::new(fs.clone(), "/db".into(), None, None);
        let mut set = VersionSet::new_empty(ctx.clone(), 4);
        set.write_new_manifest().unwrap();
        let manifest = ctx.dir.join(manifest_name(set.manifest_number()));
        let second = fs.file_len(&manifest).unwrap();
        set.log_and_apply(VersionEdit { log_number: Some(1), last_sequence: Some(9), ..VersionEdit::default() })
            .unwrap();
        (ctx, manifest, second)
    }

    #[test]
    fn a_torn_manifest_tail_is_dropped_and_kept_or_refused_as_the_mode_says() {
        let fs = Arc::new(FaultFs::new());
        let (ctx, manifest, second) = two_edits(&fs);
        let set = VersionSet::recover(ctx.clone(), 4, RecoveryMode::AbsoluteConsistency).unwrap().unwrap();
        assert_eq!((set.dropped_manifest_tail(), set.last_sequence), (None, 9), "a clean manifest");

        // The second edit's append never completed.
        let len = fs.file_len(&manifest).unwrap();
        fs.truncate(&manifest, len - 3).unwrap();
        match VersionSet::recover(ctx.clone(), 4, RecoveryMode::AbsoluteConsistency) {
            Err(Error::Corruption { file, offset, what }) => {
                assert_eq!((file, offset), (manifest.clone(), Some(second)));
                assert!(what.contains("absolute consistency"), "{what}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        let set = VersionSet::recover(ctx, 4, RecoveryMode::TolerateCorruptedTail).unwrap().unwrap();
        let tail = set.dropped_manifest_tail().unwrap();
        assert_eq!((&tail.file, tail.offset, tail.bytes, tail.records), (&manifest, second, len - 3 - second, 1));
        assert_eq!((set.log_number, set.last_sequence), (0, 0), "the torn edit is not applied");
    }

    #[test]
    fn an_inconsistent_live_edit_is_an_internal_error_and_is_not_logged() {
        let fs = Arc::new(FaultFs::new());
        let (ctx, manifest, _) = two_edits(&fs);
        let mut set = VersionSet::recover(ctx.clone(), 4, RecoveryMode::AbsoluteConsistency).unwrap().unwrap();
        set.write_new_manifest().unwrap();
        let manifest_now = ctx.dir.join(manifest_name(set.manifest_number()));
        assert_ne!(manifest, manifest_now);
        let len = fs.file_len(&manifest_now).unwrap();
        let err =
            set.log_and_apply(VersionEdit { deleted_files: vec![(1, 42)], ..VersionEdit::default() }).unwrap_err();
        assert!(matches!(&err, Error::Internal(m) if m.contains("deletes table 42 which is not at L1")), "{err}");
        assert_eq!(fs.file_len(&manifest_now).unwrap(), len, "nothing was logged");
        set.log_and_apply(VersionEdit::default()).unwrap();
    }
}
