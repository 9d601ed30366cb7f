//! The audit log and access policy (`kho::record::audit`, docs/privacy.md): required
//! contexts, what each access records, the chain detecting changed, removed and reordered
//! entries, signed checkpoints, keys at reopen, policy decisions, pruning, and concurrent
//! writers keeping one chain.
#![allow(clippy::unwrap_used, clippy::panic)]

use kho::crypt::{SecretKey, KEY_LEN};
use kho::record::audit::{AuditAction, AuditEntry, AuditOutcome, ANY};
use kho::record::{
    AccessContext, AccessPolicy, AccessRule, AuditKey, AuditOptions, Error, IdQuery, NationalId, Store, StoreOptions,
};
use kho::{Db, Options};

fn key(n: u8) -> AuditKey {
    AuditKey::from_secret(&SecretKey::from_bytes([n; KEY_LEN])).unwrap()
}

fn audited(required: bool) -> StoreOptions {
    StoreOptions { audit: Some(AuditOptions { required, ..AuditOptions::new(key(1)) }), ..StoreOptions::default() }
}

fn open(dir: &std::path::Path, opts: StoreOptions) -> kho::record::Result<Store> {
    Store::open(Db::open(dir, Options::default())?, opts)
}

fn ctx(actor: &str, purpose: &str) -> AccessContext {
    AccessContext::new(actor, purpose).unwrap()
}

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

fn entries(store: &Store) -> Vec<AuditEntry> {
    store.audit_entries().unwrap().collect::<kho::record::Result<_>>().unwrap()
}

/// The raw `A|position` keys and values.
fn raw_entries(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .db()
        .range(b"A".to_vec()..b"B".to_vec())
        .unwrap()
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<kho::Result<_>>()
        .unwrap()
}

#[test]
fn a_required_audit_refuses_every_access_without_context() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), audited(true)).unwrap();
    let who = id("079190001234");
    let refused = |r: kho::record::Result<()>| assert!(matches!(r, Err(Error::AccessContextRequired)), "{r:?}");
    refused(store.insert("tax", "1", &who, "x"));
    refused(store.upsert("tax", "1", &who, "x").map(|_| ()));
    refused(store.delete("tax", "1").map(|_| ()));
    refused(store.get_raw("tax", "1").map(|_| ()));
    refused(store.person(&who).map(|_| ()));
    refused(store.scan("tax").map(|_| ()));
    refused(store.query(&IdQuery::Province(79)).map(|_| ()));
    refused(store.erase_person(&who).map(|_| ()));
    let mut b = store.batch();
    refused(b.insert("tax", "1", &who, "x").map(|_| ()));
    refused(b.commit());
    assert!(store.collections().is_empty(), "a refused access creates no collection");
    // Nothing was written, and only the enabling entry is in the log.
    let actor = store.as_actor(ctx("registry", "census"));
    assert!(actor.person(&who).unwrap().is_empty());
    assert_eq!(
        entries(&store).iter().map(|e| e.action).collect::<Vec<_>>(),
        [AuditAction::Enable, AuditAction::Person]
    );

    // Not required and no policy: plain calls work (unaudited).
    let dir2 = tempfile::tempdir().unwrap();
    let loose = open(dir2.path(), audited(false)).unwrap();
    loose.insert("tax", "1", &who, "x").unwrap();
    assert_eq!(loose.person(&who).unwrap().len(), 1);
    assert_eq!(entries(&loose).len(), 1, "only the enabling entry");
}

