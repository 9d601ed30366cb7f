//! Reading the audit log ([`AuditEntries`]), verifying it ([`Store::verify_audit`]) and
//! pruning it ([`ActorStore::prune_audit`](super::ActorStore::prune_audit)).
//!
//! Verification walks every entry from the anchor in position order and checks, for each:
//! it decodes; its index is the next one; it links to the hash of the entry before it; a
//! checkpoint's signature verifies under the public key. The first entry that fails is the
//! one named (a changed entry breaks its successor's link, so the report names the entry
//! changed or the first one after a removal or reordering). After a prune, the anchor in
//! `M|audit` must be the one a `Prune` entry recorded, and a signed checkpoint must follow
//! that entry. Entries after the last checkpoint are reported as unsigned: a hash chain
//! alone cannot show that its tail was cut, so keep a recent [`AuditCheckpoint`] outside
//! the database and pass it to [`Store::verify_audit`].

use bytes::Bytes;
use ring::signature::{UnparsedPublicKey, ED25519};

use super::chain::{checkpoint_message, entry_hash, ChainHead};
use super::entry::{decode_entry, AuditAction, AuditEntry, CHAIN_HASH_LEN, SIGNATURE_LEN};
use super::key::PUBLIC_KEY_LEN;
use super::{corrupt, AccessContext, Audit, AuditMeta, AuditOutcome, Right, AUDIT_META_NAME, TAG_AUDIT};
use crate::record::error::{Error, Result};
use crate::record::keys::meta_key;
use crate::record::Store;
use crate::{Db, DbIterator, SeqNo, WriteBatch, WriteOptions};

/// Most problems a report lists.
pub const MAX_AUDIT_PROBLEMS: usize = 100;

/// A point of the chain to keep outside the database: after `entries` entries, the last
/// one hashed to `head_hash`; checkpoints are signed under `public_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// Entries in the chain up to this point (the last one's index + 1).
    pub entries: u64,
    /// The hash of the entry with index `entries - 1`.
    pub head_hash: [u8; CHAIN_HASH_LEN],
    /// The checkpoint-verifying key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
}

/// One problem verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    /// The entry's position (its key).
    pub position: SeqNo,
    /// The index the chain expected there.
    pub expected_index: u64,
    /// What is wrong.
    pub what: String,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// Entries after the last verified checkpoint (not yet vouched for by a signature).
    pub unsigned_tail: u64,
    /// The first index present (the anchor: 0 unless pruned).
    pub first_index: u64,
    /// Problems, in log order (at most [`MAX_AUDIT_PROBLEMS`]); the first names the first
    /// bad entry.
    pub problems: Vec<AuditProblem>,
    /// True when the public key checked against was given by the caller, not taken from
    /// the database itself.
    pub key_pinned: bool,
}

impl AuditReport {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

fn parse_entry_key(k: &[u8]) -> Option<SeqNo> {
    match k.split_first() {
        Some((&TAG_AUDIT, p)) if p.len() == 8 => Some(SeqNo::from_be_bytes(p.try_into().ok()?)),
        _ => None,
    }
}

/// Every entry of the log in position order, raw.
fn raw_entries(db: &Db) -> Result<DbIterator> {
    Ok(db.range(vec![TAG_AUDIT]..vec![TAG_AUDIT + 1])?)
}

/// The newest entry satisfying `pred`, searched from the end of the log (what is looked
/// for was just written), with its raw value.
fn find_last(db: &Db, pred: impl Fn(&AuditEntry) -> bool) -> Result<Option<(AuditEntry, Bytes)>> {
    let mut iter = raw_entries(db)?;
    while let Some(kv) = iter.next_back() {
        let (k, v) = kv?;
        let Some(position) = parse_entry_key(&k) else { continue };
        if let Ok(e) = decode_entry(position, &v) {
            if pred(&e) {
                return Ok(Some((e, v)));
            }
        }
    }
    Ok(None)
}

/// The position of the newest `Erase` entry naming `subject` (an erasure's entry is among
/// the last when its receipt is made).
pub(crate) fn last_erasure_of(db: &Db, subject: &super::SubjectToken) -> Result<Option<SeqNo>> {
    let found = find_last(db, |e| e.action == AuditAction::Erase && e.subjects.contains(subject))?;
    Ok(found.map(|(e, _)| e.position))
}

/// The checkpoint whose detail starts with `marker`: the number of entries through it and
/// its hash.
pub(crate) fn find_checkpoint(db: &Db, marker: &[u8]) -> Result<Option<(u64, [u8; CHAIN_HASH_LEN])>> {
    let found = find_last(db, |e| e.action == AuditAction::Checkpoint && e.detail.starts_with(marker))?;
    Ok(found.map(|(e, v)| (e.index + 1, entry_hash(e.position, &v))))
}

/// The chain head after the last entry on disk (or the anchor, if there is none).
pub(crate) fn recover_head(db: &Db, meta: &AuditMeta, checkpoint_every: u64) -> Result<ChainHead> {
    let Some(kv) = raw_entries(db)?.next_back() else {
        return Ok(ChainHead { next_index: meta.anchor_index, hash: meta.anchor_hash, since_checkpoint: 0 });
    };
    let (k, v) = kv?;
    let position = parse_entry_key(&k).ok_or_else(|| corrupt(db, "malformed audit entry key"))?;
    let e = decode_entry(position, &v).map_err(|w| corrupt(db, format!("last audit entry: {w}")))?;
    let since_checkpoint = if e.action == AuditAction::Checkpoint { 0 } else { checkpoint_every };
    Ok(ChainHead { next_index: e.index + 1, hash: entry_hash(position, &v), since_checkpoint })
}

/// The audit log's entries, in order; see [`Store::audit_entries`].
pub struct AuditEntries {
    iter: DbIterator,
    db: Db,
}

impl std::fmt::Debug for AuditEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditEntries").finish_non_exhaustive()
    }
}

