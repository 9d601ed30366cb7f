//! [`StdFs`]: the operating system's file system.
//!
//! Reads of immutable files go through a read-only memory map (zero-copy `Bytes` slices);
//! writes go through a user-space buffer that `flush` hands to the kernel and `sync`
//! makes durable with `fdatasync`. Files are created with `O_EXCL` (never over an existing
//! file, which another process may have mapped) and mode 0600, directories 0700, whatever
//! the umask. The directory lock is an advisory `flock` on `LOCK`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{BytesFile, FileLock, FileSystem, RandomAccessFile, WritableFile};
use crate::{Error, Result};

/// Mode of every file kho creates: a database holds personal data, readable by its owner only.
const FILE_MODE: u32 = 0o600;

/// Mode of a database directory kho creates.
const DIR_MODE: u32 = 0o700;

/// Size of the user-space write buffer; appends larger than this go straight to the kernel.
const WRITE_BUFFER: usize = 256 * 1024;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl StdFs {
    /// Returns a shared handle to the real file system.
    pub fn shared() -> super::SharedFs {
        Arc::new(StdFs)
    }
}

struct StdWritable {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    len: u64,
}

impl StdWritable {
    fn write_out(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(|e| Error::io("write", &self.path, e))?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl WritableFile for StdWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > WRITE_BUFFER {
            self.write_out()?;
        }
        if data.len() >= WRITE_BUFFER {
            self.file.write_all(data).map_err(|e| Error::io("write", &self.path, e))?;
        } else {
            self.buf.extend_from_slice(data);
        }
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.write_out()
    }

    fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync_data().map_err(|e| Error::io("fsync", &self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct StdLock {
    _file: File,
}

impl FileLock for StdLock {}

impl FileSystem for StdFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        // The mode given to `open` is masked by the umask; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE)).map_err(|e| Error::io("chmod", path, e))?;
        Ok(Box::new(StdWritable { file, path: path.to_owned(), buf: Vec::with_capacity(64 * 1024), len: 0 }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
        let data = if len == 0 {
            Bytes::new()
        } else {
            // SAFETY: kho maps only files it never modifies after they are complete (SSTables,
            // finished manifests and WALs being recovered); files are removed, never truncated
            // or rewritten, so the mapped bytes stay valid for the life of the map. Exercised
            // by every test that reads an SSTable through `StdFs`.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))?;
            Bytes::from_owner(map)
        };
        Ok(Arc::new(BytesFile { path: path.to_owned(), data }))
    }

    fn file_size(&self, path: &Path) -> Result<u64> {
        Ok(fs::metadata(path).map_err(|e| Error::io("stat", path, e))?.len())
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        if fs::hard_link(from, to).is_ok() {
            return Ok(());
        }
        // Another file system (EXDEV) or one without links: copy, privately, and sync.
        let mut src = File::open(from).map_err(|e| Error::io("open", from, e))?;
        let mut dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(to)
            .map_err(|e| Error::io("create", to, e))?;
        dst.set_permissions(fs::Permissions::from_mode(FILE_MODE)).map_err(|e| Error::io("chmod", to, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| Error::io("copy", to, e))?;
        dst.sync_data().map_err(|e| Error::io("fsync", to, e))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| Error::io("remove", path, e))
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        if path.is_dir() {
            return Ok(()); // an existing directory keeps the mode its owner gave it
        }
        fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path).map_err(|e| Error::io("mkdir", path, e))?;
        fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE)).map_err(|e| Error::io("chmod", path, e))
    }

    fn remove_dir(&self, path: &Path) -> Result<()> {
        fs::remove_dir(path).map_err(|e| Error::io("rmdir", path, e))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io("readdir", dir, e))? {
            let entry = entry.map_err(|e| Error::io("readdir", dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let d = File::open(dir).map_err(|e| Error::io("open dir", dir, e))?;
        d.sync_all().map_err(|e| Error::io("fsync dir", dir, e))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| Error::io("stat", path, e))
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let created = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(path)
            .map_err(|e| Error::io("open lock", path, e))?;
        if created {
            file.set_permissions(fs::Permissions::from_mode(FILE_MODE)).map_err(|e| Error::io("chmod", path, e))?;
        }
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Busy {
                path: path.parent().unwrap_or(path).to_owned(),
                reason: format!("lock file {} is held by another process or Db handle", path.display()),
            }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_sync_read_back_through_mmap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = StdFs.create(&p).unwrap();
        w.append(b"hello ").unwrap();
        w.append(&vec![7u8; WRITE_BUFFER + 3]).unwrap();
        w.sync().unwrap();
        assert_eq!(w.len(), 6 + WRITE_BUFFER as u64 + 3);
        let r = StdFs.open(&p).unwrap();
        assert_eq!(&r.read_at(0, 6).unwrap()[..], b"hello ");
        assert!(r.read_at(r.len() - 1, 2).is_err());
        assert_eq!(StdFs.list(dir.path()).unwrap(), vec!["f".to_owned()]);
    }

    #[test]
    fn empty_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e");
        StdFs.create(&p).unwrap().sync().unwrap();
        let r = StdFs.open(&p).unwrap();
        assert!(r.is_empty());
        assert!(r.read_at(0, 0).unwrap().is_empty());
    }

    #[test]
    fn second_lock_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("LOCK");
        let l = StdFs.lock(&p).unwrap();
        assert!(matches!(StdFs.lock(&p), Err(Error::Busy { .. })));
        drop(l);
        StdFs.lock(&p).unwrap();
    }
}
