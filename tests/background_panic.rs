//! A panic inside a background flush or compaction (a bug) must not hang anything: it becomes
//! the database's background error, poisons it, wakes every stalled writer, reaches the event
//! listener, and `close()` reports it. Nothing acknowledged is lost: the next open recovers it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{contents, db_dir, HookFs};
use kho::vfs::SharedFs;
use kho::{Db, Error, EventListener, Options};

#[derive(Default)]
struct Listener {
    background_errors: AtomicUsize,
}

impl EventListener for Listener {
    fn on_background_error(&self, error: &Error) {
        assert!(matches!(error, Error::Internal(m) if m.contains("panicked")), "{error}");
        self.background_errors.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `body` on its own thread and fails the test if it does not finish in time (a hang).
fn within_a_minute(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = worker.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: a background panic left a waiter asleep"),
    }
}

fn run(thread: &'static str) {
    // Panics when the named background thread creates a table while `armed`.
    let armed = Arc::new(AtomicBool::new(true));
    let fs = Arc::new(HookFs::default());
    let armed_in_hook = armed.clone();
    *fs.before_create.lock().unwrap() = Some(Arc::new(move |path: &Path| {
        let is_table = path.extension().is_some_and(|e| e == "sst");
        if is_table && armed_in_hook.load(Ordering::SeqCst) && std::thread::current().name() == Some(thread) {
            panic!("injected panic creating a table");
        }
    }));
    let listener = Arc::new(Listener::default());
    let opts = Options {
        fs: fs.clone() as SharedFs,
        write_buffer_size: 4096,
        max_immutable_memtables: 1,
        level0_compaction_trigger: 2,
        event_listener: Some(listener.clone()),
        ..Options::default()
    };
    let db = Db::open(db_dir(), opts.clone()).unwrap();
    if thread == "kho-compact" {
        armed.store(false, Ordering::SeqCst);
    }
    // Write until the database refuses: the panicking job fails every stalled writer.
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..100_000u32 {
        if thread == "kho-compact" && i == 200 {
            armed.store(true, Ordering::SeqCst); // flushes so far succeeded
        }
        // Keys out of order, so level-0 tables overlap and compaction rewrites them (tables
        // of disjoint ranges would move down without a new table being created).
        let key = format!("key{:06}", (u64::from(i) * 7919) % 100_003);
        match db.put(&key, [7u8; 100]) {
            Ok(()) => acknowledged.push(key),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("writes must fail once a background job panicked");
    assert!(matches!(refused, Error::Internal(_) | Error::Poisoned), "{refused}");
    assert!(matches!(db.flush(), Err(Error::Internal(_) | Error::Poisoned)));
    let closed = db.close().unwrap_err();
    assert!(matches!(&closed, Error::Internal(m) if m.contains("panicked")), "close reports the panic: {closed}");
    assert_eq!(listener.background_errors.load(Ordering::SeqCst), 1);

    // Nothing acknowledged is lost: the writes are still in the log.
    armed.store(false, Ordering::SeqCst);
    let db = Db::open(db_dir(), opts).unwrap();
    let got = contents(&db);
    assert_eq!(got.len(), acknowledged.len());
    assert!(acknowledged.iter().all(|k| got.contains_key(k.as_bytes())));
    db.close().unwrap();
}

#[test]
fn panic_in_flush_fails_writers_and_close_instead_of_hanging() {
    within_a_minute(|| run("kho-flush"));
}

#[test]
fn panic_in_compaction_fails_writers_and_close_instead_of_hanging() {
    within_a_minute(|| run("kho-compact"));
}

/// Found by review: after a background failure the log is still sound, so `close()` must
/// still fsync it — otherwise a power loss after a completed `close()` drops writes that were
/// acknowledged (without `sync`) before it.
#[test]
fn close_after_a_background_failure_still_syncs_the_log() {
    use common::small_options;
    use kho::vfs::CrashMode;
    let fs = Arc::new(HookFs::default());
    *fs.before_create.lock().unwrap() = Some(Arc::new(|path: &Path| {
        if path.extension().is_some_and(|e| e == "sst") && std::thread::current().name() == Some("kho-flush") {
            panic!("injected: the background flush fails");
        }
    }));
    let db = Db::open(db_dir(), small_options(fs.clone() as SharedFs)).unwrap();
    let mut acked = Vec::new();
    for i in 0..200u32 {
        let k = format!("key{i:05}");
        match db.put(&k, vec![b'v'; 100]) {
            Ok(()) => acked.push(k),
            Err(_) => break,
        }
    }
    assert!(db.close().is_err(), "close reports the failure");
    *fs.before_create.lock().unwrap() = None;
    fs.inner.crash(CrashMode::DropUnsynced); // a power loss after close() returned
    let db = Db::open(db_dir(), small_options(fs.clone() as SharedFs)).unwrap();
    let got = contents(&db);
    let lost = acked.iter().filter(|k| !got.contains_key(k.as_bytes())).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged writes gone", acked.len());
}