impl Iterator for AuditEntries {
    type Item = Result<AuditEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = match self.iter.next()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(e.into())),
        };
        Some(match parse_entry_key(&k) {
            Some(p) => decode_entry(p, &v).map_err(|w| corrupt(&self.db, format!("audit entry at position {p}: {w}"))),
            None => Err(corrupt(&self.db, "malformed audit entry key")),
        })
    }
}

fn read_meta(db: &Db) -> Result<Option<AuditMeta>> {
    match db.get(meta_key(AUDIT_META_NAME))? {
        Some(v) => Ok(Some(AuditMeta::decode(&v).map_err(|w| corrupt(db, w))?)),
        None => Ok(None),
    }
}

/// The anchor a prune entry records: `anchor index: u64 BE | anchor hash | pruned: u64 BE`.
fn prune_detail(anchor_index: u64, anchor_hash: &[u8; CHAIN_HASH_LEN], pruned: u64) -> Vec<u8> {
    let mut d = anchor_index.to_be_bytes().to_vec();
    d.extend_from_slice(anchor_hash);
    d.extend_from_slice(&pruned.to_be_bytes());
    d
}

fn parse_prune_detail(d: &[u8]) -> Option<(u64, [u8; CHAIN_HASH_LEN])> {
    if d.len() != 8 + CHAIN_HASH_LEN + 8 {
        return None;
    }
    Some((u64::from_be_bytes(d[..8].try_into().ok()?), d[8..8 + CHAIN_HASH_LEN].try_into().ok()?))
}

impl Store {
    /// Every entry of the audit log, oldest first, from one snapshot. Works on any store
    /// that keeps one, read-only and without the audit key too (entries name people only by
    /// token).
    pub fn audit_entries(&self) -> Result<AuditEntries> {
        if self.inner.audit.is_none() && read_meta(&self.inner.db)?.is_none() {
            return Err(Error::AuditOff);
        }
        Ok(AuditEntries { iter: raw_entries(&self.inner.db)?, db: self.inner.db.clone() })
    }

