//! [`BackupEngine::verify`]: re-reads every file of a backup and checks it.
//!
//! Checks, per backup: the metadata decodes (its own checksum); every file it lists exists,
//! has the recorded size and XXH64; and the files decode — each table end to end
//! (`SstReader::verify`: block checksums, decompression, key order, properties), each log
//! record by record, the manifest edit by edit, listing exactly the backup's tables with
//! their sizes, and `CURRENT` naming the backup's manifest. Files encrypted at rest (and the
//! key registry) cannot be decoded without the master key: they are checked by size and
//! checksum only, and counted as `undecoded`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::meta::BackupFile;
use super::BackupEngine;
use crate::filename::{decode_current, parse_file_name, FileKind};
use crate::sst::SstReader;
use crate::util::hash::xxh64;
use crate::vfs::{FileSystem, RandomAccessFile};
use crate::{Error, RecoveryMode, Result};

/// What [`BackupEngine::verify`] found in one backup.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// The backup's id.
    pub id: u64,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files checked by checksum only (encrypted at rest, or the key registry).
    pub undecoded: u64,
    /// Every problem found, each naming the file (in the backup folder) it is in.
    pub problems: Vec<Error>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl BackupEngine {
    /// Verifies backup `id`. Problems are collected in the report; the error is for a
    /// backup that does not exist or a folder that cannot be listed.
    pub fn verify(&self, id: u64) -> Result<VerifyReport> {
        self.verify_with_progress(id, &mut |_| {})
    }

    /// [`verify`](Self::verify), calling `progress` with the number of bytes read after each
    /// file.
    pub fn verify_with_progress(&self, id: u64, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport { id, ..VerifyReport::default() };
        let info = match self.info(id) {
            Ok(info) => info,
            Err(e @ Error::Corruption { .. }) => {
                report.problems.push(e);
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        let fs = self.fs.as_ref();
        let mut intact = BTreeMap::new();
        for f in &info.files {
            let path = self.dir.join(&f.stored);
            match check_file(fs, &path, f) {
                Ok(Some(file)) => {
                    report.files += 1;
                    report.bytes += f.size;
                    progress(f.size);
                    intact.insert(f.name.clone(), (path, file));
                }
                Ok(None) => report.problems.push(Error::corruption_unknown_offset(&path, "missing")),
                Err(e) => report.problems.push(e),
            }
        }
        let tables: BTreeMap<u64, u64> = info
            .files
            .iter()
            .filter_map(|f| match parse_file_name(&f.name) {
                Some(FileKind::Table(n)) => Some((n, f.size)),
                _ => None,
            })
            .collect();
        for (name, (path, file)) in &intact {
            match decode(fs, name, path, file, &tables) {
                Ok(true) => {}
                Ok(false) => report.undecoded += 1,
                Err(Error::KeyNeeded { .. }) => report.undecoded += 1,
                Err(e) => report.problems.push(e),
            }
        }
        Ok(report)
    }
}

/// Opens the stored file `path` and checks its size and checksum against `f`; `None` when it
/// does not exist.
fn check_file(fs: &dyn FileSystem, path: &Path, f: &BackupFile) -> Result<Option<Arc<dyn RandomAccessFile>>> {
    if !fs.exists(path)? {
        return Ok(None);
    }
    let file = fs.open(path)?;
    let len = usize::try_from(file.len()).unwrap_or(usize::MAX);
    if file.len() != f.size {
        let what = format!("{} bytes, but the backup records {}", file.len(), f.size);
        return Err(Error::corruption(path, file.len().min(f.size), what));
    }
    let actual = xxh64(&file.read_at(0, len)?);
    if actual != f.checksum {
        let what = format!("contents hash to {actual:016x}, but the backup records {:016x}", f.checksum);
        return Err(Error::corruption_unknown_offset(path, what));
    }
    Ok(Some(file))
}

/// Decodes the intact file `name` (stored at `path`); false for a kind only checksums cover.
fn decode(
    fs: &dyn FileSystem,
    name: &str,
    path: &Path,
    file: &Arc<dyn RandomAccessFile>,
    tables: &BTreeMap<u64, u64>,
) -> Result<bool> {
    match parse_file_name(name) {
        Some(FileKind::Table(n)) => {
            SstReader::open(file.clone(), path.to_owned(), n, None)?.verify()?;
        }
        Some(FileKind::Log(_)) => {
            let data = file.read_at(0, usize::try_from(file.len()).unwrap_or(usize::MAX))?;
            // Damage before the last intact record is an error; a torn tail is not (the copy
            // holds what the source held, and recovery treats it as the source would).
            let mut reader = crate::crypt::open_log_reader(data, path, None);
            while reader.next_record()?.is_some() {}
        }
        Some(FileKind::Manifest(_)) => check_manifest(fs, path, tables, None)?,
        Some(FileKind::Current) => {
            let data = file.read_at(0, usize::try_from(file.len()).unwrap_or(usize::MAX))?;
            let n = decode_current(path, &data)?;
            let manifest = crate::filename::manifest_name(n);
            if !fs.exists(&path.with_file_name(&manifest))? {
                return Err(Error::corruption(path, 0, format!("CURRENT names {manifest}, which the backup lacks")));
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Checks that the manifest at `path` decodes (opened with `keys` if it is sealed) and that
/// its edits replay to exactly `tables` (number: size): a backup's manifest must list the
/// backup's tables. `kho backup verify --key-file` calls it for sealed manifests.
pub fn check_manifest(
    fs: &dyn FileSystem,
    path: &Path,
    tables: &BTreeMap<u64, u64>,
    keys: Option<&std::sync::Arc<crate::crypt::Keyring>>,
) -> Result<()> {
    let edits = crate::version::read_manifest(fs, path, RecoveryMode::AbsoluteConsistency, keys)?;
    let mut live = BTreeMap::new();
    for (_, edit) in &edits.edits {
        for (_, n) in &edit.deleted_files {
            live.remove(n);
        }
        for (_, meta) in &edit.new_files {
            live.insert(meta.number, meta.size);
        }
    }
    if &live != tables {
        let what = format!("the manifest lists tables {live:?} (number: size), the backup holds {tables:?}");
        return Err(Error::corruption_unknown_offset(path, what));
    }
    Ok(())
}
