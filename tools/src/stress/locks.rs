//! Striped per-key locks: writers of one key are serialized, so the oracle has at most one
//! write in flight per key (as `db_stress` locks keys around each write). A batch takes the
//! locks of all its keys in ascending stripe order, so two batches cannot deadlock.

use std::sync::{Mutex, MutexGuard};

/// Locks for a key space, one stripe per key up to [`MAX_STRIPES`].
pub struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

/// Bound on the number of mutexes (memory), beyond which keys share stripes.
pub const MAX_STRIPES: u32 = 1 << 16;

impl KeyLocks {
    pub fn new(keys: u32) -> KeyLocks {
        KeyLocks { stripes: (0..keys.clamp(1, MAX_STRIPES)).map(|_| Mutex::new(())).collect() }
    }

    /// Locks every key of `keys` (duplicates allowed) until the guards are dropped.
    pub fn lock(&self, keys: &[u32]) -> Vec<MutexGuard<'_, ()>> {
        let n = self.stripes.len() as u32;
        let mut ids: Vec<u32> = keys.iter().map(|k| k % n).collect();
        ids.sort_unstable();
        ids.dedup();
        // A worker that panicked while holding a stripe poisons it; the run is failing
        // anyway, and the other workers should reach their own checks.
        ids.iter().map(|&i| self.stripes[i as usize].lock().unwrap_or_else(|e| e.into_inner())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_and_colliding_keys_lock_once() {
        let locks = KeyLocks::new(4);
        let guards = locks.lock(&[1, 5, 1, 2]);
        assert_eq!(guards.len(), 2, "1 and 5 share a stripe");
        drop(guards);
        assert_eq!(locks.lock(&[3]).len(), 1);
    }
}
