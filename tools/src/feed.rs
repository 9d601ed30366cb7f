//! `kho feed DIR --subscriber NAME [--follow] [--json]`: prints a subscription's changes,
//! one line each, and acknowledges them (synced) once they are written and flushed to
//! stdout — at-least-once: a crash between the two prints them again next time.
//! `kho feed DIR --list`: every subscription, its acknowledged position, its lag (changes
//! retained after it) and whether it has expired.
//!
//! Reading a subscription writes (the acknowledgement), so `DIR` is opened for writing and
//! its lock taken: a database used by another process answers `Busy` (exit 2). `--list`
//! opens read-only. An expired subscription (retention dropped changes it had not
//! acknowledged) exits 1: the subscriber must resync and subscribe again.
//!
//! `kho feed DIR --subscribe NAME [--collection C]... [--id-prefix P]...` turns the feed on
//! (persisted: it stays on) and registers a subscription that holds every change from now
//! on; `kho feed DIR --unsubscribe NAME` releases it.
//!
//! Text line: `POSITION KIND COLLECTION PK NATIONAL_ID PAYLOAD_JSON` (the payload `-` for a
//! delete or erasure); `--json` prints one JSON object per line instead (JSON lines).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kho::record::{AckMode, Change, ChangeCursor, FeedOptions, Store, StoreOptions, SubscriptionFilter};
use kho::Db;
use serde_json::json;

use crate::json::payload_to_json;
use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// How long `--follow` waits between polls of a caught-up feed.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Arguments of `kho feed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// The subscription to read (and acknowledge).
    #[arg(long, required_unless_present_any = ["list", "subscribe", "unsubscribe"], conflicts_with_all = ["list", "subscribe", "unsubscribe"])]
    pub subscriber: Option<String>,
    /// Register a subscription (turning the feed on if it is off).
    #[arg(long, conflicts_with_all = ["list", "unsubscribe"])]
    pub subscribe: Option<String>,
    /// With --subscribe: only changes of this collection (repeatable; default: all).
    #[arg(long = "collection", requires = "subscribe")]
    pub collections: Vec<String>,
    /// With --subscribe: only changes whose national ID starts with these digits
    /// (repeatable; a province `079`, a birth year in a province `079190`, ...).
    #[arg(long = "id-prefix", requires = "subscribe")]
    pub id_prefixes: Vec<String>,
    /// Remove a subscription, releasing the changes it held.
    #[arg(long, conflicts_with = "list")]
    pub unsubscribe: Option<String>,
    /// Keep waiting for new changes (until killed).
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many changes.
    #[arg(long)]
    pub max: Option<u64>,
    /// List the subscriptions instead.
    #[arg(long)]
    pub list: bool,
    /// The audit key file of an audited store (needed to open it for writing; reading the
    /// feed is not an audited access) and the person-key vault of a store with person keys
    /// (needed to open sealed payloads).
    #[arg(long)]
    pub audit_key_file: Option<PathBuf>,
    /// The person-key vault directory of a store with person keys.
    #[arg(long)]
    pub vault: Option<PathBuf>,
}

/// Runs `kho feed`.
pub fn run(out: &mut Out, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    if let Some(name) = &args.subscribe {
        return subscribe(out, args, name, keys);
    }
    if let Some(name) = &args.unsubscribe {
        let store = open_writable(args, keys, false)?;
        let removed = store.unsubscribe(name)?;
        store.close()?;
        writeln!(out, "{}", if removed { format!("unsubscribed {name}") } else { format!("no subscription {name}") })?;
        return Ok(if removed { Outcome::Ok } else { Outcome::Problems });
    }
    match &args.subscriber {
        Some(name) if !args.list => read(out, args, name, keys),
        _ => list(out, args, keys),
    }
}

/// The store in `args.dir`, opened for writing (its lock taken); with `enable`, the feed
/// turned on.
fn open_writable(args: &Args, keys: &Keys, enable: bool) -> anyhow::Result<Store> {
    let opts = keys.write_options(&args.dir)?;
    let opts = kho::Options { create_if_missing: false, ..opts };
    let db = Db::open(&args.dir, opts).with_context(|| format!("cannot open {}", args.dir.display()))?;
    let feed = FeedOptions { enable, ..FeedOptions::default() };
    let audit = args.audit_key_file.as_deref().map(crate::audit::audit_key).transpose()?;
    let person_keys = args.vault.as_deref().map(|v| crate::erase::open_vault(v, keys, false)).transpose()?;
    let opts = StoreOptions {
        feed,
        audit: audit.map(|k| kho::record::AuditOptions { required: false, ..kho::record::AuditOptions::new(k) }),
        person_keys,
        ..StoreOptions::default()
    };
    Ok(Store::open(db, opts)?)
}