#[test]
fn every_access_is_recorded_with_actor_purpose_and_subject_token_never_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), audited(true)).unwrap();
    let (a, b) = (id("079190001234"), id("001185000042"));
    let tax = store.as_actor(ctx("tax-office", "assessment"));
    tax.insert("tax", "T1", &a, "income 2024").unwrap();
    let mut batch = tax.batch();
    batch.upsert("tax", "T2", &b, "income 2024").unwrap();
    batch.upsert("vehicle", "V1", &a, "Honda Wave").unwrap();
    batch.commit().unwrap();
    assert_eq!(tax.get_raw("tax", "T1").unwrap().unwrap().id, a);
    assert!(tax.get_raw("tax", "none").unwrap().is_none());
    assert_eq!(tax.person(&a).unwrap().len(), 2);
    assert_eq!(tax.scan("tax").unwrap().count(), 2);
    assert_eq!(tax.persons(&IdQuery::Province(79)).unwrap().count(), 1);
    assert_eq!(tax.delete("tax", "T2").unwrap(), Some(b));
    let erasure = tax.erase_person(&a).unwrap();
    assert_eq!(erasure.records, 2);
    let receipt = &erasure.receipt;
    assert_eq!(receipt.subject, Some(key(1).subject_token(&a)));
    assert!(receipt.audit_checkpoint.is_some());

    let log = entries(&store);
    let k = key(1);
    let (ta, tb) = (k.subject_token(&a), k.subject_token(&b));
    let summary: Vec<_> = log.iter().map(|e| (e.action, e.count, e.subjects.clone(), e.collections.clone())).collect();
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let mut ab = vec![ta, tb];
    ab.sort();
    assert_eq!(
        summary,
        vec![
            (AuditAction::Enable, 0, vec![], vec![]),
            (AuditAction::Write, 1, vec![ta], s(&["tax"])),
            (AuditAction::Write, 2, ab, s(&["tax", "vehicle"])),
            (AuditAction::Get, 1, vec![ta], s(&["tax"])),
            (AuditAction::Get, 0, vec![], s(&["tax"])),
            (AuditAction::Person, 2, vec![ta], s(&["tax", "vehicle"])),
            (AuditAction::Scan, 0, vec![], s(&["tax"])),
            (AuditAction::Query, 0, vec![], vec![]),
            (AuditAction::Write, 1, vec![tb], s(&["tax"])),
            (AuditAction::Erase, 2, vec![ta], vec![]),
            // The erasure receipt's checkpoint.
            (AuditAction::Checkpoint, 0, vec![], vec![]),
        ]
    );
    assert_eq!(log[7].id_prefix.as_deref(), Some("079"));
    assert_eq!(receipt.audit_position, Some(log[9].position), "the receipt names the erasure's entry");
    for e in &log[1..log.len() - 1] {
        assert_eq!(
            (e.actor.as_str(), e.purpose.as_str(), e.outcome),
            ("tax-office", "assessment", AuditOutcome::Allowed)
        );
    }
    let positions: Vec<_> = log.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(log.iter().map(|e| e.index).collect::<Vec<_>>(), (0..log.len() as u64).collect::<Vec<_>>());
    // No entry spells out a national ID.
    for (_, v) in raw_entries(&store) {
        for who in [a, b] {
            assert!(!v.windows(12).any(|w| w == who.as_bytes()), "an audit entry holds a national ID");
        }
    }
    let report = store.verify_audit(Some(k.public_key()), None).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.entries, report.checkpoints, report.unsigned_tail), (log.len() as u64, 1, 0));
}

