//! `kho::backup::BackupEngine`: a restored backup holds exactly the writes up to its
//! sequence number and opens clean; a second backup shares the unchanged tables; verify
//! names a flipped byte and a missing file; prune keeps what remaining backups hold; a
//! crash at any point of a create or a prune leaves only complete backups, each verifying.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{contents, db_dir, fault_fs, small_options};
use kho::backup::{BackupEngine, BackupInfo};
use kho::vfs::{CrashMode, FaultFs, FileSystem, SharedFs};
use kho::{Db, Error, Options, WriteBatch, WriteOptions};

fn key(i: u64) -> String {
    format!("key{i:08}")
}

fn put_range(db: &Db, from: u64, to: u64) {
    for i in from..to {
        let mut b = WriteBatch::new();
        b.put(key(i), [b'v'; 40]);
        db.write(b, &WriteOptions::synced()).unwrap();
    }
}

/// A database restored at `out` holds exactly `key(0..n)`.
fn assert_restored_prefix(opts: &Options, out: &Path, n: u64) {
    let db = Db::open(out, Options { create_if_missing: false, ..opts.clone() }).unwrap();
    let got = contents(&db);
    assert_eq!(got.len() as u64, n, "the restore of {} holds {} keys, not {n}", out.display(), got.len());
    if n > 0 {
        assert!(db.get(key(n - 1)).unwrap().is_some());
    }
    assert!(db.get(key(n)).unwrap().is_none());
    assert!(db.recovery_report().is_clean());
    db.close().unwrap();
}

fn shared_bytes(info: &BackupInfo) -> u64 {
    info.files.iter().filter(|f| f.is_shared()).map(|f| f.size).sum()
}

#[test]
fn backups_under_a_writer_and_compactions_restore_exactly_their_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { write_buffer_size: 16 << 10, ..Options::default() };
    let db = Db::open(dir.path().join("src"), opts.clone()).unwrap();
    let base = db.last_sequence();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                db.put(key(i), [b'v'; 100]).unwrap();
                i += 1;
            }
        })
    };
    let mut engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let mut taken = Vec::new();
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(40));
        taken.push(engine.create(&db).unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(db.stats().levels.iter().skip(1).any(|l| l.files > 0), "compactions ran meanwhile");
    db.close().unwrap();

    assert_eq!(engine.list().unwrap(), taken);
    for info in &taken {
        let report = engine.verify(info.id).unwrap();
        assert!(report.is_clean(), "backup {}: {:?}", info.id, report.problems);
        assert_eq!((report.files, report.bytes), (info.files.len() as u64, info.bytes()));
        let out = dir.path().join(format!("restore{}", info.id));
        engine.restore(info.id, &out).unwrap();
        assert_restored_prefix(&opts, &out, info.sequence - base);
    }
    // Later backups share the tables that did not change.
    assert!(taken.iter().skip(1).any(|b| b.new_bytes < b.bytes()), "no backup shared a table: {taken:?}");
}

#[test]
fn a_second_backup_copies_only_the_new_tables() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { write_buffer_size: 16 << 10, ..Options::default() };
    let db = Db::open(dir.path().join("src"), opts.clone()).unwrap();
    put_range(&db, 0, 3000);
    let mut engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let first = engine.create(&db).unwrap();
    assert_eq!(first.new_bytes, first.bytes(), "the first backup copies everything");
    assert!(shared_bytes(&first) > 0);
    put_range(&db, 3000, 3300);
    let second = engine.create(&db).unwrap();
    let third = engine.create(&db).unwrap();
    // Each backup's new bytes are exactly its private files plus the tables no earlier
    // backup held; the second one shares some.
    let mut seen: Vec<String> = Vec::new();
    for info in [&first, &second, &third] {
        let fresh: u64 = info.files.iter().filter(|f| !seen.contains(&f.stored)).map(|f| f.size).sum();
        assert_eq!(info.new_bytes, fresh, "backup {}", info.id);
        seen.extend(info.files.iter().map(|f| f.stored.clone()));
    }
    let reused = second.bytes() - second.new_bytes;
    assert!(reused > shared_bytes(&second) / 2, "most tables shared: {reused} of {}", shared_bytes(&second));
    db.close().unwrap();
    for (info, n) in [(&first, 3000), (&second, 3300), (&third, 3300)] {
        let out = dir.path().join(format!("r{}", info.id));
        engine.restore(info.id, &out).unwrap();
        assert_restored_prefix(&opts, &out, n);
    }
    // Tables in `shared/` are the union of the backups' tables, each stored once.
    let shared = std::fs::read_dir(dir.path().join("backups/shared")).unwrap().count();
    let mut names: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|b| b.files.iter())
        .filter(|f| f.is_shared())
        .map(|f| f.stored.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(shared, names.len());
}

