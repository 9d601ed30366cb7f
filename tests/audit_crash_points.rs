//! The audit log and the access policy at every crash point (`FaultFs`): a workload of
//! audited inserts (each a new record), reads, a policy change and an erasure, some synced.
//! After a crash at any file-system step — unsynced data dropped or torn — and a reopen:
//!
//! - the chain verifies (the head is rebuilt from the last durable entry, so the entries
//!   written after the crash link on);
//! - every record present has its write entry and no write entry lacks its record (one
//!   batch): the `Write` entries' counts add up to the records present;
//! - the erased person is either fully present with no erasure entry, or gone with one;
//! - the policy is the one the last durable `PolicyChange` entry names.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::crypt::{SecretKey, KEY_LEN};
use kho::record::audit::{AuditAction, AuditOutcome, ANY};
use kho::record::{AccessContext, AccessPolicy, AccessRule, AuditKey, AuditOptions, NationalId, Store, StoreOptions};
use kho::vfs::{CrashMode, SharedFs};
use kho::Db;

fn key() -> AuditKey {
    AuditKey::from_secret(&SecretKey::from_bytes([5; KEY_LEN])).unwrap()
}

fn opts() -> StoreOptions {
    StoreOptions {
        audit: Some(AuditOptions { checkpoint_every: 7, ..AuditOptions::new(key()) }),
        ..StoreOptions::default()
    }
}

fn open(shared: &SharedFs) -> kho::record::Result<Store> {
    Store::open(Db::open(db_dir(), small_options(shared.clone()))?, opts())
}

fn ids() -> [NationalId; 3] {
    ["079190001234", "001185000042", "048203000777"].map(|s| NationalId::parse(s).unwrap())
}

fn admin() -> AccessContext {
    AccessContext::new("admin", "operations").unwrap()
}

fn policy() -> AccessPolicy {
    AccessPolicy {
        rules: vec![AccessRule {
            actor: "admin".into(),
            collections: vec![ANY.into()],
            purposes: vec![ANY.into()],
            read: true,
            write: true,
            admin: true,
        }],
    }
}

/// The workload; stops at the first error.
fn run(store: &Store) {
    let ids = ids();
    let actor = store.as_actor(admin());
    for i in 0u32..30 {
        // After the erasure (i = 20) nothing more is written for the erased person.
        let who = &ids[if i > 20 && i % 3 == 1 { 2 } else { (i % 3) as usize }];
        let payload = format!("payload {i} {}", "x".repeat((i as usize * 37) % 150));
        let r = match i {
            12 => actor.set_policy(policy()).map(|_| ()),
            20 => actor.erase_person(&ids[1]).map(|_| ()),
            _ if i % 5 == 4 => actor.person(who).map(|_| ()),
            _ if i % 7 == 6 => (|| {
                let mut b = actor.batch();
                b.insert("tax", format!("b{i}"), who, &payload)?;
                b.insert("health", format!("b{i}"), &ids[0], &payload)?;
                b.sync(true);
                b.commit()
            })(),
            _ => actor.insert(if i % 2 == 0 { "tax" } else { "vehicle" }, format!("{i}"), who, &payload),
        };
        if r.is_err() {
            return;
        }
        if i % 9 == 8 && store.db().flush().is_err() {
            return;
        }
    }
}

fn check(store: &Store, point: u64) {
    let report = store.verify_audit(None, None).unwrap();
    assert!(report.is_clean(), "crash point {point}: {report:?}");
    let log: Vec<_> = store.audit_entries().unwrap().map(Result::unwrap).collect();
    let actor = store.as_actor(admin());
    let mut present = 0u32;
    for c in store.collections() {
        present += actor.scan(&c).unwrap().count() as u32;
    }
    let writes = log.iter().filter(|e| e.action == AuditAction::Write && e.outcome == AuditOutcome::Allowed);
    let erase = log.iter().find(|e| e.action == AuditAction::Erase);
    let erased_records = erase.map_or(0, |e| e.count);
    assert_eq!(
        writes.map(|e| e.count).sum::<u32>(),
        present + erased_records,
        "crash point {point}: records and write entries disagree"
    );
    let second = actor.person(&ids()[1]).unwrap();
    let token = key().subject_token(&ids()[1]);
    let written = log.iter().any(|e| e.action == AuditAction::Write && e.subjects.contains(&token));
    match erase {
        Some(_) => assert!(second.is_empty(), "crash point {point}: records readable after a durable erasure"),
        None => assert_eq!(second.is_empty(), !written, "crash point {point}: the person is only half there"),
    }
    let changes =
        log.iter().filter(|e| e.action == AuditAction::PolicyChange && e.outcome == AuditOutcome::Allowed).count();
    assert_eq!(store.access_policy().map(|(v, _)| v as usize), (changes > 0).then_some(changes), "crash point {point}");
}

fn check_crash_points(mode: impl Fn(u64) -> CrashMode) {
    let mut point = 0u64;
    loop {
        let (fs, shared) = fault_fs();
        open(&shared).unwrap().close().unwrap();
        fs.arm_crash_after(point);
        if let Ok(store) = open(&shared) {
            run(&store);
        }
        let finished = !fs.crash_point_hit();
        fs.crash(mode(point));

        let store = open(&shared).unwrap_or_else(|e| panic!("crash point {point}: reopen failed: {e}"));
        check(&store, point);
        // The chain goes on after the crash.
        store.as_actor(admin()).insert("after", "crash", &ids()[0], "ok").unwrap();
        store.close().unwrap();
        drop(store);
        let store = open(&shared).unwrap();
        check(&store, point);
        drop(store);
        if finished {
            assert!(point > 50, "the workload should have many crash points, saw {point}");
            return;
        }
        point += 1;
    }
}

#[test]
fn every_crash_point_dropping_unsynced_data() {
    check_crash_points(|_| CrashMode::DropUnsynced);
}

#[test]
fn every_crash_point_tearing_unsynced_data() {
    check_crash_points(|point| CrashMode::TearUnsynced { seed: point * 7919 + 1 });
}
