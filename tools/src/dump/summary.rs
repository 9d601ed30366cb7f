//! `kho dump summary DIR`: the shape of a database — levels and tables (number, size, key
//! range, sequence range, entries), logs, manifest, last sequence, and raw versus stored bytes.
//!
//! Tables come from a read-only open (a consistent set, pinned while we read it); the
//! manifest counters and the logs are read file by file. Every table, log and the manifest
//! say how they are encrypted, and an encrypted database's key registry is summarized
//! (`kho dump keys` has the details); the open needs `--key-file` for an encrypted database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use kho::crypt::Keyring;
use kho::inspect::batch::DecodedBatch;
use kho::inspect::filename::{keys_name, log_path, manifest_name, table_path};
use kho::inspect::sst::SstReader;
use kho::inspect::wal::TailState;
use kho::vfs::{FileSystem, StdFs};
use kho::Db;
use serde_json::json;

use crate::dbdir::{self, LogEvent};
use crate::fmt;
use crate::keys::{self, Keys};
use crate::out::{Out, Outcome};

/// Arguments of `kho dump summary`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
}

/// What one log holds.
#[derive(Debug, Default, serde::Serialize)]
pub struct LogStats {
    /// File number.
    pub number: u64,
    /// Bytes.
    pub size: u64,
    /// Intact records.
    pub records: u64,
    /// Operations in them.
    pub operations: u64,
    /// Smallest and largest sequence number.
    pub seq: Option<(u64, u64)>,
    /// Damaged regions and undecodable batches.
    pub damaged: u64,
    /// `clean` or `torn at N`.
    pub tail: String,
    /// How it is encrypted (`{"scheme": "plain", ...}` or the scheme and data key id).
    pub encryption: serde_json::Value,
    /// The same, for the text line.
    #[serde(skip)]
    pub encryption_text: String,
}

