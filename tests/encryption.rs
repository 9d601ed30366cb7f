//! Encryption at rest (docs/encryption.md): an encrypted database round-trips through
//! flushes, compactions and reopens; no file holds a key or value in the clear; opening it
//! without the key, with the wrong key or without its registry fails clearly; tampering with
//! any table block or log record, or swapping files, is corruption naming file and offset;
//! key rotation, re-encryption and master-key rotation keep every byte readable.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kho::crypt::{Encryption, KeyFileProvider, KeyProvider, SecretKey};
use kho::{Db, Error, Options, WriteOptions};

fn provider(byte: u8) -> Arc<dyn KeyProvider> {
    Arc::new(KeyFileProvider::from_key("test-key", SecretKey::from_bytes([byte; 32])))
}

fn opts(key: Option<u8>) -> Options {
    Options {
        write_buffer_size: 16 << 10,
        block_size: 512,
        level_base_bytes: 64 << 10,
        target_file_size: 32 << 10,
        encryption: key.map(|k| Encryption::new(provider(k))),
        ..Options::default()
    }
}

/// A marker that a plaintext copy of any key or value would contain.
const MARK: &str = "CITIZEN079203001234";

fn fill(db: &Db, from: u32, n: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in from..from + n {
        let k = format!("{MARK}-key-{i:06}").into_bytes();
        let v = format!("{MARK}-value-{i}-{}", "x".repeat((i % 50) as usize)).into_bytes();
        db.put(&k, &v).unwrap();
        m.insert(k, v);
    }
    m
}

fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_no_plaintext(dir: &Path) {
    let needle = MARK.as_bytes();
    for f in all_files(dir) {
        let data = std::fs::read(&f).unwrap();
        assert!(!data.windows(needle.len()).any(|w| w == needle), "{} holds plaintext", f.display());
    }
}

#[test]
fn encrypted_database_roundtrips_and_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    let mut model = fill(&db, 0, 3000);
    let mut batch = kho::WriteBatch::new();
    batch.put(format!("{MARK}-synced").as_bytes(), b"v");
    db.write(batch, &WriteOptions::synced()).unwrap();
    model.insert(format!("{MARK}-synced").into_bytes(), b"v".to_vec());
    db.compact_range::<&[u8], _>(..).unwrap();
    model.extend(fill(&db, 3000, 500)); // left in the log and memtable
    assert_eq!(common::contents(&db), model);
    db.close().unwrap();
    assert_no_plaintext(dir.path());

    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    assert_eq!(common::contents(&db), model);
    let ids = db.keyring().unwrap().key_ids();
    assert_eq!(ids, vec![1]);
    db.close().unwrap();
    assert_no_plaintext(dir.path());

    // The control: the same writes without encryption are found by the same search.
    let plain = tempfile::tempdir().unwrap();
    let db = Db::open(plain.path(), opts(None)).unwrap();
    fill(&db, 0, 10);
    db.close().unwrap();
    let found = std::panic::catch_unwind(|| assert_no_plaintext(plain.path()));
    assert!(found.is_err(), "the search finds plaintext where there is some");
}

