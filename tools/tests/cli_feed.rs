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
