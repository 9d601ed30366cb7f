//! The audit log's hash chain: [`AuditChain`] links every entry to the hash of the one
//! before it, at commit, in commit order (it is the [`CommitSeal`] of audit entries), and
//! signs checkpoints; [`entry_hash`] and [`checkpoint_message`] define what is hashed and
//! signed (`docs/privacy.md`, "Audit log format").
//!
//! Invariants: the entry with index `i + 1` holds `entry_hash` of the entry with index `i`
//! (the first entry, or the first after a prune, holds the anchor's hash); indexes have no
//! gaps; a checkpoint at index `k` carries an Ed25519 signature over `k`, its position and
//! the hash it links to, so it vouches for every entry before it. The head (next index and
//! last hash) lives in memory and is rebuilt from the last entry on disk at open: a batch
//! that was sealed but never logged fails the database, so the in-memory head never runs
//! ahead of a database that stays open.

use parking_lot::Mutex;
use ring::digest::{Context, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::entry::{AuditAction, CHAIN_HASH_LEN, INDEX_AT, PREV_HASH_AT, SIGNATURE_LEN};
use crate::batch::CommitSeal;
use crate::SeqNo;

/// The hash of the entry stored at `position` with value `value` (SHA-256 over a domain
/// label, the position and the value as stored).
pub(crate) fn entry_hash(position: SeqNo, value: &[u8]) -> [u8; CHAIN_HASH_LEN] {
    let mut c = Context::new(&SHA256);
    c.update(b"kho audit entry v1\0");
    c.update(&position.to_be_bytes());
    c.update(value);
    let mut h = [0u8; CHAIN_HASH_LEN];
    h.copy_from_slice(c.finish().as_ref());
    h
}

/// The hash the first entry of a new log links to: bound to the checkpoint-signing key, so
/// a log cannot be passed off under another key from its first entry on.
pub(crate) fn genesis_hash(public_key: &[u8]) -> [u8; CHAIN_HASH_LEN] {
    let mut c = Context::new(&SHA256);
    c.update(b"kho audit genesis v1\0");
    c.update(public_key);
    let mut h = [0u8; CHAIN_HASH_LEN];
    h.copy_from_slice(c.finish().as_ref());
    h
}

/// What a checkpoint at `index` and `position`, linking to `prev_hash`, signs.
pub(crate) fn checkpoint_message(index: u64, position: SeqNo, prev_hash: &[u8; CHAIN_HASH_LEN]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + 16 + CHAIN_HASH_LEN);
    m.extend_from_slice(b"kho audit checkpoint v1\0");
    m.extend_from_slice(&index.to_be_bytes());
    m.extend_from_slice(&position.to_be_bytes());
    m.extend_from_slice(prev_hash);
    m
}

/// The chain's head: what the next entry gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainHead {
    /// The next entry's index.
    pub(crate) next_index: u64,
    /// The hash the next entry links to.
    pub(crate) hash: [u8; CHAIN_HASH_LEN],
    /// Entries sealed since the last checkpoint.
    pub(crate) since_checkpoint: u64,
}

/// Seals audit entries at commit (see the module docs).
pub(crate) struct AuditChain {
    head: Mutex<ChainHead>,
    signer: Ed25519KeyPair,
}

impl std::fmt::Debug for AuditChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditChain").field("head", &*self.head.lock()).finish_non_exhaustive()
    }
}

impl AuditChain {
    pub(crate) fn new(head: ChainHead, signer: Ed25519KeyPair) -> AuditChain {
        AuditChain { head: Mutex::new(head), signer }
    }

    /// The current head.
    pub(crate) fn head(&self) -> ChainHead {
        *self.head.lock()
    }

    /// The checkpoint-signing public key.
    pub(crate) fn public_key_array(&self) -> [u8; super::key::PUBLIC_KEY_LEN] {
        let mut k = [0u8; super::key::PUBLIC_KEY_LEN];
        k.copy_from_slice(self.signer.public_key().as_ref());
        k
    }
}

impl CommitSeal for AuditChain {
    fn seal(&self, seq: SeqNo, value: &mut [u8]) {
        let mut head = self.head.lock();
        // Values come from `EntryDraft::encode`, which always holds the fixed fields; a
        // checkpoint's draft ends with room for the signature.
        if value.len() < PREV_HASH_AT + CHAIN_HASH_LEN {
            return;
        }
        value[INDEX_AT..INDEX_AT + 8].copy_from_slice(&head.next_index.to_be_bytes());
        value[PREV_HASH_AT..PREV_HASH_AT + CHAIN_HASH_LEN].copy_from_slice(&head.hash);
        let checkpoint = value[1] == AuditAction::CHECKPOINT_CODE;
        if checkpoint && value.len() >= SIGNATURE_LEN {
            let sig = self.signer.sign(&checkpoint_message(head.next_index, seq, &head.hash));
            let at = value.len() - SIGNATURE_LEN;
            value[at..].copy_from_slice(sig.as_ref());
        }
        head.hash = entry_hash(seq, value);
        head.next_index += 1;
        head.since_checkpoint = if checkpoint { 0 } else { head.since_checkpoint + 1 };
    }
}
