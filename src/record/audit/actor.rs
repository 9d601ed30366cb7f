//! [`ActorStore`]: the store as one actor with one declared purpose sees it — the audited
//! way in. Every access is checked against the access policy (a refusal is recorded as a
//! `Denied` entry and returns nothing) and recorded in the audit log: a write's entry in the
//! write's own batch, a read's entry committed before the records are returned.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entry::{AuditAction, AuditOutcome};
use super::policy::{AccessPolicy, Right};
use super::{AccessContext, Audit, EntryDraft, POLICY_META_NAME};
use crate::record::error::{Error, Result};
use crate::record::keys::meta_key;
use crate::record::national_id::NationalId;
use crate::record::query::{IdQuery, IndexIter, PersonIter, RecordIter};
use crate::record::store::StoreInner;
use crate::record::value::Record;
use crate::record::{Erasure, Store, StoreBatch};
use crate::{WriteBatch, WriteOptions};

/// What an access touches, for the policy.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// One collection.
    One(&'a str),
    /// Every collection (erasure, ID-prefix queries): needs a rule with `*`.
    All,
}

impl StoreInner {
    /// For the plain (context-free) store methods: refuses when the store requires an
    /// access context.
    pub(crate) fn check_unaudited(&self) -> Result<()> {
        match &self.audit {
            Some(a) if a.refuses_unaudited() => Err(Error::AccessContextRequired),
            _ => Ok(()),
        }
    }

    /// Checks `ctx`'s `right` on `scope` against the policy; on refusal records a `Denied`
    /// entry (naming `subject`, if known) and fails with [`Error::AccessDenied`].
    pub(crate) fn authorize(
        &self,
        ctx: &AccessContext,
        right: Right,
        scope: Scope<'_>,
        action: AuditAction,
        subject: Option<&NationalId>,
    ) -> Result<()> {
        let Some(audit) = &self.audit else { return Ok(()) };
        let allowed = match (audit.policy(), scope) {
            (None, _) => true,
            (Some(p), Scope::One(c)) => p.allows(ctx, right, c),
            (Some(p), Scope::All) => p.allows_all(ctx, right),
        };
        if allowed {
            return Ok(());
        }
        let collections = match scope {
            Scope::One(c) => vec![c.to_string()],
            Scope::All => Vec::new(),
        };
        let mut d = Audit::draft(ctx, action, AuditOutcome::Denied, collections.clone());
        d.subjects.extend(subject.and_then(|id| audit.token(id)));
        // A read-only store cannot record the refusal; the refusal stands.
        let _ = audit.record(&self.db, &d);
        Err(Error::AccessDenied { actor: ctx.actor().to_string(), action: action.as_str(), collections })
    }

    /// Records an allowed read (before its result is returned).
    fn record_read(&self, draft: EntryDraft) -> Result<()> {
        match &self.audit {
            Some(a) => a.record(&self.db, &draft),
            None => Ok(()),
        }
    }
}

/// The store seen by one actor with one purpose; see [`Store::as_actor`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ActorStore {
    store: Store,
    ctx: AccessContext,
}

impl ActorStore {
    pub(crate) fn new(store: Store, ctx: AccessContext) -> ActorStore {
        ActorStore { store, ctx }
    }

