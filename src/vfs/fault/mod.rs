//! [`FaultFs`]: an in-memory file system that can crash and inject faults, for tests and
//! `kho stress --faults` (after Pebble's `vfs.MemFS` with `CrashClone` plus `errorfs`,
//! LevelDB's `fault_injection_test` and SQLite's I/O-error tests).
//!
//! It owns every file's bytes, two namespaces and the fault schedule:
//! - A file is an inode: `data` plus `synced_len`. `append` extends `data` at once (readers of
//!   this file system see it); `sync` makes all of `data` durable.
//! - The *live* namespace (path -> inode) is what `open`, `list` and `exists` see; the
//!   *durable* namespace is what survives a crash. `sync_dir(dir)` copies the live entries
//!   directly inside `dir` (creations, removals, renames into or out of it) to the durable
//!   one. Until then a new file vanishes in a crash and a rename or removal is undone.
//! - [`FaultFs::crash`] is a power loss: live := durable, every file cut to its synced
//!   bytes (or a seeded random prefix of its unsynced tail), every open writer dead, every
//!   lock released. [`FaultFs::crash_clone`] builds that image as a new file system.
//!
//! # Faults
//!
//! A fault is a [`FaultKind`] scheduled on a [`FaultOp`]:
//!
//! | schedule | fires on |
//! |---|---|
//! | [`FaultFs::inject`]`(op, n, kind)` | the `n`th call of `op` from now (0 = the next), once |
//! | [`FaultFs::inject_always`]`(op, kind)` | every call of `op` until [`FaultFs::clear_faults`] |
//! | [`FaultFs::inject_any`]`(n, kind)` | the `n`th call of *any* op from now, once (numbered as [`FaultFs::attempt_count`] counts) |
//! | [`FaultFs::arm_crash_after`]`(n)` | every mutating op after `n` more complete ("simulated crash") |
//!
//! Ops: the mutating `Create`, `Append`, `Sync`, `Rename`, `Remove`, `SyncDir`, `CreateDir`
//! and the read-side `Open`, `Read` (`read_at` on a handle from `open`), `List`, `Exists`
//! (`read_all` is an `Open` then a `Read`). A call counts once it passes its argument checks
//! (a missing file is `NotFound` without reaching the gate).
//!
//! | kind | on | what the call does |
//! |---|---|---|
//! | `Eio`, `Enospc` | any op | fails with that errno, changes nothing |
//! | `ShortWrite` | `Append` | appends a seeded random proper prefix of the data (visible, unsynced), then fails with `EIO` |
//! | `SyncDropsUnsynced` | `Sync` | fails with `EIO` and cuts the file's live data to its synced length ("fsyncgate": the dirty pages are gone; a later successful sync does not bring them back) |
//! | `BitFlip` | `Append` | succeeds, but one seeded random bit of the appended bytes is flipped in the file |
//! | `BitFlip` | `Read` | succeeds, returning a copy with one seeded random bit flipped; the file is unchanged |
//!
//! A kind on an op it does not apply to acts as `Eio`. The random choices come from
//! [`FaultFs::set_fault_seed`]; [`FaultFs::faults_fired`] and [`FaultFs::last_fault`] say
//! what fired where.
//!
//! ```
//! use kho::vfs::{FaultFs, FaultKind, FaultOp, FileSystem};
//! # fn main() -> kho::Result<()> {
//! let fs = FaultFs::new();
//! fs.create_dir_all("/db".as_ref())?;
//! let mut f = fs.create("/db/f".as_ref())?;
//! f.append(b"hello")?;
//! f.sync()?;
//! fs.inject(FaultOp::Read, 0, FaultKind::BitFlip); // the next read_at comes back damaged
//! assert_ne!(&fs.read_all("/db/f".as_ref())?[..], b"hello");
//! assert_eq!(&fs.read_all("/db/f".as_ref())?[..], b"hello"); // the file itself is intact
//! fs.inject_any(1, FaultKind::Eio); // the second operation of any kind from now
//! assert!(fs.exists("/db/f".as_ref())?);
//! assert!(fs.list("/db".as_ref()).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! Simplifications, so tests do not over-trust it:
//! - directories are durable as soon as `create_dir_all` returns (a real disk needs the
//!   parent synced);
//! - a crash never garbles bytes, it only cuts files (use [`FaultFs::corrupt_byte`] or
//!   `BitFlip`);
//! - `create` of an existing file fails with `AlreadyExists`, as `O_EXCL` does;
//! - a reader sees the file as it was when opened (kho never changes an opened file).
//!
//! Invariants: a failed operation (injected fault, reached crash point, dead handle, bad
//! argument) changes nothing, with exactly two exceptions: a `ShortWrite` append leaves a
//! proper prefix of its data appended to the file (visible to readers, unsynced, not counted
//! in the writer's `len`), and a `SyncDropsUnsynced` sync leaves the file cut to its synced
//! length. A `BitFlip` append succeeds with one bit of the file differing from the data
//! given. The synced bytes of a file are a prefix of its live bytes; every handle of an
//! older generation (from before an in-place crash) is dead. All state sits behind one
//! mutex, so every operation is atomic.

