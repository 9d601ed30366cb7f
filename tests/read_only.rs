//! `Db::open_read_only`: inspection beside a running writer — no lock taken, nothing
//! written, logs replayed in memory, files kept readable while the writer compacts them away.
#![allow(clippy::unwrap_used, clippy::panic)]

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
