//! [`KeyProvider`]: where the master key comes from, and [`KeyFileProvider`], the provider
//! kho ships (a key file).
//!
//! The master key never encrypts data: it keys the key registry, which holds the data keys
//! (`registry.rs`). An application with a KMS or HSM implements [`KeyProvider`] itself; ids
//! are opaque strings of at most 255 bytes, recorded in the registry so that a later open
//! asks for the right key.
//!
//! Invariant: a key file is refused unless only its owner can read it (mode `0600` or
//! stricter on Unix), and a created one is `0600` from its first byte.

use std::path::{Path, PathBuf};

use crate::crypt::cipher::{SecretKey, KEY_LEN};
use crate::{Error, Result};

/// Supplies master keys. See the module docs.
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The id of the master key a new key registry is written under.
    fn current_master_id(&self) -> String;
    /// The master key named `id`, or [`Error::WrongKey`] if this provider does not have it.
    fn master_key(&self, id: &str) -> Result<SecretKey>;
}

/// A master key in a file: 64 hexadecimal digits (and an optional newline), or 32 raw bytes.
/// Its id is `keyfile:` and a fingerprint of the key (the first 8 bytes of
/// `SHA-256("kho master key id" ++ key)`, in hex), so that opening a database with another
/// key file says so at once.
pub struct KeyFileProvider {
    path: PathBuf,
    id: String,
    key: SecretKey,
}

impl std::fmt::Debug for KeyFileProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileProvider").field("path", &self.path).field("id", &self.id).finish_non_exhaustive()
    }
}

impl KeyFileProvider {
    /// Reads the key file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        check_private(path)?;
        let data = std::fs::read(path).map_err(|e| Error::io("read key file", path, e))?;
        let key = parse_key(&data).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "key file {} holds neither 64 hex digits nor 32 bytes ({} bytes)",
                path.display(),
                data.len()
            ))
        })?;
        Ok(Self::from_key(path, key))
    }

    /// Creates a key file at `path` (which must not exist) holding a fresh random key, mode
    /// `0600`, synced.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Write;
        let path = path.as_ref();
        let key = SecretKey::random()?;
        let mut hex = zeroize::Zeroizing::new(String::with_capacity(2 * KEY_LEN + 1));
        for b in key.bytes() {
            hex.push_str(&format!("{b:02x}"));
        }
        hex.push('\n');
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(path).map_err(|e| Error::io("create key file", path, e))?;
        f.write_all(hex.as_bytes()).map_err(|e| Error::io("write key file", path, e))?;
        f.sync_all().map_err(|e| Error::io("fsync key file", path, e))?;
        Ok(Self::from_key(path, key))
    }

    /// Opens the key file at `path`, creating it first if it does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.exists() {
            Self::open(path)
        } else {
            Self::create(path)
        }
    }

    /// A provider holding `key` directly (tests, or keys from elsewhere); `path` is only
    /// shown in messages.
    pub fn from_key(path: impl AsRef<Path>, key: SecretKey) -> Self {
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        h.update(b"kho master key id");
        h.update(key.bytes());
        let fp = h.finish();
        let id = format!("keyfile:{}", fp.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect::<String>());
        KeyFileProvider { path: path.as_ref().to_owned(), id, key }
    }

    /// The id of this file's key.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl KeyProvider for KeyFileProvider {
    fn current_master_id(&self) -> String {
        self.id.clone()
    }

    fn master_key(&self, id: &str) -> Result<SecretKey> {
        if id != self.id {
            return Err(Error::WrongKey(format!(
                "the key registry is under master key {id}, the key file {} holds {}",
                self.path.display(),
                self.id
            )));
        }
        Ok(SecretKey::from_bytes(*self.key.bytes()))
    }
}

fn parse_key(data: &[u8]) -> Option<SecretKey> {
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let mut key = zeroize::Zeroizing::new([0u8; KEY_LEN]);
    if text.len() == 2 * KEY_LEN {
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            *key.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
        }
    } else if data.len() == KEY_LEN {
        key.copy_from_slice(data);
    } else {
        return None;
    }
    Some(SecretKey::from_bytes(*key))
}

/// Refuses a key file that its group or others may read or write.
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::io("stat key file", path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InvalidArgument(format!(
                "key file {} has mode {mode:03o}: others may read it; chmod 600 it",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = KeyFileProvider::create(&path).unwrap();
        assert!(KeyFileProvider::create(&path).is_err(), "never overwrites");
        let b = KeyFileProvider::open(&path).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(a.id().starts_with("keyfile:") && a.id().len() == 8 + 16);
        assert_eq!(b.master_key(a.id()).unwrap().bytes(), a.key.bytes());
        assert!(matches!(b.master_key("keyfile:0000"), Err(Error::WrongKey(_))));
        assert!(!format!("{b:?}").contains(&format!("{:02x}", a.key.bytes()[0]).repeat(0x10)));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = KeyFileProvider::open(&path).unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        let raw = dir.path().join("raw");
        let c = KeyFileProvider::open_or_create(&raw).unwrap();
        std::fs::write(dir.path().join("bin"), c.key.bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("bin"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(KeyFileProvider::open(dir.path().join("bin")).unwrap().id(), c.id());
        std::fs::write(dir.path().join("short"), b"abc").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("short"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(KeyFileProvider::open(dir.path().join("short")), Err(Error::InvalidArgument(_))));
    }
}
