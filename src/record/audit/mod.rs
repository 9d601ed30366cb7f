//! The audit log and access policy of the record layer (`docs/privacy.md`): who read or
//! wrote whose records, for which declared purpose, in a tamper-evident log inside the
//! database; and which actors may do that at all.
//!
//! - `entry.rs`: [`AuditEntry`] and its stored value; people appear only as
//!   [`SubjectToken`]s (keyed hashes of their national IDs);
//! - `key.rs`: [`AuditKey`], the application's audit secret (subject tokens, checkpoint
//!   signatures);
//! - `chain.rs`: the hash chain, sealed at commit in commit order, and signed checkpoints;
//! - `log.rs`: reading, verifying and pruning the log;
//! - `policy.rs`: [`AccessPolicy`];
//! - `actor.rs`: [`ActorStore`], the store seen by one actor with one purpose — the
//!   audited way in.
//!
//! Keys: `A | position: u64 BE` -> entry (position = the sequence number of the entry's own
//! put, stamped at commit), `M|audit` -> [`AuditMeta`], `M|policy` -> the policy.
//!
//! Invariants: (1) a write's entry commits in the same batch as the write; a read's entry
//! is committed (group-committed, not synced) before any record is returned; a denied
//! access leaves a `Denied` entry and returns nothing; (2) entries are linked in commit
//! order, so changing, removing or reordering one breaks the chain at that entry; (3) once
//! a store keeps an audit log it always does: opening it for writing without the audit key
//! fails ([`Error::AuditKeyNeeded`]), and a read-only open refuses record reads (they
//! could not be audited); (4) nothing deletes entries but an admin's
//! [`ActorStore::prune_audit`], which is itself audited and signed.

pub(crate) mod actor;
mod chain;
mod entry;
mod key;
mod log;
mod policy;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use actor::ActorStore;
pub use entry::{
    AuditAction, AuditEntry, AuditOutcome, SubjectToken, CHAIN_HASH_LEN, MAX_ACTOR_LEN, MAX_PURPOSE_LEN,
    SUBJECT_TOKEN_LEN,
};
pub use key::{parse_public_key, AuditKey, PUBLIC_KEY_LEN};
pub(crate) use log::last_erasure_of;
pub use log::{AuditCheckpoint, AuditEntries, AuditProblem, AuditReport};
pub use policy::{AccessPolicy, AccessRule, ANY};

pub(crate) use entry::EntryDraft;
pub(crate) use policy::Right;

use super::error::{Error, Result};
use super::keys::meta_key;
use super::national_id::NationalId;
use crate::{Db, WriteBatch, WriteOptions};
use chain::{genesis_hash, AuditChain, ChainHead};

/// Tag of audit entries.
pub(crate) const TAG_AUDIT: u8 = b'A';
/// `M|audit`: present iff the store keeps an audit log.
pub(crate) const AUDIT_META_NAME: &str = "audit";
/// `M|policy`: the access policy, if one was set.
pub(crate) const POLICY_META_NAME: &str = "policy";
/// The actor of entries kho writes itself (checkpoints, enabling).
pub const SYSTEM_ACTOR: &str = "kho";

/// Who is accessing the store and why; every audited access carries one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccessContext {
    actor: String,
    purpose: String,
}

impl std::fmt::Debug for AccessContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessContext({:?} for {:?})", self.actor, self.purpose)
    }
}

impl AccessContext {
    /// An access context: `actor` (an agency, a service; 1 to [`MAX_ACTOR_LEN`] bytes) and a
    /// declared `purpose` (1 to [`MAX_PURPOSE_LEN`] bytes); neither may hold control
    /// characters. Never put personal data in either: they are stored as given.
    pub fn new(actor: impl Into<String>, purpose: impl Into<String>) -> Result<AccessContext> {
        let (actor, purpose) = (actor.into(), purpose.into());
        for (what, s, max) in [("actor", &actor, MAX_ACTOR_LEN), ("purpose", &purpose, MAX_PURPOSE_LEN)] {
            if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
                return Err(Error::invalid(format!(
                    "access context {what} must be 1 to {max} bytes without control characters"
                )));
            }
        }
        Ok(AccessContext { actor, purpose })
    }

    /// The actor.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The declared purpose.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
}

