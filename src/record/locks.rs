//! [`StripedLocks`]: serializes writers of the same primary key.
//!
//! A record write is read-then-write: it reads the record's current national ID to know
//! which index entry to delete. Two writers of one primary key racing through that could
//! both read the same old ID and leave an index entry for a record that no longer has it.
//! So every writer holds the lock stripe of each record key it touches from before the
//! read until its batch is committed (and visible to the next reader).
//!
//! Invariants: a key always maps to the same stripe; a writer that needs several stripes
//! takes them in ascending stripe order, each once ([`StripedLocks::lock_keys`]), so two
//! batches can never deadlock; nobody waits for a stripe while holding the catalog or a Db
//! lock in the other order (stripes are always taken first).
//!
//! Lock order across the record layer: with person keys, the vault's write guard
//! (`PersonKeys::write_guard`, taken from sealing to commit) comes *before* the stripes;
//! `PersonKeys::destroy` takes the vault lock for writing, so a writer holding stripes while
//! waiting for the guard would deadlock against an erasure (`Store::import` once did).

use parking_lot::{Mutex, MutexGuard};

/// Default number of stripes: enough that unrelated writers on 2-64 threads rarely share
/// one, small enough (a few KiB) to be negligible.
pub const DEFAULT_LOCK_STRIPES: usize = 1024;

/// A fixed set of mutexes indexed by a hash of the record key.
#[derive(Debug)]
pub(crate) struct StripedLocks {
    stripes: Box<[Mutex<()>]>,
}

/// Proof that the stripes of some set of record keys are held; functions that read and
/// then write records require a `&HeldStripes`.
#[must_use = "the stripes are released when this is dropped"]
pub(crate) struct HeldStripes<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl StripedLocks {
    /// `n` stripes, rounded up to a power of two (at least 1).
    pub(crate) fn new(n: usize) -> StripedLocks {
        let n = n.clamp(1, 1 << 20).next_power_of_two();
        StripedLocks { stripes: (0..n).map(|_| Mutex::new(())).collect() }
    }

    /// The stripe of a record key (FNV-1a).
    fn stripe_of(&self, key: &[u8]) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Fold the high bits in: FNV's low bits alone are weak for short keys.
        ((h ^ (h >> 32)) as usize) & (self.stripes.len() - 1)
    }

    /// Locks every stripe, in ascending order: no record writer is between its read and
    /// its commit while this is held (`Store::import` installs tables under it).
    pub(crate) fn lock_all(&self) -> HeldStripes<'_> {
        HeldStripes { _guards: self.stripes.iter().map(Mutex::lock).collect() }
    }

    /// Locks the stripes of every key in `keys`, in ascending stripe order, each once.
    pub(crate) fn lock_keys<'a, K: AsRef<[u8]>>(&'a self, keys: impl IntoIterator<Item = K>) -> HeldStripes<'a> {
        let mut idx: Vec<usize> = keys.into_iter().map(|k| self.stripe_of(k.as_ref())).collect();
        idx.sort_unstable();
        idx.dedup();
        HeldStripes { _guards: idx.into_iter().map(|i| self.stripes[i].lock()).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn same_key_same_stripe_and_rounding() {
        let l = StripedLocks::new(1000);
        assert_eq!(l.stripes.len(), 1024);
        assert_eq!(l.stripe_of(b"Rabc"), l.stripe_of(b"Rabc"));
        assert_eq!(StripedLocks::new(0).stripes.len(), 1);
    }

    #[test]
    fn keys_spread_over_stripes() {
        let l = StripedLocks::new(64);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000u32 {
            seen.insert(l.stripe_of(format!("R\0\0\0\x01pk{i}").as_bytes()));
        }
        assert!(seen.len() > 56, "only {} of 64 stripes used", seen.len());
    }

    #[test]
    fn overlapping_batches_do_not_deadlock() {
        let l = Arc::new(StripedLocks::new(8));
        let keys: Vec<Vec<u8>> = (0..32u8).map(|i| vec![i]).collect();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let l = l.clone();
                let mut keys = keys.clone();
                if t % 2 == 1 {
                    keys.reverse();
                }
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _held = l.lock_keys(&keys);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
