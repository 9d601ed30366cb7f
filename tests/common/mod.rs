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
