//! `kho person DIR NATIONAL_ID` and `kho record DIR COLLECTION PK`: records through the
//! record layer (`Store::open_read_only` over a read-only open: the newest data, unflushed
//! log contents included, nothing written), payloads rendered as JSON.
//!
//! Text output is one block per record:
//!
//! ```text
//! collection   tax
//! pk           "8012345678"
//! national id  079190001234
//! payload      {
//!                "bracket": 3,
//!                "name": "An"
//!              }
//! ```
//!
//! Primary keys are shown and read like keys elsewhere in `kho` (escaped, or hex with `--hex`).
//!
//! A store that audits every access (docs/privacy.md) refuses the read-only path: with
//! `--actor A --purpose P --audit-key-file F` the command opens it for writing (taking its
//! lock), reads as that actor — checked against the access policy, recorded in the audit
//! log — and closes it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kho::record::{ActorStore, IdRules, InvalidIdReason, NationalId, Record, Store, StoreOptions};
use serde_json::json;

use crate::audit::ActorArgs;
use crate::fmt::Bytes;
use crate::json::{payload_to_json, record_json};
use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// Arguments of `kho person`.
#[derive(Debug, clap::Args)]
pub struct PersonArgs {
    /// The database directory.
    pub dir: PathBuf,
    /// The 12-digit national ID.
    pub national_id: String,
    #[command(flatten)]
    pub who: ActorArgs,
}

/// Arguments of `kho record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The database directory.
    pub dir: PathBuf,
    /// The collection's name.
    pub collection: String,
    /// The primary key (escaped as `kho` prints it, or hex with `--hex`).
    pub pk: String,
    #[command(flatten)]
    pub who: ActorArgs,
}

/// How a command reads records: the plain read-only store, or an audited actor.
enum Reader {
    Plain(Store),
    Actor(ActorStore),
}

impl Reader {
    /// With `--actor`: the store opened for writing with the audit key, seen by that actor;
    /// otherwise read-only. An audited store read without `--actor` says what it needs.
    fn open(dir: &Path, keys: &Keys, who: &ActorArgs) -> anyhow::Result<Reader> {
        if who.actor.is_some() || who.purpose.is_some() {
            let ctx = crate::audit::context(who)?;
            let store = crate::audit::open_writable(dir, keys, who)?;
            return Ok(Reader::Actor(store.as_actor(ctx)));
        }
        Ok(Reader::Plain(open_store(dir, keys, who.vault.as_deref())?))
    }

    fn store(&self) -> &Store {
        match self {
            Reader::Plain(s) => s,
            Reader::Actor(a) => a.store(),
        }
    }

    fn person(&self, id: &NationalId) -> kho::record::Result<Vec<Record>> {
        match self {
            Reader::Plain(s) => s.person(id),
            Reader::Actor(a) => a.person(id),
        }
    }

    fn get_raw(&self, collection: &str, pk: &[u8]) -> kho::record::Result<Option<Record>> {
        match self {
            Reader::Plain(s) => s.get_raw(collection, pk),
            Reader::Actor(a) => a.get_raw(collection, pk),
        }
    }

    /// Closes an actor's (writable) store; a read-only store needs nothing.
    fn close(&self) -> anyhow::Result<()> {
        if let Reader::Actor(a) = self {
            a.store().close()?;
        }
        Ok(())
    }
}

/// Adds what an audited store needs to its refusal of an access without context.
fn audited_hint(e: kho::record::Error) -> anyhow::Error {
    let hint = matches!(e, kho::record::Error::AccessContextRequired | kho::record::Error::AuditKeyNeeded);
    let e = anyhow::Error::new(e);
    if hint {
        e.context("this store audits every access: give --actor, --purpose and --audit-key-file")
    } else {
        e
    }
}

/// The record store in `dir`, read-only.
fn open_store(dir: &Path, keys: &Keys, vault: Option<&Path>) -> anyhow::Result<Store> {
    let db = crate::kv::open(dir, keys)?;
    let person_keys = vault.map(|v| crate::erase::open_vault(v, keys, true)).transpose()?;
    Store::open_read_only(db, StoreOptions { person_keys, ..StoreOptions::default() }).map_err(|e| match e {
        kho::record::Error::Engine(kho::Error::NotFound(_)) => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot read the record store in {}", dir.display())),
    })
}