#[test]
fn changing_removing_or_reordering_an_entry_is_detected_at_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), audited(true)).unwrap();
    let actor = store.as_actor(ctx("registry", "census"));
    let who = id("079190001234");
    for i in 0..6 {
        actor.upsert("tax", format!("{i}"), &who, &i).unwrap();
    }
    store.audit_checkpoint().unwrap();
    actor.person(&who).unwrap();
    let pk = key(1).public_key();
    let clean = store.verify_audit(Some(pk), None).unwrap();
    assert!(clean.is_clean() && clean.checkpoints == 1 && clean.unsigned_tail == 1, "{clean:?}");
    let raw = raw_entries(&store);
    let db = store.db();
    let check = |what: &str, expect_index: u64| {
        let r = store.verify_audit(Some(pk), None).unwrap();
        assert!(!r.is_clean(), "{what} went unnoticed");
        assert_eq!(r.problems[0].expected_index, expect_index, "{what}: {:?}", r.problems);
    };

    // Change the purpose of entry 3 (same length): entry 4 no longer links to it.
    let mut changed = raw[3].1.clone();
    let at = changed.windows(6).position(|w| w == b"census").unwrap();
    changed[at..at + 6].copy_from_slice(b"CENSUS");
    db.put(&raw[3].0, &changed).unwrap();
    check("a changed entry", 4);
    db.put(&raw[3].0, &raw[3].1).unwrap();
    assert!(store.verify_audit(Some(pk), None).unwrap().is_clean());

    // Remove entry 2.
    db.delete(&raw[2].0).unwrap();
    check("a removed entry", 2);
    db.put(&raw[2].0, &raw[2].1).unwrap();

    // Swap entries 2 and 3.
    db.put(&raw[2].0, &raw[3].1).unwrap();
    db.put(&raw[3].0, &raw[2].1).unwrap();
    check("swapped entries", 2);
    db.put(&raw[2].0, &raw[2].1).unwrap();
    db.put(&raw[3].0, &raw[3].1).unwrap();

    // A forged checkpoint signature (entry 7 is the checkpoint).
    let mut forged = raw[7].1.clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    db.put(&raw[7].0, &forged).unwrap();
    let r = store.verify_audit(Some(pk), None).unwrap();
    assert!(r.problems.iter().any(|p| p.what.contains("signature")), "{r:?}");
    db.put(&raw[7].0, &raw[7].1).unwrap();

    // Another public key than the store's.
    let r = store.verify_audit(Some(key(2).public_key()), None).unwrap();
    assert!(!r.is_clean() && r.key_pinned);
    // A cut tail: the pinned checkpoint's entry is gone.
    let pin = store.audit_checkpoint().unwrap();
    assert!(store.verify_audit(Some(pk), Some(&pin)).unwrap().is_clean());
    let last = raw_entries(&store).pop().unwrap();
    db.delete(&last.0).unwrap();
    let r = store.verify_audit(Some(pk), Some(&pin)).unwrap();
    assert!(r.problems.iter().any(|p| p.what.contains("pinned")), "{r:?}");
}

#[test]
fn keys_at_reopen_and_read_only_stores() {
    let dir = tempfile::tempdir().unwrap();
    let who = id("079190001234");
    {
        let store = open(dir.path(), audited(true)).unwrap();
        store.as_actor(ctx("registry", "census")).insert("tax", "1", &who, "x").unwrap();
        store.close().unwrap();
    }
    assert!(matches!(open(dir.path(), StoreOptions::default()), Err(Error::AuditKeyNeeded)));
    let wrong = StoreOptions { audit: Some(AuditOptions::new(key(2))), ..StoreOptions::default() };
    assert!(matches!(open(dir.path(), wrong), Err(Error::AuditKeyMismatch)));
    {
        let store = open(dir.path(), audited(true)).unwrap();
        assert_eq!(store.as_actor(ctx("registry", "census")).person(&who).unwrap().len(), 1);
        let r = store.verify_audit(Some(key(1).public_key()), None).unwrap();
        assert!(r.is_clean() && r.checkpoints == 1, "the chain continues across reopen: {r:?}");
        store.close().unwrap();
    }
    // Read-only, without the key: the log can be read and verified; records cannot.
    let db = Db::open_read_only(dir.path(), Options::default()).unwrap();
    let store = Store::open_read_only(db, StoreOptions::default()).unwrap();
    assert!(matches!(store.person(&who), Err(Error::AccessContextRequired)));
    assert!(store.as_actor(ctx("registry", "census")).person(&who).is_err(), "a read that cannot be audited");
    assert!(store.verify_audit(None, None).unwrap().is_clean());
    let log = entries(&store);
    assert_eq!(log.iter().filter(|e| e.action == AuditAction::Checkpoint).count(), 2);
}

