//! Unit tests of [`FaultFs`]: crash images, fault injection, crash points, handles, locks.

use super::*;

fn db() -> PathBuf {
    PathBuf::from("/db")
}

fn p(name: &str) -> PathBuf {
    db().join(name)
}

/// A file system with `/db` created.
fn fs() -> FaultFs {
    let fs = FaultFs::new();
    fs.create_dir_all(&db()).unwrap();
    fs
}

/// Creates `name` in `/db` with `synced` synced bytes then `unsynced` more, and makes its
/// directory entry durable.
fn write_file(fs: &FaultFs, name: &str, synced: &[u8], unsynced: &[u8]) {
    let mut w = fs.create(&p(name)).unwrap();
    w.append(synced).unwrap();
    w.sync().unwrap();
    w.append(unsynced).unwrap();
    fs.sync_dir(&db()).unwrap();
}

fn read(fs: &FaultFs, name: &str) -> Vec<u8> {
    fs.read_all(&p(name)).unwrap().to_vec()
}

/// The raw OS error behind an `Error::Io`.
fn raw_os_error(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

fn io_kind(e: &Error) -> Option<io::ErrorKind> {
    match e {
        Error::Io { source, .. } => Some(source.kind()),
        _ => None,
    }
}

#[test]
fn is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<FaultFs>();
}

#[test]
fn unsynced_data_dropped_synced_data_kept() {
    let fs = fs();
    write_file(&fs, "f", b"durable", b" lost");
    assert_eq!(read(&fs, "f"), b"durable lost", "appends are visible before sync");
    assert_eq!(fs.synced_len(&p("f")).unwrap(), 7);
    fs.crash(CrashMode::DropUnsynced);
    assert_eq!(read(&fs, "f"), b"durable");
    assert_eq!(fs.file_len(&p("f")).unwrap(), 7);
}

#[test]
fn torn_crash_keeps_a_seeded_prefix_of_the_unsynced_tail() {
    let fs = fs();
    let tail: Vec<u8> = (0..200u8).collect();
    write_file(&fs, "f", b"0123456789", &tail);
    let full = read(&fs, "f");
    let mut lens = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let a = fs.crash_clone(CrashMode::TearUnsynced { seed });
        let b = fs.crash_clone(CrashMode::TearUnsynced { seed });
        let (a, b) = (read(&a, "f"), read(&b, "f"));
        assert_eq!(a, b, "same seed, same image");
        assert!((10..=210).contains(&a.len()));
        assert_eq!(a[..], full[..a.len()], "a prefix of the live bytes");
        lens.insert(a.len());
    }
    assert!(lens.len() > 8, "seeds choose different cuts: {lens:?}");
}

#[test]
fn created_file_without_sync_dir_vanishes() {
    let fs = fs();
    let mut w = fs.create(&p("new")).unwrap();
    w.append(b"data").unwrap();
    w.sync().unwrap();
    write_file(&fs, "kept", b"k", b"");
    // `write_file` synced `/db` after `new` was created, so create one more afterwards.
    let mut late = fs.create(&p("late")).unwrap();
    late.append(b"x").unwrap();
    late.sync().unwrap();
    assert!(fs.exists(&p("late")).unwrap());
    fs.crash(CrashMode::DropUnsynced);
    assert!(!fs.exists(&p("late")).unwrap());
    assert_eq!(read(&fs, "new"), b"data");
    assert_eq!(fs.list(&db()).unwrap(), vec!["kept".to_owned(), "new".to_owned()]);
}

#[test]
fn rename_needs_sync_dir() {
    let fs = fs();
    write_file(&fs, "tmp", b"new", b"");
    write_file(&fs, "CURRENT", b"old", b"");
    fs.rename(&p("tmp"), &p("CURRENT")).unwrap();
    assert_eq!(read(&fs, "CURRENT"), b"new");
    assert!(!fs.exists(&p("tmp")).unwrap());

    let undone = fs.crash_clone(CrashMode::DropUnsynced);
    assert_eq!(read(&undone, "CURRENT"), b"old");
    assert_eq!(read(&undone, "tmp"), b"new");

    fs.sync_dir(&db()).unwrap();
    fs.crash(CrashMode::DropUnsynced);
    assert_eq!(read(&fs, "CURRENT"), b"new");
    assert_eq!(fs.list_all(), vec![p("CURRENT")]);
}

