//! No personal data in errors or `Debug` strings (issue 14): every error the record layer
//! returns for bad input, and the `Debug` of IDs, records and index entries, show national
//! IDs and record keys redacted (at most their first 4 and last 2 characters) and never a
//! payload.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::crypt::{SecretKey, KEY_LEN};
use kho::record::{
    AccessContext, AccessPolicy, AccessRule, AuditKey, AuditOptions, IdQuery, NationalId, PersonKeys, Store,
    StoreOptions,
};
use kho::Db;
use serde::{Deserialize, Serialize};

const ID: &str = "079203001234";
const PK: &str = "TAX-CODE-8000123456";
const SECRET: &str = "Nguyen Van Secretname";

#[derive(Serialize, Deserialize, Debug)]
struct Person {
    name: String,
    income: u64,
}

/// Fails if `text` holds the ID, the primary key or the payload's text.
fn assert_clean(what: &str, text: &str) {
    for needle in [ID, PK, SECRET, "Secretname", "3001234", "8000123456"] {
        assert!(!text.contains(needle), "{what} leaks {needle:?}: {text}");
    }
}

#[test]
fn errors_and_debug_strings_redact_ids_keys_and_payloads() {
    let (_fs, shared) = fault_fs();
    let store = Store::open(Db::open(db_dir(), small_options(shared)).unwrap(), StoreOptions::default()).unwrap();
    let id = store.parse_id(ID).unwrap();
    let p = Person { name: SECRET.into(), income: 7 };
    store.insert("tax", PK, &id, &p).unwrap();

    // Every error a caller's input can provoke.
    let mut errors: Vec<(&str, kho::record::Error)> = Vec::new();
    // An invalid ID that is a real ID with one wrong digit (an unknown province).
    errors.push(("invalid id", store.parse_id("999203001234").unwrap_err()));
    errors.push(("invalid id (letters)", store.parse_id("07920300123X").unwrap_err()));
    errors.push(("record exists", store.insert("tax", PK, &id, &p).unwrap_err()));
    // A payload read as the wrong type: serde would quote the stored string.
    #[derive(Deserialize, Debug)]
    struct Wrong {
        #[allow(dead_code)]
        name: u64,
    }
    errors.push(("payload type", store.get::<Wrong>("tax", PK).unwrap_err()));
    errors.push(("bad value", kho::record::decode_record_value(b"\x01079203").unwrap_err()));
    errors.push(("bad collection", store.insert("", PK, &id, &p).unwrap_err()));
    let huge_pk = format!("{PK}{}", "x".repeat(2000));
    errors.push(("huge pk", store.insert("tax", &huge_pk, &id, &p).unwrap_err()));
    // The audit layer's refusals name actors and collections, never the person.
    let (_fs2, shared2) = fault_fs();
    let key = AuditKey::from_secret(&SecretKey::from_bytes([3; KEY_LEN])).unwrap();
    let audited = StoreOptions { audit: Some(AuditOptions::new(key)), ..StoreOptions::default() };
    let db2 = Db::open(db_dir(), small_options(shared2.clone())).unwrap();
    let guarded = Store::open(db2.clone(), audited.clone()).unwrap();
    errors.push(("context required", guarded.person(&id).unwrap_err()));
    let admin = guarded.as_actor(AccessContext::new("admin", "setup").unwrap());
    admin.insert("tax", PK, &id, &p).unwrap();
    admin
        .set_policy(AccessPolicy {
            rules: vec![AccessRule {
                actor: "admin".into(),
                purposes: vec!["setup".into()],
                collections: vec!["*".into()],
                read: true,
                write: true,
                admin: true,
            }],
        })
        .unwrap();
    let stranger = guarded.as_actor(AccessContext::new("stranger", "look").unwrap());
    errors.push(("access denied", stranger.person(&id).unwrap_err()));
    errors.push(("access denied (get)", stranger.get_raw("tax", PK).unwrap_err()));
    guarded.close().unwrap();
    drop((guarded, admin, stranger));
    errors.push((
        "audit key needed",
        Store::open(Db::open(db_dir(), small_options(shared2.clone())).unwrap(), StoreOptions::default()).unwrap_err(),
    ));
    let other = AuditKey::from_secret(&SecretKey::from_bytes([4; KEY_LEN])).unwrap();
    let wrong = StoreOptions { audit: Some(AuditOptions::new(other)), ..StoreOptions::default() };
    errors.push((
        "audit key mismatch",
        Store::open(Db::open(db_dir(), small_options(shared2)).unwrap(), wrong).unwrap_err(),
    ));
    errors.push(("audit off", store.audit_checkpoint().unwrap_err()));
    // Person keys: a missing or wrong vault; a purge a snapshot pins.
    let (_fs3, shared3) = fault_fs();
    let vault = PersonKeys::open(Db::open("/vault", small_options(shared3.clone())).unwrap()).unwrap();
    let sealed_opts = StoreOptions { person_keys: Some(vault), ..StoreOptions::default() };
    let sealed = Store::open(Db::open(db_dir(), small_options(shared3.clone())).unwrap(), sealed_opts).unwrap();
    sealed.insert("tax", PK, &id, &p).unwrap();
    let pin = sealed.db().snapshot();
    let erasure = sealed.erase_person(&id).unwrap();
    errors.push(("purge incomplete", sealed.purge_erased(&erasure).unwrap_err()));
    assert_clean("erasure receipt", &format!("{:?}", erasure.receipt));
    assert_clean("erasure", &format!("{erasure:?}"));
    assert!(format!("{erasure:?}").contains("keys: 2"), "{erasure:?}");
    drop(pin);
    sealed.close().unwrap();
    drop(sealed);
    errors.push((
        "person keys needed",
        Store::open(Db::open(db_dir(), small_options(shared3.clone())).unwrap(), StoreOptions::default()).unwrap_err(),
    ));
    let other = PersonKeys::open(Db::open("/other", small_options(shared3.clone())).unwrap()).unwrap();
    let wrong_vault = StoreOptions { person_keys: Some(other), ..StoreOptions::default() };
    errors.push((
        "wrong vault",
        Store::open(Db::open(db_dir(), small_options(shared3)).unwrap(), wrong_vault).unwrap_err(),
    ));
    for (what, e) in &errors {
        assert_clean(what, &e.to_string());
        assert_clean(what, &format!("{e:?}"));
    }
    assert!(errors[0].1.to_string().contains("9992******34"), "redacted, not removed: {}", errors[0].1);

    // Debug of the types that carry personal data.
    let rec = store.get_raw("tax", PK).unwrap().unwrap();
    let typed = store.get::<Person>("tax", PK).unwrap().unwrap();
    let person = store.person(&id).unwrap();
    let index: Vec<_> = store.query(&IdQuery::All).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(index.len(), 1);
    for (what, text) in [
        ("NationalId", format!("{id:?}")),
        ("Record", format!("{rec:?}")),
        ("typed Record", format!("{typed:?}")),
        ("person", format!("{person:?}")),
        ("index", format!("{index:?}")),
    ] {
        assert_clean(what, &text);
    }
    assert_eq!(format!("{id:?}"), "NationalId(\"0792******34\")");
    // Display is the whole ID: for output the user asked for.
    assert_eq!(id.to_string(), ID);
    assert_eq!(NationalId::parse(ID).unwrap().as_str(), ID);
}
