//! `kho verify DIR`: reads every file of a database end to end and reports every problem as
//! one line `file offset what` (offset `-` when the problem has none). Exit 0 when clean,
//! 1 when anything is wrong.
//!
//! What is checked:
//! - `CURRENT` decodes and names a manifest that exists;
//! - the manifest: every record's checksums, every edit decodes, the edits are consistent
//!   (replayed through `kho::inspect::version::VersionBuilder`, the checks recovery applies: levels in
//!   range, no deletion of an absent table, no table added twice, table numbers below the
//!   next file number, key ranges in order, no overlap in levels >= 1, counters never moving
//!   backwards and all present), no torn tail (shown with the bytes and records recovery
//!   would drop);
//! - every table the manifest lists (`verify/tables.rs`): present, of the recorded size, every
//!   block's checksum and decompression, keys sorted within the table, properties and
//!   manifest metadata agreeing, no sequence number above the manifest's last sequence; no
//!   orphan tables;
//! - every live log (`verify/logs.rs`): every record's checksums, every batch decodes,
//!   sequence numbers increase, a torn tail only where a crash can leave one;
//! - in a record store, the national-ID index against the records (`verify/index.rs`): every
//!   dangling entry, missing entry and malformed record-layer key is a problem `index - what`,
//!   printed as it is found;
//! - in an encrypted database (`--key-file`; without it: exit 2): the key registry opens with
//!   the master key, every record of it authenticated; every sealed table block, log record
//!   and manifest record authenticates under its data key (a block or record that does not is
//!   a problem at its offset); every file numbered from the registry's encrypted-from number
//!   on is encrypted; every file's data key is in the registry.
//!
//! It never opens the database for writing or takes its lock. Beside a running writer it
//! reads a consistent set: the tables the manifest lists are opened (and so kept readable)
//! right after the manifest is read, and the read is retried if a compaction removed one in
//! between. Files a writer is creating meanwhile (numbered at or above the manifest's next
//! file number, or a log still growing) are notes, not problems.

mod index;
mod logs;
mod tables;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kho::crypt::Keyring;
use kho::inspect::filename::{keys_name, manifest_name};

use crate::dbdir::{self, Listing, Manifest, Problem, State};
use crate::fmt;
use crate::keys::Keys;
use crate::out::{self, Out, Outcome};

/// Arguments of `kho verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// Accept a torn tail at the end of the newest log or of the manifest (what a crash
    /// leaves and recovery drops) as a note instead of a problem.
    #[arg(long)]
    pub tolerate_torn_tail: bool,
}

/// Counts of what was read.
#[derive(Debug, Default, serde::Serialize)]
pub struct Checked {
    /// Manifest edits decoded.
    pub manifest_edits: u64,
    /// Tables read end to end.
    pub tables: u64,
    /// Data blocks read.
    pub data_blocks: u64,
    /// Table entries read.
    pub table_entries: u64,
    /// Logs read.
    pub logs: u64,
    /// Log records read.
    pub log_records: u64,
    /// Operations in them.
    pub log_operations: u64,
    /// Bytes read.
    pub bytes: u64,
    /// The live key registry, when the database is encrypted (read and authenticated).
    pub key_registry: Option<String>,
    /// Data keys it holds.
    pub data_keys: u64,
}

/// Everything `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems: each makes the exit status non-zero.
    pub problems: Vec<Problem>,
    /// Observations that are not damage (obsolete files, files being written).
    pub notes: Vec<String>,
    /// What was read.
    pub checked: Checked,
}

/// The manifest's view of the database, with the listed tables opened.
pub struct Snapshot {
    /// The directory listing taken after the tables were opened.
    pub listing: Listing,
    /// The manifest in use, if one could be read.
    pub manifest: Option<Manifest>,
    /// Problems with `CURRENT` or with reading the manifest.
    pub pointer_problems: Vec<Problem>,
    /// The replayed state (empty without a manifest).
    pub state: State,
    /// The live tables, opened.
    pub tables: Vec<tables::Table>,
    /// The key registry of an encrypted database.
    pub keys: Option<Arc<Keyring>>,
}

