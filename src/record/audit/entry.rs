//! One audit-log entry ([`AuditEntry`]) and its stored value (`docs/privacy.md`, "Audit log
//! format").
//!
//! ```text
//! value := version: u8 (= 1) | action: u8 | outcome: u8 | reserved: u8 (= 0)
//!          | index: u64 BE | prev_hash: [u8; 32]          -- written at commit (the seal)
//!          | time_ms: u64 BE | count: u32 BE
//!          | actor: u8 len | bytes | purpose: u8 len | bytes
//!          | collections: u8 n | n * (u8 len | bytes)
//!          | id_prefix: u8 len | digits
//!          | subjects: u32 BE n | n * token: [u8; 16]
//!          | detail: u16 BE len | bytes                     -- last; a checkpoint's signature
//! ```
//!
//! Invariant: an entry names people only by their subject token (a keyed hash of the
//! national ID, `AuditKey::subject_token`), never by the ID itself; an ID prefix (a province,
//! a birth year) is not an ID and is kept as given.

use crate::SeqNo;

/// Longest actor name accepted, in bytes.
pub const MAX_ACTOR_LEN: usize = 64;
/// Longest purpose accepted, in bytes.
pub const MAX_PURPOSE_LEN: usize = 128;
/// Bytes of a subject token.
pub const SUBJECT_TOKEN_LEN: usize = 16;
/// Bytes of a chain hash (SHA-256).
pub const CHAIN_HASH_LEN: usize = 32;
/// Bytes of a checkpoint's signature (Ed25519).
pub(crate) const SIGNATURE_LEN: usize = 64;

/// Value format version this build writes and reads.
const ENTRY_VERSION: u8 = 1;
/// Offsets of the fields the seal fills in.
pub(crate) const INDEX_AT: usize = 4;
pub(crate) const PREV_HASH_AT: usize = INDEX_AT + 8;
const FIXED_LEN: usize = PREV_HASH_AT + CHAIN_HASH_LEN + 8 + 4;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// One record read by collection and primary key (`get`).
    Get,
    /// Every record of one person (`person`).
    Person,
    /// Every record of a collection (`scan`).
    Scan,
    /// Index entries or persons by national-ID prefix (`query`, `persons`).
    Query,
    /// Record writes: inserts, upserts, deletes, batches.
    Write,
    /// Erasure of a person.
    Erase,
    /// The access policy was set.
    PolicyChange,
    /// Entries before a time were deleted (the only way entries go).
    Prune,
    /// A signed checkpoint of the chain.
    Checkpoint,
    /// Auditing was turned on.
    Enable,
    /// An erasure is about to destroy a person's key (synced before it, so no key is ever
    /// destroyed without an entry; the `Erase` entry follows with the records' deletion).
    EraseStart,
}

impl AuditAction {
    const ALL: [AuditAction; 11] = [
        AuditAction::Get,
        AuditAction::Person,
        AuditAction::Scan,
        AuditAction::Query,
        AuditAction::Write,
        AuditAction::Erase,
        AuditAction::PolicyChange,
        AuditAction::Prune,
        AuditAction::Checkpoint,
        AuditAction::Enable,
        AuditAction::EraseStart,
    ];

    fn code(self) -> u8 {
        Self::ALL.iter().position(|a| *a == self).map_or(0, |i| i as u8 + 1)
    }

    fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(usize::from(c).checked_sub(1)?).copied()
    }

    pub(crate) const CHECKPOINT_CODE: u8 = 9;

    /// A short lowercase name (`get`, `person`, ..., `checkpoint`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Get => "get",
            AuditAction::Person => "person",
            AuditAction::Scan => "scan",
            AuditAction::Query => "query",
            AuditAction::Write => "write",
            AuditAction::Erase => "erase",
            AuditAction::PolicyChange => "policy",
            AuditAction::Prune => "prune",
            AuditAction::Checkpoint => "checkpoint",
            AuditAction::Enable => "enable",
            AuditAction::EraseStart => "erase-start",
        }
    }

    /// True for actions that read personal data (get, person, scan, query).
    pub fn is_read(self) -> bool {
        matches!(self, AuditAction::Get | AuditAction::Person | AuditAction::Scan | AuditAction::Query)
    }
}

