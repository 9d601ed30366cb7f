//! [`prefetch`]: a hint to start loading a cache line, for searches whose every step is a
//! cache miss (the memtable skiplist, its bloom filter).

/// Asks the CPU to start loading the cache line holding `p` into all cache levels. Only a
/// hint: it never faults, whatever `p` is (null, dangling, unmapped), and does nothing on
/// targets without a prefetch instruction here.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` reads no memory architecturally; a prefetch of any address,
    // valid or not, cannot fault. Exercised by every memtable insert and search.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
