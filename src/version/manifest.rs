//! Reading a manifest back: [`read_manifest`] decodes its edits (honouring the
//! [`RecoveryMode`] for a torn tail) and `replay` runs them through a [`VersionBuilder`],
//! stopping at the first inconsistency.
//!
//! A torn tail is a damaged region at the end of the manifest with nothing intact after it:
//! an edit whose append or fsync never completed, so nothing acted on it. Under
//! [`RecoveryMode::TolerateCorruptedTail`] (the default) it is dropped and reported as a
//! [`DroppedTail`]; under [`RecoveryMode::AbsoluteConsistency`] it is `Error::Corruption`.
//! Damage followed by an intact record is corruption in either mode.

use std::path::Path;

use crate::options::RecoveryMode;
use crate::vfs::FileSystem;
use crate::wal::DroppedTail;
use crate::{Error, Result};

use super::{Inconsistency, VersionBuilder, VersionEdit};

/// The edits of one manifest, as recovery reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestEdits {
    /// Every intact edit in file order, with the byte offset of its record.
    pub edits: Vec<(u64, VersionEdit)>,
    /// The torn tail dropped after the last intact edit, if any (only ever under
    /// [`RecoveryMode::TolerateCorruptedTail`]).
    pub dropped_tail: Option<DroppedTail>,
}

/// Reads and decodes every edit of the manifest at `path` (reading it again if it seems to
/// end damaged: a transient read error must not drop an edit). A torn tail is dropped (and
/// returned as [`ManifestEdits::dropped_tail`]) or is corruption, as `mode` says; damage
/// followed by intact edits and an edit that does not decode are corruption. The edits are
/// not checked against each other: run them through a [`VersionBuilder`] for that (as
/// recovery does).
///
/// With `keys` (an encrypted database), an encrypted manifest is opened with them and a
/// plaintext one is accepted only if its number is below the database's encrypted-from
/// number; without, an encrypted manifest is [`Error::KeyNeeded`].
pub fn read_manifest(
    fs: &dyn FileSystem,
    path: &Path,
    mode: RecoveryMode,
    keys: Option<&std::sync::Arc<crate::crypt::Keyring>>,
) -> Result<ManifestEdits> {
    let mut reader = crate::crypt::open_log_reader(crate::wal::read_settled(fs, path)?, path, keys);
    let mut edits = Vec::new();
    while let Some(rec) = reader.next_record()? {
        let payload_at = rec.offset + crate::wal::format::HEADER_LEN as u64;
        let edit = VersionEdit::decode(&rec.payload)
            .map_err(|(at, what)| Error::corruption(path, payload_at + at as u64, what))?;
        edits.push((rec.offset, edit));
    }
    let dropped_tail = reader.dropped_tail();
    if let Some(t) = &dropped_tail {
        if mode == RecoveryMode::AbsoluteConsistency {
            return Err(Error::corruption(
                path,
                t.offset,
                format!(
                    "{}: torn tail of {} bytes (absolute consistency requested; the default recovery mode \
                     drops it)",
                    t.reason, t.bytes
                ),
            ));
        }
    }
    Ok(ManifestEdits { edits, dropped_tail })
}

/// Replays `edits` (read from the manifest at `path`) into a builder of `num_levels`
/// levels. The first inconsistency, in an edit or at the end, is `Error::Corruption` at the
/// offset of the edit's record (unknown for a counter the manifest never records).
pub(crate) fn replay(path: &Path, edits: &[(u64, VersionEdit)], num_levels: usize) -> Result<VersionBuilder> {
    let mut builder = VersionBuilder::new(num_levels);
    for (offset, edit) in edits {
        if let Some(bad) = builder.apply(edit, Some(*offset)).into_iter().next() {
            return Err(corruption(path, bad));
        }
    }
    match builder.finish().into_iter().next() {
        Some(bad) => Err(corruption(path, bad)),
        None => Ok(builder),
    }
}

fn corruption(path: &Path, bad: Inconsistency) -> Error {
    match bad.offset {
        Some(offset) => Error::corruption(path, offset, bad.what),
        None => Error::corruption_unknown_offset(path, bad.what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::FileMeta;

    fn table(number: u64) -> FileMeta {
        FileMeta::test_table(number, "a", "b", 10)
    }

    #[test]
    fn replay_reports_the_first_inconsistency_at_its_edit() {
        let path = Path::new("/db/MANIFEST-000004");
        let full = VersionEdit {
            log_number: Some(3),
            next_file_number: Some(9),
            last_sequence: Some(5),
            new_files: vec![(1, table(7))],
            ..VersionEdit::default()
        };
        let builder = replay(path, &[(0, full.clone())], 3).unwrap();
        assert_eq!(builder.find(7).map(|(l, _)| l), Some(1));

        let bad = VersionEdit { deleted_files: vec![(2, 7), (2, 8)], ..VersionEdit::default() };
        match replay(path, &[(0, full.clone()), (123, bad)], 3) {
            Err(Error::Corruption { file, offset, what }) => {
                assert_eq!((file.as_path(), offset), (path, Some(123)));
                assert_eq!(what, "edit deletes table 7 which is not at L2", "the first one only");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // A counter never recorded: no edit is at fault, so no offset is made up.
        let partial = VersionEdit { last_sequence: None, ..full };
        match replay(path, &[(0, partial)], 3) {
            Err(Error::Corruption { offset: None, what, .. }) => {
                assert_eq!(what, "the manifest never records the last sequence");
            }
            other => panic!("expected corruption at no offset, got {other:?}"),
        }
    }
}