/// Whether the access was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// Done (for a write: committed in the same batch as the entry).
    Allowed,
    /// Refused by the access policy; nothing was returned or written.
    Denied,
}

/// A keyed token standing for one national ID in the audit log: the first 16 bytes of
/// HMAC-SHA256 under the audit key's subject key. Without the audit key, a token names
/// nobody; with it, [`AuditKey::subject_token`](super::AuditKey::subject_token) finds one
/// person's entries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectToken(pub [u8; SUBJECT_TOKEN_LEN]);

impl SubjectToken {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        super::key::hex(&self.0)
    }
}

impl std::fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubjectToken({})", self.to_hex())
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Where it is in the log: the sequence number its commit gave it (strictly increasing).
    pub position: SeqNo,
    /// Its number in the chain: 0, 1, 2, ... without gaps (pruning removes a prefix).
    pub index: u64,
    /// When, in milliseconds since the Unix epoch (the writer's clock).
    pub time_ms: u64,
    /// What was done.
    pub action: AuditAction,
    /// Allowed or denied.
    pub outcome: AuditOutcome,
    /// Who (the access context's actor).
    pub actor: String,
    /// Why (the access context's declared purpose).
    pub purpose: String,
    /// The collections touched (empty: all, or none).
    pub collections: Vec<String>,
    /// For a query by ID prefix: the prefix (a province, a birth year; never a whole ID).
    pub id_prefix: Option<String>,
    /// The people whose data was read or written, as subject tokens.
    pub subjects: Vec<SubjectToken>,
    /// Records read or written (for a scan or query: 0, the entry is written before the
    /// first record is returned).
    pub count: u32,
    /// The hash of the previous entry in the chain.
    pub prev_hash: [u8; CHAIN_HASH_LEN],
    pub(crate) detail: Vec<u8>,
}

/// What a new entry says, before the commit numbers and links it.
#[derive(Debug, Clone)]
pub(crate) struct EntryDraft {
    pub(crate) action: AuditAction,
    pub(crate) outcome: AuditOutcome,
    pub(crate) actor: String,
    pub(crate) purpose: String,
    pub(crate) collections: Vec<String>,
    pub(crate) id_prefix: Option<String>,
    pub(crate) subjects: Vec<SubjectToken>,
    pub(crate) count: u32,
    pub(crate) detail: Vec<u8>,
}

impl EntryDraft {
    /// The stored value, with index and previous hash zero (the seal fills them in).
    pub(crate) fn encode(&self, time_ms: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(
            FIXED_LEN + 8 + self.actor.len() + self.purpose.len() + self.subjects.len() * SUBJECT_TOKEN_LEN + 64,
        );
        v.extend_from_slice(&[ENTRY_VERSION, self.action.code(), self.outcome as u8, 0]);
        v.extend_from_slice(&[0; 8 + CHAIN_HASH_LEN]);
        v.extend_from_slice(&time_ms.to_be_bytes());
        v.extend_from_slice(&self.count.to_be_bytes());
        put_short(&mut v, self.actor.as_bytes());
        put_short(&mut v, self.purpose.as_bytes());
        let collections = &self.collections[..self.collections.len().min(255)];
        v.push(collections.len() as u8);
        for c in collections {
            put_short(&mut v, c.as_bytes());
        }
        put_short(&mut v, self.id_prefix.as_deref().unwrap_or("").as_bytes());
        v.extend_from_slice(&(self.subjects.len() as u32).to_be_bytes());
        for s in &self.subjects {
            v.extend_from_slice(&s.0);
        }
        let detail = &self.detail[..self.detail.len().min(usize::from(u16::MAX))];
        v.extend_from_slice(&(detail.len() as u16).to_be_bytes());
        v.extend_from_slice(detail);
        v
    }
}

/// Appends `b` with a one-byte length (names are bounded well below 256 bytes; a longer
/// one is cut, which the context checks make impossible).
fn put_short(v: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(255)];
    v.push(b.len() as u8);
    v.extend_from_slice(b);
}

/// Reads fields front to back; every read is bounds-checked.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err(format!("audit entry cut short in {what}"));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    fn short(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.take(1, what)?[0];
        self.take(usize::from(n), what)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        String::from_utf8(self.short(what)?.to_vec()).map_err(|_| format!("audit entry {what} is not UTF-8"))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().map_err(|_| what.to_string())?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().map_err(|_| what.to_string())?))
    }
}