/// Reads log `number` of `dir` (an encrypted one with `keys`) and counts what it holds;
/// `None` if it was deleted meanwhile (a running writer flushed it).
pub fn log_stats(dir: &Path, number: u64, keys: Option<&Arc<Keyring>>) -> anyhow::Result<Option<LogStats>> {
    let path = log_path(dir, number);
    let data = match dbdir::read(&path) {
        Ok(d) => d,
        Err(kho::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut s = LogStats { number, size: data.len() as u64, ..LogStats::default() };
    let end = dbdir::walk_log(data, &path, keys, |ev| {
        match ev {
            LogEvent::Record(rec) => {
                s.records += 1;
                match DecodedBatch::parse(&rec.payload) {
                    Ok(b) => {
                        let ok = b.ops().filter(|op| op.is_ok()).count() as u64;
                        s.damaged += u64::from(ok != u64::from(b.count) || b.ops().any(|op| op.is_err()));
                        s.operations += ok;
                        if ok > 0 {
                            let last = b.seq.saturating_add(ok - 1);
                            s.seq = Some(s.seq.map_or((b.seq, last), |(a, z)| (a.min(b.seq), z.max(last))));
                        }
                    }
                    Err(_) => s.damaged += 1,
                }
            }
            LogEvent::Damage { .. } => s.damaged += 1,
        }
        Ok(())
    })?;
    s.encryption = keys::json(end.header.as_ref());
    s.encryption_text = keys::describe(end.header.as_ref());
    s.tail = match end.tail {
        TailState::Clean => "clean".into(),
        TailState::Torn { offset, .. } => format!("torn at {offset}"),
    };
    Ok(Some(s))
}

/// Runs `kho dump summary`.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let dir = &args.dir;
    let b = out.bytes;
    let db = Db::open_read_only(dir, k.read_options()?)
        .with_context(|| format!("cannot open {} read-only (kho verify reports every problem)", dir.display()))?;
    let ring = db.keyring().cloned();
    let listing = dbdir::list(dir)?;
    let (manifest_number, _) = dbdir::current_manifest(dir, &listing);
    let manifest = manifest_number.map(|n| dbdir::read_manifest(dir, n, ring.as_ref())).transpose()?;
    let state = manifest.as_ref().map(|m| m.replay()).unwrap_or_default();
    let mut files = db.live_files();
    files.sort_by_key(|(level, f)| (*level, f.number));
    let props = db.table_properties()?;
    let prop = |n: u64| props.iter().find(|(num, _)| *num == n).map(|(_, p)| p);
    let stats = db.stats();
    let logs: Vec<LogStats> = listing
        .logs
        .iter()
        .filter(|&&n| state.log_number.is_none_or(|l| n >= l))
        .map(|&n| log_stats(dir, n, ring.as_ref()))
        .filter_map(Result::transpose)
        .collect::<anyhow::Result<_>>()?;

    let sum = |f: &dyn Fn(&kho::inspect::sst::TableProperties) -> u64| props.iter().map(|(_, p)| f(p)).sum::<u64>();
    let entries = sum(&|p| p.entries);
    let deletions = sum(&|p| p.deletions);
    let kv_bytes = sum(&|p| p.raw_key_bytes + p.raw_value_bytes);
    let raw = sum(&|p| p.raw_data_bytes);
    let stored = sum(&|p| p.stored_data_bytes);
    let file_bytes = sum(&|p| p.file_size);
    let obsolete_logs: Vec<u64> =
        listing.logs.iter().copied().filter(|&n| state.log_number.is_some_and(|l| n < l)).collect();
    let obsolete_manifests: Vec<u64> =
        listing.manifests.iter().copied().filter(|&n| Some(n) != manifest_number).collect();
    // A table's footer says under which data key it is sealed (`None`: plaintext).
    let table_key = |n: u64| {
        let path = table_path(dir, n);
        StdFs.open(&path).and_then(|f| SstReader::read_footer_info(&*f, &path)).ok().and_then(|f| f.key_id)
    };
    let table_keys: std::collections::BTreeMap<u64, Option<u32>> =
        files.iter().map(|(_, f)| (f.number, table_key(f.number))).collect();
    let key_of = |n: u64| table_keys.get(&n).copied().flatten();
    let registry = ring.as_ref().map(|r| {
        json!({"registry": keys_name(r.registry_number()), "master_key_id": r.master_id(),
               "key_ids": r.key_ids(), "current_key_id": r.current_key_id(), "encrypted_from": r.encrypted_from()})
    });

    if out.json {
        out.json_value(&json!({
            "dir": dir,
            "manifest": manifest.as_ref().map(|m| json!({"number": m.number, "size": m.size, "edits": m.records.len(),
                                                         "encryption": keys::json(m.header.as_ref())})),
            "encryption": registry,
            "last_sequence": db.last_sequence(),
            "flushed_sequence": state.last_sequence,
            "next_file_number": state.next_file_number,
            "log_number": state.log_number,
            "levels": stats.levels.iter().enumerate().map(|(l, s)| json!({"level": l, "files": s.files, "bytes": s.bytes}))
                .collect::<Vec<_>>(),
            "tables": files.iter().map(|(l, f)| {
                let mut j = super::manifest::file_json(b, *l, f);
                j["encryption"] = keys::table_json(key_of(f.number));
                j
            }).collect::<Vec<_>>(),
            "logs": logs,
            "totals": {
                "tables": files.len(), "entries": entries, "deletions": deletions,
                "key_value_bytes": kv_bytes, "raw_data_bytes": raw, "stored_data_bytes": stored,
                "table_file_bytes": file_bytes,
                "compression_ratio": if stored == 0 { None } else { Some(raw as f64 / stored as f64) },
            },
            "memtable_bytes": stats.memtable_bytes,
            "obsolete_logs": obsolete_logs, "obsolete_manifests": obsolete_manifests,
            "temp_files": listing.temps, "foreign_files": listing.foreign,
        }))?;
        return Ok(Outcome::Ok);
    }

    writeln!(out, "database {}", dir.display())?;
    match &ring {
        Some(r) => {
            let ids: Vec<String> = r.key_ids().iter().map(u32::to_string).collect();
            writeln!(
                out,
                "encryption: {} under master key {}; data keys {} (current {})",
                keys_name(r.registry_number()),
                r.master_id(),
                ids.join(", "),
                r.current_key_id()
            )?;
        }
        None => writeln!(out, "encryption: none (plain)")?,
    }
    if let Some(m) = &manifest {
        writeln!(
            out,
            "CURRENT -> {} ({} bytes, {} edits, {})",
            manifest_name(m.number),
            m.size,
            m.records.len(),
            keys::describe(m.header.as_ref())
        )?;
    }
    let opt = |v: Option<u64>| v.map_or("?".to_owned(), |n| n.to_string());
    writeln!(
        out,
        "last sequence {} (flushed up to {}); next file number {}; log number {}",
        db.last_sequence(),
        opt(state.last_sequence),
        opt(state.next_file_number),
        opt(state.log_number)
    )?;
    writeln!(out, "levels:")?;
    for (level, s) in stats.levels.iter().enumerate().filter(|(_, s)| s.files > 0) {
        writeln!(out, "  L{level}: {}, {}", fmt::count(s.files as u64, "table"), fmt::size(s.bytes))?;
        for (_, f) in files.iter().filter(|(l, _)| *l == level) {
            let ratio = prop(f.number).map_or("-".into(), |p| fmt::ratio(p.raw_data_bytes, p.stored_data_bytes));
            writeln!(
                out,
                "    {} (ratio {ratio}; {})",
                super::manifest::file_text(b, f),
                keys::describe_table(key_of(f.number))
            )?;
        }
    }
    if files.is_empty() {
        writeln!(out, "  (no tables)")?;
    }
    writeln!(out, "logs:")?;
    for l in &logs {
        let seq = l.seq.map_or("no sequences".into(), |(a, z)| format!("seq {a}..{z}"));
        let damaged = if l.damaged > 0 { format!(", {} DAMAGED", l.damaged) } else { String::new() };
        writeln!(
            out,
            "  {}: {}, {}, {}, {seq}{damaged}, ends {} ({})",
            log_path(Path::new(""), l.number).display(),
            fmt::size(l.size),
            fmt::count(l.records, "record"),
            fmt::count(l.operations, "operation"),
            l.tail,
            l.encryption_text
        )?;
    }
    writeln!(
        out,
        "totals: {} tables, {} entries ({} deletions); keys+values {}; data blocks {} raw, {} stored \
         (compression ratio {}); table files {}",
        files.len(),
        entries,
        deletions,
        fmt::size(kv_bytes),
        fmt::size(raw),
        fmt::size(stored),
        fmt::ratio(raw, stored),
        fmt::size(file_bytes)
    )?;
    writeln!(out, "memtable: {} replayed from the logs (not yet flushed)", fmt::size(stats.memtable_bytes as u64))?;
    let mut leftovers = Vec::new();
    leftovers.extend(obsolete_logs.iter().map(|n| format!("{n:06}.log (obsolete)")));
    leftovers.extend(obsolete_manifests.iter().map(|n| format!("{} (obsolete)", manifest_name(*n))));
    let live_registry = ring.as_ref().map(|r| r.registry_number());
    leftovers.extend(
        listing
            .registries
            .iter()
            .filter(|&&n| Some(n) != live_registry)
            .map(|&n| format!("{} (stale key registry)", keys_name(n))),
    );
    leftovers.extend(listing.temps.iter().map(|n| format!("{n} (temporary)")));
    leftovers.extend(listing.foreign.iter().map(|n| format!("{n} (not kho's)")));
    if !leftovers.is_empty() {
        writeln!(out, "other files: {}", leftovers.join(", "))?;
    }
    Ok(Outcome::Ok)
}