fn policy() -> AccessPolicy {
    AccessPolicy {
        rules: vec![
            AccessRule {
                actor: "admin".into(),
                collections: vec![ANY.into()],
                purposes: vec![ANY.into()],
                read: true,
                write: true,
                admin: true,
            },
            AccessRule {
                actor: "tax-office".into(),
                collections: vec!["tax".into()],
                purposes: vec!["assessment".into()],
                read: true,
                ..AccessRule::default()
            },
        ],
    }
}

#[test]
fn the_policy_decides_and_a_denied_access_returns_nothing_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), audited(false)).unwrap();
    let who = id("079190001234");
    let admin = store.as_actor(ctx("admin", "setup"));
    admin.insert("tax", "T1", &who, "income").unwrap();
    admin.insert("health", "H1", &who, "diagnosis").unwrap();
    assert_eq!(admin.set_policy(policy()).unwrap(), 1);
    assert_eq!(store.access_policy().unwrap().0, 1);
    // With a policy, plain calls are refused even though auditing is not required.
    assert!(matches!(store.person(&who), Err(Error::AccessContextRequired)));

    let tax = store.as_actor(ctx("tax-office", "assessment"));
    // Reads only what the policy covers.
    let seen = tax.person(&who).unwrap();
    assert_eq!(seen.iter().map(|r| r.collection.to_string()).collect::<Vec<_>>(), ["tax"]);
    assert!(tax.get_raw("tax", "T1").unwrap().is_some());
    let denied = |r: kho::record::Result<()>| assert!(matches!(r, Err(Error::AccessDenied { .. })), "{r:?}");
    denied(tax.get_raw("health", "H1").map(|_| ()));
    denied(tax.scan("health").map(|_| ()));
    denied(tax.insert("tax", "T2", &who, "forged"));
    denied(tax.erase_person(&who).map(|_| ()));
    denied(tax.query(&IdQuery::All).map(|_| ()));
    denied(tax.set_policy(AccessPolicy::default()).map(|_| ()));
    denied(tax.prune_audit(u64::MAX).map(|_| ()));
    // Another purpose, or another actor, gets nothing.
    denied(store.as_actor(ctx("tax-office", "marketing")).person(&who).map(|_| ()));
    denied(store.as_actor(ctx("stranger", "curiosity")).get_raw("tax", "T1").map(|_| ()));
    assert!(admin.get_raw("tax", "T2").unwrap().is_none(), "the denied insert wrote nothing");

    let log = entries(&store);
    let denials: Vec<_> =
        log.iter().filter(|e| e.outcome == AuditOutcome::Denied).map(|e| (e.actor.as_str(), e.action)).collect();
    assert_eq!(
        denials,
        [
            ("tax-office", AuditAction::Get),
            ("tax-office", AuditAction::Scan),
            ("tax-office", AuditAction::Write),
            ("tax-office", AuditAction::Erase),
            ("tax-office", AuditAction::Query),
            ("tax-office", AuditAction::PolicyChange),
            ("tax-office", AuditAction::Prune),
            ("tax-office", AuditAction::Person),
            ("stranger", AuditAction::Get),
        ]
    );
    let denied_person =
        log.iter().find(|e| e.action == AuditAction::Person && e.outcome == AuditOutcome::Denied).unwrap();
    assert_eq!(denied_person.subjects, [key(1).subject_token(&who)]);
    assert!(log
        .iter()
        .any(|e| e.action == AuditAction::PolicyChange && e.outcome == AuditOutcome::Allowed && e.actor == "admin"));

    // A new policy takes effect at once and survives reopen.
    let mut p = policy();
    p.rules[1].collections.push("health".into());
    assert_eq!(admin.set_policy(p.clone()).unwrap(), 2);
    assert_eq!(tax.person(&who).unwrap().len(), 2);
    store.close().unwrap();
    drop(store);
    let store = open(dir.path(), audited(false)).unwrap();
    assert_eq!(store.access_policy(), Some((2, p)));
    assert!(store.verify_audit(Some(key(1).public_key()), None).unwrap().is_clean());
    // An invalid policy is refused.
    let bad = AccessPolicy { rules: vec![AccessRule { actor: "x".into(), ..AccessRule::default() }] };
    assert!(store.as_actor(ctx("admin", "setup")).set_policy(bad).is_err());
}