mod handles;
mod kinds;
mod state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use self::handles::{FaultLock, FaultReadable, FaultWritable};
pub use self::kinds::{CrashMode, FaultKind, FaultOp, FiredFault};
use self::state::{not_found, State};
use super::{FileLock, FileSystem, RandomAccessFile, WritableFile};
use crate::{Error, Result};

/// An in-memory, crashable, error-injecting [`FileSystem`]. See the module docs.
///
/// Paths are used as given (compared component-wise): use one spelling per directory, as
/// `dir.join(name)` does. Roots and the empty path always exist as directories.
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

impl Default for FaultFs {
    fn default() -> Self {
        FaultFs::new()
    }
}

impl fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FaultFs").field(&*self.state.lock()).finish()
    }
}

impl FaultFs {
    /// An empty file system with no faults.
    pub fn new() -> FaultFs {
        FaultFs { state: Arc::new(Mutex::new(State::default())) }
    }

    // ---- crashes ----

    /// Simulates a power loss in place: the live namespace becomes the durable one, files
    /// are cut as `mode` says, every [`WritableFile`] opened before is dead (its calls fail
    /// and change nothing), every lock is released and the crash point is disarmed.
    /// Readers opened before keep their snapshot. Injected faults and counters stay.
    pub fn crash(&self, mode: CrashMode) {
        self.state.lock().crash(mode);
    }

    /// A new file system holding what [`crash`](Self::crash) would leave, with no faults,
    /// no locks and zeroed counters (the fault seed is kept); `self` is untouched and its
    /// handles keep working.
    pub fn crash_clone(&self, mode: CrashMode) -> Arc<FaultFs> {
        let st = self.state.lock();
        let image = st.crash_image(mode);
        let state = State::from_image(image, st.dirs().clone(), st.next_inode(), st.seed());
        Arc::new(FaultFs { state: Arc::new(Mutex::new(state)) })
    }

    // ---- faults ----

    /// Makes the `nth` occurrence of `op` from now fail with `kind`, counting from 0 (`0` is
    /// the very next one). Occurrences are calls that pass argument checks and reach the
    /// fault gate on a live handle. One-shot. What the failed call leaves is `kind`'s to say
    /// (nothing, except for [`FaultKind::ShortWrite`] and [`FaultKind::SyncDropsUnsynced`]).
    pub fn inject(&self, op: FaultOp, nth: u64, kind: FaultKind) {
        self.state.lock().inject(op, nth, kind);
    }

    /// Makes the `nth` file operation *of any kind* from now (every [`FaultOp`], mutating or
    /// read-side, counted together as [`attempt_count`](Self::attempt_count) counts them)
    /// fail with `kind`, counting from 0. One-shot. For SQLite-style campaigns that fail
    /// operation 1, 2, ... N of a workload in turn.
    pub fn inject_any(&self, nth: u64, kind: FaultKind) {
        self.state.lock().inject_any(nth, kind);
    }

    /// Makes every occurrence of `op` fail with `kind` until [`clear_faults`](Self::clear_faults).
    pub fn inject_always(&self, op: FaultOp, kind: FaultKind) {
        self.state.lock().inject_always(op, kind);
    }

    /// Seeds the random choices of faults (which bit a [`FaultKind::BitFlip`] flips, how much
    /// a [`FaultKind::ShortWrite`] writes) and restarts their sequence: the same seed and the
    /// same sequence of faulted calls give the same damage. The default seed is 0.
    pub fn set_fault_seed(&self, seed: u64) {
        self.state.lock().set_seed(seed);
    }