/// Reads `CURRENT`, the manifest and opens every table it lists; retried (up to 4 times)
/// when a table is missing and the manifest changed meanwhile — a writer compacted it away.
fn snapshot(dir: &Path, keys: Option<Arc<Keyring>>) -> anyhow::Result<Snapshot> {
    let mut attempt = 0;
    loop {
        let listing = dbdir::list(dir)?;
        let (number, current_problem) = dbdir::current_manifest(dir, &listing);
        let mut pointer_problems: Vec<Problem> = current_problem.into_iter().collect();
        let manifest = match number.map(|n| dbdir::read_manifest(dir, n, keys.as_ref())) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                pointer_problems.push(Problem::from_error(dir, &e));
                None
            }
            None => None,
        };
        let state = manifest.as_ref().map(Manifest::replay).unwrap_or_default();
        let tables = tables::open_all(dir, &state, keys.as_ref());
        let any_missing = tables.iter().any(|t| t.missing);
        let listing = dbdir::list(dir)?;
        if any_missing && attempt < 4 {
            let (now, _) = dbdir::current_manifest(dir, &listing);
            let size = now.and_then(|n| std::fs::metadata(dir.join(manifest_name(n))).ok()).map(|m| m.len());
            if now != number || size != manifest.as_ref().map(|m| m.size) {
                attempt += 1;
                continue;
            }
        }
        return Ok(Snapshot { listing, manifest, pointer_problems, state, tables, keys });
    }
}

/// Checks the database in `dir` and returns what it found. An encrypted database needs the
/// key file (`KeyNeeded` without it, `WrongKey` with another).
pub fn check(dir: &Path, tolerate_torn_tail: bool, k: &Keys) -> anyhow::Result<Report> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut report = Report::default();
    k.provider()?; // an unusable key file is the caller's error, not the database's
    let keys = match k.keyring(dir) {
        Ok(r) => r,
        Err(e) if crate::keys::key_error(&e).is_some() => return Err(e),
        Err(e) => {
            // A damaged registry: every encrypted file then shows up as unreadable too.
            let p = match e.downcast_ref::<kho::Error>() {
                Some(engine) => Problem::from_error(&dir.join(kho::inspect::filename::KEYRING), engine),
                None => Problem::at(dir.join(kho::inspect::filename::KEYRING), None, format!("{e:#}")),
            };
            report.problems.push(p);
            None
        }
    };
    if let Some(r) = &keys {
        report.checked.key_registry = Some(keys_name(r.registry_number()));
        report.checked.data_keys = r.key_ids().len() as u64;
    }
    let snap = snapshot(dir, keys)?;
    let log_bytes: u64 = snap
        .listing
        .logs
        .iter()
        .filter_map(|&n| std::fs::metadata(kho::inspect::filename::log_path(dir, n)).ok())
        .map(|m| m.len())
        .sum();
    let total = snap.tables.iter().map(|t| t.meta.size).sum::<u64>() + log_bytes;
    let bar = out::progress(total, "verifying");

    report.problems.extend(snap.pointer_problems.iter().cloned());
    if let Some(m) = &snap.manifest {
        report.checked.manifest_edits = m.records.len() as u64;
        report.checked.bytes += m.size;
        report.problems.extend(crate::dump::manifest::manifest_problems(m, &snap.state));
        if let Some(k) = &snap.keys {
            if m.header.is_none() && !m.records.is_empty() && k.requires_encryption(m.number) {
                report.problems.push(Problem::at(
                    &m.path,
                    0,
                    "plaintext manifest where the database requires every file to be encrypted",
                ));
            }
        }
        match crate::dump::manifest::torn_tail(m) {
            Some(p) if tolerate_torn_tail => report.notes.push(format!("{p} (tolerated)")),
            Some(p) if dbdir::still_growing(&m.path, m.size) => {
                report.notes.push(format!("{p} (the manifest is being appended to: an edit was in flight)"))
            }
            Some(p) => report.problems.push(p),
            None => {}
        }
        for &n in snap.listing.manifests.iter().filter(|&&n| n != m.number) {
            report.notes.push(format!("{} is obsolete (the next writable open deletes it)", manifest_name(n)));
        }
    }
    tables::check(dir, &snap, &mut report, &bar);
    logs::check(dir, &snap, tolerate_torn_tail, &mut report, &bar)?;
    for t in &snap.listing.temps {
        report.notes.push(format!("{t} is a temporary file (the next writable open deletes it)"));
    }
    // (Without a loaded registry, which one is live is the registry problem's to say.)
    let live_registry = snap.keys.as_ref().map(|k| k.registry_number());
    for &n in snap.listing.registries.iter().filter(|&&n| live_registry.is_some_and(|live| n != live)) {
        report.notes.push(format!("{} is a stale key registry (the next writable open deletes it)", keys_name(n)));
    }
    bar.finish_and_clear();
    Ok(report)
}