#[test]
fn rename_across_directories_needs_both_syncs() {
    let fs = fs();
    fs.create_dir_all(&p("sub")).unwrap();
    write_file(&fs, "f", b"x", b"");
    fs.rename(&p("f"), &p("sub").join("f")).unwrap();
    fs.sync_dir(&p("sub")).unwrap();
    // Only the target directory is synced: the old name is still durable too.
    let c = fs.crash_clone(CrashMode::DropUnsynced);
    assert_eq!(c.list_all(), vec![p("f"), p("sub").join("f")]);
    fs.sync_dir(&db()).unwrap();
    let c = fs.crash_clone(CrashMode::DropUnsynced);
    assert_eq!(c.list_all(), vec![p("sub").join("f")]);
}

#[test]
fn remove_needs_sync_dir() {
    let fs = fs();
    write_file(&fs, "f", b"abc", b"");
    fs.remove(&p("f")).unwrap();
    assert!(!fs.exists(&p("f")).unwrap());
    let undone = fs.crash_clone(CrashMode::DropUnsynced);
    assert_eq!(read(&undone, "f"), b"abc");
    fs.sync_dir(&db()).unwrap();
    fs.crash(CrashMode::DropUnsynced);
    assert!(!fs.exists(&p("f")).unwrap());
    assert!(fs.list_all().is_empty());
}

#[test]
fn injected_append_fault_fails_the_nth_and_changes_nothing() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    fs.inject(FaultOp::Append, 1, FaultKind::Eio);
    w.append(b"a").unwrap();
    let e = w.append(b"b").unwrap_err();
    assert_eq!(raw_os_error(&e), Some(5));
    assert!(matches!(e, Error::Io { op: "write", .. }));
    assert_eq!(w.len(), 1);
    assert_eq!(fs.file_len(&p("f")).unwrap(), 1);
    w.append(b"c").unwrap(); // one-shot
    assert_eq!(read(&fs, "f"), b"ac");
    assert_eq!(fs.op_count(FaultOp::Append), 2);
}

#[test]
fn injected_sync_fault_leaves_data_unsynced() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    fs.sync_dir(&db()).unwrap();
    w.append(b"abc").unwrap();
    fs.inject(FaultOp::Sync, 0, FaultKind::Enospc);
    let e = w.sync().unwrap_err();
    assert_eq!(raw_os_error(&e), Some(28));
    assert_eq!(fs.synced_len(&p("f")).unwrap(), 0);
    fs.crash(CrashMode::DropUnsynced);
    assert_eq!(read(&fs, "f"), b"");
}

#[test]
fn injected_rename_fault_has_no_effect() {
    let fs = fs();
    write_file(&fs, "a", b"1", b"");
    fs.inject(FaultOp::Rename, 0, FaultKind::Eio);
    let e = fs.rename(&p("a"), &p("b")).unwrap_err();
    assert_eq!(raw_os_error(&e), Some(5));
    assert_eq!(fs.list_all(), vec![p("a")]);
    assert_eq!(fs.op_count(FaultOp::Rename), 0);
    fs.rename(&p("a"), &p("b")).unwrap();
    assert_eq!(fs.list_all(), vec![p("b")]);
}

#[test]
fn inject_always_until_cleared() {
    let fs = fs();
    fs.inject_always(FaultOp::Create, FaultKind::Enospc);
    for _ in 0..3 {
        let e = fs.create(&p("f")).err().unwrap();
        assert_eq!(raw_os_error(&e), Some(28));
    }
    assert!(!fs.exists(&p("f")).unwrap());
    fs.clear_faults();
    fs.create(&p("f")).unwrap();
    assert_eq!(fs.op_count(FaultOp::Create), 1);
}

#[test]
fn crash_point_fails_every_later_mutation() {
    let fs = fs();
    let before = fs.mutation_count();
    assert_eq!(before, 1, "create_dir_all counts");
    fs.arm_crash_after(3);
    let mut w = fs.create(&p("f")).unwrap(); // 1
    w.append(b"abc").unwrap(); // 2
    w.sync().unwrap(); // 3
    assert!(fs.crash_point_hit());
    let msg = w.append(b"d").unwrap_err().to_string();
    assert!(msg.contains("simulated crash"), "{msg}");
    assert!(w.sync().is_err());
    assert!(w.flush().is_err());
    assert!(fs.sync_dir(&db()).is_err());
    assert!(fs.create(&p("g")).is_err());
    assert!(fs.rename(&p("f"), &p("g")).is_err());
    assert!(fs.remove(&p("f")).is_err());
    assert!(fs.create_dir_all(&p("sub")).is_err());
    assert_eq!(fs.mutation_count(), before + 3);
    // Reads still work and see the pre-crash-point state.
    assert_eq!(read(&fs, "f"), b"abc");
    assert_eq!(fs.list(&db()).unwrap(), vec!["f".to_owned()]);
    // The directory was never synced: the file is gone after the crash, which disarms.
    fs.crash(CrashMode::DropUnsynced);
    assert!(!fs.crash_point_hit());
    assert!(fs.list_all().is_empty());
    fs.create(&p("g")).unwrap();
}

