//! `Db::open_read_only`: inspection beside a running writer — no lock taken, nothing
//! written, logs replayed in memory, files kept readable while the writer compacts them away.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::HookFs;
use kho::{Db, Error, Options};

/// Background compaction effectively off, so the writer leaves the directory alone while the
/// test compares listings; `compact_range` still rewrites everything on demand.
fn options() -> Options {
    Options {
        write_buffer_size: 32 << 10,
        level0_compaction_trigger: 1000,
        level0_slowdown_trigger: 1000,
        level0_stop_trigger: 1000,
        ..Options::default()
    }
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn reads_beside_a_running_writer_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Db::open(dir.path(), options()).unwrap();
    for i in 0..3000u32 {
        writer.put(format!("k{i:05}"), format!("v{i}")).unwrap();
    }
    writer.flush().unwrap();
    for i in 0..10u32 {
        writer.put(format!("unflushed{i}"), "in the log only").unwrap();
    }
    let before = listing(dir.path());
    let reader = Db::open_read_only(dir.path(), options()).unwrap();
    assert_eq!(listing(dir.path()), before, "a read-only open creates and deletes nothing");
    assert_eq!(reader.get("k00042").unwrap().unwrap(), "v42");
    assert_eq!(reader.get("unflushed3").unwrap().unwrap(), "in the log only");
    assert!(matches!(reader.put("x", "y"), Err(Error::ReadOnly)));
    assert!(matches!(reader.flush(), Err(Error::ReadOnly)));
    assert!(matches!(reader.compact_range::<&[u8], _>(..), Err(Error::ReadOnly)));

    // The writer rewrites everything; the reader's view stays intact and consistent.
    for i in 0..3000u32 {
        writer.put(format!("k{i:05}"), "new").unwrap();
    }
    writer.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(reader.iter().unwrap().count(), 3010);
    assert_eq!(reader.get("k00042").unwrap().unwrap(), "v42");
    assert_eq!(writer.get("k00042").unwrap().unwrap(), "new");
}

#[test]
fn read_only_open_of_a_missing_database_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Db::open_read_only(dir.path(), Options::default()), Err(Error::NotFound(_))));
    assert!(listing(dir.path()).is_empty());
}

/// A flush between the read-only open's manifest read and its log listing used to hide
/// records: the flushed log was gone and the table holding its data was not in the manifest
/// the open had read. Every write acknowledged before an open starts must be visible in it.
#[test]
fn read_only_opens_racing_flushes_see_every_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    // Flushes come from the writer (every 256 puts), not from a tiny write buffer: a writer
    // flushing every millisecond can starve read-only opens (they retry, then give up with `Busy`).
    let opts = Options { write_buffer_size: 1 << 20, ..Options::default() };
    let writer = Db::open(dir.path(), opts.clone()).unwrap();
    let acked = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (writer, acked, stop) = (writer.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            // Bounded: as the database grows, a read-only open (which opens every table) takes
            // longer, and a writer flushing every few milliseconds would starve it.
            while !stop.load(Ordering::SeqCst) && i < 20_000 {
                writer.put(format!("key{i:08}"), [b'v'; 200]).unwrap();
                i += 1;
                acked.store(i, Ordering::SeqCst);
                if i.is_multiple_of(256) {
                    // A flush deletes the log it moved into a table. Leave readers a window: a
                    // writer flushing back to back (on a loaded machine, every few read-only
                    // opens) could keep every open retrying; they give up with `Busy` after 32.
                    writer.flush().unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        })
    };
    for _ in 0..150 {
        let before = acked.load(Ordering::SeqCst);
        let reader = Db::open_read_only(dir.path(), opts.clone()).unwrap();
        let seen = reader.iter().unwrap().count() as u32;
        assert!(seen >= before, "read-only open saw {seen} keys, {before} were acknowledged before it");
        for i in (0..before).step_by(97) {
            assert!(reader.get(format!("key{i:08}")).unwrap().is_some(), "key {i} of {before}");
        }
    }
    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();
    writer.close().unwrap();
}

/// The same race made deterministic: the writer's flush runs exactly inside the read-only
/// open, between its manifest read and its log listing (a file system that runs a hook on
/// the first `list` after it is armed).
#[test]
fn a_flush_inside_a_read_only_open_hides_nothing() {
    use std::path::Path;
    use std::sync::Arc;

    use kho::vfs::SharedFs;

    let fs = Arc::new(HookFs::default());
    let opts = Options { fs: fs.clone() as SharedFs, ..options() };
    let dir = Path::new("/db");
    let writer = Db::open(dir, opts.clone()).unwrap();
    for i in 0..100u32 {
        writer.put(format!("key{i:04}"), "v").unwrap();
    }
    let flusher = writer.clone();
    *fs.before_next_list.lock().unwrap() = Some(Box::new(move || flusher.flush().unwrap()));
    let reader = Db::open_read_only(dir, opts).unwrap();
    assert!(fs.before_next_list.lock().unwrap().is_none(), "the flush ran inside the open");
    assert_eq!(reader.iter().unwrap().count(), 100, "every acknowledged write is visible");
    writer.close().unwrap();
}
