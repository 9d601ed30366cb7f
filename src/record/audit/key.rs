//! [`AuditKey`]: the application's audit secret and the two keys derived from it — the
//! subject key (HMAC-SHA256: national ID -> [`SubjectToken`]) and the checkpoint-signing
//! key (Ed25519).
//!
//! The audit key is separate from the encryption master key on purpose: whoever operates
//! the database (and holds the encryption key) can read records but cannot forge a signed
//! checkpoint, and an auditor verifying the log needs only the public key
//! ([`AuditKey::public_key`]). Derivation: HKDF-SHA256 over the 32-byte secret with the
//! labels `kho audit subject v1` and `kho audit checkpoint v1`.

use std::path::Path;

use ring::hkdf::{Salt, HKDF_SHA256};
use ring::hmac;
use ring::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::entry::{SubjectToken, SUBJECT_TOKEN_LEN};
use crate::crypt::{KeyFileProvider, KeyProvider, SecretKey, KEY_LEN};
use crate::record::national_id::NationalId;
use crate::Result;

/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// The audit secret's derived keys. Never printed (`Debug` shows the public key only).
pub struct AuditKey {
    subject: hmac::Key,
    seed: Zeroizing<[u8; KEY_LEN]>,
    public_key: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(public {})", hex(&self.public_key))
    }
}

impl Clone for AuditKey {
    fn clone(&self) -> Self {
        AuditKey { subject: self.subject.clone(), seed: self.seed.clone(), public_key: self.public_key }
    }
}

fn derive(secret: &SecretKey, label: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let bug = |what: &str| crate::Error::InvalidArgument(format!("audit key derivation failed: {what}"));
    let prk = Salt::new(HKDF_SHA256, b"kho audit key").extract(secret.bytes());
    let info = [label];
    let okm = prk.expand(&info, HKDF_SHA256).map_err(|_| bug("expand"))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    okm.fill(&mut *out).map_err(|_| bug("fill"))?;
    Ok(out)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuditKey {
    /// The audit keys derived from a 32-byte secret.
    pub fn from_secret(secret: &SecretKey) -> Result<AuditKey> {
        let subject_key = derive(secret, b"kho audit subject v1")?;
        let seed = derive(secret, b"kho audit checkpoint v1")?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&*seed)
            .map_err(|_| crate::Error::InvalidArgument("audit signing key rejected".into()))?;
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        public_key.copy_from_slice(pair.public_key().as_ref());
        Ok(AuditKey { subject: hmac::Key::new(hmac::HMAC_SHA256, &*subject_key), seed, public_key })
    }

    /// The audit keys from a key file (the format of the encryption key file, see
    /// [`KeyFileProvider`]; create one with [`KeyFileProvider::create`] or
    /// `kho demo --audit-key-file`).
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<AuditKey> {
        let provider = KeyFileProvider::open(path)?;
        let secret = provider.master_key(&provider.current_master_id())?;
        AuditKey::from_secret(&secret)
    }

    /// The token standing for `id` in the audit log.
    pub fn subject_token(&self, id: &NationalId) -> SubjectToken {
        let tag = hmac::sign(&self.subject, id.as_bytes());
        let mut t = [0u8; SUBJECT_TOKEN_LEN];
        t.copy_from_slice(&tag.as_ref()[..SUBJECT_TOKEN_LEN]);
        SubjectToken(t)
    }

    /// The checkpoint-verifying public key (Ed25519), safe to publish.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public_key
    }

    /// The public key as lowercase hex (what `kho audit verify --public-key` takes).
    pub fn public_key_hex(&self) -> String {
        hex(&self.public_key)
    }

    pub(crate) fn signer(&self) -> Result<Ed25519KeyPair> {
        Ed25519KeyPair::from_seed_unchecked(&*self.seed)
            .map_err(|_| crate::Error::InvalidArgument("audit signing key rejected".into()))
    }
}

/// Parses a public key given as 64 hex digits.
pub fn parse_public_key(s: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
    let s = s.trim();
    if s.len() != 2 * PUBLIC_KEY_LEN {
        return None;
    }
    let mut out = [0u8; PUBLIC_KEY_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_the_key_and_the_id_and_nothing_prints_a_secret() {
        let a = AuditKey::from_secret(&SecretKey::from_bytes([1; KEY_LEN])).unwrap();
        let b = AuditKey::from_secret(&SecretKey::from_bytes([2; KEY_LEN])).unwrap();
        let id = NationalId::parse("079190001234").unwrap();
        let other = NationalId::parse("079190001235").unwrap();
        assert_eq!(a.subject_token(&id), a.clone().subject_token(&id));
        assert_ne!(a.subject_token(&id), b.subject_token(&id));
        assert_ne!(a.subject_token(&id), a.subject_token(&other));
        assert_ne!(a.public_key(), b.public_key());
        assert_eq!(parse_public_key(&a.public_key_hex()), Some(a.public_key()));
        assert_eq!(parse_public_key("zz"), None);
        let shown = format!("{a:?}");
        assert_eq!(shown, format!("AuditKey(public {})", a.public_key_hex()));
    }
}
