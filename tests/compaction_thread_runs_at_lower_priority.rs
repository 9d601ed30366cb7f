//! `Options::compaction_thread_nice`: the background compaction thread runs that much below
//! the process's CPU priority (Linux, where the nice value is per thread), the flush thread
//! and the caller's threads keep theirs, out-of-range values are refused at open, and a
//! database whose compaction runs at the lowest priority still compacts and reads back.
#![allow(clippy::unwrap_used, clippy::panic)]

use kho::{Db, Error, Options};

/// Held by every test that opens a database, so the one that looks at the process's
/// `kho-compact` threads sees only its own.
static OPENS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Nice value of each thread of this process named `name` (`/proc/self/task/*/comm`).
#[cfg(target_os = "linux")]
fn nice_of_threads_named(name: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else { continue };
        if comm.trim_end() != name {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.join("stat")) else { continue };
        found.push(nice_in_stat(&stat));
    }
    found
}

/// The nice value in a `/proc/.../stat` line: after "pid (comm) ", state is the first field
/// and nice the 17th.
#[cfg(target_os = "linux")]
fn nice_in_stat(stat: &str) -> i32 {
    stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(16).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
fn own_nice() -> i32 {
    nice_in_stat(&std::fs::read_to_string("/proc/thread-self/stat").unwrap())
}

/// Polls until `name` threads exist and all report `want` (a thread names itself and sets its
/// own priority as it starts, which may be just after `open` returns).
#[cfg(target_os = "linux")]
fn wait_for_nice(name: &str, want: i32) -> Vec<i32> {
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = nice_of_threads_named(name);
        if !seen.is_empty() && seen.iter().all(|&n| n == want) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    seen
}

#[cfg(target_os = "linux")]
#[test]
fn the_compaction_thread_runs_below_the_process_and_the_rest_do_not() {
    let _only = OPENS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let base = own_nice();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let want = (base + Options::default().compaction_thread_nice).min(19);
    assert_eq!(wait_for_nice("kho-compact", want), vec![want]);
    assert_eq!(wait_for_nice("kho-flush", base), vec![base], "the flush keeps the process's priority");
    assert_eq!(own_nice(), base, "the opening thread keeps its priority");
    db.close().unwrap();

    // 0 leaves the thread at the process's priority.
    let db = Db::open(dir.path(), Options { compaction_thread_nice: 0, ..Options::default() }).unwrap();
    assert_eq!(wait_for_nice("kho-compact", base), vec![base]);
    db.close().unwrap();
}

#[test]
fn out_of_range_values_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for nice in [-1, 20, i32::MIN, i32::MAX] {
        match Db::open(dir.path(), Options { compaction_thread_nice: nice, ..Options::default() }) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("compaction_thread_nice"), "{m}"),
            other => panic!("nice {nice}: {other:?}"),
        }
    }
}

#[test]
fn compaction_at_the_lowest_priority_still_compacts() {
    let _only = OPENS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        compaction_thread_nice: 19,
        write_buffer_size: 64 << 10,
        level0_compaction_trigger: 2,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let value = |i: u32| format!("value-{i:08}").repeat(8);
    for i in 0..20_000u32 {
        db.put(format!("k{:08}", (u64::from(i) * 7919) % 20_000), value(i)).unwrap();
    }
    db.flush().unwrap();
    // Background compaction gets the idle CPU; wait for it to bring level 0 down.
    let mut stats = db.stats();
    for _ in 0..1000 {
        if stats.levels[0].files < opts.level0_compaction_trigger {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        stats = db.stats();
    }
    assert!(stats.levels[0].files < opts.level0_compaction_trigger, "{stats:?}");
    assert!(stats.levels.iter().map(|l| l.compactions).sum::<u64>() > 0, "{stats:?}");
    for i in (0..20_000u32).step_by(13) {
        let k = format!("k{:08}", (u64::from(i) * 7919) % 20_000);
        assert_eq!(db.get(&k).unwrap().as_deref(), Some(value(i).as_bytes()), "{k}");
    }
}
