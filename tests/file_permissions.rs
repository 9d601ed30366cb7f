//! A database holds citizens' records: its directory is created 0700 and every file 0600,
//! whatever the process's umask. (One test in its own binary: the umask is process-wide.)
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use kho::{Db, Options};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn directory_is_0700_and_every_file_0600_whatever_the_umask() {
    // SAFETY: `umask` only swaps the process's file-creation mask; this binary runs this one
    // test, so no other thread creates files meanwhile.
    let old = unsafe { libc::umask(0) }; // the most permissive umask: only kho's modes count
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("citizens");
    let opts = Options { write_buffer_size: 4096, ..Options::default() };
    let db = Db::open(&dir, opts.clone()).unwrap();
    for i in 0..200u32 {
        db.put(format!("079190{i:06}"), [b'x'; 100]).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, opts).unwrap(); // recovery writes files too
    db.put("k", "v").unwrap();
    // SAFETY: as above.
    unsafe { libc::umask(old) };

    assert_eq!(mode(&dir), 0o700, "database directory");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        kinds.insert(name.rsplit('.').next().unwrap_or("").chars().filter(|c| !c.is_ascii_digit()).collect::<String>());
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    assert!(["sst", "log", "LOCK", "CURRENT"].iter().all(|k| kinds.contains(*k)), "checked kinds: {kinds:?}");
    drop(db);
}