/// Options of the audit log (part of [`StoreOptions`](super::StoreOptions)).
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The audit key: turns the audit log on (persisted: once on, always on) and must be
    /// given, the same, at every later open for writing.
    pub key: AuditKey,
    /// Refuse every record access without an access context (the plain [`Store`](super::Store)
    /// methods); only [`ActorStore`]s get in. A store with an access policy always refuses
    /// them. Default: true.
    pub required: bool,
    /// Write a signed checkpoint after this many entries. Default: 1,024.
    pub checkpoint_every: u64,
}

impl AuditOptions {
    /// Auditing with `key`, required, a checkpoint every 1,024 entries.
    pub fn new(key: AuditKey) -> AuditOptions {
        AuditOptions { key, required: true, checkpoint_every: 1024 }
    }
}

/// The persisted state of the audit log (`M|audit`): `version: u8 (= 1) | public key: [u8;
/// 32] | anchor index: u64 BE | anchor hash: [u8; 32]`. The anchor is what the first
/// remaining entry links to: the genesis hash, or after a prune the hash of the last entry
/// pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuditMeta {
    pub(crate) public_key: [u8; PUBLIC_KEY_LEN],
    pub(crate) anchor_index: u64,
    pub(crate) anchor_hash: [u8; CHAIN_HASH_LEN],
}

const META_LEN: usize = 1 + PUBLIC_KEY_LEN + 8 + CHAIN_HASH_LEN;

impl AuditMeta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(META_LEN);
        v.push(1);
        v.extend_from_slice(&self.public_key);
        v.extend_from_slice(&self.anchor_index.to_be_bytes());
        v.extend_from_slice(&self.anchor_hash);
        v
    }

    pub(crate) fn decode(v: &[u8]) -> std::result::Result<AuditMeta, String> {
        if v.len() != META_LEN || v[0] != 1 {
            return Err(format!(
                "M|audit: {} bytes of version {:?}, expected {META_LEN} of version 1",
                v.len(),
                v.first()
            ));
        }
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        public_key.copy_from_slice(&v[1..33]);
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&v[33..41]);
        let mut anchor_hash = [0u8; CHAIN_HASH_LEN];
        anchor_hash.copy_from_slice(&v[41..]);
        Ok(AuditMeta { public_key, anchor_index: u64::from_be_bytes(idx), anchor_hash })
    }
}

/// A store's audit state.
pub(crate) struct Audit {
    /// The audit key, if given at open.
    pub(crate) key: Option<AuditKey>,
    /// The chain, when entries can be written (writable store, key given).
    pub(crate) chain: Option<Arc<AuditChain>>,
    pub(crate) required: bool,
    pub(crate) checkpoint_every: u64,
    /// The policy and its version, if one was set.
    pub(crate) policy: RwLock<Option<(u64, Arc<AccessPolicy>)>>,
    /// Serializes policy changes and prunes.
    pub(crate) admin: Mutex<()>,
    /// The database this audit writes to, released on drop (one audited writer per `Db`).
    pub(crate) claimed: Option<Db>,
}

impl Drop for Audit {
    fn drop(&mut self) {
        if let Some(db) = &self.claimed {
            db.release_audit_writer();
        }
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("required", &self.required).field("writable", &self.chain.is_some()).finish()
    }
}

fn corrupt(db: &Db, what: impl Into<String>) -> Error {
    Error::corruption_unknown_offset(db.path(), what)
}