fn subscribe(out: &mut Out, args: &Args, name: &str, keys: &Keys) -> anyhow::Result<Outcome> {
    let mut filter = match args.collections.is_empty() {
        true => SubscriptionFilter::all(),
        false => SubscriptionFilter::collections(args.collections.iter().cloned()),
    };
    for p in &args.id_prefixes {
        filter = filter.id_prefix(p)?;
    }
    let store = open_writable(args, keys, true)?;
    let from = store.subscribe(name, filter)?;
    store.close()?;
    writeln!(out, "subscribed {name}: changes after position {from}")?;
    Ok(Outcome::Ok)
}

fn read(out: &mut Out, args: &Args, name: &str, keys: &Keys) -> anyhow::Result<Outcome> {
    let store = open_writable(args, keys, false)?;
    let mut cursor = match store.changes(name) {
        Ok(c) => c,
        Err(e @ kho::record::Error::CursorExpired { .. }) => {
            eprintln!("kho: {e}");
            return Ok(Outcome::Problems);
        }
        Err(e) => return Err(e.into()),
    };
    let mut printed = 0u64;
    let limit = args.max.unwrap_or(u64::MAX);
    loop {
        let outcome = drain(out, &mut cursor, &mut printed, limit)?;
        out.flush()?;
        cursor.ack(outcome, AckMode::Sync)?;
        if !args.follow || printed >= limit {
            break;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    drop(cursor);
    store.close()?;
    Ok(Outcome::Ok)
}

/// Prints changes until the cursor catches up or `limit` is reached; returns the position
/// to acknowledge.
fn drain(out: &mut Out, cursor: &mut ChangeCursor, printed: &mut u64, limit: u64) -> anyhow::Result<u64> {
    while *printed < limit {
        let Some(change) = cursor.next().transpose()? else { break };
        print_change(out, &change)?;
        *printed += 1;
    }
    Ok(cursor.delivered_through())
}

fn print_change(out: &mut Out, c: &Change) -> anyhow::Result<()> {
    let payload = c.payload.as_deref().map(payload_to_json).transpose()?;
    let b = out.bytes;
    if out.json {
        let v = json!({
            "position": c.position,
            "kind": c.kind.as_str(),
            "collection": &*c.collection,
            "pk": b.show(&c.pk),
            "national_id": c.id.as_str(),
            "time_ms": c.time_ms,
            "payload": payload,
        });
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        let payload = payload.map_or_else(|| "-".to_string(), |p| p.to_string());
        writeln!(
            out,
            "{} {} {} {} {} {payload}",
            c.position,
            c.kind.as_str(),
            c.collection,
            b.show(&c.pk),
            c.id.as_str()
        )?;
    }
    Ok(())
}

fn list(out: &mut Out, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    let db = crate::kv::open(&args.dir, keys)?;
    let store = Store::open_read_only(db, StoreOptions::default())?;
    let subs = store.subscriptions()?;
    if out.json {
        let v: Vec<_> = subs
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "acked": s.acked,
                    "lag": s.lag,
                    "expired": s.expired,
                    "collections": s.filter.collection_names(),
                    "id_prefixes": s.filter.id_prefixes(),
                })
            })
            .collect();
        out.json_value(
            &json!({"feed": store.feed_enabled(), "last_sequence": store.db().last_sequence(), "subscriptions": v}),
        )?;
    } else if !store.feed_enabled() {
        writeln!(out, "the store in {} records no change feed", args.dir.display())?;
    } else {
        writeln!(out, "{:<24} {:>12} {:>10}  filter", "subscription", "acked", "lag")?;
        for s in &subs {
            let mut filter = if s.filter.collection_names().is_empty() {
                "all collections".to_string()
            } else {
                s.filter.collection_names().join(",")
            };
            if !s.filter.id_prefixes().is_empty() {
                filter += &format!("; ID prefixes {}", s.filter.id_prefixes().join(","));
            }
            let expired = if s.expired { "  EXPIRED" } else { "" };
            writeln!(out, "{:<24} {:>12} {:>10}  {filter}{expired}", s.name, s.acked, s.lag)?;
        }
    }
    Ok(Outcome::Ok)
}