    /// The access context.
    pub fn context(&self) -> &AccessContext {
        &self.ctx
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn inner(&self) -> &StoreInner {
        &self.store.inner
    }

    fn draft(&self, action: AuditAction, collections: Vec<String>) -> EntryDraft {
        Audit::draft(&self.ctx, action, AuditOutcome::Allowed, collections)
    }

    fn token_of(&self, id: &NationalId) -> Option<super::SubjectToken> {
        self.inner().audit.as_ref().and_then(|a| a.token(id))
    }

    /// [`Store::get_raw`], checked and audited.
    pub fn get_raw(&self, collection: &str, pk: impl AsRef<[u8]>) -> Result<Option<Record>> {
        self.inner().authorize(&self.ctx, Right::Read, Scope::One(collection), AuditAction::Get, None)?;
        let rec = self.store.read_raw(collection, pk.as_ref())?;
        let mut d = self.draft(AuditAction::Get, vec![collection.to_string()]);
        if let Some(r) = &rec {
            d.subjects.extend(self.token_of(&r.id));
            d.count = 1;
        }
        self.inner().record_read(d)?;
        Ok(rec)
    }

    /// [`Store::get`], checked and audited.
    pub fn get<T: DeserializeOwned>(&self, collection: &str, pk: impl AsRef<[u8]>) -> Result<Option<Record<T>>> {
        self.get_raw(collection, pk)?.map(Record::into_typed).transpose()
    }

    /// [`Store::person`], checked and audited: only the records of collections the policy
    /// lets this actor read (all, without a policy); denied if it may read none.
    pub fn person(&self, id: &NationalId) -> Result<Vec<Record>> {
        let policy = self.inner().audit.as_ref().and_then(Audit::policy);
        if let Some(p) = &policy {
            if !p.allows_any(&self.ctx, Right::Read) {
                return self
                    .inner()
                    .authorize(&self.ctx, Right::Read, Scope::All, AuditAction::Person, Some(id))
                    .map(|()| Vec::new());
            }
        }
        let snap = self.inner().db.snapshot();
        let mut records = self.store.person_at(&snap, id)?;
        if let Some(p) = &policy {
            records.retain(|r| p.allows(&self.ctx, Right::Read, &r.collection));
        }
        let mut collections: Vec<String> = records.iter().map(|r| r.collection.to_string()).collect();
        collections.dedup();
        let mut d = self.draft(AuditAction::Person, collections);
        d.subjects.extend(self.token_of(id));
        d.count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        self.inner().record_read(d)?;
        Ok(records)
    }

    /// [`Store::scan`], checked and audited (the entry is written before the first record
    /// is returned; its count is 0).
    pub fn scan(&self, collection: &str) -> Result<RecordIter> {
        self.inner().authorize(&self.ctx, Right::Read, Scope::One(collection), AuditAction::Scan, None)?;
        let iter = self.store.scan_unchecked(collection)?;
        self.inner().record_read(self.draft(AuditAction::Scan, vec![collection.to_string()]))?;
        Ok(iter)
    }

    /// [`Store::query`], checked (needs read on every collection) and audited with the
    /// query's ID prefix.
    pub fn query(&self, query: &IdQuery) -> Result<IndexIter> {
        self.inner().authorize(&self.ctx, Right::Read, Scope::All, AuditAction::Query, None)?;
        let iter = self.store.query_unchecked(query)?;
        let mut d = self.draft(AuditAction::Query, Vec::new());
        let prefixes: Vec<String> =
            query.prefixes()?.iter().map(|p| String::from_utf8_lossy(&p[1..]).into_owned()).collect();
        d.id_prefix = Some(prefixes.join(",")).filter(|s| !s.is_empty());
        self.inner().record_read(d)?;
        Ok(iter)
    }

    /// [`Store::persons`], checked and audited as [`Self::query`].
    pub fn persons(&self, query: &IdQuery) -> Result<PersonIter> {
        Ok(PersonIter::new(self.query(query)?))
    }

    /// [`Store::insert`], checked; the entry commits with the record.
    pub fn insert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<()> {
        let mut b = self.batch();
        b.insert(collection, pk, id, payload)?;
        b.sync(self.inner().opts.write_options.sync);
        b.commit()
    }

    /// [`Store::upsert`], checked; the entry commits with the record.
    pub fn upsert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        pk: impl AsRef<[u8]>,
        id: &NationalId,
        payload: &T,
    ) -> Result<Option<NationalId>> {
        self.inner().authorize(&self.ctx, Right::Write, Scope::One(collection), AuditAction::Write, Some(id))?;
        let op = self.store.prepare_put(collection, pk.as_ref(), id, payload, false)?;
        let d = self.draft(AuditAction::Write, vec![collection.to_string()]);
        let before = self.inner().apply_audited(vec![op], &self.inner().opts.write_options, None, Some(d))?;
        Ok(before.into_iter().next().flatten())
    }

