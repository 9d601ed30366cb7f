//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kho::vfs::{FaultFs, SharedFs};
use kho::{Db, Options};

/// Options that make flushes frequent: tiny memtables, small blocks.
pub fn small_options(fs: SharedFs) -> Options {
    Options { fs, write_buffer_size: 4096, block_size: 256, block_cache_capacity: 1 << 20, ..Options::default() }
}

/// A fresh in-memory crashable file system and its shared handle.
pub fn fault_fs() -> (Arc<FaultFs>, SharedFs) {
    let fs = Arc::new(FaultFs::new());
    let shared: SharedFs = fs.clone();
    (fs, shared)
}

/// Everything in the database, forwards.
pub fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter().unwrap().map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect::<kho::Result<_>>().unwrap()
}

/// The database directory used by in-memory tests.
pub fn db_dir() -> &'static Path {
    Path::new("/db")
}

/// A hook run before a `HookFs` operation, with the path it is about to touch.
pub type Hook = Arc<dyn Fn(&Path) + Send + Sync>;

/// A `FaultFs` that runs hooks at exact moments: before every `create`, and once before the
/// next `list` — to panic inside a background job, or run a flush in the middle of an open.
#[derive(Default)]
pub struct HookFs {
    pub inner: FaultFs,
    pub before_create: std::sync::Mutex<Option<Hook>>,
    pub before_next_list: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for HookFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookFs")
    }
}

impl kho::vfs::FileSystem for HookFs {
    fn create(&self, path: &Path) -> kho::Result<Box<dyn kho::vfs::WritableFile>> {
        // Called outside the lock: a hook may panic (on purpose).
        let hook = self.before_create.lock().unwrap().clone();
        if let Some(hook) = hook {
            hook(path);
        }
        self.inner.create(path)
    }
    fn open(&self, path: &Path) -> kho::Result<Arc<dyn kho::vfs::RandomAccessFile>> {
        self.inner.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> kho::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> kho::Result<()> {
        self.inner.remove(path)
    }
    fn create_dir_all(&self, path: &Path) -> kho::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> kho::Result<()> {
        self.inner.remove_dir(path)
    }
    fn list(&self, dir: &Path) -> kho::Result<Vec<String>> {
        let hook = self.before_next_list.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> kho::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> kho::Result<bool> {
        self.inner.exists(path)
    }
    fn lock(&self, path: &Path) -> kho::Result<Box<dyn kho::vfs::FileLock>> {
        self.inner.lock(path)
    }
}

/// Every record of a store, by (collection, pk): owner and raw payload.
pub type StoreRecords = BTreeMap<(String, Vec<u8>), (kho::record::NationalId, Vec<u8>)>;

/// Every record of `store`, collection by collection.
pub fn store_records(store: &kho::record::Store) -> StoreRecords {
    let mut out = StoreRecords::new();
    for c in store.collections() {
        for r in store.scan(&c).unwrap() {
            let r = r.unwrap();
            out.insert((c.clone(), r.pk.to_vec()), (r.id, r.payload.to_vec()));
        }
    }
    out
}

/// Table files in the database directory that the manifest does not list (opened
/// read-only: call it with every writable handle closed, so no compaction is running and
/// no deleted table is still open).
pub fn orphan_tables(shared: &SharedFs) -> Vec<String> {
    let db = Db::open_read_only(db_dir(), small_options(shared.clone())).unwrap();
    let live: std::collections::HashSet<u64> = db.live_files().iter().map(|(_, m)| m.number).collect();
    shared
        .list(db_dir())
        .unwrap()
        .into_iter()
        .filter(|name| {
            name.strip_suffix(".sst").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| !live.contains(&n))
        })
        .collect()
}