#[test]
fn no_key_wrong_key_and_missing_registry_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    fill(&db, 0, 500);
    db.close().unwrap();

    let e = Db::open(dir.path(), opts(None)).unwrap_err();
    assert!(matches!(e, Error::KeyNeeded { .. }), "{e}");
    assert!(e.to_string().starts_with("database is encrypted"), "{e}");
    let e = Db::open_read_only(dir.path(), opts(None)).unwrap_err();
    assert!(matches!(e, Error::KeyNeeded { .. }), "{e}");
    let e = Db::open(dir.path(), opts(Some(2))).unwrap_err();
    assert!(matches!(e, Error::WrongKey(_)), "{e}");
    // A provider that claims the registry's master id but holds another key.
    #[derive(Debug)]
    struct Liar(String);
    impl KeyProvider for Liar {
        fn current_master_id(&self) -> String {
            self.0.clone()
        }
        fn master_key(&self, _: &str) -> kho::Result<SecretKey> {
            Ok(SecretKey::from_bytes([9; 32]))
        }
    }
    let liar = Liar(provider(1).current_master_id());
    let e =
        Db::open(dir.path(), Options { encryption: Some(Encryption::new(Arc::new(liar))), ..opts(None) }).unwrap_err();
    assert!(matches!(e, Error::WrongKey(_)), "{e}");

    // The registry gone: refused, and nothing is created in its place.
    std::fs::remove_file(dir.path().join("KEYRING")).unwrap();
    let e = Db::open(dir.path(), opts(Some(1))).unwrap_err();
    assert!(e.to_string().contains("key registry is missing"), "{e}");
    assert!(!dir.path().join("KEYRING").exists());
    let e = Db::open(dir.path(), opts(None)).unwrap_err();
    assert!(matches!(e, Error::KeyNeeded { .. }), "{e}");
}

/// The table files of `dir`, in number order.
fn tables(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut t: Vec<_> = all_files(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "sst")).collect();
    t.sort();
    t
}

fn verify_everything(dir: &Path, key: u8) -> kho::Result<()> {
    let db = Db::open_read_only(dir, opts(Some(key)))?;
    db.iter()?.try_for_each(|kv| kv.map(drop))
}

#[test]
fn tampering_is_corruption_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    fill(&db, 0, 2000);
    db.flush().unwrap();
    db.close().unwrap();
    let t = tables(dir.path());
    assert!(t.len() >= 2);
    let good: Vec<Vec<u8>> = t.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let restore = || {
        for (p, g) in t.iter().zip(&good) {
            std::fs::write(p, g).unwrap();
        }
    };

    // A flipped ciphertext byte in the first data block, with its CRC made right again
    // (a deliberate change, not media damage): the tag catches it.
    let mut b = good[0].clone();
    b[10] ^= 0x01;
    fix_first_block_crc(&mut b);
    std::fs::write(&t[0], &b).unwrap();
    let e = verify_everything(dir.path(), 1).unwrap_err();
    match &e {
        Error::Corruption { file, offset, what } => {
            assert_eq!((file.as_path(), *offset), (t[0].as_path(), Some(0)), "{e}");
            assert!(what.contains("does not authenticate"), "{e}");
        }
        _ => panic!("{e}"),
    }
    restore();

    // Two files swapped (each renamed to the other's number).
    std::fs::write(&t[0], &good[1]).unwrap();
    std::fs::write(&t[1], &good[0]).unwrap();
    let e = verify_everything(dir.path(), 1).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    restore();
    verify_everything(dir.path(), 1).unwrap();
}

/// Recomputes the CRC of the block at offset 0 (its trailer follows the payload whose size
/// the first index entry gives; here: found by scanning for a matching trailer).
fn fix_first_block_crc(b: &mut [u8]) {
    for end in 17..b.len().saturating_sub(5) {
        let t = b[end];
        if t == 2 || t == 3 {
            let mut h = crc32fast::Hasher::new();
            h.update(&b[..end]);
            h.update(&[t]);
            let crc = h.finalize().to_le_bytes();
            // Only rewrite if the old CRC matched with the unflipped byte.
            let mut orig = b[..end].to_vec();
            orig[10] ^= 0x01;
            let mut h2 = crc32fast::Hasher::new();
            h2.update(&orig);
            h2.update(&[t]);
            if h2.finalize().to_le_bytes() == b[end + 1..end + 5] {
                b[end + 1..end + 5].copy_from_slice(&crc);
                return;
            }
        }
    }
    panic!("first block's trailer not found");
}

