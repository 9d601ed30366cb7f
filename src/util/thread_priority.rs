//! Lowering the CPU priority of the calling thread (RocksDB's
//! `Env::LowerThreadPoolCPUPriority`), so background compaction yields the CPU to the
//! threads an application waits on: its writers, readers and the flush that keeps writes from
//! stalling.
//!
//! Invariant: priority only ever goes down (the nice value goes up, capped at 19), so this
//! never needs privileges and never lifts a thread above the process that spawned it. On
//! Linux the nice value is per thread; elsewhere it would apply to the whole process, so
//! there this does nothing.

/// The highest nice value (lowest priority) Linux accepts.
pub(crate) const MAX_NICE: i32 = 19;

/// Adds `by` (clamped to `0..=MAX_NICE`) to the calling thread's nice value, capped at
/// [`MAX_NICE`]; returns the thread's nice value afterwards. Best effort: a scheduler that
/// refuses leaves the thread as it was.
#[cfg(target_os = "linux")]
pub(crate) fn lower_current_thread(by: i32) -> std::io::Result<i32> {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    // `getpriority` may legitimately return -1, so errors are told apart by errno.
    // SAFETY: `__errno_location` returns the calling thread's errno, always valid to write.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: plain system call on this thread's own id; no memory is passed.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    if current == -1 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(0) {
            return Err(e);
        }
    }
    let target = current.saturating_add(by.clamp(0, MAX_NICE)).min(MAX_NICE);
    if target == current {
        return Ok(current);
    }
    // SAFETY: as above; raising one's own nice value needs no privilege.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, target) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(target)
}

/// Not Linux: the nice value is per process, so the thread is left as it is.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_current_thread(_by: i32) -> std::io::Result<i32> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    /// The calling thread's nice value, as the kernel reports it (field 19 of
    /// `/proc/thread-self/stat`, counted after the parenthesised command name).
    fn nice_of_this_thread() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("read /proc/thread-self/stat");
        let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        after_name.split(' ').nth(16).expect("nice field").parse().expect("nice is a number")
    }

    #[test]
    fn lowers_only_the_calling_thread_and_caps_at_the_maximum() {
        let main_before = nice_of_this_thread();
        let (first, second, seen) = std::thread::spawn(|| {
            let start = nice_of_this_thread();
            let first = lower_current_thread(3).expect("lower by 3");
            assert_eq!(first, (start + 3).min(MAX_NICE));
            let second = lower_current_thread(100).expect("lower past the cap");
            (first, second, nice_of_this_thread())
        })
        .join()
        .expect("thread");
        assert!(first <= second);
        assert_eq!(second, MAX_NICE);
        assert_eq!(seen, MAX_NICE);
        assert_eq!(nice_of_this_thread(), main_before, "other threads keep their priority");
    }

    #[test]
    fn zero_and_negative_leave_the_thread_as_it_is() {
        std::thread::spawn(|| {
            let start = nice_of_this_thread();
            assert_eq!(lower_current_thread(0).expect("by 0"), start);
            assert_eq!(lower_current_thread(-5).expect("negative is clamped"), start);
            assert_eq!(nice_of_this_thread(), start);
        })
        .join()
        .expect("thread");
    }
}