#[test]
fn disarm_lets_mutations_through() {
    let fs = fs();
    fs.arm_crash_after(0);
    assert!(fs.create(&p("f")).is_err());
    fs.disarm();
    fs.create(&p("f")).unwrap();
}

#[test]
fn handles_from_before_a_crash_are_dead() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    w.append(b"abc").unwrap();
    w.sync().unwrap();
    fs.sync_dir(&db()).unwrap();
    let r = fs.open(&p("f")).unwrap();
    fs.crash(CrashMode::DropUnsynced);
    assert!(w.append(b"more").is_err());
    assert!(w.sync().is_err());
    assert!(w.flush().is_err());
    assert_eq!(read(&fs, "f"), b"abc");
    // A new writer of the same path is unaffected by the dead one (even when it drops).
    assert!(fs.create(&p("f")).is_err(), "create never overwrites");
    fs.remove(&p("f")).unwrap();
    let mut w2 = fs.create(&p("f")).unwrap();
    w2.append(b"xy").unwrap();
    drop(w);
    w2.sync().unwrap();
    assert_eq!(read(&fs, "f"), b"xy");
    // The old reader keeps its snapshot.
    assert_eq!(&r.read_at(0, 3).unwrap()[..], b"abc");
}

#[test]
fn crash_clone_leaves_the_original_untouched() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    w.append(b"abc").unwrap();
    let _l = fs.lock(&p("LOCK")).unwrap();
    fs.inject_always(FaultOp::Remove, FaultKind::Eio);
    let c = fs.crash_clone(CrashMode::DropUnsynced);
    assert!(c.list_all().is_empty());
    assert_eq!(c.list(&db()).unwrap(), Vec::<String>::new(), "directories survive");
    assert_eq!(c.mutation_count(), 0);
    c.lock(&p("LOCK")).unwrap();
    c.create(&p("x")).unwrap();
    c.remove(&p("x")).unwrap();
    // The original still has its file, its live writer, its lock and its fault.
    w.append(b"d").unwrap();
    assert_eq!(read(&fs, "f"), b"abcd");
    assert!(matches!(fs.lock(&p("LOCK")), Err(Error::Busy { .. })));
    assert!(fs.remove(&p("f")).is_err());
}

#[test]
fn lock_is_exclusive_and_a_stale_guard_cannot_release_a_new_lock() {
    let fs = fs();
    let lock = p("LOCK");
    let l1 = fs.lock(&lock).unwrap();
    assert!(matches!(fs.lock(&lock), Err(Error::Busy { .. })));
    assert!(fs.exists(&lock).unwrap(), "lock creates the file, like StdFs");
    fs.crash(CrashMode::DropUnsynced);
    let l2 = fs.lock(&lock).unwrap(); // the crash released l1
    drop(l1);
    assert!(matches!(fs.lock(&lock), Err(Error::Busy { .. })), "l1 must not release l2");
    drop(l2);
    fs.lock(&lock).unwrap();
}

#[test]
fn missing_paths_and_directories() {
    let fs = fs();
    let e = fs.list(Path::new("/nope")).unwrap_err();
    assert_eq!(io_kind(&e), Some(io::ErrorKind::NotFound));
    let e = fs.create(Path::new("/nope/f")).err().unwrap();
    assert_eq!(io_kind(&e), Some(io::ErrorKind::NotFound));
    let e = fs.open(&p("missing")).unwrap_err();
    assert_eq!(io_kind(&e), Some(io::ErrorKind::NotFound));
    let e = fs.read_all(&p("missing")).unwrap_err();
    assert_eq!(io_kind(&e), Some(io::ErrorKind::NotFound));
    assert!(fs.remove(&p("missing")).is_err());
    assert!(fs.rename(&p("missing"), &p("x")).is_err());
    assert!(fs.sync_dir(Path::new("/nope")).is_err());
    assert!(fs.create(&db()).is_err(), "a directory is not a file");
    assert!(fs.exists(Path::new("/")).unwrap());
    assert!(!fs.exists(&p("missing")).unwrap());
}

