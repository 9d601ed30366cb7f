//! Test helpers shared by the SST unit tests: entry generators, an in-memory
//! `RandomAccessFile` for damaged copies of a table, and table builders.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::key::{internal_key, ValueKind};
use crate::sst::{BlockCache, SstOptions, SstReader, SstWriter, TableProperties};
use crate::vfs::{FileSystem, RandomAccessFile, StdFs};
use crate::Result;

/// A read-only file held in memory.
#[derive(Debug)]
pub(crate) struct MemFile(pub Bytes);

impl RandomAccessFile for MemFile {
    fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.0.len() => Ok(self.0.slice(start..end)),
            _ => Err(crate::Error::io(
                "read",
                "mem",
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past end"),
            )),
        }
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

/// `n` user keys `key{i:05}`, each with `versions` versions (newest first, every third a
/// tombstone), values of `value_len` compressible bytes.
pub(crate) fn entries(n: usize, versions: u64, value_len: usize) -> Vec<(Vec<u8>, Bytes)> {
    let mut v = Vec::new();
    for i in 0..n {
        let uk = format!("key{i:05}");
        for s in (1..=versions).rev() {
            let seq = i as u64 * 10 + s;
            let kind = if seq.is_multiple_of(3) { ValueKind::Delete } else { ValueKind::Put };
            let val = if kind == ValueKind::Delete {
                Bytes::new()
            } else {
                Bytes::from(format!("{uk}-{seq}-").repeat(value_len / 8 + 1).into_bytes()).slice(..value_len)
            };
            v.push((internal_key(uk.as_bytes(), seq, kind), val));
        }
    }
    v
}

/// Writes `items` as a table at `dir/name` with `StdFs`.
pub(crate) fn write_table(
    dir: &Path,
    name: &str,
    items: &[(Vec<u8>, Bytes)],
    opts: &SstOptions,
) -> (PathBuf, TableProperties) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path); // tests rewrite tables under one name
    let file = StdFs.create(&path).unwrap();
    let mut w = SstWriter::new(file, path.clone(), opts);
    for (k, v) in items {
        w.add(k, v).unwrap();
    }
    let props = w.finish().unwrap();
    (path, props)
}

/// Opens a table written with `StdFs`.
pub(crate) fn open_table(path: &Path, cache: Option<Arc<BlockCache>>) -> Arc<SstReader> {
    let file = StdFs.open(path).unwrap();
    Arc::new(SstReader::open(file, path.to_owned(), 1, cache).unwrap())
}