#[test]
fn verify_names_a_flipped_byte_and_a_missing_file_and_restore_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("src"), Options { write_buffer_size: 16 << 10, ..Options::default() }).unwrap();
    put_range(&db, 0, 2000);
    let bdir = dir.path().join("backups");
    let mut engine = BackupEngine::open(&bdir).unwrap();
    let info = engine.create(&db).unwrap();
    assert!(engine.verify(info.id).unwrap().is_clean());

    let table = info.files.iter().find(|f| f.is_shared()).unwrap();
    let path = bdir.join(&table.stored);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x40;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let manifest = info.files.iter().find(|f| f.name.starts_with("MANIFEST")).unwrap();
    std::fs::remove_file(bdir.join(&manifest.stored)).unwrap();

    let report = engine.verify(info.id).unwrap();
    let named: Vec<&Path> = report
        .problems
        .iter()
        .map(|e| match e {
            Error::Corruption { file, .. } => file.as_path(),
            e => panic!("not corruption: {e}"),
        })
        .collect();
    // The two damaged files, first; then what follows from them (CURRENT names the manifest).
    assert_eq!(named[..2], [path.as_path(), bdir.join(&manifest.stored).as_path()], "{:?}", report.problems);
    let e = engine.restore(info.id, dir.path().join("out")).unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }), "{e}");

    // A shared table cut short is copied again by the next create, which repairs the first
    // backup's copy too (the flipped byte, same length, stays verify's to report).
    let other = info.files.iter().filter(|f| f.is_shared()).nth(1).unwrap();
    let other_path = bdir.join(&other.stored);
    let cut = std::fs::read(&other_path).unwrap();
    std::fs::remove_file(&other_path).unwrap();
    std::fs::write(&other_path, &cut[..cut.len() / 2]).unwrap();
    assert!(engine.verify(info.id).unwrap().problems.iter().any(|e| e.to_string().contains(&other.stored)));
    let again = engine.create(&db).unwrap();
    assert!(again.new_bytes >= other.size);
    assert!(!engine.verify(info.id).unwrap().problems.iter().any(|e| e.to_string().contains(&other.stored)));
    let problems = engine.verify(again.id).unwrap().problems;
    assert!(problems.iter().all(|e| matches!(e, Error::Corruption { file, .. } if file == &path)), "{problems:?}");

    // Damaged metadata is corruption too, naming the metadata file.
    let meta = bdir.join("meta").join(info.id.to_string());
    let mut text = std::fs::read(&meta).unwrap();
    text[20] ^= 1;
    std::fs::remove_file(&meta).unwrap();
    std::fs::write(&meta, &text).unwrap();
    assert!(matches!(engine.info(info.id), Err(Error::Corruption { file, .. }) if file == meta));
    assert!(!engine.verify(info.id).unwrap().is_clean());
}

#[test]
fn prune_keeps_the_newest_and_every_table_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { write_buffer_size: 16 << 10, ..Options::default() };
    let db = Db::open(dir.path().join("src"), opts.clone()).unwrap();
    let bdir = dir.path().join("backups");
    let mut engine = BackupEngine::open(&bdir).unwrap();
    let mut taken = Vec::new();
    for round in 0..4 {
        put_range(&db, round * 800, (round + 1) * 800);
        taken.push(engine.create(&db).unwrap());
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    taken.push(engine.create(&db).unwrap());
    db.close().unwrap();
    let report = engine.prune(2).unwrap();
    assert_eq!(report.removed, vec![1, 2, 3]);
    assert!(report.files_deleted > 0 && report.bytes_freed > 0);
    assert_eq!(engine.ids().unwrap(), vec![4, 5]);
    for info in &taken[3..] {
        assert!(engine.verify(info.id).unwrap().is_clean());
        let out = dir.path().join(format!("r{}", info.id));
        engine.restore(info.id, &out).unwrap();
        assert_restored_prefix(&opts, &out, 3200);
    }
    // Nothing left that the two backups do not name.
    let mut kept: Vec<String> = taken[3..].iter().flat_map(|b| b.files.iter()).map(|f| f.stored.clone()).collect();
    kept.sort_unstable();
    kept.dedup();
    let mut on_disk = Vec::new();
    for sub in ["shared", "private/4", "private/5"] {
        for e in std::fs::read_dir(bdir.join(sub)).unwrap() {
            on_disk.push(format!("{sub}/{}", e.unwrap().file_name().to_string_lossy()));
        }
    }
    on_disk.sort_unstable();
    assert_eq!(on_disk, kept);
    assert_eq!(std::fs::read_dir(bdir.join("private")).unwrap().count(), 2);
    assert!(matches!(engine.prune(0), Err(Error::InvalidArgument(_))));
    // Personal data: files 0600, directories 0700.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for sub in ["", "meta", "shared", "private", "private/4"] {
        assert_eq!(mode(&bdir.join(sub)), 0o700, "{sub}");
    }
    for f in &kept {
        assert_eq!(mode(&bdir.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&bdir.join("meta/4")), 0o600);
    // Another engine on the folder is refused while this one holds it.
    assert!(matches!(BackupEngine::open(&bdir), Err(Error::Busy { .. })));
}