    /// Removes every pending injected fault (not the crash point).
    pub fn clear_faults(&self) {
        self.state.lock().clear_faults();
    }

    // ---- crash points and counters ----

    /// Completed mutating operations (every op of [`FaultOp::MUTATIONS`]) since this file
    /// system was made.
    pub fn mutation_count(&self) -> u64 {
        self.state.lock().mutation_count()
    }

    /// Completed occurrences of `op`; failed ones are not counted.
    pub fn op_count(&self, op: FaultOp) -> u64 {
        self.state.lock().op_count(op)
    }

    /// Calls of every [`FaultOp`] that reached the fault gate so far, failed or not: the
    /// numbering [`inject_any`](Self::inject_any) uses. Run a workload without faults on a
    /// fresh file system and this is how many operations a campaign can fail.
    pub fn attempt_count(&self) -> u64 {
        self.state.lock().any_attempts()
    }

    /// How many injected faults have fired.
    pub fn faults_fired(&self) -> u64 {
        self.state.lock().fired().0
    }

    /// The last injected fault that fired: which operation, on which path.
    pub fn last_fault(&self) -> Option<FiredFault> {
        self.state.lock().fired().1
    }

    /// Once `n` more mutating operations have completed, every further one (and `flush`)
    /// fails with an I/O error "simulated crash" and changes nothing, as if the process had
    /// died there; reads keep working. Follow with [`crash`](Self::crash) or
    /// [`crash_clone`](Self::crash_clone) to get the post-crash image.
    pub fn arm_crash_after(&self, n: u64) {
        self.state.lock().arm_crash_after(n);
    }

    /// Removes the crash point.
    pub fn disarm(&self) {
        self.state.lock().disarm();
    }

    /// True once an armed crash point is reached (mutations now fail). An exhaustive crash
    /// test stops when a run finishes without reaching it.
    pub fn crash_point_hit(&self) -> bool {
        self.state.lock().crash_point_hit()
    }

    // ---- test helpers (no faults, not counted) ----

    /// XORs the byte at `offset` of the live file `path` with `xor_mask`. The change is
    /// durable if `offset` is below the synced length.
    pub fn corrupt_byte(&self, path: &Path, offset: u64, xor_mask: u8) -> Result<()> {
        let mut st = self.state.lock();
        let (_, inode) = st.live_inode("corrupt", path)?;
        let len = inode.len();
        if !usize::try_from(offset).is_ok_and(|at| inode.xor_byte(at, xor_mask)) {
            return Err(Error::InvalidArgument(format!(
                "corrupt_byte at {offset} past the end of {} ({len} bytes)",
                path.display()
            )));
        }
        Ok(())
    }

    /// Cuts the live file `path` to `len` bytes, durably (a crash does not bring them back).
    pub fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let mut st = self.state.lock();
        let (_, inode) = st.live_inode("truncate", path)?;
        match usize::try_from(len) {
            Ok(new_len) if len <= inode.len() => {
                inode.truncate(new_len);
                Ok(())
            }
            _ => Err(Error::InvalidArgument(format!(
                "truncate {} to {len} bytes: it has only {}",
                path.display(),
                inode.len()
            ))),
        }
    }

    /// Length of the live file `path`, synced or not.
    pub fn file_len(&self, path: &Path) -> Result<u64> {
        Ok(self.state.lock().live_inode("stat", path)?.1.len())
    }

    /// Durable length of the live file `path` (what a `DropUnsynced` crash keeps, provided
    /// its directory entry is durable).
    pub fn synced_len(&self, path: &Path) -> Result<u64> {
        Ok(self.state.lock().live_inode("stat", path)?.1.synced_len())
    }

    /// Every live file path, sorted.
    pub fn list_all(&self) -> Vec<PathBuf> {
        self.state.lock().live.keys().cloned().collect()
    }
}

/// Fails unless the parent directory of `path` exists.
fn check_parent(st: &State, op: &'static str, path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !st.is_dir(dir) => Err(not_found(op, path)),
        _ => Ok(()),
    }
}

/// Fails if `path` is a directory.
fn check_not_dir(st: &State, op: &'static str, path: &Path) -> Result<()> {
    if st.is_dir(path) {
        return Err(Error::io(op, path, io::ErrorKind::IsADirectory.into()));
    }
    Ok(())
}

