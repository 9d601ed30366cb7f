//! [`SecretKey`] and [`FileCipher`]: the AEAD every encrypted file uses.
//!
//! One cipher per file: its subkey is `HKDF-SHA256(ikm = data key, salt = the file's random
//! 16-byte salt, info = "kho v1 " ++ role ++ file number LE)`, and AES-256-GCM under that
//! subkey seals every block (tables) or record (logs, manifests, key registries) of the file.
//! Because the salt is fresh for every file, a nonce derived from a position inside the file
//! (a block's offset and kind, a record's counter) is never used twice under one subkey, even
//! when a crash makes a file number be used again; because the file number and the role are
//! in the derivation, a block or record moved into another file does not authenticate there.
//!
//! Invariants: key bytes are zeroed when dropped and never appear in `Debug` output; `open`
//! returns `None` (never garbage) for anything that was not sealed by `seal` with the same
//! subkey, nonce and associated data.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Bytes of every key: data keys, master keys, subkeys.
pub const KEY_LEN: usize = 32;
/// Bytes of a file's random salt.
pub(crate) const SALT_LEN: usize = 16;
/// Bytes of an AES-GCM authentication tag, appended to every sealed payload.
pub const TAG_LEN: usize = 16;
/// Bytes of an AES-GCM nonce.
pub(crate) const NONCE_LEN: usize = 12;
/// The only scheme this version writes: AES-256-GCM under an HKDF-SHA256 per-file subkey.
pub const SCHEME_AES256_GCM: u8 = 1;

/// 32 secret bytes, zeroed on drop, never printed.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's random source.
    pub fn random() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut *k)?;
        Ok(SecretKey(k))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Io {
        op: "read random bytes",
        path: "the system random source".into(),
        source: std::io::Error::other("the operating system's random source failed"),
    })
}

/// A fresh random salt.
pub(crate) fn random_salt() -> Result<[u8; SALT_LEN]> {
    let mut s = [0u8; SALT_LEN];
    fill_random(&mut s)?;
    Ok(s)
}

/// What a file is, as bound into its subkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRole {
    /// An SSTable.
    Table,
    /// A write-ahead log or a manifest (both are logs of records; their numbers never
    /// collide, one counter hands out both).
    Log,
    /// A key registry (`KEYS-NNNNNN`), keyed by the master key.
    Registry,
}

impl FileRole {
    fn label(self) -> &'static [u8] {
        match self {
            FileRole::Table => b"table",
            FileRole::Log => b"log",
            FileRole::Registry => b"keys",
        }
    }
}

/// The AEAD of one file. See the module docs.
pub(crate) struct FileCipher {
    aead: LessSafeKey,
}

impl std::fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileCipher(..)")
    }
}

impl FileCipher {
    /// The cipher of file `number` with role `role`, salted with `salt`, under `key`.
    pub(crate) fn new(key: &SecretKey, salt: &[u8; SALT_LEN], role: FileRole, number: u64) -> Result<Self> {
        let bug = |what: &str| Error::Internal(format!("{what} failed on well-formed input"));
        let number = number.to_le_bytes();
        let info: [&[u8]; 3] = [b"kho v1 ", role.label(), &number];
        let prk = Salt::new(HKDF_SHA256, salt).extract(key.bytes());
        let okm = prk.expand(&info, HKDF_SHA256).map_err(|_| bug("HKDF expand"))?;
        let mut subkey = Zeroizing::new([0u8; KEY_LEN]);
        okm.fill(&mut *subkey).map_err(|_| bug("HKDF fill"))?;
        let aead = UnboundKey::new(&AES_256_GCM, &*subkey).map_err(|_| bug("AES-256-GCM key setup"))?;
        Ok(FileCipher { aead: LessSafeKey::new(aead) })
    }

    /// Appends `plain` sealed (ciphertext then the 16-byte tag) to `out`.
    pub(crate) fn seal_into(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), &mut out[start..])
            .map_err(|_| Error::Internal("AES-256-GCM refused to seal".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// The plaintext of `sealed` (ciphertext then tag), `None` if it does not authenticate.
    pub(crate) fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let body_len = sealed.len().checked_sub(TAG_LEN)?;
        let mut out = sealed.to_vec();
        self.aead.open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), &mut out).ok()?;
        out.truncate(body_len);
        Some(out)
    }
}

/// The nonce of the table block at `offset` of kind `kind`.
pub(crate) fn block_nonce(offset: u64, kind: u8) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&offset.to_le_bytes());
    n[8] = kind;
    n
}

/// The nonce of record `counter` of a log.
pub(crate) fn record_nonce(counter: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&counter.to_le_bytes());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(key: u8, salt: u8, role: FileRole, number: u64) -> FileCipher {
        FileCipher::new(&SecretKey::from_bytes([key; KEY_LEN]), &[salt; SALT_LEN], role, number).unwrap()
    }

    #[test]
    fn seals_and_opens_and_refuses_every_other_context() {
        let c = cipher(1, 2, FileRole::Table, 7);
        let mut sealed = vec![9u8]; // appended after existing bytes
        c.seal_into(&block_nonce(0, 0), b"aad", b"hello", &mut sealed).unwrap();
        let sealed = &sealed[1..];
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_ne!(&sealed[..5], b"hello");
        assert_eq!(c.open(&block_nonce(0, 0), b"aad", sealed).unwrap(), b"hello");
        assert!(c.open(&block_nonce(1, 0), b"aad", sealed).is_none(), "another offset");
        assert!(c.open(&block_nonce(0, 1), b"aad", sealed).is_none(), "another block kind");
        assert!(c.open(&block_nonce(0, 0), b"aae", sealed).is_none(), "other associated data");
        for other in [
            cipher(1, 2, FileRole::Table, 8),
            cipher(1, 2, FileRole::Log, 7),
            cipher(1, 3, FileRole::Table, 7),
            cipher(4, 2, FileRole::Table, 7),
        ] {
            assert!(other.open(&block_nonce(0, 0), b"aad", sealed).is_none());
        }
        for i in 0..sealed.len() {
            let mut b = sealed.to_vec();
            b[i] ^= 0x20;
            assert!(c.open(&block_nonce(0, 0), b"aad", &b).is_none(), "flipped byte {i}");
        }
        assert!(c.open(&block_nonce(0, 0), b"aad", &sealed[..TAG_LEN - 1]).is_none());
    }

    #[test]
    fn secrets_are_not_printed() {
        let k = SecretKey::from_bytes([0x41; KEY_LEN]);
        assert_eq!(format!("{k:?}"), "SecretKey(..)");
        assert!(!format!("{:?}", cipher(0x41, 0, FileRole::Log, 1)).contains("41"));
        assert_ne!(SecretKey::random().unwrap().bytes(), SecretKey::random().unwrap().bytes());
    }
}