#[test]
fn rotation_reencryption_and_master_rotation_keep_everything_readable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    let mut model = fill(&db, 0, 1500);
    db.flush().unwrap();
    assert_eq!(db.rotate_key().unwrap(), 2);
    model.extend(fill(&db, 1500, 1500));
    db.flush().unwrap();
    assert_eq!(db.keyring().unwrap().key_ids(), vec![1, 2]);
    let _snap = db.snapshot();
    let report = db.reencrypt().unwrap();
    assert_eq!((report.key_id, report.retired_keys.clone()), (2, vec![1]), "{report:?}");
    assert!(report.tables_rewritten > 0);
    assert_eq!(common::contents(&db), model);
    db.close().unwrap();

    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    assert_eq!(common::contents(&db), model);
    assert_eq!(db.keyring().unwrap().key_ids(), vec![2]);
    db.rotate_master_key(provider(7)).unwrap();
    db.close().unwrap();
    assert!(matches!(Db::open(dir.path(), opts(Some(1))).unwrap_err(), Error::WrongKey(_)));
    let db = Db::open(dir.path(), opts(Some(7))).unwrap();
    assert_eq!(common::contents(&db), model);
    db.close().unwrap();
    assert_no_plaintext(dir.path());
}

#[test]
fn a_plaintext_database_converts_and_reencrypt_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(None)).unwrap();
    let mut model = fill(&db, 0, 1000);
    db.flush().unwrap();
    model.extend(fill(&db, 1000, 100)); // in the plaintext log
    db.close().unwrap();

    let db = Db::open(dir.path(), opts(Some(3))).unwrap();
    assert_eq!(common::contents(&db), model);
    model.extend(fill(&db, 1100, 100));
    let report = db.reencrypt().unwrap();
    assert!(report.tables_rewritten > 0, "{report:?}");
    assert_eq!(common::contents(&db), model);
    db.close().unwrap();
    assert_no_plaintext(dir.path());
    let db = Db::open(dir.path(), opts(Some(3))).unwrap();
    assert_eq!(common::contents(&db), model);
    db.close().unwrap();
}

#[test]
fn checkpoint_of_an_encrypted_database_opens_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    let model = fill(&db, 0, 2000);
    let out = dir.path().join("cp");
    db.checkpoint(&out).unwrap();
    db.close().unwrap();
    assert!(matches!(Db::open(&out, opts(None)).unwrap_err(), Error::KeyNeeded { .. }));
    let cp = Db::open(&out, opts(Some(1))).unwrap();
    assert_eq!(common::contents(&cp), model);
    cp.close().unwrap();
    assert_no_plaintext(&out);
}

#[test]
fn every_crash_point_of_rotation_reencryption_and_master_rotation() {
    use kho::vfs::CrashMode;
    let mut point = 0u64;
    loop {
        let (fs, shared) = common::fault_fs();
        let with_key = |k: u8| Options { fs: shared.clone(), ..opts(Some(k)) };
        let db = Db::open(common::db_dir(), with_key(1)).unwrap();
        let mut model = fill(&db, 0, 400);
        db.flush().unwrap();
        model.extend(fill(&db, 400, 50));
        db.close().unwrap(); // the last 50 are in the synced log
        fs.arm_crash_after(point);
        let result = (|| -> kho::Result<()> {
            let db = Db::open(common::db_dir(), with_key(1))?;
            db.rotate_key()?;
            db.reencrypt()?;
            db.rotate_master_key(provider(2))?;
            db.close()
        })();
        let finished = !fs.crash_point_hit();
        fs.crash(CrashMode::TearUnsynced { seed: point + 1 });

        // Exactly one of the two master keys opens the registry, and every file's key is in it.
        let db = match Db::open(common::db_dir(), with_key(1)) {
            Ok(db) => db,
            Err(Error::WrongKey(_)) => Db::open(common::db_dir(), with_key(2))
                .unwrap_or_else(|e| panic!("crash point {point}: neither master key opens: {e}")),
            Err(e) => panic!("crash point {point}: reopen failed: {e}"),
        };
        assert_eq!(common::contents(&db), model, "crash point {point}");
        let stale: Vec<String> =
            fs.list_all().iter().map(|p| p.display().to_string()).filter(|p| p.contains("KEYS-")).collect();
        assert_eq!(stale.len(), 1, "crash point {point}: one registry after a writable open: {stale:?}");
        db.close().unwrap();
        if finished {
            result.unwrap();
            assert!(point > 20, "the rekeying should have many crash points, saw {point}");
            return;
        }
        point += 1;
    }
}