impl FileSystem for FaultFs {
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let op = FaultOp::Create;
        let mut st = self.state.lock();
        check_parent(&st, op.io_name(), path)?;
        check_not_dir(&st, op.io_name(), path)?;
        if st.live_inode(op.io_name(), path).is_ok() {
            return Err(Error::io(
                op.io_name(),
                path,
                io::Error::new(io::ErrorKind::AlreadyExists, "file exists (create never overwrites)"),
            ));
        }
        st.begin(op, path)?;
        let id = st.link_new(path);
        if let Some(inode) = st.inodes.get_mut(&id) {
            inode.writers += 1;
        }
        st.done(op);
        Ok(Box::new(FaultWritable {
            state: Arc::clone(&self.state),
            path: path.to_owned(),
            inode: id,
            generation: st.generation,
            len: 0,
        }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let op = FaultOp::Open;
        let mut st = self.state.lock();
        st.live_inode(op.io_name(), path)?;
        st.begin(op, path)?;
        let data = st.live_inode(op.io_name(), path)?.1.snapshot();
        st.done(op);
        Ok(Arc::new(FaultReadable { state: Arc::clone(&self.state), path: path.to_owned(), data }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let op = FaultOp::Rename;
        let mut st = self.state.lock();
        let (id, _) = st.live_inode(op.io_name(), from)?;
        check_parent(&st, op.io_name(), to)?;
        check_not_dir(&st, op.io_name(), to)?;
        st.begin(op, from)?;
        if from != to {
            st.live.remove(from);
            st.live.insert(to.to_owned(), id);
            st.collect_garbage();
        }
        st.done(op);
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let op = FaultOp::Remove;
        let mut st = self.state.lock();
        st.live_inode(op.io_name(), path)?;
        st.begin(op, path)?;
        st.live.remove(path);
        st.collect_garbage();
        st.done(op);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        let op = FaultOp::CreateDir;
        let mut st = self.state.lock();
        if let Some(file) = path.ancestors().find(|p| st.live.contains_key(*p)) {
            let e = io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a file", file.display()));
            return Err(Error::io(op.io_name(), path, e));
        }
        st.begin(op, path)?;
        st.add_dir_all(path);
        st.done(op);
        Ok(())
    }

    /// Removes an empty directory at once (directories are not crash-modelled: they are
    /// durable from creation to removal); not a counted operation.
    fn remove_dir(&self, path: &Path) -> Result<()> {
        let mut st = self.state.lock();
        if !st.is_dir(path) || path.parent().is_none() {
            return Err(not_found("rmdir", path));
        }
        if !st.list(path).is_empty() {
            let e = io::Error::new(io::ErrorKind::DirectoryNotEmpty, "directory not empty");
            return Err(Error::io("rmdir", path, e));
        }
        st.remove_dir(path);
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let op = FaultOp::List;
        let mut st = self.state.lock();
        if !st.is_dir(dir) {
            return Err(not_found(op.io_name(), dir));
        }
        st.begin(op, dir)?;
        st.done(op);
        Ok(st.list(dir))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let op = FaultOp::SyncDir;
        let mut st = self.state.lock();
        if !st.is_dir(dir) {
            return Err(not_found(op.io_name(), dir));
        }
        st.begin(op, dir)?;
        st.sync_dir_entries(dir);
        st.done(op);
        Ok(())
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let op = FaultOp::Exists;
        let mut st = self.state.lock();
        st.begin(op, path)?;
        st.done(op);
        Ok(st.live.contains_key(path) || st.is_dir(path))
    }

    /// Takes the lock and, like [`super::StdFs`], creates an empty file at `path` if none is
    /// there (live only, not counted, no faults).
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let mut st = self.state.lock();
        check_parent(&st, "open lock", path)?;
        check_not_dir(&st, "open lock", path)?;
        let Some(token) = st.try_lock(path) else {
            return Err(Error::Busy {
                path: path.parent().unwrap_or(path).to_owned(),
                reason: format!("lock file {} is held by another Db handle", path.display()),
            });
        };
        if !st.live.contains_key(path) {
            st.link_new(path);
        }
        Ok(Box::new(FaultLock { state: Arc::clone(&self.state), path: path.to_owned(), token }))
    }
}
