//! Found by review: a `compact_range` running on another thread outlived `close()`; after a
//! reopen it logged its edit into the old manifest and deleted the inputs, which the new
//! `Db` listed as live, and the database no longer opened. `close()` now waits for the step
//! in progress, and `compact_range` stops once the database is closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{contents, db_dir, small_options, HookFs};
use kho::vfs::SharedFs;
use kho::{Db, Options};

#[test]
fn close_waits_for_a_compact_range_on_another_thread() {
    let fs = Arc::new(HookFs::default());
    let opts = Options {
        level0_compaction_trigger: 100,
        level0_slowdown_trigger: 100,
        level0_stop_trigger: 100,
        ..small_options(fs.clone() as SharedFs)
    };
    let db = Db::open(db_dir(), opts.clone()).unwrap();
    for round in 0..3u32 {
        for i in 0..20u32 {
            db.put(format!("k{i:03}"), format!("v{round}")).unwrap();
        }
        db.flush().unwrap();
    }
    // The compaction stops inside its first output table until released.
    let (blocked_tx, blocked) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let (blocked_tx, released) = (Mutex::new(Some(blocked_tx)), Mutex::new(released));
    let armed = Arc::new(AtomicBool::new(true));
    let armed_in_hook = armed.clone();
    *fs.before_create.lock().unwrap() = Some(Arc::new(move |p: &Path| {
        if p.extension().is_some_and(|e| e == "sst")
            && std::thread::current().name() == Some("user-compaction")
            && armed_in_hook.swap(false, Ordering::SeqCst)
        {
            if let Some(tx) = blocked_tx.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            released.lock().unwrap().recv().unwrap();
        }
    }));
    let compacting = db.clone();
    let compaction = std::thread::Builder::new()
        .name("user-compaction".into())
        .spawn(move || compacting.compact_range::<&[u8], _>(..))
        .unwrap();
    blocked.recv_timeout(Duration::from_secs(30)).unwrap();
    // close() must not return (nor release the lock) while the compaction step runs.
    let closing = db.clone();
    let (closed_tx, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = closed_tx.send(closing.close());
    });
    assert!(closed.recv_timeout(Duration::from_millis(300)).is_err(), "close returned during the compaction");
    release.send(()).unwrap();
    closed.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    let _ = compaction.join().unwrap(); // Ok, or Closed if it had more levels to do
    drop(db);
    let db = Db::open(db_dir(), opts).unwrap();
    assert_eq!(contents(&db).len(), 20);
    assert!(contents(&db).values().all(|v| v == b"v2"));
}