/// Parses a national ID. Its format (12 digits) is required; a province code or birth year
/// the default rules reject is only a note, since a store may have been written with extra
/// province codes and the lookup is harmless.
fn parse_id(s: &str) -> anyhow::Result<NationalId> {
    match NationalId::parse(s) {
        Ok(id) => Ok(id),
        Err(kho::record::Error::InvalidNationalId {
            reason: reason @ (InvalidIdReason::UnknownProvince { .. } | InvalidIdReason::FutureBirthYear { .. }),
            ..
        }) => {
            let any = IdRules { extra_province_codes: (0..1000).collect(), current_year: Some(2399) };
            let id = NationalId::parse_with(s, &any)?;
            eprintln!("note: {s}: {reason}; looking it up anyway");
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes one record as a text block.
fn write_block(out: &mut Out, b: Bytes, r: &Record) -> anyhow::Result<()> {
    const INDENT: &str = "             ";
    writeln!(out, "collection   {}", r.collection)?;
    writeln!(out, "pk           {}", b.quoted(&r.pk))?;
    writeln!(out, "national id  {}", r.id)?;
    match payload_to_json(&r.payload) {
        Ok(p) => {
            let text = serde_json::to_string_pretty(&p)?;
            let mut lines = text.lines();
            writeln!(out, "payload      {}", lines.next().unwrap_or_default())?;
            for l in lines {
                writeln!(out, "{INDENT}{l}")?;
            }
        }
        Err(e) => {
            writeln!(out, "payload      <undecodable: {e:#}>")?;
            writeln!(out, "{INDENT}{}", crate::fmt::hex(&r.payload))?;
        }
    }
    Ok(())
}

/// Runs `kho person`: every record of the person, across collections; exit 1 when there is
/// none.
pub fn person(out: &mut Out, args: &PersonArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let id = parse_id(&args.national_id)?;
    let store = Reader::open(&args.dir, keys, &args.who)?;
    let records = store.person(&id).map_err(audited_hint).with_context(|| format!("reading the records of {id}"))?;
    store.close()?;
    if out.json {
        let list: Vec<serde_json::Value> = records.iter().map(|r| record_json(b, r)).collect();
        out.json_value(&json!({"national_id": id.as_str(), "count": records.len(), "records": list}))?;
    } else if records.is_empty() {
        eprintln!("no records of {id}");
    } else {
        let collections: std::collections::BTreeSet<&str> = records.iter().map(|r| &*r.collection).collect();
        writeln!(
            out,
            "person {id}: {} in {}",
            crate::fmt::count(records.len() as u64, "record"),
            crate::fmt::count(collections.len() as u64, "collection")
        )?;
        for r in &records {
            writeln!(out)?;
            write_block(out, b, r)?;
        }
    }
    Ok(if records.is_empty() { Outcome::Problems } else { Outcome::Ok })
}

/// Runs `kho record`: one record; exit 1 when it does not exist.
pub fn record(out: &mut Out, args: &RecordArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let pk = b.parse(&args.pk)?;
    let reader = Reader::open(&args.dir, keys, &args.who)?;
    let record = reader.get_raw(&args.collection, &pk).map_err(audited_hint).context("reading the record")?;
    reader.close()?;
    let store = reader.store();
    if out.json {
        out.json_value(&json!({
            "collection": args.collection,
            "pk": b.show(&pk),
            "found": record.is_some(),
            "record": record.as_ref().map(|r| record_json(b, r)),
        }))?;
    } else if let Some(r) = &record {
        write_block(out, b, r)?;
    } else if store.collections().contains(&args.collection) {
        eprintln!("not found: no record {} in collection {}", b.quoted(&pk), args.collection);
    } else if store.collections().is_empty() {
        eprintln!("not found: no collection {:?} (the store has none)", args.collection);
    } else {
        eprintln!("not found: no collection {:?} (collections: {})", args.collection, store.collections().join(", "));
    }
    Ok(if record.is_some() { Outcome::Ok } else { Outcome::Problems })
}
