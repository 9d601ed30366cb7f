//! The state behind one [`FaultFs`](super::FaultFs): inodes, the live and durable
//! namespaces, the directory set, the lock table, the fault schedule and the counters.
//!
//! Everything here runs under the file system's single mutex; nothing in this file locks.
//!
//! Invariants:
//! - every id in `live` or `durable` names an inode in `inodes`; an inode that neither
//!   namespace names and no open writer of the current generation holds is dropped;
//! - `inode.synced_len <= inode.data.len()`, and `data[..synced_len]` is what a crash keeps;
//! - the parent of every path in `live` is a directory in `dirs` (or a root);
//! - `counters` count completed operations, `attempts` count the ones that passed
//!   validation (the numbering `FaultFs::inject` uses), `any_attempts` counts those of every
//!   kind together (the numbering `FaultFs::inject_any` uses);
//! - a fault fires at most once per gated call, and every fault that fires is counted in
//!   `fired` (the last one kept in `last_fired`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{CrashMode, FaultKind, FaultOp, FiredFault};
use crate::util::SplitMix64;
use crate::{Error, Result};

/// Identifies an inode for the life of one `FaultFs` (ids are never reused).
pub(super) type InodeId = u64;

/// One file's bytes.
#[derive(Default)]
pub(super) struct Inode {
    data: Vec<u8>,
    /// Length of the durable prefix of `data`.
    synced_len: usize,
    /// Open writers of the current generation; they keep an unlinked inode alive.
    pub(super) writers: u32,
    /// Snapshot shared by readers; cleared by every change to `data`.
    snapshot: Option<Bytes>,
}

impl Inode {
    fn durable(data: Vec<u8>) -> Inode {
        Inode { synced_len: data.len(), data, writers: 0, snapshot: None }
    }

    pub(super) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    pub(super) fn synced_len(&self) -> u64 {
        self.synced_len as u64
    }

    pub(super) fn append(&mut self, bytes: &[u8]) {
        self.snapshot = None;
        self.data.extend_from_slice(bytes);
    }

    pub(super) fn sync(&mut self) {
        self.synced_len = self.data.len();
    }

    /// Discards the unsynced tail from the live bytes (a failed fsync that dropped the dirty
    /// pages).
    pub(super) fn cut_to_synced(&mut self) {
        if self.data.len() > self.synced_len {
            self.snapshot = None;
            self.data.truncate(self.synced_len);
        }
    }

    /// Cuts the file to `len` bytes, durable prefix included.
    pub(super) fn truncate(&mut self, len: usize) {
        self.snapshot = None;
        self.data.truncate(len);
        self.synced_len = self.synced_len.min(len);
    }

    /// Flips bits of one byte; `false` if `offset` is past the end.
    pub(super) fn xor_byte(&mut self, offset: usize, mask: u8) -> bool {
        match self.data.get_mut(offset) {
            Some(b) => {
                *b ^= mask;
                self.snapshot = None;
                true
            }
            None => false,
        }
    }

    /// The current bytes as a cheaply clonable snapshot.
    pub(super) fn snapshot(&mut self) -> Bytes {
        self.snapshot.get_or_insert_with(|| Bytes::copy_from_slice(&self.data)).clone()
    }
}

impl fmt::Debug for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inode")
            .field("len", &self.data.len())
            .field("synced_len", &self.synced_len)
            .field("writers", &self.writers)
            .finish()
    }
}

/// What a crash leaves: the durable namespace and the inodes it names, cut to durable bytes.
pub(super) struct CrashImage {
    namespace: BTreeMap<PathBuf, InodeId>,
    inodes: BTreeMap<InodeId, Inode>,
}

