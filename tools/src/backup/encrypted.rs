//! The encrypted files of a backup, authenticated with `--key-file` (`kho backup verify`).
//!
//! `kho::backup` checks every file's size and checksum and decodes the plaintext ones; the
//! files of an encrypted database — sealed tables, logs and manifest, the key registry — it
//! can only count as `undecoded`. With the master key this opens the backup's own key
//! registry (`private/<id>/KEYRING`: a backup keeps the registry of the moment it was taken,
//! under the master key of then) and reads each of them end to end: every table verified
//! block by block, every log and manifest record authenticated, the manifest listing exactly
//! the backup's tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kho::backup::BackupInfo;
use kho::crypt::{KeyProvider, Keyring};
use kho::inspect::filename::{parse_file_name, FileKind, KEYRING};
use kho::inspect::sst::SstReader;
use kho::inspect::wal::{peek_segment_header, LogReader};
use kho::vfs::{FileSystem, StdFs};
use kho::Error;

use crate::dbdir::{self, Problem};

/// What [`authenticate`] found in one backup.
#[derive(Debug, Default)]
pub struct Authenticated {
    /// Encrypted files read end to end with the key (the registry and its pointer included).
    pub files: u64,
    /// Every problem, each naming the stored file.
    pub problems: Vec<Problem>,
}

/// Authenticates the encrypted files of backup `info` in the folder `backups` with the
/// master key of `provider`. `None` for a backup of a plaintext database (no registry).
/// Files in `damaged` (their checksum already failed) are skipped. `Err` only for a key that
/// does not open the backup's registry ([`Error::WrongKey`]) or a folder that cannot be read.
pub fn authenticate(
    backups: &Path,
    info: &BackupInfo,
    damaged: &BTreeSet<PathBuf>,
    provider: Arc<dyn KeyProvider>,
) -> kho::Result<Option<Authenticated>> {
    let Some(pointer) = info.files.iter().find(|f| f.name == KEYRING) else { return Ok(None) };
    let pointer = backups.join(&pointer.stored);
    let private = pointer.parent().unwrap_or(backups);
    let mut done = Authenticated::default();
    let ring = match Keyring::load(StdFs::shared(), private, provider) {
        Ok(r) => Arc::new(r),
        Err(e @ Error::WrongKey(_)) => return Err(e),
        Err(e) => {
            done.problems.push(Problem::from_error(&pointer, &e));
            return Ok(Some(done));
        }
    };
    let tables: BTreeMap<u64, u64> = info
        .files
        .iter()
        .filter_map(|f| match parse_file_name(&f.name) {
            Some(FileKind::Table(n)) => Some((n, f.size)),
            _ => None,
        })
        .collect();
    for f in &info.files {
        let path = backups.join(&f.stored);
        if damaged.contains(&path) {
            continue;
        }
        let result = match parse_file_name(&f.name) {
            Some(FileKind::Table(n)) => table(&path, n, &ring),
            Some(FileKind::Log(_)) => log(&path, &ring),
            Some(FileKind::Manifest(_)) => manifest(&path, &ring, &tables),
            // Loading the registry read (and authenticated) both.
            Some(FileKind::Keyring) => Ok(true),
            Some(FileKind::Keys(n)) => Ok(n == ring.registry_number()),
            _ => Ok(false),
        };
        match result {
            Ok(true) => done.files += 1,
            Ok(false) => {}
            Err(e) => done.problems.push(Problem::from_error(&path, &e)),
        }
    }
    Ok(Some(done))
}

/// Verifies table `number` stored at `path`; false for a plaintext one (the library
/// decoded it).
fn table(path: &Path, number: u64, ring: &Arc<Keyring>) -> kho::Result<bool> {
    let file = StdFs.open(path)?;
    if SstReader::read_footer_info(&*file, path)?.key_id.is_none() {
        return Ok(false);
    }
    SstReader::open_with_keys(file, path.to_owned(), number, None, Some(ring))?.verify()?;
    Ok(true)
}

/// Reads every record of the log at `path`; false for a plaintext one. A torn tail is not a
/// problem: the copy holds what the source held (as `kho::backup` decides).
fn log(path: &Path, ring: &Arc<Keyring>) -> kho::Result<bool> {
    let data = dbdir::read(path)?;
    if peek_segment_header(&data).is_none() {
        return Ok(false);
    }
    let mut reader = LogReader::new(data, path).with_keys(Arc::clone(ring));
    while reader.next_record()?.is_some() {}
    Ok(true)
}

/// Reads every edit of the manifest at `path` and checks that it lists exactly `tables`
/// (number: size); false for a plaintext one.
fn manifest(path: &Path, ring: &Arc<Keyring>, tables: &BTreeMap<u64, u64>) -> kho::Result<bool> {
    if peek_segment_header(&dbdir::read(path)?).is_none() {
        return Ok(false);
    }
    kho::backup::check_manifest(&StdFs, path, tables, Some(ring))?;
    Ok(true)
}
