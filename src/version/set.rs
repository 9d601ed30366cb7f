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

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::filename::{decode_current, encode_current, manifest_name, CURRENT};
use crate::wal::{LogReader, LogWriter};
use crate::{Error, Result};

use super::{FileMeta, TableContext, Version, VersionEdit};

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

/// Reads every edit of a manifest. A torn tail (an edit whose fsync never completed) is
/// dropped: such an edit was never acted upon. Damage followed by intact edits is corruption.
pub fn read_manifest(fs: &dyn crate::vfs::FileSystem, path: &Path) -> Result<Vec<VersionEdit>> {
    let mut reader = LogReader::new(fs.read_all(path)?, path);
    let mut edits = Vec::new();
    while let Some(rec) = reader.next_record()? {
        let edit = VersionEdit::decode(&rec.payload).map_err(|(at, what)| {
            Error::corruption(path, rec.offset + (crate::wal::format::HEADER_LEN + at) as u64, what)
        })?;
        edits.push(edit);
    }
    Ok(edits)
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
        }
    }

    /// Recovers the state named by `CURRENT`; `Ok(None)` when there is no `CURRENT`.
    pub(crate) fn recover(ctx: TableContext, num_levels: usize) -> Result<Option<Self>> {
        let current_path = ctx.dir.join(CURRENT);
        if !ctx.fs.exists(&current_path)? {
            return Ok(None);
        }
        let manifest_number = decode_current(&current_path, &ctx.fs.read_all(&current_path)?)?;
        let manifest_path = ctx.dir.join(manifest_name(manifest_number));
        if !ctx.fs.exists(&manifest_path)? {
            return Err(Error::corruption(
                &current_path,
                0,
                format!("CURRENT names {} which does not exist", manifest_path.display()),
            ));
        }
        let edits = read_manifest(ctx.fs.as_ref(), &manifest_path)?;

        let mut levels: Vec<BTreeMap<u64, FileMeta>> = vec![BTreeMap::new(); num_levels];
        let (mut next_file, mut log_number, mut last_seq) = (None, None, None);
        for e in &edits {
            next_file = e.next_file_number.or(next_file);
            log_number = e.log_number.or(log_number);
            last_seq = e.last_sequence.or(last_seq);
            for &(level, number) in &e.deleted_files {
                if let Some(l) = levels.get_mut(level as usize) {
                    l.remove(&number);
                }
            }
            for (level, f) in &e.new_files {
                let l = levels.get_mut(*level as usize).ok_or_else(|| {
                    Error::corruption(
                        &manifest_path,
                        0,
                        format!("file {} at level {level} beyond {num_levels} levels", f.number),
                    )
                })?;
                l.insert(f.number, f.clone());
            }
        }
        let missing = |what| Error::corruption(&manifest_path, 0, format!("manifest never records the {what}"));
        let next_file_number = next_file.ok_or_else(|| missing("next file number"))?;
        let edit = VersionEdit {
            new_files: levels
                .iter()
                .enumerate()
                .flat_map(|(l, files)| files.values().map(move |f| (l as u32, f.clone())))
                .collect(),
            ..VersionEdit::default()
        };
        if let Some((_, f)) = edit.new_files.iter().find(|(_, f)| f.number >= next_file_number) {
            return Err(Error::corruption(
                &manifest_path,
                0,
                format!("file {} is not below the next file number {next_file_number}", f.number),
            ));
        }
        let current = Arc::new(Version::empty(num_levels).apply(&edit, &ctx)?);
        Ok(Some(VersionSet {
            ctx,
            manifest: None,
            manifest_number,
            current,
            next_file_number,
            log_number: log_number.ok_or_else(|| missing("log number"))?,
            last_sequence: last_seq.ok_or_else(|| missing("last sequence"))?,
            manifest_failed: false,
        }))
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
    /// the edit leaves unset are filled in from the set.
    pub(crate) fn log_and_apply(&mut self, mut edit: VersionEdit) -> Result<Arc<Version>> {
        if let Some(n) = edit.log_number {
            debug_assert!(n >= self.log_number, "log number must not move backwards");
        }
        edit.next_file_number = Some(self.next_file_number);
        edit.last_sequence = Some(edit.last_sequence.unwrap_or(self.last_sequence).max(self.last_sequence));
        let next = self.current.apply(&edit, &self.ctx)?;
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
        self.current = Arc::new(self.current.apply(edit, &self.ctx)?);
        Ok(())
    }

    /// Starts a new manifest holding the full current state and points `CURRENT` at it.
    /// The old manifest becomes garbage for the caller to delete.
    pub(crate) fn write_new_manifest(&mut self) -> Result<()> {
        let number = self.new_file_number();
        let path = self.ctx.dir.join(manifest_name(number));
        let snapshot = VersionEdit {
            log_number: Some(self.log_number),
            next_file_number: Some(self.next_file_number),
            last_sequence: Some(self.last_sequence),
            deleted_files: Vec::new(),
            new_files: self.current.files().map(|(l, f)| (l as u32, f.meta.clone())).collect(),
        };
        let mut buf = Vec::new();
        snapshot.encode(&mut buf);
        let mut writer = LogWriter::new(self.ctx.fs.create(&path)?);
        writer.add_record(&buf)?;
        writer.sync()?;
        set_current(&self.ctx, number)?;
        self.manifest = Some(writer);
        self.manifest_number = number;
        Ok(())
    }
}

/// Atomically points `CURRENT` at manifest `number`.
fn set_current(ctx: &TableContext, number: u64) -> Result<()> {
    let tmp = ctx.dir.join("CURRENT.tmp");
    if ctx.fs.exists(&tmp)? {
        ctx.fs.remove(&tmp)?; // left by a crash between create and rename
    }
    let mut f = ctx.fs.create(&tmp)?;
    f.append(encode_current(number).as_bytes())?;
    f.sync()?;
    drop(f);
    ctx.fs.rename(&tmp, &ctx.dir.join(CURRENT))?;
    ctx.fs.sync_dir(&ctx.dir)
}