#[test]
fn list_is_sorted_names_directly_inside() {
    let fs = fs();
    fs.create_dir_all(&p("sub").join("deeper")).unwrap();
    for name in ["b", "a", "c"] {
        fs.create(&p(name)).unwrap();
    }
    fs.create(&p("sub").join("inner")).unwrap();
    assert!(fs.exists(&p("sub")).unwrap());
    assert_eq!(fs.list(&db()).unwrap(), ["a", "b", "c", "sub"]);
    assert_eq!(fs.list(&p("sub")).unwrap(), ["deeper", "inner"]);
    assert_eq!(fs.list(Path::new("/")).unwrap(), ["db"]);
}

#[test]
fn create_refuses_an_existing_file() {
    let fs = fs();
    write_file(&fs, "f", b"old", b"");
    let e = fs.create(&p("f")).err().unwrap();
    assert!(matches!(&e, Error::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists), "{e}");
    assert_eq!(read(&fs, "f"), b"old", "the refused create changed nothing");
}

#[test]
fn test_helpers_corrupt_and_truncate_durably() {
    let fs = fs();
    write_file(&fs, "f", b"hello", b"!");
    fs.corrupt_byte(&p("f"), 0, 0x20).unwrap();
    assert_eq!(read(&fs, "f"), b"Hello!");
    assert!(fs.corrupt_byte(&p("f"), 6, 1).is_err());
    fs.truncate(&p("f"), 4).unwrap();
    assert!(fs.truncate(&p("f"), 5).is_err());
    assert_eq!(fs.file_len(&p("f")).unwrap(), 4);
    fs.crash(CrashMode::TearUnsynced { seed: 7 });
    assert_eq!(read(&fs, "f"), b"Hell");
    assert_eq!(fs.mutation_count(), 6, "helpers are not counted");
}

#[test]
fn readers_see_a_snapshot_taken_at_open() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    w.append(b"abc").unwrap();
    let r = fs.open(&p("f")).unwrap();
    w.append(b"def").unwrap();
    assert_eq!(r.len(), 3);
    assert!(r.read_at(2, 2).is_err());
    assert_eq!(fs.open(&p("f")).unwrap().len(), 6);
}

#[test]
fn unlinked_files_are_freed_and_writers_of_unlinked_files_work() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    fs.remove(&p("f")).unwrap();
    w.append(b"still fine").unwrap();
    w.sync().unwrap();
    drop(w);
    fs.sync_dir(&db()).unwrap();
    assert!(fs.state.lock().inodes.is_empty(), "{fs:?}");
}

// ---- read-side faults ----

#[test]
fn read_side_ops_fail_on_the_nth_call_and_change_nothing() {
    let fs = fs();
    write_file(&fs, "f", b"hello", b"");
    fs.inject(FaultOp::Open, 1, FaultKind::Eio);
    fs.open(&p("f")).unwrap();
    let e = fs.open(&p("f")).unwrap_err();
    assert_eq!(raw_os_error(&e), Some(5));
    assert!(matches!(e, Error::Io { op: "open", .. }), "{e}");
    assert_eq!(read(&fs, "f"), b"hello", "one-shot");

    let r = fs.open(&p("f")).unwrap();
    fs.inject(FaultOp::Read, 0, FaultKind::Eio);
    let e = r.read_at(0, 5).unwrap_err();
    assert!(matches!(e, Error::Io { op: "read", .. }), "{e}");
    assert_eq!(&r.read_at(0, 5).unwrap()[..], b"hello");

    fs.inject(FaultOp::List, 0, FaultKind::Enospc);
    assert_eq!(raw_os_error(&fs.list(&db()).unwrap_err()), Some(28));
    assert_eq!(fs.list(&db()).unwrap(), ["f"]);
    fs.inject(FaultOp::Exists, 0, FaultKind::Eio);
    assert!(fs.exists(&p("f")).is_err());
    assert!(fs.exists(&p("f")).unwrap());
    assert_eq!(fs.mutation_count(), 6, "reads are not mutations: {fs:?}");
    assert_eq!(fs.op_count(FaultOp::Open), 3, "failed calls are not counted");
}

