//! `kho backup create|list|verify|restore|prune`: a restored backup verifies clean and scans
//! equal to its source; a second backup shares the tables; verify names a flipped byte and a
//! missing file (exit 1); prune keeps the newest; `--json` everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kho::{Db, Options};

#[test]
fn create_list_verify_restore_prune() {
    let dir = fresh();
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let (d, b) = (dir.path().to_str().unwrap(), backups.to_str().unwrap());
    let source = kho_ok(0, ["scan", d]).stdout;

    let first = kho_ok(0, ["--json", "backup", "create", d, b]).json();
    assert_eq!(first["id"], 1);
    assert_eq!(first["new_bytes"], first["bytes"], "{first}");
    // More writes, then a second, incremental backup.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put("later", "a write after the first backup").unwrap();
    db.close().unwrap();
    let r = kho_ok(0, ["backup", "create", d, b]);
    assert!(r.stdout.starts_with("backup 2 at sequence "), "{}", r.stdout);
    let list = kho_ok(0, ["--json", "backup", "list", b]).json();
    let second = &list["backups"][1];
    assert!(second["new_bytes"].as_u64().unwrap() < second["bytes"].as_u64().unwrap() / 2, "{list}");
    assert_eq!(kho_ok(0, ["backup", "list", b]).stdout.lines().count(), 2);

    let j = kho_ok(0, ["--json", "backup", "verify", b]).json();
    assert_eq!(j["ok"], true, "{j}");
    let out = tmp.path().join("restored");
    let o = out.to_str().unwrap();
    kho_ok(0, ["backup", "restore", b, "1", o]);
    assert_eq!(kho_ok(0, ["--json", "verify", o]).json()["ok"], true);
    assert_eq!(kho_ok(0, ["scan", o]).stdout, source, "backup 1 holds the data as it was");
    kho_ok(2, ["backup", "restore", b, "1", o]); // not empty: could not run
    kho_ok(2, ["backup", "restore", b, "9", tmp.path().join("x").to_str().unwrap()]);
    let nowhere = tmp.path().join("no-such-folder");
    kho_ok(2, ["backup", "list", nowhere.to_str().unwrap()]);
    assert!(!nowhere.exists(), "list does not create a folder");

    let p = kho_ok(0, ["--json", "backup", "prune", b, "--keep", "1"]).json();
    assert_eq!(p["removed"], serde_json::json!([1]));
    kho_ok(2, ["backup", "prune", b, "--keep", "0"]);
    kho_ok(0, ["backup", "verify", b, "2"]);
    let out2 = tmp.path().join("restored2");
    kho_ok(0, ["backup", "restore", b, "2", out2.to_str().unwrap()]);
    assert_eq!(kho_ok(0, ["get", out2.to_str().unwrap(), "later"]).stdout.trim(), "a write after the first backup");
}

#[test]
fn verify_names_a_flipped_byte_and_a_missing_file() {
    let dir = fresh();
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let (d, b) = (dir.path().to_str().unwrap(), backups.to_str().unwrap());
    kho_ok(0, ["backup", "create", d, b]);
    kho_ok(0, ["backup", "verify", b, "1"]);

    let table = files(&backups.join("shared"), ".sst").pop().unwrap();
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[100] ^= 0x08;
    std::fs::remove_file(&table).unwrap();
    std::fs::write(&table, bytes).unwrap();
    let log = files(&backups.join("private/1"), ".log").pop().unwrap();
    std::fs::remove_file(&log).unwrap();

    let r = kho_ok(1, ["backup", "verify", b]);
    assert!(r.stdout.contains(&format!("{} - contents hash to", table.display())), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("{} - missing", log.display())), "{}", r.stdout);
    let j = kho_ok(1, ["--json", "backup", "verify", b, "1"]).json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["backups"][0]["problems"].as_array().unwrap().len(), 2, "{j}");
    let r = kho_ok(1, ["backup", "restore", b, "1", tmp.path().join("out").to_str().unwrap()]);
    assert!(r.stdout.contains("not restored"), "{}", r.stdout);

    // Damaged metadata: `list` names it, exit 1.
    let meta = backups.join("meta/1");
    let mut text = std::fs::read(&meta).unwrap();
    text[0] ^= 0x20;
    std::fs::remove_file(&meta).unwrap();
    std::fs::write(&meta, text).unwrap();
    let r = kho_ok(1, ["backup", "list", b]);
    assert!(r.stdout.contains(&meta.display().to_string()), "{}", r.stdout);
}
