//! `kho get DIR KEY` and `kho scan DIR [--from K] [--to K] [--limit N]`: raw key-value access
//! through a read-only open (the newest data, unflushed log contents included).
//!
//! Keys are given escaped as `kho` prints them (`\xNN`, `\\`, `\"`), or in hex with `--hex`.

use std::io::Write;
use std::ops::Bound;
use std::path::PathBuf;

use anyhow::Context;
use kho::Db;
use serde_json::json;

use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// Arguments of `kho get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The database directory.
    pub dir: PathBuf,
    /// The key.
    pub key: String,
}

/// Arguments of `kho scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The database directory.
    pub dir: PathBuf,
    /// First key (inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// Last key (exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Show at most this many entries.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Show keys only.
    #[arg(long)]
    pub keys_only: bool,
}

/// Opens the database in `dir` read-only (with the key file's key, if one was given).
pub fn open(dir: &std::path::Path, keys: &Keys) -> anyhow::Result<Db> {
    let opts = keys.read_options()?;
    Db::open_read_only(dir, opts).with_context(|| format!("cannot open {} read-only", dir.display()))
}

/// Runs `kho get`: prints the value; exit 1 when the key is absent.
pub fn get(out: &mut Out, args: &GetArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let key = b.parse(&args.key)?;
    let db = open(&args.dir, keys)?;
    let value = db.get(&key)?;
    if out.json {
        out.json_value(
            &json!({"key": b.show(&key), "found": value.is_some(), "value": value.as_deref().map(|v| b.show(v))}),
        )?;
    } else if let Some(v) = &value {
        writeln!(out, "{}", b.show(v))?;
    } else {
        eprintln!("not found: {}", b.quoted(&key));
    }
    Ok(if value.is_some() { Outcome::Ok } else { Outcome::Problems })
}

/// Runs `kho scan`: prints `key => value` lines in key order; the count goes to stderr.
pub fn scan(out: &mut Out, args: &ScanArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let from = args.from.as_deref().map(|k| b.parse(k)).transpose()?;
    let to = args.to.as_deref().map(|k| b.parse(k)).transpose()?;
    let db = open(&args.dir, keys)?;
    let lo = from.map_or(Bound::Unbounded, Bound::Included);
    let hi = to.map_or(Bound::Unbounded, Bound::Excluded);
    if let (Bound::Included(a), Bound::Excluded(z)) = (&lo, &hi) {
        if a > z {
            anyhow::bail!("--from {} is after --to {}", b.quoted(a), b.quoted(z));
        }
    }
    let iter = db.range::<Vec<u8>, _>((lo, hi))?;
    let entries = iter.take(usize::try_from(args.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX));
    let mut n = 0u64;
    if out.json {
        let mut doc = out.json_doc()?;
        doc.list("entries")?;
        for kv in entries {
            let (k, v) = kv?;
            n += 1;
            if args.keys_only {
                doc.item(&json!({"key": b.show(&k)}))?;
            } else {
                doc.item(&json!({"key": b.show(&k), "value": b.show(&v)}))?;
            }
        }
        doc.field("count", &n)?;
        doc.finish()?;
    } else {
        for kv in entries {
            let (k, v) = kv?;
            n += 1;
            if args.keys_only {
                writeln!(out, "{}", b.quoted(&k))?;
            } else {
                writeln!(out, "{} => {}", b.quoted(&k), b.quoted(&v))?;
            }
        }
        out.flush()?;
        eprintln!("{n} entries");
    }
    Ok(Outcome::Ok)
}