#[test]
fn read_all_fails_through_either_of_its_halves() {
    let fs = fs();
    write_file(&fs, "f", b"abc", b"");
    for op in [FaultOp::Open, FaultOp::Read] {
        fs.inject(op, 0, FaultKind::Eio);
        let e = fs.read_all(&p("f")).unwrap_err();
        assert_eq!(raw_os_error(&e), Some(5), "{op:?}: {e}");
        assert_eq!(read(&fs, "f"), b"abc");
    }
    // Argument checks come first: a missing file is NotFound and does not use up the fault.
    fs.inject(FaultOp::Open, 0, FaultKind::Eio);
    assert_eq!(io_kind(&fs.open(&p("missing")).unwrap_err()), Some(io::ErrorKind::NotFound));
    assert!(fs.open(&p("f")).is_err());
    // So is a read past the end.
    let r = fs.open(&p("f")).unwrap();
    fs.inject(FaultOp::Read, 0, FaultKind::Eio);
    assert_eq!(io_kind(&r.read_at(2, 5).unwrap_err()), Some(io::ErrorKind::UnexpectedEof));
    assert!(r.read_at(0, 1).is_err());
}

#[test]
fn read_faults_always_until_cleared_and_past_crashes() {
    let fs = fs();
    write_file(&fs, "f", b"abc", b"");
    let r = fs.open(&p("f")).unwrap();
    fs.inject_always(FaultOp::Read, FaultKind::Eio);
    for _ in 0..3 {
        assert!(r.read_at(0, 3).is_err());
    }
    // A reader from before a crash still passes the gate of the file system it came from.
    fs.crash(CrashMode::DropUnsynced);
    assert!(r.read_at(0, 3).is_err());
    fs.clear_faults();
    assert_eq!(&r.read_at(0, 3).unwrap()[..], b"abc");
    // A reached crash point stops mutations, not reads.
    fs.arm_crash_after(0);
    assert!(fs.create(&p("g")).is_err());
    assert_eq!(read(&fs, "f"), b"abc");
    assert_eq!(fs.list(&db()).unwrap(), ["f"]);
}

// ---- short writes, dropping fsyncs, bit flips ----

#[test]
fn short_write_leaves_a_visible_unsynced_proper_prefix_and_fails() {
    let data: Vec<u8> = (0..100u8).collect();
    let mut lens = std::collections::BTreeSet::new();
    for seed in 0..24 {
        let fs = fs();
        fs.set_fault_seed(seed);
        let mut w = fs.create(&p("f")).unwrap();
        w.append(b"head").unwrap();
        w.sync().unwrap();
        fs.sync_dir(&db()).unwrap();
        fs.inject(FaultOp::Append, 0, FaultKind::ShortWrite);
        let e = w.append(&data).unwrap_err();
        assert_eq!(raw_os_error(&e), Some(5));
        assert!(matches!(e, Error::Io { op: "write", .. }));
        let got = read(&fs, "f");
        assert!(got.len() < 4 + data.len(), "a proper prefix: {} bytes", got.len());
        assert_eq!(&got[..4], b"head");
        assert_eq!(got[4..], data[..got.len() - 4], "the prefix is the start of the data");
        assert_eq!(fs.synced_len(&p("f")).unwrap(), 4, "unsynced");
        assert_eq!(w.len(), 4, "the writer does not count a failed append");
        assert_eq!(fs.op_count(FaultOp::Append), 1);
        lens.insert(got.len());
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(read(&fs, "f"), b"head");
    }
    assert!(lens.len() > 8, "seeds choose different prefixes: {lens:?}");
}

#[test]
fn sync_that_drops_unsynced_pages_cuts_the_live_file_for_good() {
    let fs = fs();
    let mut w = fs.create(&p("f")).unwrap();
    fs.sync_dir(&db()).unwrap();
    w.append(b"abc").unwrap();
    w.sync().unwrap();
    w.append(b"def").unwrap();
    let r_before = fs.open(&p("f")).unwrap();
    fs.inject(FaultOp::Sync, 0, FaultKind::SyncDropsUnsynced);
    let e = w.sync().unwrap_err();
    assert_eq!(raw_os_error(&e), Some(5));
    assert_eq!(read(&fs, "f"), b"abc", "the unsynced tail is gone from the live file");
    assert_eq!(fs.file_len(&p("f")).unwrap(), 3);
    assert_eq!(&r_before.read_at(0, 6).unwrap()[..], b"abcdef", "an earlier reader keeps its snapshot");
    // A later successful sync does not bring them back; new appends land after the cut.
    w.sync().unwrap();
    assert_eq!(read(&fs, "f"), b"abc");
    w.append(b"gh").unwrap();
    w.sync().unwrap();
    assert_eq!(read(&fs, "f"), b"abcgh");
    fs.crash(CrashMode::DropUnsynced);
    assert_eq!(read(&fs, "f"), b"abcgh");
}