/// The frames of a log: `(transform, payload)` each.
fn frames(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 13 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        out.push((data[at + 4], data[at + 13..at + 13 + len].to_vec()));
        at += 13 + len;
    }
    out
}

/// A log of `frames`, every checksum right.
fn unframes(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, p) in frames {
        let mut h = Vec::new();
        h.extend_from_slice(&(p.len() as u32).to_le_bytes());
        h.push(*t);
        h.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        let hc = crc32fast::hash(&h);
        h.extend_from_slice(&hc.to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn altered_dropped_or_reordered_log_records_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    for i in 0..6 {
        let mut b = kho::WriteBatch::new();
        b.put(format!("{MARK}-{i}"), "v");
        db.write(b, &WriteOptions::synced()).unwrap();
    }
    drop(db); // no close: the writes stay in the log only
    let log = all_files(dir.path()).into_iter().find(|p| p.extension().is_some_and(|e| e == "log")).unwrap();
    let good = std::fs::read(&log).unwrap();
    let f = frames(&good);
    assert_eq!(f.len(), 7, "a segment header and six sealed batches");
    assert_eq!((f[0].0, f[1].0), (2, 1));
    let offset_of = |i: usize| f[..i].iter().map(|(_, p)| 13 + p.len() as u64).sum::<u64>();

    let mut altered = f.clone();
    altered[2].1[3] ^= 0x04;
    let mut dropped = f.clone();
    dropped.remove(2);
    let mut reordered = f.clone();
    reordered.swap(2, 3);
    let mut plaintext = f.clone();
    plaintext[2].0 = 0;
    let mut resealed_header = f.clone();
    resealed_header[0].1[20] ^= 0x01; // the salt: every record's subkey changes
    for (name, frames, at) in [
        ("altered", altered, 2),
        ("dropped", dropped, 2),
        ("reordered", reordered, 2),
        ("plaintext", plaintext, 2),
        ("salt", resealed_header, 1),
    ] {
        std::fs::write(&log, unframes(&frames)).unwrap();
        for mode in [kho::RecoveryMode::TolerateCorruptedTail, kho::RecoveryMode::AbsoluteConsistency] {
            let e = Db::open(dir.path(), Options { recovery_mode: mode, ..opts(Some(1)) }).unwrap_err();
            match &e {
                Error::Corruption { file, offset, .. } => {
                    assert_eq!((file, *offset), (&log, Some(offset_of(at))), "{name}: {e}")
                }
                _ => panic!("{name}: {e}"),
            }
        }
    }
    std::fs::write(&log, &good).unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    assert_eq!(common::contents(&db).len(), 6);
    db.close().unwrap();
}

#[test]
fn swapped_blocks_within_a_table_and_a_truncated_table_are_corruption() {
    use kho::inspect::sst::{BlockKind, SstReader};
    use kho::vfs::FileSystem;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options { compression_level: 0, ..opts(Some(1)) }).unwrap();
    let mut rng = kho::util::SplitMix64::new(7);
    for i in 0..400u32 {
        let v: Vec<u8> = (0..100).map(|_| rng.next_u64() as u8).collect();
        db.put(format!("{MARK}-{i:06}"), v).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let table = tables(dir.path()).pop().unwrap();
    let number: u64 = table.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let keys = Arc::new(kho::crypt::Keyring::load(kho::vfs::StdFs::shared(), dir.path(), provider(1)).unwrap());
    let open = |bytes: Vec<u8>| -> kho::Result<()> {
        std::fs::write(&table, bytes).unwrap();
        let file = kho::vfs::StdFs.open(&table)?;
        let r = SstReader::open_with_keys(file, table.clone(), number, None, Some(&keys))?;
        r.verify().map(drop)
    };
    let good = std::fs::read(&table).unwrap();
    let layout = {
        let file = kho::vfs::StdFs.open(&table).unwrap();
        SstReader::open_with_keys(file, table.clone(), number, None, Some(&keys)).unwrap().layout().unwrap()
    };
    let data: Vec<_> = layout.iter().filter(|b| b.kind == BlockKind::Data).collect();
    let (a, b) = data
        .iter()
        .enumerate()
        .find_map(|(i, a)| data[i + 1..].iter().find(|b| b.stored_size == a.stored_size).map(|b| (*a, *b)))
        .expect("two data blocks of one size");
    let (ra, rb) = (
        a.offset as usize..(a.offset + a.stored_size) as usize,
        b.offset as usize..(b.offset + b.stored_size) as usize,
    );
    let mut swapped = good.clone();
    swapped[ra.clone()].copy_from_slice(&good[rb.clone()]);
    swapped[rb].copy_from_slice(&good[ra]);
    let e = open(swapped).unwrap_err();
    match &e {
        Error::Corruption { file, offset, what } => {
            assert_eq!((file, *offset), (&table, Some(a.offset)), "{e}");
            assert!(what.contains("does not authenticate"), "{e}");
        }
        _ => panic!("{e}"),
    }
    for cut in [1, 40, 96, good.len() / 2] {
        let e = open(good[..good.len() - cut].to_vec()).unwrap_err();
        assert!(e.is_corruption(), "cut {cut}: {e}");
    }
    open(good).unwrap();
}

#[test]
fn inspection_tells_how_each_file_is_encrypted_without_a_key() {
    use kho::inspect::filename::{parse_file_name, FileKind};
    use kho::inspect::sst::{SstReader, ENCRYPTED_FORMAT_VERSION, FORMAT_VERSION};
    use kho::inspect::wal::peek_segment_header;
    use kho::vfs::{FileSystem, StdFs};

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(1))).unwrap();
    fill(&db, 0, 1500);
    db.flush().unwrap();
    let master = provider(1).current_master_id();
    db.close().unwrap();
    let (mut tables, mut logs, mut registries) = (0, 0, 0);
    for p in all_files(dir.path()) {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let data = std::fs::read(&p).unwrap();
        match parse_file_name(&name) {
            Some(FileKind::Table(_)) => {
                let f = SstReader::read_footer_info(&*StdFs.open(&p).unwrap(), &p).unwrap();
                assert_eq!((f.format_version, f.key_id), (ENCRYPTED_FORMAT_VERSION, Some(1)), "{name}");
                tables += 1;
            }
            Some(FileKind::Log(_) | FileKind::Manifest(_)) if !data.is_empty() => {
                let h = peek_segment_header(&data).unwrap();
                assert_eq!((h.key_id, h.label.as_str()), (1, ""), "{name}");
                logs += 1;
            }
            Some(FileKind::Keys(_)) => {
                let h = peek_segment_header(&data).unwrap();
                assert_eq!((h.key_id, &h.label), (0, &master), "{name}: the master key's id, no secret");
                registries += 1;
            }
            _ => {}
        }
    }
    assert!(tables > 0 && logs > 0 && registries == 1, "{tables} {logs} {registries}");

    let plain = tempfile::tempdir().unwrap();
    let db = Db::open(plain.path(), opts(None)).unwrap();
    fill(&db, 0, 1500);
    db.flush().unwrap();
    db.close().unwrap();
    for p in all_files(plain.path()) {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        match parse_file_name(&name) {
            Some(FileKind::Table(_)) => {
                let f = SstReader::read_footer_info(&*StdFs.open(&p).unwrap(), &p).unwrap();
                assert_eq!((f.format_version, f.key_id), (FORMAT_VERSION, None), "{name}");
            }
            Some(FileKind::Log(_) | FileKind::Manifest(_)) => {
                assert_eq!(peek_segment_header(&std::fs::read(&p).unwrap()), None, "{name}");
            }
            _ => {}
        }
    }
}