fn backups() -> &'static Path {
    Path::new("/backups")
}

/// After a crash: every visible backup verifies and restores to a prefix of the writes; a
/// new backup then succeeds and leaves no garbage behind.
fn check_after_crash(image: &Arc<FaultFs>, n: u64, expect_ids: &[u64]) {
    let shared: SharedFs = image.clone();
    let src = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    let mut engine = BackupEngine::open_with_fs(shared.clone(), backups()).unwrap();
    let ids = engine.ids().unwrap();
    assert!(
        expect_ids.iter().all(|id| ids.contains(id)) && ids.len() <= expect_ids.len() + 1,
        "crash point {n}: backups {ids:?}, expected {expect_ids:?} and maybe one more"
    );
    for &id in &ids {
        let report = engine.verify(id).unwrap();
        assert!(report.is_clean(), "crash point {n}: backup {id}: {:?}", report.problems);
        let out = Path::new("/restored").join(format!("{n}-{id}"));
        let info = engine.restore(id, &out).unwrap();
        let db = Db::open(&out, Options { create_if_missing: false, ..small_options(shared.clone()) }).unwrap();
        assert_eq!(contents(&db).len() as u64, info.sequence, "crash point {n}: backup {id}");
    }
    let info = engine.create(&src).unwrap();
    assert!(engine.verify(info.id).unwrap().is_clean());
    // Garbage of the interrupted operation is gone: `shared/` holds only named tables.
    let named: Vec<String> = engine.list().unwrap().iter().flat_map(|b| b.files.clone()).map(|f| f.stored).collect();
    for name in image.list(&backups().join("shared")).unwrap() {
        assert!(named.contains(&format!("shared/{name}")), "crash point {n}: garbage shared/{name}");
    }
}

/// Crash at every file-system mutation of a create (the second one: incremental) and of a
/// prune.
#[test]
fn a_crash_at_any_point_of_create_or_prune_leaves_only_complete_backups() {
    let setup = || {
        let (fs, shared) = fault_fs();
        let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
        put_range(&db, 0, 150);
        let mut engine = BackupEngine::open_with_fs(shared.clone(), backups()).unwrap();
        engine.create(&db).unwrap();
        put_range(&db, 150, 300);
        engine.create(&db).unwrap();
        put_range(&db, 300, 400);
        (fs, db, engine)
    };
    for op in ["create", "prune"] {
        let mut n = 0u64;
        let mutations = loop {
            let (fs, db, mut engine) = setup();
            let before = fs.mutation_count();
            fs.arm_crash_after(n);
            let result = if op == "create" { engine.create(&db).map(|_| ()) } else { engine.prune(1).map(|_| ()) };
            let finished = !fs.crash_point_hit();
            let image = fs.crash_clone(CrashMode::DropUnsynced);
            drop((db, engine));
            let expect: &[u64] = if op == "create" { &[1, 2] } else { &[2] };
            check_after_crash(&image, n, expect);
            if finished {
                result.unwrap();
                break fs.mutation_count() - before;
            }
            n += 1;
        };
        assert!(mutations > 5 && n >= mutations, "{op}: crashed at each of its {mutations} mutations");
    }
}

/// An encrypted database's backup carries its key registry: the restore opens with the
/// master key (and only with it); verify checks the encrypted files by checksum.
#[test]
fn an_encrypted_database_backup_restores_with_its_key_registry() {
    use kho::crypt::{Encryption, KeyFileProvider, SecretKey};
    let key = |byte: u8| {
        Some(Encryption::new(Arc::new(KeyFileProvider::from_key("test-key", SecretKey::from_bytes([byte; 32])))))
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { write_buffer_size: 16 << 10, encryption: key(7), ..Options::default() };
    let db = Db::open(dir.path().join("src"), opts.clone()).unwrap();
    put_range(&db, 0, 2000);
    let mut engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let info = engine.create(&db).unwrap();
    db.close().unwrap();
    assert!(info.files.iter().any(|f| f.name == "KEYRING"), "{:?}", info.files);
    assert!(info.files.iter().any(|f| f.name.starts_with("KEYS-")));
    let report = engine.verify(info.id).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.undecoded > 0);
    let out = dir.path().join("restored");
    engine.restore(info.id, &out).unwrap();
    assert_restored_prefix(&opts, &out, 2000);
    let wrong = Options { create_if_missing: false, encryption: key(8), ..opts.clone() };
    assert!(Db::open(&out, wrong).is_err());
}
