//! [`BackupEngine::restore`]: a backup copied out as an openable database directory.
//!
//! Every file is checked against its recorded size and XXH64 before it is written, so a
//! damaged backup is refused (`Error::Corruption` naming the stored file) instead of
//! restored. `CURRENT` is written last (tmp, fsync, rename, fsync the directory): a restore
//! interrupted before it leaves a directory that does not open as a database.

use std::path::Path;

use super::create::copy;
use super::BackupEngine;
use crate::filename::CURRENT;
use crate::util::hash::xxh64;
use crate::{Error, Result};

impl BackupEngine {
    /// Restores backup `id` into `out` (which must not exist, or be empty) on the folder's
    /// file system. Open the result with [`crate::Db::open`]: it holds exactly the writes up
    /// to the backup's sequence number.
    pub fn restore(&self, id: u64, out: impl AsRef<Path>) -> Result<super::BackupInfo> {
        self.restore_with_progress(id, out, &mut |_| {})
    }

    /// [`restore`](Self::restore), calling `progress` with the number of bytes written after
    /// each piece (the backup's [`bytes`](super::BackupInfo::bytes) in total).
    pub fn restore_with_progress(
        &self,
        id: u64,
        out: impl AsRef<Path>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<super::BackupInfo> {
        let out = out.as_ref();
        let fs = self.fs.as_ref();
        let info = self.info(id)?;
        if fs.exists(out)? && !fs.list(out)?.is_empty() {
            return Err(Error::InvalidArgument(format!("restore directory {} is not empty", out.display())));
        }
        fs.create_dir_all(out)?;
        let mut current = None;
        for f in &info.files {
            let from = self.dir.join(&f.stored);
            let data = fs.read_all(&from)?;
            let actual = xxh64(&data);
            if data.len() as u64 != f.size || actual != f.checksum {
                return Err(Error::corruption_unknown_offset(
                    &from,
                    format!(
                        "{} bytes hashing to {actual:016x}, but the backup records {} bytes hashing to {:016x}",
                        data.len(),
                        f.size,
                        f.checksum
                    ),
                ));
            }
            if f.name == CURRENT {
                current = Some(data);
                continue;
            }
            copy(fs, &data, &out.join(&f.name), progress)?;
        }
        fs.sync_dir(out)?;
        let current = current
            .ok_or_else(|| Error::corruption_unknown_offset(self.meta_path(id), "the backup holds no CURRENT file"))?;
        let tmp = out.join(format!("{CURRENT}.tmp"));
        copy(fs, &current, &tmp, progress)?;
        fs.rename(&tmp, &out.join(CURRENT))?;
        fs.sync_dir(out)?;
        Ok(info)
    }
}
