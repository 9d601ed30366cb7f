//! `kho get` and `kho scan`: raw key-value access through a read-only open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn get_prints_values_from_tables_and_the_log() {
    let dir = fresh();
    let d = dir.path().to_str().unwrap();
    assert_eq!(kho_ok(0, ["get", d, "citizen:00042"]).stdout, format!("{}\n", value(42)));
    assert_eq!(kho_ok(0, ["get", d, "pending:7"]).stdout, "in the log 7\n", "unflushed writes are seen");
    let r = kho_ok(1, ["get", d, "citizen:00050"]);
    assert!(r.stdout.is_empty() && r.stderr.contains("not found"), "deleted keys are absent");
    kho_ok(1, ["get", d, "nobody"]);

    // The binary key, escaped as kho prints it, and in hex.
    let escaped = r#"bin\x00\xff\"q\\"#;
    assert_eq!(kho_ok(0, ["get", d, escaped]).stdout, "\\x01\\x02 value\n");
    let hex: String = BINARY_KEY.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(kho_ok(0, ["--hex", "get", d, &hex]).stdout, "01022076616c7565\n");

    let j = kho_ok(0, ["get", d, "citizen:00042", "--json"]).json();
    assert_eq!((j["found"].as_bool(), j["value"].as_str()), (Some(true), Some(value(42).as_str())));
    let j = kho_ok(1, ["get", d, "nobody", "--json"]).json();
    assert_eq!(j["found"], false);
    kho_ok(2, ["get", d, "bad\\x4"]);
}

#[test]
fn scan_walks_a_range_in_order() {
    let dir = fresh();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["scan", d]);
    let live = CITIZENS - DELETED + 1 + PENDING;
    assert_eq!(r.stdout.lines().count(), live);
    assert!(r.stderr.contains(&format!("{live} entries")));
    let r = kho_ok(0, ["scan", d, "--from", "citizen:00048", "--to", "citizen:00053"]);
    let keys: Vec<&str> = r.stdout.lines().map(|l| l.split(" => ").next().unwrap()).collect();
    assert_eq!(keys, ["\"citizen:00048\"", "\"citizen:00049\"", "\"citizen:00051\"", "\"citizen:00052\""]);
    let r = kho_ok(0, ["scan", d, "--from", "pending:", "--limit", "3", "--keys-only"]);
    assert_eq!(r.stdout, "\"pending:0\"\n\"pending:1\"\n\"pending:2\"\n");

    let j = kho_ok(0, ["scan", d, "--from", "citizen:00100", "--limit", "5", "--json"]).json();
    assert_eq!(j["count"], 5);
    assert_eq!(j["entries"][0]["key"], "citizen:00101");
    assert_eq!(j["entries"][0]["value"], value(101));
    kho_ok(2, ["scan", d, "--from", "z", "--to", "a"]);
}

#[test]
fn missing_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("nothing-here");
    let d = d.to_str().unwrap();
    for args in [vec!["get", d, "k"], vec!["scan", d], vec!["dump", "summary", d], vec!["verify", d]] {
        let r = kho(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.starts_with("kho: error: "), "{r:?}");
    }
    // An empty directory is not a database either.
    let e = dir.path().to_str().unwrap();
    assert_eq!(kho(["get", e, "k"]).code, 2);
    assert_eq!(kho(["verify", e]).code, 1);
}
