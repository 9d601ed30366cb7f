//! `kho audit` and the audited record commands on a store built by `kho demo
//! --audit-key-file`: listing (by person through the audit key, by actor, denied only),
//! verification (clean exits 0; a changed entry exits 1 naming it), a store that audits
//! every access refusing `kho person` without `--actor` (exit 2) and recording it with, an
//! access policy set from JSON deciding, checkpoints, pruning, and key files.

mod common;

use std::path::Path;

use common::{kho, kho_ok};
use kho::record::audit::AuditAction;
use kho::record::{AuditKey, AuditOptions, Store, StoreOptions};
use kho::Db;

/// Builds an audited demo store in `dir` with its audit key in `key`; returns the ID the
/// demo showed.
fn demo(dir: &Path, key: &Path) -> String {
    let run = kho_ok(
        0,
        [
            "demo".as_ref(),
            dir.as_os_str(),
            "--persons".as_ref(),
            "300".as_ref(),
            "--audit-key-file".as_ref(),
            key.as_os_str(),
        ],
    );
    assert!(run.stdout.contains("audited: every access is recorded"), "{}", run.stdout);
    let line = run.stdout.lines().find(|l| l.contains(" person ") && l.contains("--actor")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "person").unwrap();
    words[at + 2].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn list_verify_and_audited_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = (tmp.path().join("db"), tmp.path().join("audit.key"));
    let id = demo(&dir, &key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let public = kho_ok(0, ["audit", "key", s(&key)]).stdout;
    let public = public.trim().strip_prefix("public key ").unwrap().to_string();

    // Listing: text and JSON; no national ID in the log's output.
    let all = kho_ok(0, ["audit", s(&dir)]).stdout;
    assert!(all.contains("write demo for \"demonstration\""), "{all}");
    assert!(!all.contains(&id), "the listing names the person only by token");
    let json = kho_ok(0, ["--json", "audit", s(&dir)]).json();
    let n = json["count"].as_u64().unwrap();
    assert!(n >= 6, "{json}");
    // By person: the demo's two lookups and the writes that stored them.
    let mine = kho_ok(0, ["--json", "audit", s(&dir), "--person", &id, "--audit-key-file", s(&key)]).json();
    let actions: Vec<&str> =
        mine["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"person") && actions.contains(&"write"), "{actions:?}");
    let r = kho(["audit", s(&dir), "--person", &id]);
    assert_eq!(r.code, 2, "--person without the key: {r:?}");

    // Verification, with the key pinned or from the key file.
    let ok = kho_ok(0, ["audit", "verify", s(&dir), "--public-key", &public]).stdout;
    assert!(ok.starts_with("clean:"), "{ok}");
    kho_ok(0, ["audit", "verify", s(&dir), "--audit-key-file", s(&key)]);
    let other = tmp.path().join("other.key");
    kho_ok(0, ["audit", "key", s(&other)]);
    kho_ok(1, ["audit", "verify", s(&dir), "--audit-key-file", s(&other)]);

    // The store audits every access: `kho person` needs an actor, and is recorded with one.
    let r = kho_ok(2, ["person", s(&dir), &id]);
    assert!(r.stderr.contains("--actor, --purpose and --audit-key-file"), "{}", r.stderr);
    kho_ok(0, ["person", s(&dir), &id, "--actor", "clerk", "--purpose", "inquiry 42", "--audit-key-file", s(&key)]);
    let clerk = kho_ok(0, ["--json", "audit", s(&dir), "--actor", "clerk"]).json();
    assert_eq!(clerk["count"], 1);
    assert_eq!(clerk["entries"][0]["purpose"], "inquiry 42");
    // Without the audit key, writing opens are refused.
    kho_ok(2, ["person", s(&dir), &id, "--actor", "clerk", "--purpose", "x"]);

    // A changed entry: verify exits 1 and names the entry after it.
    {
        let db = Db::open(&dir, kho::Options::default()).unwrap();
        let store = Store::open(
            db.clone(),
            StoreOptions {
                audit: Some(AuditOptions::new(AuditKey::from_key_file(&key).unwrap())),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let entries: Vec<_> = store.audit_entries().unwrap().map(Result::unwrap).collect();
        let victim = entries.iter().find(|e| e.action == AuditAction::Person).unwrap();
        let k = [&[b'A'][..], &victim.position.to_be_bytes()].concat();
        let mut v = db.get(&k).unwrap().unwrap().to_vec();
        let at = v.windows(4).position(|w| w == b"demo").unwrap();
        v[at] = b'D';
        db.put(&k, &v).unwrap();
        store.close().unwrap();
    }
    let bad = kho_ok(1, ["audit", "verify", s(&dir), "--public-key", &public]).stdout;
    assert!(bad.contains("does not link") && bad.contains("TAMPERED"), "{bad}");
}

#[test]
fn policy_checkpoint_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = (tmp.path().join("db"), tmp.path().join("audit.key"));
    let id = demo(&dir, &key);
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [
            {"actor": "admin", "collections": ["*"], "purposes": ["*"], "read": true, "write": true, "admin": true},
            {"actor": "tax-office", "collections": ["tax"], "purposes": ["assessment"], "read": true}
        ]}"#,
    )
    .unwrap();
    let set = ["audit", "policy", s(&dir), "--set", s(&policy), "--audit-key-file", s(&key)];
    kho_ok(2, set);
    let v = kho_ok(0, [&set[..], &["--actor", "admin", "--purpose", "setup"]].concat()).stdout;
    assert_eq!(v.trim(), "policy version 1");
    let shown = kho_ok(0, ["audit", "policy", s(&dir)]).stdout;
    assert!(shown.contains("\"version\": 1") && shown.contains("tax-office"), "{shown}");

    let as_ = |actor: &str, purpose: &str| {
        vec![
            "--actor".to_string(),
            actor.into(),
            "--purpose".into(),
            purpose.into(),
            "--audit-key-file".into(),
            s(&key).into(),
        ]
    };
    let tax = kho_ok(
        0,
        [vec!["--json".to_string(), "person".into(), s(&dir).into(), id.clone()], as_("tax-office", "assessment")]
            .concat(),
    )
    .json();
    let collections: Vec<&str> =
        tax["records"].as_array().unwrap().iter().map(|r| r["collection"].as_str().unwrap()).collect();
    assert!(collections.iter().all(|c| *c == "tax"), "{collections:?}");
    let denied = kho([vec!["person".to_string(), s(&dir).into(), id.clone()], as_("tax-office", "marketing")].concat());
    assert_eq!(denied.code, 2);
    assert!(denied.stderr.contains("access denied"), "{}", denied.stderr);
    let log = kho_ok(0, ["--json", "audit", s(&dir), "--denied"]).json();
    assert_eq!(log["count"], 1);
    assert_eq!(log["entries"][0]["actor"], "tax-office");

    let cp = kho_ok(0, ["audit", "checkpoint", s(&dir), "--audit-key-file", s(&key)]).stdout;
    assert!(cp.starts_with("entries ") && cp.contains(" head "), "{cp}");
    // Pruning: not for the tax office; an admin prunes everything before now.
    kho_ok(
        2,
        [
            vec!["audit".to_string(), "prune".into(), s(&dir).into(), "--before".into(), "2999-01-01".into()],
            as_("tax-office", "assessment"),
        ]
        .concat(),
    );
    let pruned = kho_ok(
        0,
        [
            vec!["audit".to_string(), "prune".into(), s(&dir).into(), "--before".into(), "2999-01-01".into()],
            as_("admin", "retention"),
        ]
        .concat(),
    )
    .stdout;
    assert!(pruned.starts_with("pruned "), "{pruned}");
    let left = kho_ok(0, ["--json", "audit", s(&dir)]).json();
    let actions: Vec<&str> =
        left["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["prune", "checkpoint", "checkpoint"], "{left}");
    kho_ok(0, ["audit", "verify", s(&dir), "--audit-key-file", s(&key)]);
    kho_ok(0, ["verify", s(&dir)]);
}
