//! [`BackupEngine::create`]: a new backup of a live database.
//!
//! The checkpoint protocol runs with a [`BackupSink`]: under the database's log lock the
//! sink only opens the complete logs (an open handle stays readable after the database
//! deletes the file), so writers wait no longer than for a checkpoint; then each pinned
//! table is read, hashed and — unless `shared/` already holds a table of that number, size
//! and XXH64, of that size — copied in (`.tmp`, fsync, rename); then the logs are copied into the
//! backup's private folder, where the checkpoint also writes its manifest, `CURRENT` and
//! key registry. Last, every private file is read back and hashed, the directories are
//! fsynced, and the metadata is written: tmp, fsync, rename, fsync `meta/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::meta::{self, shared_name, BackupFile, BackupInfo};
use super::{BackupEngine, META, PRIVATE, SHARED};
use crate::db::CheckpointSink;
use crate::filename::log_path;
use crate::util::hash::xxh64;
use crate::vfs::{FileSystem, RandomAccessFile};
use crate::{Db, Result};

/// Copies are appended in pieces of this size, so progress moves smoothly.
pub(super) const COPY_CHUNK: usize = 1 << 20;

impl BackupEngine {
    /// Backs up `db` (a live database; writers and compactions may run) and returns what the
    /// new backup holds. Tables already in the folder are shared, not copied again.
    pub fn create(&mut self, db: &Db) -> Result<BackupInfo> {
        self.create_with_progress(db, &mut |_| {})
    }

    /// [`create`](Self::create), calling `progress` with the number of bytes read from the
    /// database after each piece (for a progress bar; the database's tables and logs in
    /// total).
    pub fn create_with_progress(&mut self, db: &Db, progress: &mut dyn FnMut(u64)) -> Result<BackupInfo> {
        // Leftovers of an interrupted create or prune first, so the folder holds only what
        // visible backups name.
        self.collect_garbage()?;
        let fs = self.fs.as_ref();
        let id = self.next_id()?;
        let private = self.dir.join(PRIVATE).join(id.to_string());
        let shared_dir = self.dir.join(SHARED);
        let existing: BTreeSet<String> = fs.list(&shared_dir)?.into_iter().collect();
        let mut sink = BackupSink {
            src: db.file_system(),
            fs,
            private: private.clone(),
            shared_dir: shared_dir.clone(),
            existing,
            logs: Vec::new(),
            tables: Vec::new(),
            new_bytes: 0,
            progress,
        };
        let sequence = db.checkpoint_with(fs, &private, &mut sink)?;
        let (mut files, mut new_bytes) = (std::mem::take(&mut sink.tables), sink.new_bytes);
        fs.sync_dir(&shared_dir)?;

        // The private files, read back: what the metadata records is what is on disk.
        for name in fs.list(&private)? {
            let data = fs.read_all(&private.join(&name))?;
            new_bytes += data.len() as u64;
            let stored = format!("{PRIVATE}/{id}/{name}");
            files.push(BackupFile { name, stored, size: data.len() as u64, checksum: xxh64(&data) });
        }
        fs.sync_dir(&private)?;
        fs.sync_dir(&self.dir.join(PRIVATE))?;

        let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let info = BackupInfo { id, sequence, time, new_bytes, files };
        let meta_dir = self.dir.join(META);
        let tmp = meta_dir.join(format!("{id}.tmp"));
        let mut w = fs.create(&tmp)?;
        w.append(meta::encode(&info).as_bytes())?;
        w.sync()?;
        drop(w);
        fs.rename(&tmp, &self.meta_path(id))?;
        fs.sync_dir(&meta_dir)?;
        Ok(info)
    }
}

/// Where the checkpoint protocol hands a backup the source's logs and tables.
struct BackupSink<'a> {
    /// The database's file system.
    src: crate::vfs::SharedFs,
    /// The backup folder's file system.
    fs: &'a dyn FileSystem,
    private: PathBuf,
    shared_dir: PathBuf,
    /// Names in `shared/` (each complete: garbage was collected first).
    existing: BTreeSet<String>,
    /// Logs opened under the database's lock, copied in `finish`.
    logs: Vec<(u64, Arc<dyn RandomAccessFile>)>,
    /// The tables, as the metadata records them.
    tables: Vec<BackupFile>,
    new_bytes: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl CheckpointSink for BackupSink<'_> {
    fn log(&mut self, number: u64, from: &Path) -> Result<()> {
        self.logs.push((number, self.src.open(from)?));
        Ok(())
    }

    fn table(&mut self, number: u64, from: &Path) -> Result<()> {
        let data = self.src.read_all(from)?;
        let size = data.len() as u64;
        let checksum = xxh64(&data);
        let stored_name = shared_name(number, size, checksum);
        let to = self.shared_dir.join(&stored_name);
        // A shared table of the wrong length is damaged (its name says its length): copied
        // again over it, which repairs it for every backup naming it (same name, so same
        // contents). Damage that keeps the length is `verify`'s to find.
        if !self.existing.contains(&stored_name) || self.fs.file_size(&to)? != size {
            let tmp = self.shared_dir.join(format!("{stored_name}.tmp"));
            copy(self.fs, &data, &tmp, self.progress)?;
            self.fs.rename(&tmp, &to)?;
            self.existing.insert(stored_name.clone());
            self.new_bytes += size;
        } else {
            (self.progress)(size);
        }
        let name = crate::filename::table_path(Path::new(""), number).to_string_lossy().into_owned();
        self.tables.push(BackupFile { name, stored: format!("{SHARED}/{stored_name}"), size, checksum });
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for (number, file) in std::mem::take(&mut self.logs) {
            let data = file.read_at(0, usize::try_from(file.len()).unwrap_or(usize::MAX))?;
            copy(self.fs, &data, &log_path(&self.private, number), self.progress)?;
        }
        Ok(())
    }
}

/// Writes `data` to the new file `to` in pieces and fsyncs it.
pub(super) fn copy(fs: &dyn FileSystem, data: &[u8], to: &Path, progress: &mut dyn FnMut(u64)) -> Result<()> {
    let mut w = fs.create(to)?;
    for piece in data.chunks(COPY_CHUNK) {
        w.append(piece)?;
        progress(piece.len() as u64);
    }
    w.sync()
}
