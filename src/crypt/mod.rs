//! Encryption at rest (`docs/encryption.md`): every table block and every log, manifest and
//! key-registry record of an encrypted database is sealed with AES-256-GCM.
//!
//! - [`KeyProvider`] supplies the master key ([`KeyFileProvider`]: a key file);
//! - [`Keyring`] holds the data keys, persisted in the key registry under the master key
//!   (`keyring.rs`);
//! - every file gets its own subkey from a data key and a random salt, and seals its blocks
//!   or records under nonces derived from their position ([`FileCipher`], `cipher.rs`);
//! - [`SegmentHeader`] says how a file is encrypted: the first record of a log, manifest or
//!   registry, and fields of an encrypted table's footer (`header.rs`).
//!
//! What uses it: `wal` (sealed records), `sst` (sealed blocks), `version` (the manifest),
//! `db` (opening, rotation, re-encryption).

mod cipher;
mod header;
mod keyring;
mod provider;

use std::path::Path;
use std::sync::Arc;

pub(crate) use cipher::{block_nonce, fill_random, record_nonce, FileCipher, FileRole};
pub use cipher::{SecretKey, KEY_LEN, SCHEME_AES256_GCM, TAG_LEN};
pub use header::{SegmentHeader, SEGMENT_MAGIC};
pub use keyring::Keyring;
pub(crate) use keyring::{new_log_writer, open_log_reader};
pub use provider::{KeyFileProvider, KeyProvider};

use crate::Result;

/// How a database is encrypted ([`crate::Options::encryption`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Encryption {
    /// Where the master key comes from.
    pub provider: Arc<dyn KeyProvider>,
}

impl Encryption {
    /// Encryption with the master key from `provider`.
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Encryption { provider }
    }

    /// Encryption with the master key in the key file at `path` (see [`KeyFileProvider`]).
    pub fn key_file(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Encryption { provider: Arc::new(KeyFileProvider::open(path)?) })
    }
}

/// Where a reader finds the cipher of an encrypted file from its segment header.
pub(crate) trait CipherSource: Send + Sync + std::fmt::Debug {
    /// The cipher of file `number` (role `role`, at `path` for errors) encrypted as `header`
    /// says.
    fn cipher_for(&self, header: &SegmentHeader, role: FileRole, number: u64, path: &Path) -> Result<FileCipher>;
}