impl Audit {
    /// The audit state of `db`: `None` if it keeps no audit log and `opts` does not turn
    /// one on (or cannot: read-only).
    pub(crate) fn open(db: &Db, opts: Option<&AuditOptions>, writable: bool) -> Result<Option<Audit>> {
        let meta = match db.get(meta_key(AUDIT_META_NAME))? {
            Some(v) => Some(AuditMeta::decode(&v).map_err(|w| corrupt(db, w))?),
            None => None,
        };
        let policy = match db.get(meta_key(POLICY_META_NAME))? {
            Some(v) => {
                let (version, p) = AccessPolicy::decode(&v).map_err(|w| corrupt(db, format!("M|policy: {w}")))?;
                Some((version, Arc::new(p)))
            }
            None => None,
        };
        let (meta, fresh) = match (meta, opts) {
            (None, None) => return Ok(None),
            (None, Some(_)) if !writable => return Ok(None),
            (None, Some(o)) => {
                let public_key = o.key.public_key();
                let meta = AuditMeta { public_key, anchor_index: 0, anchor_hash: genesis_hash(&public_key) };
                (meta, true)
            }
            (Some(_), None) if writable => return Err(Error::AuditKeyNeeded),
            (Some(m), _) => (m, false),
        };
        if let Some(o) = opts {
            if o.key.public_key() != meta.public_key {
                return Err(Error::AuditKeyMismatch);
            }
        }
        let chain = match opts.filter(|_| writable) {
            Some(o) => {
                if !db.claim_audit_writer() {
                    return Err(Error::invalid(
                        "an audited store is already open for writing on this database: share that Store (it is cheap to clone)",
                    ));
                }
                let chain = (|| -> Result<AuditChain> {
                    let head = if fresh {
                        ChainHead { next_index: 0, hash: meta.anchor_hash, since_checkpoint: 0 }
                    } else {
                        log::recover_head(db, &meta, o.checkpoint_every)?
                    };
                    Ok(AuditChain::new(head, o.key.signer()?))
                })();
                match chain {
                    Ok(c) => Some(Arc::new(c)),
                    Err(e) => {
                        db.release_audit_writer();
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let chain_claimed = chain.is_some();
        let audit = Audit {
            key: opts.map(|o| o.key.clone()),
            chain,
            required: opts.is_none_or(|o| o.required),
            checkpoint_every: opts.map_or(1024, |o| o.checkpoint_every.max(1)),
            policy: RwLock::new(policy),
            admin: Mutex::new(()),
            claimed: chain_claimed.then(|| db.clone()),
        };
        if fresh {
            let mut b = WriteBatch::new();
            b.put(meta_key(AUDIT_META_NAME), meta.encode());
            audit.append(&mut b, &audit.system_draft(AuditAction::Enable))?;
            db.write(b, &WriteOptions::synced())?;
        }
        Ok(Some(audit))
    }

    /// The current policy, if any.
    pub(crate) fn policy(&self) -> Option<Arc<AccessPolicy>> {
        self.policy.read().as_ref().map(|(_, p)| p.clone())
    }

    /// Whether an access without context is refused.
    pub(crate) fn refuses_unaudited(&self) -> bool {
        self.required || self.policy.read().is_some()
    }

    /// The token of `id` (needs the key, which every writable audited store has).
    pub(crate) fn token(&self, id: &NationalId) -> Option<SubjectToken> {
        self.key.as_ref().map(|k| k.subject_token(id))
    }

    /// Adds `draft` to `batch` as a sealed entry. Fails on a store that cannot write
    /// entries (read-only).
    pub(crate) fn append(&self, batch: &mut WriteBatch, draft: &EntryDraft) -> Result<()> {
        let chain = self.chain.as_ref().ok_or(Error::Engine(crate::Error::ReadOnly))?;
        let value = draft.encode(crate::record::feed::now_ms());
        batch.put_sealed(&[TAG_AUDIT], &value, chain.clone());
        Ok(())
    }

    /// Commits `draft` alone (group-committed, not synced: a read is not slowed by an fsync
    /// of its own), then a checkpoint if one is due.
    pub(crate) fn record(&self, db: &Db, draft: &EntryDraft) -> Result<()> {
        let mut b = WriteBatch::new();
        self.append(&mut b, draft)?;
        db.write(b, &WriteOptions::default())?;
        self.checkpoint_if_due(db)
    }

    /// Writes a checkpoint if `checkpoint_every` entries were sealed since the last.
    pub(crate) fn checkpoint_if_due(&self, db: &Db) -> Result<()> {
        match &self.chain {
            Some(c) if c.head().since_checkpoint >= self.checkpoint_every => {
                self.checkpoint(db, &WriteOptions::default()).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Writes a signed checkpoint and returns it: its own index and hash, read back from
    /// the log after the write (found by a random marker in its detail), never the head of
    /// the moment, which a later, unsynced entry may already have moved.
    pub(crate) fn checkpoint(&self, db: &Db, opts: &WriteOptions) -> Result<AuditCheckpoint> {
        let chain = self.chain.as_ref().ok_or(Error::Engine(crate::Error::ReadOnly))?;
        let mut draft = self.system_draft(AuditAction::Checkpoint);
        let mut marker = [0u8; 8];
        crate::crypt::fill_random(&mut marker)?;
        draft.detail.splice(0..0, marker);
        let mut b = WriteBatch::new();
        self.append(&mut b, &draft)?;
        db.write(b, opts)?;
        let (entries, head_hash) = log::find_checkpoint(db, &marker)?
            .ok_or_else(|| corrupt(db, "the checkpoint just written is not in the audit log"))?;
        Ok(AuditCheckpoint { entries, head_hash, public_key: chain.public_key_array() })
    }

    /// An entry kho writes itself: a checkpoint (with room for its signature) or enabling.
    pub(crate) fn system_draft(&self, action: AuditAction) -> EntryDraft {
        let detail = if action == AuditAction::Checkpoint { vec![0; entry::SIGNATURE_LEN] } else { Vec::new() };
        EntryDraft {
            action,
            outcome: AuditOutcome::Allowed,
            actor: SYSTEM_ACTOR.into(),
            purpose: action.as_str().into(),
            collections: Vec::new(),
            id_prefix: None,
            subjects: Vec::new(),
            count: 0,
            detail,
        }
    }

    /// A draft for an access by `ctx`.
    pub(crate) fn draft(
        ctx: &AccessContext,
        action: AuditAction,
        outcome: AuditOutcome,
        collections: Vec<String>,
    ) -> EntryDraft {
        EntryDraft {
            action,
            outcome,
            actor: ctx.actor.clone(),
            purpose: ctx.purpose.clone(),
            collections,
            id_prefix: None,
            subjects: Vec::new(),
            count: 0,
            detail: Vec::new(),
        }
    }
}

impl super::Store {
    /// Whether this store keeps an audit log.
    pub fn audit_enabled(&self) -> bool {
        self.inner.audit.is_some()
    }

    /// The store seen by `ctx`: every access through it is checked against the access
    /// policy and recorded in the audit log (on a store without an audit log, it behaves as
    /// the store itself).
    pub fn as_actor(&self, ctx: AccessContext) -> ActorStore {
        ActorStore::new(self.clone(), ctx)
    }

    /// Writes a signed checkpoint of the audit log now (synced) and returns it: keep it
    /// outside the database to detect a later truncation of the log.
    pub fn audit_checkpoint(&self) -> Result<AuditCheckpoint> {
        let audit = self.inner.audit.as_ref().ok_or(Error::AuditOff)?;
        audit.checkpoint(&self.inner.db, &WriteOptions::synced())
    }

    /// The access policy and its version (1 for the first policy set), if one was set.
    pub fn access_policy(&self) -> Option<(u64, AccessPolicy)> {
        let audit = self.inner.audit.as_ref()?;
        let p = audit.policy.read();
        p.as_ref().map(|(v, p)| (*v, (**p).clone()))
    }
}