    /// [`Store::delete`], checked; the entry commits with the delete.
    pub fn delete(&self, collection: &str, pk: impl AsRef<[u8]>) -> Result<Option<NationalId>> {
        self.inner().authorize(&self.ctx, Right::Write, Scope::One(collection), AuditAction::Write, None)?;
        self.inner().check_writable()?;
        let Some(cid) = self.inner().catalog.lookup(collection) else {
            return Ok(None);
        };
        let op = crate::record::write::Op::Delete { cid, pk: bytes::Bytes::copy_from_slice(pk.as_ref()) };
        let d = self.draft(AuditAction::Write, vec![collection.to_string()]);
        let before = self.inner().apply_audited(vec![op], &self.inner().opts.write_options, None, Some(d))?;
        Ok(before.into_iter().next().flatten())
    }

    /// A batch whose commit is checked (write on every collection it touches) and audited
    /// (one entry naming every person it touches, in the same atomic write).
    pub fn batch(&self) -> StoreBatch {
        self.store.batch_as(Some(self.ctx.clone()))
    }

    /// [`Store::erase_person`], checked (needs write on every collection); the entry
    /// commits with the erasure.
    pub fn erase_person(&self, id: &NationalId) -> Result<Erasure> {
        self.inner().authorize(&self.ctx, Right::Write, Scope::All, AuditAction::Erase, Some(id))?;
        if let (Some(audit), Some(_)) = (&self.inner().audit, &self.inner().vault) {
            // Durable before the key goes: a crash after it leaves the attempt on record.
            let mut start = self.draft(AuditAction::EraseStart, Vec::new());
            start.subjects.extend(self.token_of(id));
            let mut b = WriteBatch::new();
            audit.append(&mut b, &start)?;
            self.inner().db.write(b, &WriteOptions::synced())?;
        }
        let d = self.draft(AuditAction::Erase, Vec::new());
        self.store.erase_person_as(id, Some(d))
    }

    /// Sets the access policy (version + 1), recorded in the same synced write; takes effect
    /// for every access checked after it returns, and for none before it is durable. Needs
    /// an admin rule (any actor while no policy is set). Needs an audited store.
    pub fn set_policy(&self, policy: AccessPolicy) -> Result<u64> {
        let inner = self.inner();
        let audit = inner.audit.as_ref().ok_or(Error::AuditOff)?;
        inner.check_writable()?;
        policy.validate().map_err(Error::invalid)?;
        let _admin = audit.admin.lock();
        if !audit.may_administer(&self.ctx) {
            return Err(self.deny_admin(audit, AuditAction::PolicyChange));
        }
        let mut current = audit.policy.write();
        let version = current.as_ref().map_or(0, |(v, _)| *v) + 1;
        let mut b = WriteBatch::new();
        b.put(meta_key(POLICY_META_NAME), policy.encode(version).map_err(Error::invalid)?);
        let mut d = self.draft(AuditAction::PolicyChange, Vec::new());
        d.detail = version.to_be_bytes().to_vec();
        audit.append(&mut b, &d)?;
        inner.db.write(b, &WriteOptions::synced())?;
        *current = Some((version, std::sync::Arc::new(policy)));
        Ok(version)
    }

    /// Deletes the audit entries older than `before_ms` (milliseconds since the Unix epoch;
    /// a prefix of the log), recorded by a `Prune` entry and a signed checkpoint in the same
    /// synced write. Needs an admin rule (any actor while no policy is set). Returns how
    /// many entries were deleted.
    pub fn prune_audit(&self, before_ms: u64) -> Result<u64> {
        let inner = self.inner();
        let audit = inner.audit.as_ref().ok_or(Error::AuditOff)?;
        inner.check_writable()?;
        // Under the admin lock, so the check and the prune see one policy.
        let admin = audit.admin.lock();
        if !audit.may_administer(&self.ctx) {
            return Err(self.deny_admin(audit, AuditAction::Prune));
        }
        audit.prune(&inner.db, &self.ctx, before_ms, admin)
    }

    /// Records a refused administrative `action` (a `Denied` entry) and returns the error.
    fn deny_admin(&self, audit: &Audit, action: AuditAction) -> Error {
        let d = Audit::draft(&self.ctx, action, AuditOutcome::Denied, Vec::new());
        // A store that cannot record the refusal still refuses.
        let _ = audit.record(&self.inner().db, &d);
        Error::AccessDenied { actor: self.ctx.actor().to_string(), action: action.as_str(), collections: Vec::new() }
    }
}
