//! `kho erase` with person keys and an audit log: the receipt (0600 JSON, the person named
//! by token only), the physical purge, and `--check-receipt` on the live store (everything
//! holds, no file names the ID) and on a checkpoint taken before the erasure (its records are
//! ciphertext under the destroyed key; its audit log ends before); forged or incomplete
//! checks fail with exit 1.

mod common;

use std::path::Path;

use common::kho_ok;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn erase_writes_a_receipt_that_checks_on_the_store_and_on_an_earlier_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, vault, key) = (tmp.path().join("db"), tmp.path().join("vault"), tmp.path().join("audit.key"));
    let run = kho_ok(0, ["demo", s(&dir), "--persons", "300", "--vault", s(&vault), "--audit-key-file", s(&key)]);
    let line = run.stdout.lines().find(|l| l.contains(" erase ") && l.contains("--receipt")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let id = words[words.iter().position(|w| *w == "erase").unwrap() + 2].to_string();
    let snap = tmp.path().join("snap");
    kho_ok(0, ["checkpoint", s(&dir), s(&snap)]);
    let who =
        ["--actor", "registry", "--purpose", "erasure request 17", "--audit-key-file", s(&key), "--vault", s(&vault)];
    let before = kho_ok(0, [&["--json", "person", s(&dir), &id][..], &who].concat()).json();
    let n = before["count"].as_u64().unwrap();
    assert!(n > 0);

    let receipt = tmp.path().join("erasure.json");
    let out = kho_ok(0, [&["erase", s(&dir), &id, "--receipt", s(&receipt)][..], &who].concat()).stdout;
    assert!(out.contains("destroyed") && out.contains("purged"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&receipt).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(!text.contains(&id), "the receipt names the person by token only");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["records_erased"], n);
    assert_eq!(r["purged"], true);
    assert!(r["destroyed_key"].is_string() && r["subject"].is_string() && r["audit_checkpoint"].is_object());

    // Gone from the store: no record, no file holding the ID, the key destroyed, the audit
    // log holding the erasure.
    let gone = kho_ok(1, [&["person", s(&dir), &id][..], &who].concat());
    assert!(gone.stdout.is_empty());
    let check = kho_ok(0, ["erase", "--check-receipt", s(&receipt), s(&dir), "--vault", s(&vault), "--id", &id]).stdout;
    assert!(check.contains("is destroyed in the vault") && check.contains("no file of"), "{check}");
    assert!(check.contains("the audit log holds the erasure"), "{check}");

    // The checkpoint from before still holds the records, as ciphertext under the destroyed
    // key: the check says so and passes; reading them through the live vault finds nothing.
    let old = kho_ok(0, ["erase", "--check-receipt", s(&receipt), s(&snap), "--vault", s(&vault), "--id", &id]).stdout;
    assert!(old.contains(&format!("{n} record(s) in")), "{old}");
    assert!(old.contains("ends before the erasure") && old.contains("payloads are unreadable"), "{old}");
    let snap_who = ["--actor", "auditor", "--purpose", "check", "--audit-key-file", s(&key), "--vault", s(&vault)];
    kho_ok(1, [&["person", s(&snap), &id][..], &snap_who].concat());

    // Checks that cannot hold: no vault given; a receipt naming a key the vault never held.
    let no_vault = kho_ok(1, ["erase", "--check-receipt", s(&receipt), s(&dir)]).stdout;
    assert!(no_vault.contains("give --vault"), "{no_vault}");
    let forged = tmp.path().join("forged.json");
    std::fs::write(&forged, text.replace(r["destroyed_key"].as_str().unwrap(), "0011223344556677")).unwrap();
    let f = kho_ok(1, ["erase", "--check-receipt", s(&forged), s(&dir), "--vault", s(&vault)]).stdout;
    assert!(f.contains("never held"), "{f}");
    kho_ok(0, ["verify", s(&dir)]);
}
