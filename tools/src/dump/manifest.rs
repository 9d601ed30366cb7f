//! `kho dump manifest DIR`: `CURRENT`, then each `VersionEdit` of the manifest it names in
//! order, damaged records where they are, and the state the edits replay to. An encrypted
//! manifest is opened with the key registry of its directory (`--key-file`); without the key
//! only its segment header is shown (exit 2).

use std::io::Write;
use std::path::{Path, PathBuf};

use kho::inspect::filename::{parse_file_name, FileKind};
use kho::inspect::version::{FileMeta, VersionEdit};
use kho::inspect::wal::{peek_segment_header, DroppedTail};
use serde_json::json;

use crate::dbdir::{self, Manifest, Problem, State};
use crate::fmt::{self, Bytes};
use crate::keys::{self, Keys};
use crate::out::{Out, Outcome};

/// Arguments of `kho dump manifest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory (the manifest `CURRENT` names), or a `MANIFEST-NNNNNN` file.
    pub path: PathBuf,
}

/// Finds and reads the manifest: the file itself, or the one `CURRENT` in a directory names
/// (an encrypted one opened with the key registry of its directory). Returns the manifest (if
/// one could be read) and the problems met on the way. Without the key for an encrypted
/// manifest, shows its segment header on `out` and fails with `KeyNeeded`.
fn load(out: &mut Out, path: &Path, k: &Keys) -> anyhow::Result<(Option<Manifest>, Vec<Problem>)> {
    let mut problems = Vec::new();
    let number = if path.is_dir() {
        let listing = dbdir::list(path)?;
        let (n, p) = dbdir::current_manifest(path, &listing);
        problems.extend(p);
        match n {
            Some(n) => n,
            None => return Ok((None, problems)),
        }
    } else {
        match path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name) {
            Some(FileKind::Manifest(n)) => n,
            _ => 0,
        }
    };
    let file =
        if path.is_dir() { path.join(kho::inspect::filename::manifest_name(number)) } else { path.to_path_buf() };
    let header = dbdir::read(&file).ok().and_then(|d| peek_segment_header(&d));
    let ring = match header {
        Some(_) => match super::keys::ring_for_file(&file, k) {
            Ok(r) => Some(r),
            Err(e) => {
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                if out.json {
                    out.json_value(&json!({"file": file, "number": number, "size": size,
                                           "encryption": keys::json(header.as_ref()), "decoded": false}))?;
                } else {
                    if path.is_dir() {
                        writeln!(out, "CURRENT -> {}", kho::inspect::filename::manifest_name(number))?;
                    }
                    writeln!(out, "{}: {size} bytes ({})", file.display(), keys::describe(header.as_ref()))?;
                    writeln!(out, "encrypted: its edits need the key")?;
                }
                return Err(e);
            }
        },
        None => None,
    };
    match dbdir::read_manifest_file(&file, number, ring.as_ref()) {
        Ok(m) => Ok((Some(m), problems)),
        Err(e) => {
            problems.push(Problem::from_error(&file, &e));
            Ok((None, problems))
        }
    }
}

/// The manifest's torn tail, if it has one: an edit whose write never completed. Recovery
/// drops it under the default recovery mode and refuses to open under absolute consistency;
/// a problem for `verify` unless tolerated.
pub fn torn_tail(m: &Manifest) -> Option<Problem> {
    let t = m.dropped_tail.as_ref()?;
    Some(Problem::at(&m.path, t.offset, format!("torn tail: {}", dropped_text(t))))
}

/// What a dropped tail is and what recovery does with it, after `torn tail: `.
fn dropped_text(t: &DroppedTail) -> String {
    format!(
        "{} ({} to the end of the file, {}: an edit whose write never completed; recovery drops it under \
         the default recovery mode and refuses to open under absolute consistency)",
        t.reason,
        fmt::count(t.bytes, "byte"),
        fmt::count(t.records, "record")
    )
}

/// The dropped tail as JSON (`null` when the manifest ends clean).
fn dropped_json(t: Option<&DroppedTail>) -> serde_json::Value {
    t.map_or(
        serde_json::Value::Null,
        |t| json!({"offset": t.offset, "bytes": t.bytes, "records": t.records, "reason": t.reason}),
    )
}

/// Problems of a manifest itself, besides a torn tail: damage, undecodable edits, and every
/// inconsistency the version builder finds (the checks recovery applies; see
/// `docs/manifest-format.md`).
pub fn manifest_problems(m: &Manifest, state: &State) -> Vec<Problem> {
    let mut v = m.damage.clone();
    for r in &m.records {
        if let Err((at, what)) = &r.edit {
            v.push(Problem::at(&m.path, *at, format!("undecodable version edit: {what}")));
        }
    }
    for i in &state.inconsistencies {
        v.push(Problem::at(&m.path, i.offset, &i.what));
    }
    v.sort_by_key(|p| p.offset);
    v
}

/// A table's metadata on one line.
pub fn file_text(b: Bytes, f: &FileMeta) -> String {
    format!(
        "table {}: {} bytes, {}, seq {}..{}, {} .. {}",
        f.number,
        f.size,
        fmt::count(f.entries, "entry"),
        f.smallest_seq,
        f.largest_seq,
        fmt::internal_key(b, &f.smallest),
        fmt::internal_key(b, &f.largest)
    )
}

