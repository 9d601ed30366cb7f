//! `kho rekey`: `--rotate` starts a new data key and the re-encryption moves every table,
//! the log and the manifest under it and retires the old key (`dump keys` shows every file
//! under the new id), the data intact; `--new-master` puts the registry under another key
//! file, after which only that one opens the database; `--convert` encrypts a plaintext
//! database (a byte search finds its values before, none after); a plaintext database is
//! never encrypted by accident.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Every key and value, as `kho scan --json` shows them.
fn contents(d: &str, k: &str) -> serde_json::Value {
    let scan = kho_ok(0, ["--key-file", k, "--json", "scan", d]).json();
    assert_eq!(scan["count"], (CITIZENS - DELETED + 1 + PENDING) as u64, "{scan}");
    scan["entries"].clone()
}

/// The data key id of every table, log and manifest (`None`: plaintext), from `dump keys`.
fn file_keys(d: &str, k: &str) -> Vec<(String, String, Option<u64>)> {
    let keys = kho_ok(0, ["--key-file", k, "--json", "dump", "keys", d]).json();
    keys["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "registry")
        .map(|f| {
            let (name, kind) = (f["file"].as_str().unwrap().to_owned(), f["kind"].as_str().unwrap().to_owned());
            (name, kind, f["encryption"]["key_id"].as_u64())
        })
        .collect()
}

#[test]
fn rotate_rekey_and_new_master_keep_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = (tmp.path().join("db"), new_key_file(&tmp.path().join("k1")));
    build_encrypted(&db, &key);
    let (d, k) = (s(&db), s(&key));
    let before = contents(&d, &k);
    assert!(file_keys(&d, &k).iter().all(|(_, _, id)| *id == Some(1)));

    let r = kho_ok(0, ["--key-file", &k, "rekey", &d, "--rotate"]);
    assert!(r.stdout.contains("new data key 2, now current"), "{}", r.stdout);
    assert!(
        r.stdout.contains("under data key 2: rewrote ") && r.stdout.contains("retired data keys 1"),
        "{}",
        r.stdout
    );
    let keys = kho_ok(0, ["--key-file", &k, "--json", "dump", "keys", &d]).json();
    assert_eq!((keys["key_ids"].clone(), keys["current_key_id"].clone()), (serde_json::json!([2]), 2.into()));
    let files = file_keys(&d, &k);
    assert!(files.iter().any(|(_, kind, _)| kind == "table"), "{files:?}");
    assert!(files.iter().all(|(_, _, id)| *id == Some(2)), "every file under the new key: {files:?}");
    let text = kho_ok(0, ["--key-file", &k, "dump", "keys", &d]);
    assert!(text.stdout.contains("data keys: 2; current: 2"), "{}", text.stdout);
    assert_eq!(contents(&d, &k), before);
    kho_ok(0, ["--key-file", &k, "verify", &d]);

    // A second rekey has nothing left to rewrite.
    let r = kho_ok(0, ["--key-file", &k, "--json", "rekey", &d]).json();
    assert_eq!((r["key_id"].clone(), r["tables_rewritten"].clone()), (2.into(), 0.into()), "{r}");

    // A new master key: only the new key file opens the database afterwards.
    let new = tmp.path().join("k2");
    let n = s(&new);
    let r = kho_ok(0, ["--key-file", &k, "rekey", &d, "--new-master", &n]);
    assert!(r.stdout.contains("no longer opens the database"), "{}", r.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o600, "created private");
    }
    let r = kho_ok(2, ["--key-file", &k, "scan", &d]);
    assert!(r.stderr.starts_with("kho: error: wrong key: "), "{}", r.stderr);
    assert_eq!(contents(&d, &n), before);
    kho_ok(0, ["--key-file", &n, "verify", &d]);
    let r = kho_ok(2, ["rekey", &d]);
    assert_eq!(r.stderr.trim_end(), "kho: error: database is encrypted: --key-file needed");
}

#[test]
fn a_plaintext_database_is_encrypted_only_on_purpose() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = (tmp.path().join("db"), new_key_file(&tmp.path().join("k")));
    build(&db);
    let (d, k) = (s(&db), s(&key));
    let before = contents(&d, &k);
    // Values in the live log are plaintext: the byte search finds them (the control).
    let marks: Vec<Vec<u8>> = (0..PENDING).map(|i| format!("in the log {i}").into_bytes()).collect();
    assert!(!files_holding(&db, &marks).is_empty());

    // A key given to a writable command on a plaintext database is not used.
    let r = kho_ok(0, ["--key-file", &k, "checkpoint", &d, &s(&tmp.path().join("cp"))]);
    assert!(r.stderr.contains("is not encrypted; --key-file"), "{}", r.stderr);
    assert!(!db.join("KEYRING").exists() && !tmp.path().join("cp").join("KEYRING").exists());
    let r = kho_ok(2, ["--key-file", &k, "rekey", &d]);
    assert!(r.stderr.contains("pass --convert"), "{}", r.stderr);
    assert!(!db.join("KEYRING").exists());
    let r = kho_ok(0, ["dump", "keys", &d]);
    assert!(r.stdout.contains("the database is not encrypted"), "{}", r.stdout);

    // --convert: every file rewritten under the new key, nothing readable left.
    let r = kho_ok(0, ["--key-file", &k, "rekey", &d, "--convert"]);
    assert!(r.stdout.contains("encrypted with the master key keyfile:"), "{}", r.stdout);
    let files = file_keys(&d, &k);
    assert!(files.iter().all(|(_, _, id)| *id == Some(1)), "{files:?}");
    assert_eq!(files_holding(&db, &marks), vec![]);
    assert_eq!(contents(&d, &k), before);
    kho_ok(0, ["--key-file", &k, "verify", &d]);
    let r = kho_ok(2, ["scan", &d]);
    assert_eq!(r.stderr.trim_end(), "kho: error: database is encrypted: --key-file needed");
}