/// Everything one `FaultFs` holds.
#[derive(Default)]
pub(super) struct State {
    pub(super) inodes: BTreeMap<InodeId, Inode>,
    /// What `open`, `list` and `exists` see.
    pub(super) live: BTreeMap<PathBuf, InodeId>,
    /// What survives a crash (updated by `sync_dir`).
    durable: BTreeMap<PathBuf, InodeId>,
    /// Directories; durable as soon as created (a simplification, see the module docs).
    dirs: BTreeSet<PathBuf>,
    next_inode: InodeId,
    /// Bumped by every in-place crash; handles of an older generation are dead.
    pub(super) generation: u64,
    /// Held locks: path -> token of the guard holding it.
    locks: BTreeMap<PathBuf, u64>,
    next_lock_token: u64,
    counters: [u64; FaultOp::ALL.len()],
    attempts: [u64; FaultOp::ALL.len()],
    /// Gated calls of every kind together.
    any_attempts: u64,
    /// One-shot faults: (op, attempt index that fails, kind).
    once: Vec<(FaultOp, u64, FaultKind)>,
    /// One-shot faults on the nth gated call of any kind: (index in `any_attempts`, kind).
    once_any: Vec<(u64, FaultKind)>,
    always: [Option<FaultKind>; FaultOp::ALL.len()],
    /// Faults that fired, and the last one.
    fired: u64,
    last_fired: Option<FiredFault>,
    /// Seed of the random choices of faults (bit positions, short-write lengths).
    seed: u64,
    /// Random draws made so far (the draw counter mixed with `seed`).
    draws: u64,
    /// Mutation count at which every mutating op starts failing.
    crash_at: Option<u64>,
}

impl State {
    /// A fresh file system holding `image` plus `dirs`.
    pub(super) fn from_image(image: CrashImage, dirs: BTreeSet<PathBuf>, next_inode: InodeId, seed: u64) -> State {
        State {
            inodes: image.inodes,
            live: image.namespace.clone(),
            durable: image.namespace,
            dirs,
            next_inode,
            seed,
            ..State::default()
        }
    }

    pub(super) fn seed(&self) -> u64 {
        self.seed
    }