    /// Checks the whole audit log (see the module docs): links, indexes, checkpoint
    /// signatures under `public_key` (or, if `None`, the key the database names, which a
    /// forger could have replaced: pin the key for a real audit), and, if `pinned` is given,
    /// that the log still holds that checkpoint's entry unchanged.
    pub fn verify_audit(
        &self,
        public_key: Option<[u8; PUBLIC_KEY_LEN]>,
        pinned: Option<&AuditCheckpoint>,
    ) -> Result<AuditReport> {
        let db = &self.inner.db;
        let meta = read_meta(db)?.ok_or(Error::AuditOff)?;
        let mut report =
            AuditReport { first_index: meta.anchor_index, key_pinned: public_key.is_some(), ..Default::default() };
        let key = public_key.unwrap_or(meta.public_key);
        let problem = |report: &mut AuditReport, position, expected_index, what: String| {
            if report.problems.len() < MAX_AUDIT_PROBLEMS {
                report.problems.push(AuditProblem { position, expected_index, what });
            }
        };
        if key != meta.public_key {
            problem(
                &mut report,
                0,
                meta.anchor_index,
                "the database names another audit public key than the one given".into(),
            );
        }
        let verifier = UnparsedPublicKey::new(&ED25519, key);
        let (mut next_index, mut hash) = (meta.anchor_index, meta.anchor_hash);
        // The prune entry that recorded the current anchor, and whether a checkpoint signed
        // after it.
        let mut anchor_vouched = meta.anchor_index == 0;
        let mut prune_seen = false;
        let mut pinned_found = pinned.is_none();
        for kv in raw_entries(db)? {
            let (k, v) = kv?;
            let Some(position) = parse_entry_key(&k) else {
                problem(&mut report, 0, next_index, "malformed audit entry key".into());
                continue;
            };
            report.entries += 1;
            let e = match decode_entry(position, &v) {
                Ok(e) => e,
                Err(w) => {
                    problem(&mut report, position, next_index, w);
                    hash = entry_hash(position, &v);
                    next_index += 1;
                    continue;
                }
            };
            if e.index != next_index {
                problem(
                    &mut report,
                    position,
                    next_index,
                    format!("index {} where {next_index} was expected: entries removed or reordered", e.index),
                );
            } else if e.prev_hash != hash {
                problem(
                    &mut report,
                    position,
                    next_index,
                    "does not link to the entry before it: that entry (or this one) was changed, removed or reordered"
                        .into(),
                );
            }
            match e.action {
                AuditAction::Checkpoint => {
                    let sig = e.detail.get(e.detail.len().saturating_sub(SIGNATURE_LEN)..).unwrap_or_default();
                    let msg = checkpoint_message(e.index, position, &e.prev_hash);
                    if sig.len() == SIGNATURE_LEN && verifier.verify(&msg, sig).is_ok() {
                        report.checkpoints += 1;
                        report.unsigned_tail = 0;
                        anchor_vouched |= prune_seen;
                    } else {
                        problem(&mut report, position, next_index, "checkpoint signature does not verify".into());
                    }
                }
                AuditAction::Prune => {
                    report.unsigned_tail += 1;
                    if parse_prune_detail(&e.detail) == Some((meta.anchor_index, meta.anchor_hash)) {
                        prune_seen = true;
                    }
                }
                _ => report.unsigned_tail += 1,
            }
            hash = entry_hash(position, &v);
            next_index = e.index + 1;
            if let Some(p) = pinned {
                if p.entries == next_index && p.head_hash == hash {
                    pinned_found = true;
                }
            }
        }
        if !anchor_vouched {
            problem(
                &mut report,
                0,
                meta.anchor_index,
                format!("entries before index {} are gone, and no signed prune entry records it", meta.anchor_index),
            );
        }
        if !pinned_found {
            problem(
                &mut report,
                0,
                next_index,
                "the pinned checkpoint's entry is gone or changed: the log was cut or rewritten".into(),
            );
        }
        Ok(report)
    }
}

impl Audit {
    /// Deletes every entry older than `before_ms` (a prefix of the log: it stops at the first
    /// entry at or after it), moves the anchor, and records a `Prune` entry and a signed
    /// checkpoint in the same synced batch. Returns how many entries were deleted.
    pub(crate) fn prune(
        &self,
        db: &Db,
        ctx: &AccessContext,
        before_ms: u64,
        _admin: parking_lot::MutexGuard<'_, ()>,
    ) -> Result<u64> {
        let meta = read_meta(db)?.ok_or(Error::AuditOff)?;
        let mut batch = WriteBatch::new();
        let mut last: Option<(u64, [u8; CHAIN_HASH_LEN])> = None;
        let mut pruned = 0u64;
        for kv in raw_entries(db)? {
            let (k, v) = kv?;
            let position = parse_entry_key(&k).ok_or_else(|| corrupt(db, "malformed audit entry key"))?;
            let e = decode_entry(position, &v)
                .map_err(|w| corrupt(db, format!("audit entry at position {position}: {w}")))?;
            if e.time_ms >= before_ms {
                break;
            }
            batch.delete(Bytes::copy_from_slice(&k));
            last = Some((e.index + 1, entry_hash(position, &v)));
            pruned += 1;
        }
        let Some((anchor_index, anchor_hash)) = last else {
            return Ok(0);
        };
        let meta = AuditMeta { anchor_index, anchor_hash, ..meta };
        batch.put(meta_key(AUDIT_META_NAME), meta.encode());
        let mut draft = Audit::draft(ctx, AuditAction::Prune, AuditOutcome::Allowed, Vec::new());
        draft.count = u32::try_from(pruned).unwrap_or(u32::MAX);
        draft.detail = prune_detail(anchor_index, &anchor_hash, pruned);
        self.append(&mut batch, &draft)?;
        self.append(&mut batch, &self.system_draft(AuditAction::Checkpoint))?;
        db.write(batch, &WriteOptions::synced())?;
        Ok(pruned)
    }

    /// Whether `ctx` may prune or change the policy: an admin rule, or any actor while no
    /// policy is set.
    pub(crate) fn may_administer(&self, ctx: &AccessContext) -> bool {
        self.policy().is_none_or(|p| p.allows_any(ctx, Right::Admin))
    }
}
