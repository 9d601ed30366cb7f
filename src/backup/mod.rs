//! Incremental, verified backups of a live database (issue 15): [`BackupEngine`].
//!
//! A backup folder holds:
//! ```text
//! LOCK                       held by the one BackupEngine using the folder
//! meta/<id>                  one backup's metadata (meta.rs); its presence makes it visible
//! meta/<id>.tmp              metadata being written; garbage after a crash
//! shared/<n>_<size>_<xxh64>.sst   a table, shared by every backup holding it
//! shared/*.tmp               a table being copied; garbage after a crash
//! private/<id>/...           everything else a backup needs: its logs, manifest, CURRENT,
//!                            the key registry of an encrypted database
//! ```
//! A backup is taken through the checkpoint protocol (`db/checkpoint.rs`), so it is
//! consistent at one sequence number while writers and compactions run.
//!
//! Invariants (each operation keeps them at every crash point):
//! - a backup is visible exactly when `meta/<id>` exists, and then every file it lists is
//!   complete and durable: files are written and fsynced, their directories fsynced, and only
//!   then the metadata is written (tmp, fsync, rename, fsync `meta/`);
//! - a shared table's name carries its number, size and XXH64, so two different files get the
//!   same name only if they agree on all three (a 64-bit hash collision between tables of one
//!   number and size); a name once present is rewritten only by a create that finds it of
//!   the wrong length, with the contents its name stands for (a repair, by atomic rename);
//! - deleting goes the other way: metadata first (fsynced), then the files no remaining
//!   metadata names. Files no metadata names are garbage, collected by the next `create` or
//!   `prune` — never while a metadata file that cannot be decoded might still name them.

mod create;
mod meta;
mod restore;
mod verify;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use meta::{BackupFile, BackupInfo};
pub use verify::{check_manifest, VerifyReport};

use crate::vfs::{FileLock, SharedFs, StdFs};
use crate::{Error, Result};

const META: &str = "meta";
const SHARED: &str = "shared";
const PRIVATE: &str = "private";

/// Backups of databases in one folder. Holds the folder's lock while it lives.
#[derive(Debug)]
pub struct BackupEngine {
    fs: SharedFs,
    dir: PathBuf,
    _lock: Box<dyn FileLock>,
}

/// What [`BackupEngine::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Ids of the backups removed, oldest first.
    pub removed: Vec<u64>,
    /// Files deleted (the removed backups' private files and tables no backup holds any more).
    pub files_deleted: u64,
    /// Bytes those files held.
    pub bytes_freed: u64,
}

impl BackupEngine {
    /// Opens (creating it if needed) the backup folder `dir` on the operating system's file
    /// system and takes its lock ([`Error::Busy`] if another engine holds it).
    pub fn open(dir: impl AsRef<Path>) -> Result<BackupEngine> {
        Self::open_with_fs(StdFs::shared(), dir)
    }

    /// [`open`](Self::open) on the file system `fs`.
    pub fn open_with_fs(fs: SharedFs, dir: impl AsRef<Path>) -> Result<BackupEngine> {
        let dir = dir.as_ref().to_owned();
        for sub in [META, SHARED, PRIVATE] {
            fs.create_dir_all(&dir.join(sub))?;
        }
        let lock = fs.lock(&dir.join(crate::filename::LOCK))?;
        Ok(BackupEngine { fs, dir, _lock: lock })
    }

    /// The backup folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Ids of the visible backups, oldest first (whether or not their metadata decodes).
    pub fn ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self.fs.list(&self.dir.join(META))?.iter().filter_map(|n| parse_id(n)).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The metadata of backup `id`: [`Error::NotFound`] if there is no such backup,
    /// [`Error::Corruption`] if its metadata is damaged.
    pub fn info(&self, id: u64) -> Result<BackupInfo> {
        let path = self.meta_path(id);
        if !self.fs.exists(&path)? {
            return Err(Error::NotFound(format!("no backup {id} in {}", self.dir.display())));
        }
        let info = meta::decode(&path, &self.fs.read_all(&path)?)?;
        if info.id != id {
            return Err(Error::corruption_unknown_offset(
                &path,
                format!("metadata of backup {} under id {id}", info.id),
            ));
        }
        Ok(info)
    }