    pub(super) fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.draws = 0;
    }

    /// A seeded random number below `bound` (0 if `bound` is 0).
    pub(super) fn draw(&mut self, bound: u64) -> u64 {
        self.draws += 1;
        let r = SplitMix64::mix(self.seed ^ SplitMix64::mix(self.draws));
        r.checked_rem(bound).unwrap_or(0)
    }

    pub(super) fn dirs(&self) -> &BTreeSet<PathBuf> {
        &self.dirs
    }

    pub(super) fn next_inode(&self) -> InodeId {
        self.next_inode
    }

    // ---- counters, faults and the crash point ----

    pub(super) fn mutation_count(&self) -> u64 {
        FaultOp::MUTATIONS.iter().map(|op| self.counters[op.index()]).sum()
    }

    pub(super) fn any_attempts(&self) -> u64 {
        self.any_attempts
    }

    pub(super) fn fired(&self) -> (u64, Option<FiredFault>) {
        (self.fired, self.last_fired.clone())
    }

    pub(super) fn op_count(&self, op: FaultOp) -> u64 {
        self.counters[op.index()]
    }

    pub(super) fn inject(&mut self, op: FaultOp, nth: u64, kind: FaultKind) {
        let at = self.attempts[op.index()].saturating_add(nth);
        self.once.push((op, at, kind));
    }

    pub(super) fn inject_any(&mut self, nth: u64, kind: FaultKind) {
        let at = self.any_attempts.saturating_add(nth);
        self.once_any.push((at, kind));
    }

    pub(super) fn inject_always(&mut self, op: FaultOp, kind: FaultKind) {
        self.always[op.index()] = Some(kind);
    }

    pub(super) fn clear_faults(&mut self) {
        self.once.clear();
        self.once_any.clear();
        self.always = [None; FaultOp::ALL.len()];
    }

    pub(super) fn arm_crash_after(&mut self, n: u64) {
        self.crash_at = Some(self.mutation_count().saturating_add(n));
    }

    pub(super) fn disarm(&mut self) {
        self.crash_at = None;
    }

    pub(super) fn crash_point_hit(&self) -> bool {
        self.crash_at.is_some_and(|at| self.mutation_count() >= at)
    }

    /// Fails with "simulated crash" once the armed crash point is reached.
    pub(super) fn check_not_crashed(&self, op: &'static str, path: &Path) -> Result<()> {
        if self.crash_point_hit() {
            return Err(Error::io(op, path, io::Error::other("simulated crash")));
        }
        Ok(())
    }

    /// Gate of every faultable op, called after validation and before any change: fails if
    /// the op mutates and the crash point is reached; otherwise returns the fault due for this
    /// attempt, if any (counted as fired; the caller applies it).
    pub(super) fn gate(&mut self, op: FaultOp, path: &Path) -> Result<Option<FaultKind>> {
        if op.is_mutation() {
            self.check_not_crashed(op.io_name(), path)?;
        }
        let attempt = self.attempts[op.index()];
        self.attempts[op.index()] += 1;
        let any = self.any_attempts;
        self.any_attempts += 1;
        let once =
            self.once.iter().position(|&(o, at, _)| o == op && at == attempt).map(|i| self.once.swap_remove(i).2);
        let once_any = self.once_any.iter().position(|&(at, _)| at == any).map(|i| self.once_any.swap_remove(i).1);
        let kind = once.or(once_any).or(self.always[op.index()]);
        if let Some(kind) = kind {
            self.fired += 1;
            self.last_fired = Some(FiredFault { op, kind, path: path.to_owned(), any_index: any });
        }
        Ok(kind)
    }

    /// [`gate`](Self::gate) for an op that only fails: any due fault is an error (kinds that
    /// do not apply to `op` act as `EIO`).
    pub(super) fn begin(&mut self, op: FaultOp, path: &Path) -> Result<()> {
        match self.gate(op, path)? {
            Some(kind) => Err(Error::io(op.io_name(), path, kind.io_error())),
            None => Ok(()),
        }
    }

    /// Counts a completed op.
    pub(super) fn done(&mut self, op: FaultOp) {
        self.counters[op.index()] += 1;
    }

    // ---- namespace ----

    /// True for a directory (roots and the empty path always exist).
    pub(super) fn is_dir(&self, path: &Path) -> bool {
        path.parent().is_none() || self.dirs.contains(path)
    }

    pub(super) fn add_dir_all(&mut self, path: &Path) {
        for dir in path.ancestors().filter(|d| d.parent().is_some()) {
            if !self.dirs.insert(dir.to_owned()) {
                break;
            }
        }
    }

    /// Forgets the (empty) directory `path`.
    pub(super) fn remove_dir(&mut self, path: &Path) {
        self.dirs.remove(path);
    }

    /// The live inode at `path`, or a `NotFound` error naming `op`.
    pub(super) fn live_inode(&mut self, op: &'static str, path: &Path) -> Result<(InodeId, &mut Inode)> {
        if self.is_dir(path) {
            return Err(Error::io(op, path, io::ErrorKind::IsADirectory.into()));
        }
        let id = self.live.get(path).copied();
        match id.and_then(|id| self.inodes.get_mut(&id).map(|inode| (id, inode))) {
            Some(found) => Ok(found),
            None => Err(not_found(op, path)),
        }
    }

    /// Allocates an empty inode and links it at `path` in the live namespace.
    pub(super) fn link_new(&mut self, path: &Path) -> InodeId {
        let id = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(id, Inode::default());
        self.live.insert(path.to_owned(), id);
        id
    }

    /// Copies the live entries directly inside `dir` to the durable namespace.
    pub(super) fn sync_dir_entries(&mut self, dir: &Path) {
        let inside = |p: &Path| p.parent() == Some(dir);
        self.durable.retain(|p, _| !inside(p));
        for (p, &id) in
            self.live.range::<Path, _>((Bound::Included(dir), Bound::Unbounded)).take_while(|(p, _)| p.starts_with(dir))
        {
            if inside(p) {
                self.durable.insert(p.clone(), id);
            }
        }
        self.collect_garbage();
    }

    /// Names (not paths) of live files and directories directly inside `dir`, sorted.
    pub(super) fn list(&self, dir: &Path) -> Vec<String> {
        let files = self.live.keys().map(PathBuf::as_path);
        let dirs = self.dirs.iter().map(PathBuf::as_path);
        let mut names: Vec<String> = files
            .chain(dirs)
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Drops inodes no namespace names and no live writer holds.
    pub(super) fn collect_garbage(&mut self) {
        let named: HashSet<InodeId> = self.live.values().chain(self.durable.values()).copied().collect();
        self.inodes.retain(|id, inode| inode.writers > 0 || named.contains(id));
    }

    // ---- locks ----

    /// Takes the lock on `path`, or `None` if it is held.
    pub(super) fn try_lock(&mut self, path: &Path) -> Option<u64> {
        if self.locks.contains_key(path) {
            return None;
        }
        let token = self.next_lock_token;
        self.next_lock_token += 1;
        self.locks.insert(path.to_owned(), token);
        Some(token)
    }

    /// Releases the lock on `path` if `token` still holds it.
    pub(super) fn unlock(&mut self, path: &Path, token: u64) {
        if self.locks.get(path) == Some(&token) {
            self.locks.remove(path);
        }
    }

    // ---- crashes ----

    /// What a crash in `mode` would leave, without changing `self`.
    pub(super) fn crash_image(&self, mode: CrashMode) -> CrashImage {
        let mut inodes = BTreeMap::new();
        let mut namespace = BTreeMap::new();
        for (path, &id) in &self.durable {
            let Some(inode) = self.inodes.get(&id) else {
                continue;
            };
            namespace.insert(path.clone(), id);
            if inodes.contains_key(&id) {
                continue; // a second name of the same inode (an undone cross-directory rename)
            }
            let unsynced = inode.data.len().saturating_sub(inode.synced_len);
            let kept = match mode {
                CrashMode::DropUnsynced => 0,
                CrashMode::TearUnsynced { seed } => {
                    let r = SplitMix64::mix(seed ^ fnv1a(path.as_os_str().as_encoded_bytes()));
                    // `unsynced + 1` fits a u64 and the remainder is at most `unsynced`.
                    (r % (unsynced as u64 + 1)) as usize
                }
            };
            let data = inode.data.get(..inode.synced_len + kept).unwrap_or(&inode.data);
            inodes.insert(id, Inode::durable(data.to_vec()));
        }
        CrashImage { namespace, inodes }
    }

    /// Replaces the contents with what a crash in `mode` leaves: kills every handle,
    /// releases every lock and disarms the crash point. Faults and counters stay.
    pub(super) fn crash(&mut self, mode: CrashMode) {
        let image = self.crash_image(mode);
        self.inodes = image.inodes;
        self.live = image.namespace.clone();
        self.durable = image.namespace;
        self.generation += 1;
        self.locks.clear();
        self.crash_at = None;
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("live_files", &self.live.len())
            .field("durable_files", &self.durable.len())
            .field("inodes", &self.inodes.len())
            .field("dirs", &self.dirs.len())
            .field("generation", &self.generation)
            .field("locks", &self.locks.len())
            .field("mutations", &self.mutation_count())
            .field("crash_at", &self.crash_at)
            .finish_non_exhaustive()
    }
}

/// An `io::ErrorKind::NotFound` error for `op` on `path`.
pub(super) fn not_found(op: &'static str, path: &Path) -> Error {
    Error::io(op, path, io::Error::new(io::ErrorKind::NotFound, "no such file or directory"))
}

/// FNV-1a, so each file's tear depends only on the seed and its path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}
