//! `--key-file FILE`: the tools' side of encryption at rest (docs/encryption.md, "Tools").
//! Turns the option into the [`Options`] of each kind of open, loads a directory's key
//! registry for the commands that read files one by one (`dump`, `verify`), names how a file
//! is encrypted, and gives a missing or wrong key its message and exit status.
//!
//! Rules:
//! - a read-only open passes the key when one is given; a plaintext database reads as it is;
//! - a writable open passes it only to a database that has a key registry, so `--key-file`
//!   never turns a plaintext database into an encrypted one by accident (`kho rekey
//!   --convert` and `kho demo` do that on purpose);
//! - an encrypted database without the key: exit 2 and [`KEY_NEEDED`]; a key that does not
//!   open it: exit 2 and `wrong key: ...` (which names master-key ids, never key bytes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use kho::crypt::{Encryption, KeyFileProvider, Keyring, SegmentHeader, SCHEME_AES256_GCM};
use kho::inspect::filename::KEYRING;
use kho::vfs::StdFs;
use kho::{Error, Options};

/// What every command prints (after `kho: error: `) for an encrypted database it was given
/// no key for.
pub const KEY_NEEDED: &str = "database is encrypted: --key-file needed";

/// The `--key-file` option, as every command sees it.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    file: Option<PathBuf>,
}

impl Keys {
    /// The option's value.
    pub fn new(file: Option<PathBuf>) -> Self {
        Keys { file }
    }

    /// The key file, if one was given.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The master key's provider: the key file, which must exist and be private (0600).
    pub fn provider(&self) -> anyhow::Result<Option<Arc<KeyFileProvider>>> {
        let Some(path) = &self.file else { return Ok(None) };
        let p = KeyFileProvider::open(path).with_context(|| format!("--key-file {}", path.display()))?;
        Ok(Some(Arc::new(p)))
    }

    /// The encryption the key file stands for.
    pub fn encryption(&self) -> anyhow::Result<Option<Encryption>> {
        Ok(self.provider()?.map(|p| Encryption::new(p)))
    }

    /// Options for the tools' read-only opens: a modest cache, nothing created, the key if
    /// one was given.
    pub fn read_options(&self) -> anyhow::Result<Options> {
        Ok(Options {
            create_if_missing: false,
            block_cache_capacity: 8 << 20,
            encryption: self.encryption()?,
            ..Options::default()
        })
    }

    /// Options for a writable open of the existing database in `dir`: the key only if the
    /// database is encrypted (see the module docs); a note on stderr when a key was given
    /// for a plaintext database.
    pub fn write_options(&self, dir: &Path) -> anyhow::Result<Options> {
        let encryption = match is_encrypted(dir) {
            true => self.encryption()?,
            false => {
                if let Some(f) = &self.file {
                    eprintln!(
                        "note: {} is not encrypted; --key-file {} is not used (kho rekey --convert encrypts it)",
                        dir.display(),
                        f.display()
                    );
                }
                None
            }
        };
        Ok(Options { create_if_missing: false, encryption, ..Options::default() })
    }

    /// The key registry of the database in `dir`, loaded with the key file (every record
    /// authenticated): `None` for a database without one (plaintext); [`Error::KeyNeeded`]
    /// when it has one and no key file was given; [`Error::WrongKey`] when the key file's
    /// key does not open it.
    pub fn keyring(&self, dir: &Path) -> anyhow::Result<Option<Arc<Keyring>>> {
        if !is_encrypted(dir) {
            return Ok(None);
        }
        let Some(provider) = self.provider()? else {
            return Err(Error::KeyNeeded { path: dir.to_owned() }.into());
        };
        Ok(Some(Arc::new(Keyring::load(StdFs::shared(), dir, provider)?)))
    }
}

/// True if `dir` holds a key registry pointer (`KEYRING`): the database is encrypted.
pub fn is_encrypted(dir: &Path) -> bool {
    dir.join(KEYRING).exists()
}

/// The name of encryption scheme `scheme` (the byte in headers and footers).
pub fn scheme_name(scheme: u8) -> String {
    match scheme {
        SCHEME_AES256_GCM => "AES-256-GCM".to_owned(),
        s => format!("scheme {s}"),
    }
}

/// How a log, manifest or table is encrypted, for a dump line: `plain`, or
/// `AES-256-GCM, data key N`.
pub fn describe(header: Option<&SegmentHeader>) -> String {
    match header {
        None => "plain".to_owned(),
        Some(h) => format!("{}, data key {}", scheme_name(h.scheme), h.key_id),
    }
}

/// [`describe`] of a table, from its footer's key id (tables have one scheme).
pub fn describe_table(key_id: Option<u32>) -> String {
    match key_id {
        None => "plain".to_owned(),
        Some(id) => format!("{}, data key {id}", scheme_name(SCHEME_AES256_GCM)),
    }
}

/// The same as JSON: `{"scheme": "plain", "key_id": null}` or
/// `{"scheme": "AES-256-GCM", "key_id": N}`.
pub fn json(header: Option<&SegmentHeader>) -> serde_json::Value {
    match header {
        None => serde_json::json!({"scheme": "plain", "key_id": null}),
        Some(h) => serde_json::json!({"scheme": scheme_name(h.scheme), "key_id": h.key_id}),
    }
}

/// [`json`] of a table, from its footer's key id.
pub fn table_json(key_id: Option<u32>) -> serde_json::Value {
    match key_id {
        None => serde_json::json!({"scheme": "plain", "key_id": null}),
        Some(id) => serde_json::json!({"scheme": scheme_name(SCHEME_AES256_GCM), "key_id": id}),
    }
}

/// The engine error an error chain carries, looking inside record-layer errors too.
fn engine_error(e: &anyhow::Error) -> Option<&Error> {
    e.chain().find_map(|c| {
        c.downcast_ref::<Error>().or_else(|| c.downcast_ref::<kho::record::Error>().and_then(|r| r.engine()))
    })
}

/// The message for an error about keys — [`KEY_NEEDED`] or `wrong key: ...` — or `None`
/// for any other error. Either way the tool exits with status 2.
pub fn key_error(e: &anyhow::Error) -> Option<String> {
    match engine_error(e)? {
        Error::KeyNeeded { .. } => Some(KEY_NEEDED.to_owned()),
        Error::WrongKey(m) => Some(format!("wrong key: {m}")),
        _ => None,
    }
}

/// True if `e` is (or carries) [`Error::KeyNeeded`].
pub fn is_key_needed(e: &Error) -> bool {
    matches!(e, Error::KeyNeeded { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_errors_are_found_through_context_and_the_record_layer() {
        let needed = anyhow::Error::new(Error::KeyNeeded { path: "d".into() }).context("cannot open d read-only");
        assert_eq!(key_error(&needed).as_deref(), Some(KEY_NEEDED));
        let wrapped =
            anyhow::Error::new(kho::record::Error::from(Error::WrongKey("master key a, file holds b".into())))
                .context("reading");
        assert_eq!(key_error(&wrapped).as_deref(), Some("wrong key: master key a, file holds b"));
        assert_eq!(key_error(&anyhow::anyhow!("other")), None);
        assert_eq!(key_error(&anyhow::Error::new(Error::Closed)), None);
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(None), "plain");
        assert_eq!(describe_table(Some(3)), "AES-256-GCM, data key 3");
        assert_eq!(table_json(None)["scheme"], "plain");
        assert_eq!(table_json(Some(2))["key_id"], 2);
    }
}
