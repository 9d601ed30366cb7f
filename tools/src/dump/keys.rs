//! `kho dump keys DIR`: the key registry of an encrypted database — which registry
//! `KEYRING` names, the master key's id, the data key ids and the current one, the first
//! file number that must be encrypted — and, per file of the directory, which key seals it.
//! Never a key's bytes: the registry is opened with `--key-file` only to list its ids.
//!
//! Without the key the registry's content is sealed: the dump shows what is plaintext (the
//! registry's master-key id, every file's scheme and key id) and fails (exit 2). A database
//! without a registry is plaintext: said, exit 0.
//!
//! `kho dump file KEYRING` and `kho dump file KEYS-NNNNNN` land here too.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kho::crypt::{Keyring, SegmentHeader};
use kho::inspect::filename::{decode_keyring, keys_name, parse_file_name, FileKind, KEYRING};
use kho::inspect::sst::SstReader;
use kho::inspect::wal::peek_segment_header;
use kho::vfs::{FileSystem, StdFs};
use kho::Error;
use serde_json::json;

use crate::dbdir::{self, Problem};
use crate::fmt;
use crate::keys::{self, Keys};
use crate::out::{Out, Outcome};

/// Arguments of `kho dump keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
}

/// The key registry for the encrypted file at `path`, from its directory: `KeyNeeded`
/// without `--key-file`; an error naming the directory when it holds no registry.
pub fn ring_for_file(path: &Path, k: &Keys) -> anyhow::Result<Arc<Keyring>> {
    let dir = super::dir_of(path);
    match k.keyring(dir)? {
        Some(r) => Ok(r),
        None if k.file().is_none() => Err(Error::KeyNeeded { path: path.to_owned() }.into()),
        None => anyhow::bail!(
            "{} is encrypted, but {} holds no key registry ({KEYRING}) to find its data key in",
            path.display(),
            dir.display()
        ),
    }
}

/// How one file of the directory is encrypted.
struct FileKey {
    name: String,
    kind: &'static str,
    /// `None`: plaintext (or unreadable: then `problem`).
    header: Option<SegmentHeader>,
    key_id: Option<u32>,
    problem: Option<String>,
}

/// The first bytes of a log, manifest or registry: enough for its segment header (at most
/// 13 + 30 + 255 bytes).
fn head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    std::fs::File::open(path)?.take(512).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Every table, log, manifest and registry of `dir` and how it is encrypted, in name order.
fn file_keys(dir: &Path) -> anyhow::Result<Vec<FileKey>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let kind = match parse_file_name(&name) {
            Some(FileKind::Table(_)) => "table",
            Some(FileKind::Log(_)) => "log",
            Some(FileKind::Manifest(_)) => "manifest",
            Some(FileKind::Keys(_)) => "registry",
            _ => continue,
        };
        let mut f = FileKey { name, kind, header: None, key_id: None, problem: None };
        if kind == "table" {
            match StdFs.open(&path).and_then(|file| SstReader::read_footer_info(&*file, &path)) {
                Ok(info) => f.key_id = info.key_id,
                Err(e) => f.problem = Some(Problem::from_error(&path, &e).what),
            }
        } else {
            match head(&path) {
                Ok(data) => {
                    f.header = peek_segment_header(&data);
                    f.key_id = f.header.as_ref().map(|h| h.key_id);
                }
                Err(e) => f.problem = Some(format!("cannot read: {e}")),
            }
        }
        out.push(f);
    }
    Ok(out)
}

fn file_json(f: &FileKey) -> serde_json::Value {
    let mut enc = match (f.kind, &f.header) {
        ("table", _) => keys::table_json(f.key_id),
        (_, h) => keys::json(h.as_ref()),
    };
    if let Some(h) = f.header.as_ref().filter(|h| !h.label.is_empty()) {
        enc["master_key_id"] = json!(h.label);
    }
    json!({"file": f.name, "kind": f.kind, "encryption": enc, "problem": f.problem})
}

/// One line per data key (and one for plaintext files): how many files of each kind it seals.
fn usage_lines(files: &[FileKey], current: Option<u32>) -> Vec<String> {
    let mut by_key: std::collections::BTreeMap<Option<u32>, Vec<&FileKey>> = Default::default();
    for f in files.iter().filter(|f| f.kind != "registry" && f.problem.is_none()) {
        by_key.entry(f.key_id).or_default().push(f);
    }
    let mut lines = Vec::new();
    for (key, fs) in &by_key {
        let n = |kind: &str| fs.iter().filter(|f| f.kind == kind).count() as u64;
        let what = format!(
            "{}, {}, {}",
            fmt::count(n("table"), "table"),
            fmt::count(n("log"), "log"),
            fmt::count(n("manifest"), "manifest")
        );
        lines.push(match key {
            None => format!("  plain: {what}"),
            Some(id) if Some(*id) == current => format!("  data key {id} (current): {what}"),
            Some(id) => format!("  data key {id}: {what}"),
        });
    }
    for f in files.iter().filter(|f| f.problem.is_some()) {
        lines.push(format!("  {}: {}", f.name, f.problem.as_deref().unwrap_or_default()));
    }
    lines
}