/// Decodes the entry at `position`; the error says what is wrong.
pub(crate) fn decode_entry(position: SeqNo, v: &[u8]) -> Result<AuditEntry, String> {
    let mut f = Fields { rest: v };
    let head = f.take(4, "header")?;
    if head[0] != ENTRY_VERSION {
        return Err(format!("audit entry version {} (this build reads {ENTRY_VERSION})", head[0]));
    }
    let action = AuditAction::from_code(head[1]).ok_or_else(|| format!("unknown audit action {}", head[1]))?;
    let outcome = match head[2] {
        0 => AuditOutcome::Allowed,
        1 => AuditOutcome::Denied,
        o => return Err(format!("unknown audit outcome {o}")),
    };
    let index = f.u64("index")?;
    let prev_hash: [u8; CHAIN_HASH_LEN] =
        f.take(CHAIN_HASH_LEN, "previous hash")?.try_into().map_err(|_| "previous hash".to_string())?;
    let time_ms = f.u64("time")?;
    let count = f.u32("count")?;
    let actor = f.string("actor")?;
    let purpose = f.string("purpose")?;
    let n = f.take(1, "collections")?[0];
    let collections = (0..n).map(|_| f.string("collection")).collect::<Result<Vec<_>, _>>()?;
    let prefix = f.string("ID prefix")?;
    let id_prefix = (!prefix.is_empty()).then_some(prefix);
    let n = f.u32("subjects")? as usize;
    if n > f.rest.len() / SUBJECT_TOKEN_LEN {
        return Err(format!("audit entry names {n} subjects, more than its bytes hold"));
    }
    let mut subjects = Vec::with_capacity(n);
    for _ in 0..n {
        let t = f.take(SUBJECT_TOKEN_LEN, "subject")?;
        subjects.push(SubjectToken(t.try_into().map_err(|_| "subject".to_string())?));
    }
    let len = u16::from_be_bytes(f.take(2, "detail")?.try_into().map_err(|_| "detail".to_string())?);
    let detail = f.take(usize::from(len), "detail")?.to_vec();
    if !f.rest.is_empty() {
        return Err(format!("{} bytes after the audit entry", f.rest.len()));
    }
    Ok(AuditEntry {
        position,
        index,
        time_ms,
        action,
        outcome,
        actor,
        purpose,
        collections,
        id_prefix,
        subjects,
        count,
        prev_hash,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> EntryDraft {
        EntryDraft {
            action: AuditAction::Person,
            outcome: AuditOutcome::Denied,
            actor: "tax-office".into(),
            purpose: "assessment".into(),
            collections: vec!["tax".into(), "vehicle".into()],
            id_prefix: Some("079".into()),
            subjects: vec![SubjectToken([7; 16]), SubjectToken([9; 16])],
            count: 3,
            detail: vec![1, 2, 3],
        }
    }

    #[test]
    fn entries_round_trip() {
        let v = draft().encode(1234);
        let e = decode_entry(55, &v).unwrap();
        assert_eq!((e.position, e.index, e.time_ms, e.count), (55, 0, 1234, 3));
        assert_eq!((e.action, e.outcome), (AuditAction::Person, AuditOutcome::Denied));
        assert_eq!((e.actor.as_str(), e.purpose.as_str()), ("tax-office", "assessment"));
        assert_eq!(e.collections, ["tax", "vehicle"]);
        assert_eq!(e.id_prefix.as_deref(), Some("079"));
        assert_eq!(e.subjects, [SubjectToken([7; 16]), SubjectToken([9; 16])]);
        assert_eq!(e.detail, [1, 2, 3]);
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.code()), Some(a));
        }
        assert_eq!(AuditAction::Checkpoint.code(), AuditAction::CHECKPOINT_CODE);
    }

    #[test]
    fn every_truncation_and_bad_byte_is_an_error_not_a_panic() {
        let v = draft().encode(1);
        for cut in 0..v.len() {
            assert!(decode_entry(1, &v[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0xff;
            let _ = decode_entry(1, &bad);
        }
    }
}