#[test]
fn a_plain_failed_sync_keeps_the_unsynced_tail_visible() {
    let fs = fs();
    write_file(&fs, "f", b"abc", b"def");
    let mut w = fs.create(&p("g")).unwrap();
    w.append(b"xyz").unwrap();
    fs.inject(FaultOp::Sync, 0, FaultKind::Eio);
    assert!(w.sync().is_err());
    assert_eq!(read(&fs, "g"), b"xyz", "Eio on sync changes nothing (the tail is still unsynced)");
    assert_eq!(fs.synced_len(&p("g")).unwrap(), 0);
}

/// The positions of the bits that differ between `a` and `b` (same length).
fn differing_bits(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len() * 8).filter(|&i| (a[i / 8] ^ b[i / 8]) & (1 << (i % 8)) != 0).collect()
}

#[test]
fn bit_flip_on_write_stores_one_flipped_bit_and_succeeds() {
    let data = vec![0x5au8; 64];
    let mut positions = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let fs = fs();
        fs.set_fault_seed(seed);
        let mut w = fs.create(&p("f")).unwrap();
        w.append(b"head").unwrap();
        fs.inject(FaultOp::Append, 0, FaultKind::BitFlip);
        w.append(&data).unwrap();
        assert_eq!(w.len(), 68);
        w.sync().unwrap();
        let got = read(&fs, "f");
        assert_eq!(&got[..4], b"head", "only the appended bytes can change");
        let flipped = differing_bits(&got[4..], &data);
        assert_eq!(flipped.len(), 1, "exactly one bit: {flipped:?}");
        positions.insert(flipped[0]);
        assert_eq!(read(&fs, "f"), got, "the damage is stored, not a read effect");
        assert_eq!(fs.op_count(FaultOp::Append), 2, "a flipped append completes");
        // Same seed, same damage.
        let again = FaultFs::new();
        again.create_dir_all(&db()).unwrap();
        again.set_fault_seed(seed);
        let mut w = again.create(&p("f")).unwrap();
        w.append(b"head").unwrap();
        again.inject(FaultOp::Append, 0, FaultKind::BitFlip);
        w.append(&data).unwrap();
        assert_eq!(read(&again, "f"), got);
    }
    assert!(positions.len() > 8, "seeds flip different bits: {positions:?}");
}

#[test]
fn bit_flip_on_read_damages_the_copy_not_the_file() {
    let fs = fs();
    let data: Vec<u8> = (0..=255u8).collect();
    write_file(&fs, "f", &data, b"");
    let r = fs.open(&p("f")).unwrap();
    fs.inject(FaultOp::Read, 1, FaultKind::BitFlip);
    assert_eq!(&r.read_at(10, 20).unwrap()[..], &data[10..30]);
    let bad = r.read_at(10, 20).unwrap();
    assert_eq!(differing_bits(&bad, &data[10..30]).len(), 1);
    assert_eq!(&r.read_at(10, 20).unwrap()[..], &data[10..30], "one-shot, file unchanged");
    fs.inject_always(FaultOp::Read, FaultKind::BitFlip);
    let whole = fs.read_all(&p("f")).unwrap();
    assert_eq!(differing_bits(&whole, &data).len(), 1, "read_all reads through the gate");
    fs.clear_faults();
    assert_eq!(read(&fs, "f"), data);
    assert_eq!(fs.file_len(&p("f")).unwrap(), 256);
}