/// The live registry's number, from `KEYRING`.
fn live_registry(dir: &Path) -> anyhow::Result<u64> {
    let pointer = dir.join(KEYRING);
    Ok(decode_keyring(&pointer, &dbdir::read(&pointer)?)?)
}

/// Runs `kho dump keys`.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let dir = &args.dir;
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let files = file_keys(dir)?;
    if !keys::is_encrypted(dir) {
        if out.json {
            let list: Vec<_> = files.iter().map(file_json).collect();
            out.json_value(&json!({"dir": dir, "encrypted": false, "files": list}))?;
        } else {
            writeln!(out, "{}: no key registry ({KEYRING}): the database is not encrypted", dir.display())?;
            for l in usage_lines(&files, None) {
                writeln!(out, "{l}")?;
            }
        }
        return Ok(Outcome::Ok);
    }
    let number = live_registry(dir)?;
    let registry = keys_name(number);
    let master = head(&dir.join(&registry)).ok().as_deref().and_then(peek_segment_header).map(|h| h.label);
    let ring = match k.keyring(dir) {
        Ok(r) => r,
        Err(e) => {
            // What is plaintext, then the refusal.
            if out.json {
                let list: Vec<_> = files.iter().map(file_json).collect();
                out.json_value(&json!({"dir": dir, "encrypted": true, "registry": registry,
                                       "master_key_id": master, "decoded": false, "files": list}))?;
            } else {
                writeln!(
                    out,
                    "{}: key registry {registry} (named by {KEYRING}) under master key {}",
                    dir.display(),
                    master.as_deref().unwrap_or("?")
                )?;
                writeln!(out, "its data keys are sealed under the master key")?;
                for l in usage_lines(&files, None) {
                    writeln!(out, "{l}")?;
                }
            }
            return Err(e);
        }
    };
    let Some(ring) = ring else { anyhow::bail!("{} has no key registry", dir.display()) };
    let (ids, current) = (ring.key_ids(), ring.current_key_id());
    let stale: Vec<String> = files
        .iter()
        .filter(|f| f.kind == "registry" && f.name != registry)
        .map(|f| format!("{} (stale: the next writable open deletes it)", f.name))
        .collect();
    if out.json {
        let list: Vec<_> = files.iter().map(file_json).collect();
        out.json_value(&json!({
            "dir": dir, "encrypted": true, "registry": registry, "master_key_id": ring.master_id(),
            "key_ids": ids, "current_key_id": current, "encrypted_from": ring.encrypted_from(),
            "files": list,
        }))?;
    } else {
        writeln!(
            out,
            "{}: key registry {registry} (named by {KEYRING}) under master key {}",
            dir.display(),
            ring.master_id()
        )?;
        let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "data keys: {}; current: {current}", ids.join(", "))?;
        let from = ring.encrypted_from();
        if from > 1 {
            writeln!(out, "encrypted from file {from} (files numbered below it predate encryption)")?;
        }
        for l in usage_lines(&files, Some(current)) {
            writeln!(out, "{l}")?;
        }
        for s in &stale {
            writeln!(out, "  {s}")?;
        }
    }
    Ok(Outcome::Ok)
}

/// `kho dump file KEYRING` (what it names) and `kho dump file KEYS-NNNNNN` (its master key's
/// id; with the key, the registry of its directory when it is the live one).
pub fn file(out: &mut Out, path: &Path, k: &Keys) -> anyhow::Result<Outcome> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let dir = super::dir_of(path);
    if parse_file_name(name) == Some(FileKind::Keyring) {
        return match decode_keyring(path, &dbdir::read(path)?) {
            Ok(n) => {
                if out.json {
                    out.json_value(&json!({"file": path, "registry": keys_name(n), "number": n}))?;
                } else {
                    writeln!(out, "{}: names {}", path.display(), keys_name(n))?;
                }
                Ok(Outcome::Ok)
            }
            Err(e) => super::file_problem(out, path, &e),
        };
    }
    let header = peek_segment_header(&head(path)?);
    let live = live_registry(dir).ok().map(keys_name).is_some_and(|live| live == name);
    let Some(h) = header else {
        let p = Problem::at(path, 0, "a key registry must start with a segment header naming its master key");
        if out.json {
            out.json_value(&json!({"file": path, "problems": [p]}))?;
        } else {
            writeln!(out, "PROBLEM: {p}")?;
        }
        return Ok(Outcome::Problems);
    };
    if out.json && !live {
        out.json_value(&json!({"file": path, "master_key_id": h.label, "live": false}))?;
        return Ok(Outcome::Ok);
    }
    if !out.json {
        writeln!(
            out,
            "{}: key registry under master key {} ({}){}",
            path.display(),
            h.label,
            keys::scheme_name(h.scheme),
            if live { "" } else { "; not the one KEYRING names (stale)" }
        )?;
    }
    if !live {
        return Ok(Outcome::Ok);
    }
    run(out, &Args { dir: dir.to_owned() }, k)
}