/// Runs `kho verify`: the file checks, then the national-ID index check, whose problems are
/// printed as they are found.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let mut report = check(&args.dir, args.tolerate_torn_tail, k)?;
    let files_clean = report.problems.is_empty();
    let problems;
    if out.json {
        let mut doc = out.json_doc()?;
        doc.field("dir", &args.dir)?;
        doc.list("problems")?;
        for p in &report.problems {
            doc.item(p)?;
        }
        let index = index::check(&args.dir, k, files_clean, &mut report.notes, &mut |p| doc.item(p))?;
        problems = report.problems.len() as u64 + index.problems;
        doc.field("ok", &(problems == 0))?;
        doc.field("notes", &report.notes)?;
        doc.field("checked", &report.checked)?;
        doc.field("index", &index)?;
        doc.finish()?;
    } else {
        for p in &report.problems {
            writeln!(out, "{p}")?;
        }
        // A spinner is drawn on a terminal meanwhile: show each line as it comes.
        let flush_each = std::io::stderr().is_terminal();
        let index = index::check(&args.dir, k, files_clean, &mut report.notes, &mut |p| {
            writeln!(out, "{p}")?;
            if flush_each {
                out.flush()?;
            }
            Ok(())
        })?;
        problems = report.problems.len() as u64 + index.problems;
        out.flush()?;
        for n in &report.notes {
            eprintln!("note: {n}");
        }
        let c = &report.checked;
        let index_part = if index.checked {
            format!(
                "; national-ID index: {} against {}",
                fmt::count(index.index_entries, "entry"),
                fmt::count(index.records, "record")
            )
        } else {
            String::new()
        };
        let keys_part = match &c.key_registry {
            Some(r) => format!(
                "; key registry {r} ({}){}",
                fmt::count(c.data_keys, "data key"),
                if problems == 0 { ", every block and record authenticated" } else { "" }
            ),
            None => String::new(),
        };
        eprintln!(
            "{}: {}; read {}, {} ({}, {}), {} ({}, {}), {}{keys_part}{index_part}",
            args.dir.display(),
            if problems == 0 { "ok".to_owned() } else { fmt::count(problems, "problem") },
            fmt::count(c.manifest_edits, "manifest edit"),
            fmt::count(c.tables, "table"),
            fmt::count(c.data_blocks, "data block"),
            fmt::count(c.table_entries, "entry"),
            fmt::count(c.logs, "log"),
            fmt::count(c.log_records, "record"),
            fmt::count(c.log_operations, "operation"),
            fmt::size(c.bytes)
        );
    }
    Ok(if problems == 0 { Outcome::Ok } else { Outcome::Problems })
}