#[test]
fn a_kind_on_an_op_it_does_not_apply_to_acts_as_eio() {
    let fs = fs();
    write_file(&fs, "a", b"1", b"");
    fs.inject(FaultOp::Rename, 0, FaultKind::ShortWrite);
    assert_eq!(raw_os_error(&fs.rename(&p("a"), &p("b")).unwrap_err()), Some(5));
    fs.inject(FaultOp::Open, 0, FaultKind::BitFlip);
    assert_eq!(raw_os_error(&fs.open(&p("a")).unwrap_err()), Some(5));
    let mut w = fs.create(&p("c")).unwrap();
    w.append(b"xy").unwrap();
    fs.inject(FaultOp::Append, 0, FaultKind::SyncDropsUnsynced);
    assert!(w.append(b"z").is_err());
    fs.inject(FaultOp::Sync, 0, FaultKind::BitFlip);
    assert!(w.sync().is_err());
    assert_eq!(read(&fs, "c"), b"xy");
    assert_eq!(fs.synced_len(&p("c")).unwrap(), 0);
    assert_eq!(fs.list_all(), vec![p("a"), p("c")]);
}

// ---- the nth operation of any kind ----

#[test]
fn inject_any_counts_every_kind_of_operation() {
    let fs = fs();
    let start = fs.attempt_count();
    assert_eq!(start, 1, "create_dir_all");
    let mut w = fs.create(&p("f")).unwrap(); // 1
    w.append(b"abc").unwrap(); // 2
    fs.exists(&p("f")).unwrap(); // 3
    fs.read_all(&p("f")).unwrap(); // 4, 5
    assert_eq!(fs.attempt_count(), 6);
    // Fail the 3rd operation from now, whatever it is: here a list.
    fs.inject_any(2, FaultKind::Eio);
    w.sync().unwrap();
    fs.open(&p("f")).unwrap();
    let e = fs.list(&db()).unwrap_err();
    assert_eq!(raw_os_error(&e), Some(5));
    let fired = fs.last_fault().unwrap();
    assert_eq!((fired.op, fired.kind, fired.path, fired.any_index), (FaultOp::List, FaultKind::Eio, db(), 8));
    fs.list(&db()).unwrap();
    assert_eq!(fs.faults_fired(), 1);
    // Any kind of fault: a short write at the next operation.
    fs.inject_any(0, FaultKind::ShortWrite);
    assert!(w.append(b"defgh").is_err());
    assert!(fs.file_len(&p("f")).unwrap() < 8);
    assert_eq!(fs.faults_fired(), 2);
    // Failed calls take their number too, and clear_faults drops pending ones.
    let n = fs.attempt_count();
    fs.inject_any(1, FaultKind::Eio);
    fs.clear_faults();
    fs.list(&db()).unwrap();
    fs.list(&db()).unwrap();
    assert_eq!(fs.attempt_count(), n + 2);
    assert_eq!(fs.faults_fired(), 2);
}

#[test]
fn a_campaign_can_fail_every_operation_of_a_fixed_workload() {
    fn workload(fs: &FaultFs) -> Result<Vec<u8>> {
        fs.create_dir_all(&db())?;
        let mut w = fs.create(&p("log"))?;
        w.append(b"one")?;
        w.sync()?;
        fs.sync_dir(&db())?;
        let mut t = fs.create(&p("t.tmp"))?;
        t.append(b"two")?;
        t.sync()?;
        fs.rename(&p("t.tmp"), &p("t"))?;
        let _ = fs.list(&db())?;
        let mut out = fs.read_all(&p("log"))?.to_vec();
        out.extend_from_slice(&fs.read_all(&p("t"))?);
        Ok(out)
    }
    let clean = FaultFs::new();
    assert_eq!(workload(&clean).unwrap(), b"onetwo");
    let n = clean.attempt_count();
    assert_eq!(n, 14);
    for nth in 0..n {
        let fs = FaultFs::new();
        fs.inject_any(nth, FaultKind::Eio);
        assert!(workload(&fs).is_err(), "operation {nth} fails the workload");
        assert_eq!(fs.last_fault().map(|f| f.any_index), Some(nth));
    }
    let fs = FaultFs::new();
    fs.inject_any(n, FaultKind::Eio);
    assert!(workload(&fs).is_ok(), "past the end nothing fails");
}

#[test]
fn remove_dir_removes_only_an_empty_directory() {
    let fs = FaultFs::new();
    let d = db().join("sub");
    fs.create_dir_all(&d).unwrap();
    let mut w = fs.create(&d.join("f")).unwrap();
    w.sync().unwrap();
    assert!(fs.remove_dir(&d).is_err(), "not empty");
    fs.remove(&d.join("f")).unwrap();
    fs.remove_dir(&d).unwrap();
    assert!(!fs.exists(&d).unwrap());
    assert!(fs.remove_dir(&d).is_err(), "gone");
}