#[test]
fn pruning_deletes_a_prefix_records_itself_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), audited(true)).unwrap();
    let actor = store.as_actor(ctx("registry", "census"));
    let who = id("079190001234");
    for i in 0..5 {
        actor.upsert("tax", "1", &who, &i).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    let cut = kho_now_ms();
    std::thread::sleep(std::time::Duration::from_millis(5));
    actor.person(&who).unwrap();
    let before = entries(&store).len();
    assert_eq!(actor.prune_audit(cut).unwrap(), 6, "the enabling entry and five writes");
    let log = entries(&store);
    assert_eq!(log.len(), before - 6 + 2);
    assert_eq!(log[0].index, 6);
    let kinds: Vec<_> = log.iter().map(|e| e.action).collect();
    assert_eq!(kinds, [AuditAction::Person, AuditAction::Prune, AuditAction::Checkpoint]);
    assert_eq!(log[1].count, 6);
    let pk = key(1).public_key();
    assert!(store.verify_audit(Some(pk), None).unwrap().is_clean());
    // Pruning again by the same cut deletes nothing.
    assert_eq!(actor.prune_audit(cut).unwrap(), 0);
    // Deleting more entries by hand (a forged prune) is detected.
    let raw = raw_entries(&store);
    store.db().delete(&raw[0].0).unwrap();
    assert!(!store.verify_audit(Some(pk), None).unwrap().is_clean());
    // Survives reopen with the new anchor.
    store.db().put(&raw[0].0, &raw[0].1).unwrap();
    store.close().unwrap();
    drop(store);
    let store = open(dir.path(), audited(true)).unwrap();
    store.as_actor(ctx("registry", "census")).person(&who).unwrap();
    assert!(store.verify_audit(Some(pk), None).unwrap().is_clean());
}

fn kho_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn concurrent_readers_and_writers_keep_one_chain_and_checkpoints_come_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        audit: Some(AuditOptions { checkpoint_every: 50, ..AuditOptions::new(key(1)) }),
        ..StoreOptions::default()
    };
    let store = open(dir.path(), opts).unwrap();
    let ids: Vec<_> = (0..8).map(|i| id(&format!("0791900012{i:02}"))).collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let actor = store.as_actor(ctx(&format!("worker-{t}"), "load"));
            let ids = &ids;
            s.spawn(move || {
                for i in 0..100 {
                    let who = &ids[(i + t) % ids.len()];
                    if i % 3 == 0 {
                        actor.person(who).unwrap();
                    } else {
                        actor.upsert("tax", format!("{t}-{i}"), who, &i).unwrap();
                    }
                }
            });
        }
    });
    let r = store.verify_audit(Some(key(1).public_key()), None).unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.entries, 1 + 400 + r.checkpoints);
    assert!(r.checkpoints >= 7, "{r:?}");
    let writes = entries(&store).iter().filter(|e| e.action == AuditAction::Write).count();
    assert_eq!(writes, 4 * 66);
}

#[test]
fn one_audited_writer_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let first = Store::open(db.clone(), audited(true)).unwrap();
    assert!(Store::open(db.clone(), audited(true)).is_err(), "a second chain would fork the first");
    // Readers do not write entries: they may come and go.
    drop(Store::open_read_only(db.clone(), StoreOptions::default()).unwrap());
    drop(first);
    let again = Store::open(db, audited(true)).unwrap();
    again.as_actor(ctx("registry", "census")).person(&id("079190001234")).unwrap();
    assert!(again.verify_audit(Some(key(1).public_key()), None).unwrap().is_clean());
}