/// A table's metadata as JSON.
pub fn file_json(b: Bytes, level: usize, f: &FileMeta) -> serde_json::Value {
    json!({
        "level": level, "number": f.number, "size": f.size, "entries": f.entries,
        "smallest_seq": f.smallest_seq, "largest_seq": f.largest_seq,
        "smallest": fmt::internal_key_json(b, &f.smallest), "largest": fmt::internal_key_json(b, &f.largest),
    })
}

fn edit_json(b: Bytes, e: &VersionEdit) -> serde_json::Value {
    json!({
        "log_number": e.log_number,
        "next_file_number": e.next_file_number,
        "last_sequence": e.last_sequence,
        "deleted_files": e.deleted_files.iter().map(|&(l, n)| json!({"level": l, "number": n})).collect::<Vec<_>>(),
        "new_files": e.new_files.iter().map(|(l, f)| file_json(b, *l as usize, f)).collect::<Vec<_>>(),
    })
}

fn edit_text(b: Bytes, e: &VersionEdit) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = e.log_number {
        v.push(format!("  log number {n}"));
    }
    if let Some(n) = e.next_file_number {
        v.push(format!("  next file number {n}"));
    }
    if let Some(n) = e.last_sequence {
        v.push(format!("  last sequence {n}"));
    }
    for (l, n) in &e.deleted_files {
        v.push(format!("  delete L{l} table {n}"));
    }
    for (l, f) in &e.new_files {
        v.push(format!("  add L{l} {}", file_text(b, f)));
    }
    v
}

/// The replayed state as JSON.
pub fn state_json(b: Bytes, s: &State) -> serde_json::Value {
    json!({
        "log_number": s.log_number, "next_file_number": s.next_file_number, "last_sequence": s.last_sequence,
        "files": s.files().map(|(l, f)| file_json(b, l, f)).collect::<Vec<_>>(),
    })
}

/// Runs `kho dump manifest`.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let (manifest, mut problems) = load(out, &args.path, k)?;
    let Some(m) = manifest else {
        if out.json {
            out.json_value(&json!({"path": args.path, "problems": problems}))?;
        } else {
            for p in &problems {
                writeln!(out, "{p}")?;
            }
        }
        return Ok(Outcome::Problems);
    };
    let state = m.replay();
    problems.extend(manifest_problems(&m, &state));
    problems.extend(torn_tail(&m));
    if out.json {
        let edits: Vec<_> = m
            .records
            .iter()
            .map(|r| match &r.edit {
                Ok(e) => json!({"offset": r.offset, "len": r.len, "edit": edit_json(b, e)}),
                Err((at, what)) => json!({"offset": r.offset, "len": r.len, "error": {"offset": at, "what": what}}),
            })
            .collect();
        out.json_value(&json!({
            "file": m.path, "number": m.number, "size": m.size, "encryption": keys::json(m.header.as_ref()),
            "edits": edits,
            "tail": super::wal::tail_json(&m.tail, m.size),
            "dropped_tail": dropped_json(m.dropped_tail.as_ref()),
            "state": state_json(b, &state),
            "problems": problems,
        }))?;
    } else {
        if args.path.is_dir() {
            writeln!(out, "CURRENT -> {}", kho::inspect::filename::manifest_name(m.number))?;
        }
        writeln!(
            out,
            "{}: {} bytes, {} edits ({})",
            m.path.display(),
            m.size,
            m.records.len(),
            keys::describe(m.header.as_ref())
        )?;
        for (i, r) in m.records.iter().enumerate() {
            writeln!(out, "edit {i} at offset {} ({} bytes):", r.offset, r.len)?;
            match &r.edit {
                Ok(e) => {
                    for line in edit_text(b, e) {
                        writeln!(out, "{line}")?;
                    }
                }
                Err((at, what)) => writeln!(out, "  UNDECODABLE at offset {at}: {what}")?,
            }
        }
        if let Some(t) = &m.dropped_tail {
            writeln!(out, "offset {}: TORN TAIL: {}", t.offset, dropped_text(t))?;
        }
        let opt = |v: Option<u64>| v.map_or("unset".to_owned(), |n| n.to_string());
        writeln!(
            out,
            "state: log number {}, next file number {}, last sequence {}",
            opt(state.log_number),
            opt(state.next_file_number),
            opt(state.last_sequence)
        )?;
        for (level, files) in state.levels.iter().enumerate().filter(|(_, f)| !f.is_empty()) {
            let bytes: u64 = files.values().map(|f| f.size).sum();
            writeln!(out, "  L{level}: {}, {bytes} bytes", fmt::count(files.len() as u64, "table"))?;
            for f in files.values() {
                writeln!(out, "    {}", file_text(b, f))?;
            }
        }
        for p in &problems {
            writeln!(out, "PROBLEM: {p}")?;
        }
    }
    Ok(if problems.is_empty() { Outcome::Ok } else { Outcome::Problems })
}
