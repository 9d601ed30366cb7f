//! `kho feed`: prints a subscription's changes (text or JSON lines) and acknowledges them, so
//! a second run prints only what came after; `--list` shows positions and lag; an expired
//! subscription exits 1; a store without a feed is an error (exit 2).

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use kho::record::{FeedOptions, NationalId, Store, StoreOptions, SubscriptionFilter};
use kho::Db;

fn store(dir: &Path, feed: FeedOptions) -> Store {
    Store::open(Db::open(dir, kho::Options::default()).unwrap(), StoreOptions { feed, ..StoreOptions::default() })
        .unwrap()
}

fn on() -> FeedOptions {
    FeedOptions { enable: true, ..FeedOptions::default() }
}

fn write(s: &Store, from: u32, to: u32) {
    let id = NationalId::parse("079190001234").unwrap();
    for i in from..to {
        s.upsert("tax", format!("pk{i}"), &id, &serde_json::json!({"n": i})).unwrap();
    }
}

fn feed(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = cargo_bin_cmd!("kho").arg("feed").arg(dir).args(args).output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn prints_acknowledges_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(dir.path(), on());
        s.subscribe("agency", SubscriptionFilter::all()).unwrap();
        write(&s, 0, 5);
        s.close().unwrap();
    }
    let (code, out, err) = feed(dir.path(), &["--subscriber", "agency", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0]["kind"], "insert");
    assert_eq!(lines[0]["collection"], "tax");
    assert_eq!(lines[0]["national_id"], "079190001234");
    assert_eq!(lines[4]["payload"]["n"], 4);
    assert!(lines.windows(2).all(|w| w[0]["position"].as_u64() < w[1]["position"].as_u64()));

    let (code, out, _) = feed(dir.path(), &["--subscriber", "agency"]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "acknowledged changes are not printed again");
    {
        let s = store(dir.path(), on());
        write(&s, 5, 8);
        s.close().unwrap();
    }
    let (code, out, _) = feed(dir.path(), &["--subscriber", "agency", "--max", "2"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().next().unwrap().contains(" insert tax pk5 079190001234 {\"n\":5}"), "{out}");

    let (code, out, _) = feed(dir.path(), &["--list"]);
    assert_eq!(code, Some(0));
    let line = out.lines().find(|l| l.starts_with("agency")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line.split_whitespace().nth(2), Some("1"), "one change left: {out}");
    let (_, json, _) = feed(dir.path(), &["--list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["subscriptions"][0]["lag"], 1);
}

#[test]
fn an_expired_subscription_exits_1_and_a_store_without_feed_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(dir.path(), FeedOptions { max_bytes: Some(1024), ..on() });
        s.subscribe("late", SubscriptionFilter::all()).unwrap();
        write(&s, 0, 100);
        s.trim_feed().unwrap();
        s.close().unwrap();
    }
    let (code, _, err) = feed(dir.path(), &["--subscriber", "late"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("expired"), "{err}");
    let (_, out, _) = feed(dir.path(), &["--list"]);
    assert!(out.contains("EXPIRED"), "{out}");

    let plain = tempfile::tempdir().unwrap();
    store(plain.path(), FeedOptions::default()).close().unwrap();
    let (code, _, err) = feed(plain.path(), &["--subscriber", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no change feed"), "{err}");
}

#[test]
fn subscribe_turns_the_feed_on_and_unsubscribe_releases() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), FeedOptions::default()).close().unwrap();
    let (code, out, err) = feed(dir.path(), &["--subscribe", "tax-hcm", "--collection", "tax", "--id-prefix", "079"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("subscribed tax-hcm"), "{out}");
    let (code, _, err) = feed(dir.path(), &["--subscribe", "bad", "--id-prefix", "07x"]);
    assert_eq!(code, Some(2), "an invalid prefix: {err}");
    {
        // The feed stays on although this open does not ask for it.
        let s = store(dir.path(), FeedOptions::default());
        assert!(s.feed_enabled());
        write(&s, 0, 3);
        let other = NationalId::parse("001185000042").unwrap();
        s.upsert("tax", "elsewhere", &other, &1).unwrap();
        s.upsert("vehicle", "v", &NationalId::parse("079190001234").unwrap(), &1).unwrap();
        s.close().unwrap();
    }
    let (code, out, _) = feed(dir.path(), &["--subscriber", "tax-hcm"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 3, "only tax changes of province 079: {out}");
    let (code, out, _) = feed(dir.path(), &["--unsubscribe", "tax-hcm"]);
    assert_eq!((code, out.trim()), (Some(0), "unsubscribed tax-hcm"));
    let (code, _, _) = feed(dir.path(), &["--unsubscribe", "tax-hcm"]);
    assert_eq!(code, Some(1));
    let (_, out, _) = feed(dir.path(), &["--list"]);
    assert!(!out.contains("tax-hcm"), "{out}");
}

#[test]
fn demo_with_the_feed_holds_every_change_for_its_subscription() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let o = cargo_bin_cmd!("kho").arg("demo").arg(&dir).args(["--persons", "200", "--feed"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, out, _) = feed(&dir, &["--list", "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["subscriptions"][0]["name"], "demo");
    let lag = v["subscriptions"][0]["lag"].as_u64().unwrap();
    assert!(lag > 600, "every change of ~680 records: {lag}");
    let (code, out, _) = feed(&dir, &["--subscriber", "demo", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count() as u64, lag);
}

#[test]
fn an_audited_store_with_person_keys_feeds_with_its_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, vault, key) = (tmp.path().join("db"), tmp.path().join("vault"), tmp.path().join("audit.key"));
    let o = cargo_bin_cmd!("kho")
        .arg("demo")
        .arg(&dir)
        .args(["--persons", "100", "--feed", "--vault"])
        .arg(&vault)
        .arg("--audit-key-file")
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, _, err) = feed(&dir, &["--subscriber", "demo", "--max", "1"]);
    assert_eq!(code, Some(2), "without the audit key: {err}");
    let (v, k) = (vault.to_str().unwrap(), key.to_str().unwrap());
    let (code, _, err) = feed(&dir, &["--subscriber", "demo", "--max", "1", "--audit-key-file", k]);
    assert_eq!(code, Some(2), "without the vault the sealed payloads cannot be opened: {err}");
    let (code, out, err) =
        feed(&dir, &["--subscriber", "demo", "--max", "2", "--json", "--audit-key-file", k, "--vault", v]);
    assert_eq!(code, Some(0), "{err}");
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(first["payload"].is_object(), "opened, decoded payload: {first}");
}