    /// Every visible backup, oldest first; the first damaged metadata is an error.
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        self.ids()?.into_iter().map(|id| self.info(id)).collect()
    }

    /// Deletes every backup but the newest `keep` (at least 1), then every file no remaining
    /// backup holds. Crash-safe: the metadata goes first (fsynced), the files after, and
    /// files a crash leaves behind are collected by the next `create` or `prune`.
    pub fn prune(&mut self, keep: usize) -> Result<PruneReport> {
        if keep == 0 {
            return Err(Error::InvalidArgument("prune must keep at least one backup".into()));
        }
        let ids = self.ids()?;
        let removed: Vec<u64> = ids[..ids.len().saturating_sub(keep)].to_vec();
        for &id in &removed {
            self.fs.remove(&self.meta_path(id))?;
        }
        if !removed.is_empty() {
            self.fs.sync_dir(&self.dir.join(META))?;
        }
        let (files_deleted, bytes_freed) = self.collect_garbage()?;
        Ok(PruneReport { removed, files_deleted, bytes_freed })
    }

    /// Deletes what no visible backup holds: metadata being written, private folders of
    /// backups without metadata, and (only when every metadata decodes) shared tables no
    /// backup names. Returns the files deleted and their bytes.
    fn collect_garbage(&self) -> Result<(u64, u64)> {
        let fs = self.fs.as_ref();
        let mut deleted = (0u64, 0u64);
        let mut remove = |path: &Path| -> Result<()> {
            let size = fs.file_size(path)?;
            fs.remove(path)?;
            deleted.0 += 1;
            deleted.1 += size;
            Ok(())
        };
        let meta_dir = self.dir.join(META);
        let mut ids = BTreeSet::new();
        let mut referenced = BTreeSet::new();
        let mut all_known = true;
        for name in fs.list(&meta_dir)? {
            let path = meta_dir.join(&name);
            match parse_id(&name) {
                Some(id) => {
                    ids.insert(id);
                    match self.info(id) {
                        Ok(info) => referenced.extend(info.files.into_iter().map(|f| f.stored)),
                        Err(Error::Corruption { .. }) => all_known = false,
                        Err(e) => return Err(e),
                    }
                }
                None if name.ends_with(".tmp") => remove(&path)?,
                None => all_known = false, // not ours: keep everything it might name
            }
        }
        fs.sync_dir(&meta_dir)?;

        let private_dir = self.dir.join(PRIVATE);
        for name in fs.list(&private_dir)? {
            if parse_id(&name).is_some_and(|id| !ids.contains(&id)) {
                let sub = private_dir.join(&name);
                for file in fs.list(&sub)? {
                    remove(&sub.join(file))?;
                }
                fs.sync_dir(&sub)?;
                fs.remove_dir(&sub)?;
            }
        }
        fs.sync_dir(&private_dir)?;

        let shared_dir = self.dir.join(SHARED);
        for name in fs.list(&shared_dir)? {
            let unreferenced = all_known && !referenced.contains(&format!("{SHARED}/{name}"));
            if name.ends_with(".tmp") || unreferenced {
                remove(&shared_dir.join(name))?;
            }
        }
        fs.sync_dir(&shared_dir)?;
        Ok(deleted)
    }

    fn meta_path(&self, id: u64) -> PathBuf {
        self.dir.join(META).join(id.to_string())
    }

    /// The id a new backup takes: above every id named in `meta/` or `private/`.
    fn next_id(&self) -> Result<u64> {
        let mut max = 0;
        for sub in [META, PRIVATE] {
            for name in self.fs.list(&self.dir.join(sub))? {
                let stem = name.strip_suffix(".tmp").unwrap_or(&name);
                max = max.max(parse_id(stem).unwrap_or(0));
            }
        }
        Ok(max + 1)
    }
}

/// A backup id: decimal digits without a leading zero.
fn parse_id(name: &str) -> Option<u64> {
    let digits = !name.is_empty() && name.len() <= 19 && name.bytes().all(|b| b.is_ascii_digit());
    (digits && !name.starts_with('0')).then(|| name.parse().ok()).flatten()
}
