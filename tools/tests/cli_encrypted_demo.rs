//! `kho demo --key-file` builds a database encrypted at rest: the key file is created with
//! mode 0600, no file of the database holds a national ID or payload string the demo
//! printed, and every command works with the key, refuses without it (exit 2, `database is
//! encrypted: --key-file needed`, nothing decoded on stdout) and refuses a wrong key (exit 2,
//! `wrong key`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;

const KEY_NEEDED: &str = "kho: error: database is encrypted: --key-file needed";

/// String values of at least 8 bytes in a JSON value (shorter ones could occur in ciphertext
/// by chance).
fn strings(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
    match v {
        serde_json::Value::String(s) if s.len() >= 8 => out.push(s.as_bytes().to_vec()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// What the demo printed about people: the shown person's ID and name, every string of
/// their records (IDs, primary keys, payload strings) and the IDs of the province query.
/// Also returns the shown person's ID and the collection and primary key of one record.
fn personal_data(stdout: &str) -> (Vec<Vec<u8>>, String, (String, String)) {
    let mut out = Vec::new();
    let line = stdout.lines().find(|l| l.starts_with("person ")).expect("the demo shows a person");
    let id = line.split_whitespace().nth(1).unwrap().to_owned();
    let name = line.split(" — ").nth(1).unwrap().split(" (").next().unwrap();
    out.push(id.as_bytes().to_vec());
    out.push(name.as_bytes().to_vec());
    let mut record = None;
    for l in stdout.lines().filter(|l| l.starts_with("  {")) {
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        strings(&v, &mut out);
        record.get_or_insert((v["collection"].as_str().unwrap().to_owned(), v["pk"].as_str().unwrap().to_owned()));
    }
    let first = stdout.lines().find(|l| l.contains("; first: ")).expect("the province query");
    for other in first.split("; first: ").nth(1).unwrap().split(", ").filter(|s| !s.is_empty()) {
        out.push(other.as_bytes().to_vec());
    }
    assert!(out.len() > 8, "{out:?}");
    (out, id, record.expect("the shown person's records"))
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn encrypted_demo_works_with_the_key_and_refuses_without_or_with_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = (tmp.path().join("db"), tmp.path().join("master.key"));
    let (d, k) = (s(&db), s(&key));
    let demo = kho_ok(0, ["demo", &d, "--persons", "600", "--key-file", &k]);
    assert!(demo.stdout.contains("encrypted at rest under a new master key"), "{}", demo.stdout);
    assert!(demo.stdout.contains(&format!("--key-file {k} verify {d}")), "{}", demo.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Nothing the demo printed about a person is anywhere in the database's files. (Tables
    // are zstd-compressed, which hides strings too: so also check below that every table
    // block is sealed and every log, manifest and registry encrypted. `cli_rekey` has the
    // byte search with a control that finds plaintext.)
    let (secrets, id, (collection, pk)) = personal_data(&demo.stdout);
    assert_eq!(files_holding(&db, &secrets), vec![], "plaintext personal data on disk");
    let keys = kho_ok(0, ["--key-file", &k, "--json", "dump", "keys", &d]).json();
    let listed = keys["files"].as_array().unwrap();
    assert!(listed.len() >= 4, "{keys}");
    for f in listed {
        assert_eq!(f["encryption"]["scheme"], "AES-256-GCM", "{f}");
    }
    for t in files(&db, ".sst") {
        let dump = kho_ok(0, ["--key-file", &k, "--json", "dump", "sst", &s(&t), "--limit", "0"]).json();
        for b in dump["blocks"].as_array().unwrap() {
            assert!(b["transform"].as_str().unwrap().ends_with("+aes-256-gcm"), "{b}");
        }
    }

    // With the key (given before or after the subcommand: it is a global option).
    let r = kho_ok(0, ["person", &d, &id, "--key-file", &k]);
    assert!(r.stdout.contains(&format!("person {id}:")), "{}", r.stdout);
    kho_ok(0, ["--key-file", &k, "record", &d, &collection, &pk]);
    let scan = kho_ok(0, ["--key-file", &k, "--json", "scan", &d, "--limit", "5"]).json();
    let first = scan["entries"][0]["key"].as_str().unwrap().to_owned();
    kho_ok(0, ["--key-file", &k, "get", &d, &first]);
    let v = kho_ok(0, ["--key-file", &k, "verify", &d]);
    assert!(v.stderr.contains("every block and record authenticated"), "{}", v.stderr);
    let sum = kho_ok(0, ["--key-file", &k, "dump", "summary", &d]);
    assert!(sum.stdout.contains("(AES-256-GCM, data key 1)") && sum.stdout.contains("data keys 1 (current 1)"));
    let keys = kho_ok(0, ["--key-file", &k, "dump", "keys", &d]);
    assert!(keys.stdout.contains("data key 1 (current): "), "{}", keys.stdout);
    let table = files(&db, ".sst").pop().unwrap();
    let sst = kho_ok(0, ["--key-file", &k, "dump", "sst", &s(&table), "--limit", "3"]);
    assert!(sst.stdout.contains("format version 3 (AES-256-GCM, data key 1)"), "{}", sst.stdout);
    assert!(sst.stdout.contains("zstd+aes-256-gcm") && sst.stdout.contains("check: ok"), "{}", sst.stdout);
    kho_ok(0, ["--key-file", &k, "dump", "manifest", &d]);
    kho_ok(0, ["--key-file", &k, "dump", "wal", &s(&newest_log(&db))]);
    kho_ok(0, ["--key-file", &k, "feed", &d, "--list"]);
    let cp = tmp.path().join("cp");
    kho_ok(0, ["--key-file", &k, "checkpoint", &d, &s(&cp)]);
    kho_ok(0, ["--key-file", &k, "verify", &s(&cp)]);
    let bk = tmp.path().join("backups");
    kho_ok(0, ["--key-file", &k, "backup", "create", &d, &s(&bk)]);
    let bv = kho_ok(0, ["--key-file", &k, "backup", "verify", &s(&bk)]);
    assert!(bv.stdout.contains("encrypted (authenticated with the key): ok"), "{}", bv.stdout);
    // Without the key a backup is still checked, by checksum, and says so.
    let bv = kho_ok(0, ["backup", "verify", &s(&bk)]);
    assert!(bv.stdout.contains("encrypted (checksums only; --key-file authenticates them): ok"), "{}", bv.stdout);
    let restored = tmp.path().join("restored");
    let br = kho_ok(0, ["--key-file", &k, "backup", "restore", &s(&bk), "1", &s(&restored)]);
    assert!(br.stdout.contains("encrypted: opens with the key"), "{}", br.stdout);
    kho_ok(0, ["--key-file", &k, "person", &s(&restored), &id]);
    assert_eq!(files_holding(tmp.path(), &secrets), vec![], "plaintext personal data in a copy");

    // Without the key: exit 2, the one message, nothing decoded.
    let cp2 = s(&tmp.path().join("cp2"));
    let bk2 = s(&tmp.path().join("backups2"));
    let (t, l) = (s(&table), s(&newest_log(&db)));
    let without: Vec<Vec<&str>> = vec![
        vec!["get", &d, &first],
        vec!["scan", &d],
        vec!["person", &d, &id],
        vec!["record", &d, &collection, &pk],
        vec!["verify", &d],
        vec!["dump", "summary", &d],
        vec!["dump", "manifest", &d],
        vec!["dump", "keys", &d],
        vec!["dump", "sst", &t],
        vec!["dump", "wal", &l],
        vec!["checkpoint", &d, &cp2],
        vec!["feed", &d, "--list"],
        vec!["feed", &d, "--subscriber", "s"],
        vec!["backup", "create", &d, &bk2],
        vec!["rekey", &d],
    ];
    for args in &without {
        for json in [false, true] {
            let mut a = args.clone();
            if json {
                a.push("--json");
            }
            let r = kho_ok(2, &a);
            assert_eq!(r.stderr.trim_end(), KEY_NEEDED, "kho {a:?}");
            let shown: Vec<&Vec<u8>> =
                secrets.iter().filter(|n| r.stdout.as_bytes().windows(n.len()).any(|w| w == &n[..])).collect();
            assert!(shown.is_empty(), "kho {a:?} printed personal data without the key:\n{}", r.stdout);
            if args[0] != "dump" {
                assert_eq!(r.stdout, "", "kho {a:?}");
            }
        }
    }
    // What the dumps can show without the key: the plaintext footer and headers.
    let r = kho_ok(2, ["dump", "sst", &t]);
    assert!(r.stdout.contains("format version 3 (AES-256-GCM, data key 1)"), "{}", r.stdout);
    let r = kho_ok(2, ["dump", "keys", &d]);
    assert!(r.stdout.contains("under master key keyfile:") && r.stdout.contains("data key 1: "), "{}", r.stdout);
    assert!(!Path::new(&cp2).exists() && !Path::new(&bk2).join("meta").exists(), "nothing created");

    // Another key: exit 2, "wrong key".
    let other = new_key_file(&tmp.path().join("other.key"));
    let o = s(&other);
    for args in &without {
        let mut a = vec!["--key-file", &o];
        a.extend(args.iter().copied());
        let r = kho_ok(2, &a);
        assert!(r.stderr.starts_with("kho: error: wrong key: "), "kho {a:?}: {}", r.stderr);
        assert!(!r.stderr.contains(&std::fs::read_to_string(&key).unwrap().trim().to_string()));
    }
    kho_ok(2, ["--key-file", &o, "backup", "verify", &s(&bk), "1"]);
    // A key file others may read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = kho_ok(2, ["--key-file", &o, "get", &d, &first]);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    }
}
