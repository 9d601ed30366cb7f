//! A torn manifest tail — an edit whose append never completed — is dropped by default and is
//! `Error::Corruption` at its offset under `RecoveryMode::AbsoluteConsistency`, as a torn log
//! tail is. Before issue 11 the manifest reader dropped it whatever the mode said.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{db_dir, fault_fs, small_options};
use kho::vfs::{FaultFs, FileSystem};
use kho::{Db, Error, Options, RecoveryMode};

/// A closed database on `fs` with data in a table and in the log, whose manifest ends in
/// the first 10 bytes of a record; returns the manifest and where the torn record starts.
fn torn(fs: &FaultFs, opts: &Options) -> (PathBuf, u64) {
    let db = Db::open(db_dir(), opts.clone()).unwrap();
    for i in 0..200u32 {
        db.put(format!("key{i:04}"), format!("value {i}")).unwrap();
    }
    db.flush().unwrap();
    db.put("in-the-log", "yes").unwrap();
    db.close().unwrap();
    let manifest =
        fs.list_all().into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST-")).unwrap();
    // Rewrite the manifest with half a record after it (its header says 40 bytes follow).
    let mut data = fs.read_all(&manifest).unwrap().to_vec();
    let at = data.len() as u64;
    data.extend_from_slice(&[40, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
    fs.remove(&manifest).unwrap();
    let mut f = fs.create(&manifest).unwrap();
    f.append(&data).unwrap();
    f.sync().unwrap();
    (manifest, at)
}

#[test]
fn absolute_consistency_refuses_a_torn_manifest_tail() {
    let (fs, shared) = fault_fs();
    let opts = Options { recovery_mode: RecoveryMode::AbsoluteConsistency, ..small_options(shared) };
    let (manifest, at) = torn(&fs, &Options { recovery_mode: RecoveryMode::TolerateCorruptedTail, ..opts.clone() });
    for r in [Db::open(db_dir(), opts.clone()).map(drop), Db::open_read_only(db_dir(), opts.clone()).map(drop)] {
        match r {
            Err(Error::Corruption { file, offset, what }) => {
                assert_eq!((file, offset), (manifest.clone(), Some(at)));
                assert!(what.contains("torn tail of 10 bytes (absolute consistency requested"), "{what}");
            }
            other => panic!("expected corruption at {at}, got {other:?}"),
        }
    }
}

#[test]
fn the_default_mode_drops_a_torn_manifest_tail() {
    let (fs, shared) = fault_fs();
    let opts = small_options(shared);
    assert_eq!(opts.recovery_mode, RecoveryMode::TolerateCorruptedTail);
    torn(&fs, &opts);
    let db = Db::open(db_dir(), opts.clone()).unwrap();
    assert_eq!(db.get("key0199").unwrap().as_deref(), Some(&b"value 199"[..]));
    assert_eq!(db.get("in-the-log").unwrap().as_deref(), Some(&b"yes"[..]));
    db.close().unwrap();
    // The open wrote a new, clean manifest: even absolute consistency accepts it now.
    let strict = Options { recovery_mode: RecoveryMode::AbsoluteConsistency, ..opts };
    Db::open(db_dir(), strict).unwrap().close().unwrap();
}
