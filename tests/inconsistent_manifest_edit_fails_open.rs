//! A manifest edit that decodes but contradicts the edits before it makes `Db::open` (and
//! `Db::open_read_only`) fail with `Error::Corruption` naming the manifest and the offset of
//! that edit's record. Before issue 11, recovery accepted such edits silently (a deletion of
//! an absent table, overlapping tables in a sorted level, a log number moving backwards) or
//! reported them at offset 0.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use kho::inspect::version::FileMeta;
use kho::{Db, Error, Options};

fn varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push(v as u8 | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// `fields` varint-encoded, then each key length-prefixed, then `tail` (tags and layout from
/// docs/manifest-format.md).
fn edit(fields: &[u64], keys: &[&[u8]], tail: &[u64]) -> Vec<u8> {
    let mut e = Vec::new();
    for &v in fields {
        varint(&mut e, v);
    }
    for k in keys {
        varint(&mut e, k.len() as u64);
        e.extend_from_slice(k);
    }
    for &v in tail {
        varint(&mut e, v);
    }
    e
}

/// An edit adding `f` as table `number` at `level`.
fn add(level: u64, number: u64, f: &FileMeta) -> Vec<u8> {
    edit(&[5, level, number, f.size], &[&f.smallest, &f.largest], &[f.smallest_seq, f.largest_seq, f.entries])
}

/// Appends `payload` to the manifest as one framed record (WAL framing:
/// `len u32 | transform u8 | crc32(payload) | crc32(header)`); returns the record's offset.
fn append_record(manifest: &Path, payload: &[u8]) -> u64 {
    let mut rec = Vec::new();
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.push(0);
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let hcrc = crc32fast::hash(&rec);
    rec.extend_from_slice(&hcrc.to_le_bytes());
    rec.extend_from_slice(payload);
    let mut data = std::fs::read(manifest).unwrap();
    let offset = data.len() as u64;
    data.extend_from_slice(&rec);
    std::fs::write(manifest, data).unwrap();
    offset
}

/// A closed database with one level-0 table and one level-1 table; returns the directory,
/// its manifest and the two tables.
fn build() -> (tempfile::TempDir, PathBuf, FileMeta, FileMeta) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..100u32 {
        db.put(format!("key{i:03}"), "first").unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in 0..100u32 {
        db.put(format!("key{i:03}"), "second").unwrap();
    }
    db.flush().unwrap();
    let live = db.live_files();
    db.close().unwrap();
    let table = |level| live.iter().find(|(l, _)| *l == level).map(|(_, f)| f.clone()).unwrap();
    let manifest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST-"))
        .unwrap();
    let (l0, l1) = (table(0), table(1));
    (dir, manifest, l0, l1)
}

fn expect_corruption(r: kho::Result<Db>, manifest: &Path, offset: u64, what: &str) {
    match r {
        Err(Error::Corruption { file, offset: at, what: w }) => {
            assert_eq!((file.as_path(), at), (manifest, Some(offset)), "{w}");
            assert!(w.starts_with(what), "expected {what:?}, got {w:?}");
        }
        Err(e) => panic!("expected corruption at {offset}, got {e}"),
        Ok(_) => panic!("expected corruption at {offset}, the database opened"),
    }
}

#[test]
fn an_inconsistent_edit_fails_open_at_its_offset() {
    type Case = fn(&FileMeta, &FileMeta) -> (Vec<Vec<u8>>, String);
    let cases: [Case; 6] = [
        |_, _| (vec![edit(&[4, 2, 99], &[], &[])], "edit deletes table 99 which is not at L2".into()),
        |_, _| (vec![edit(&[1, 0], &[], &[])], "edit moves the log number back from ".into()),
        |l0, _| (vec![add(9, l0.number, l0)], format!("edit adds table {} at L9, beyond the 7 levels", l0.number)),
        |_, l1| {
            (vec![add(0, l1.number, l1)], format!("edit adds table {} at L0 which is already live at L1", l1.number))
        },
        |l0, _| (vec![add(0, 1_000_000, l0)], "edit adds table 1000000 at L0, not below the next file number ".into()),
        // A valid edit first (the L0 table moves to L2), then one that overlaps it at L2.
        |l0, l1| {
            let mv = [edit(&[4, 0, l0.number], &[], &[]), add(2, l0.number, l0)].concat();
            (
                vec![mv, add(2, l1.number + 1, l1)],
                format!("edit adds table {} at L2 overlapping table {}", l1.number + 1, l0.number),
            )
        },
    ];
    for case in cases {
        let (dir, manifest, l0, l1) = build();
        let (edits, what) = case(&l0, &l1);
        let offsets: Vec<u64> = edits.iter().map(|e| append_record(&manifest, e)).collect();
        let bad = *offsets.last().unwrap();
        expect_corruption(Db::open(dir.path(), Options::default()), &manifest, bad, &what);
        expect_corruption(Db::open_read_only(dir.path(), Options::default()), &manifest, bad, &what);
        // The failed open changed nothing: it fails again the same way.
        expect_corruption(Db::open(dir.path(), Options::default()), &manifest, bad, &what);
    }
}

/// The checks do not refuse anything kho itself writes: a database reopened many times
/// after flushes, compactions and moves opens clean.
#[test]
fn a_database_kho_wrote_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 8 << 10,
        level0_compaction_trigger: 2,
        level_base_bytes: 32 << 10,
        ..Options::default()
    };
    for round in 0..6u32 {
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        for i in 0..400u32 {
            db.put(
                format!("key{:05}", (i * 7919 + round) % 1000),
                format!("round {round} value {i} {}", "x".repeat(30)),
            )
            .unwrap();
            if i % 9 == 0 {
                db.delete(format!("key{:05}", (i * 31) % 1000)).unwrap();
            }
        }
        if round % 2 == 1 {
            db.compact_range::<&[u8], _>(..).unwrap();
        }
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.live_files().iter().any(|(l, _)| *l >= 1), "compactions ran");
    db.close().unwrap();
}
