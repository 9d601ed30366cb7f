//! `kho backup create|list|verify|restore|prune`: incremental, verified backups in a backup
//! folder (`kho::backup::BackupEngine`; layout and format in docs/sync.md, "Backups").
//!
//! `create` opens the database for writing (the checkpoint under it rotates the log), so a
//! database another process holds answers `Busy` (exit 2). Exit 1 when a check found damage:
//! `verify` (one line `file offset what` per problem, as `kho verify` prints them), `list`
//! with damaged metadata, `restore` of a damaged backup. Long copies show a progress bar
//! when stderr is a terminal.
//!
//! Encrypted databases (`--key-file`): `create` opens the database with the key (without it:
//! exit 2); a backup keeps the database's key registry of that moment. `verify` checks every
//! file's size and checksum with or without the key; with it, it also authenticates every
//! encrypted file (`backup/encrypted.rs`), without it it says they were checked by checksum
//! only. `restore` copies files and needs no key; with one it opens the restored database
//! read-only to show it does.

mod encrypted;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use kho::backup::{BackupEngine, BackupInfo};
use kho::{Db, Error};
use serde_json::json;

use crate::dbdir::Problem;
use crate::fmt::size;
use crate::keys::Keys;
use crate::out::{self, Out, Outcome};

/// The `kho backup` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Back up the database in DIR into the folder BACKUPS (created if needed); tables the
    /// folder already holds are shared, not copied.
    Create {
        /// The database directory.
        dir: PathBuf,
        /// The backup folder.
        backups: PathBuf,
    },
    /// List the backups in BACKUPS: id, sequence number, time, files, size, new bytes.
    List {
        /// The backup folder.
        backups: PathBuf,
    },
    /// Re-read every file of backup ID (or of every backup) and check its size, checksum and
    /// that it decodes; print one line `file offset what` per problem.
    Verify {
        /// The backup folder.
        backups: PathBuf,
        /// The backup to check (all of them when absent).
        id: Option<u64>,
    },
    /// Restore backup ID into OUT (which must not exist, or be empty) as a database.
    Restore {
        /// The backup folder.
        backups: PathBuf,
        /// The backup to restore.
        id: u64,
        /// The new database directory.
        out: PathBuf,
    },
    /// Delete every backup but the newest N, and every file no remaining backup holds.
    Prune {
        /// The backup folder.
        backups: PathBuf,
        /// How many of the newest backups to keep (at least 1).
        #[arg(long)]
        keep: usize,
    },
}

/// Runs one `kho backup` subcommand.
pub fn run(out: &mut Out, command: &Command, k: &Keys) -> anyhow::Result<Outcome> {
    match command {
        Command::Create { dir, backups } => create(out, dir, backups, k),
        Command::List { backups } => list(out, backups),
        Command::Verify { backups, id } => verify(out, backups, *id, k),
        Command::Restore { backups, id, out: to } => restore(out, backups, *id, to, k),
        Command::Prune { backups, keep } => prune(out, backups, *keep),
    }
}

/// Opens the backup folder; only `create` makes one, the other commands refuse a path
/// that is not there (a typo must not become an empty folder).
fn engine(backups: &Path, create: bool) -> anyhow::Result<BackupEngine> {
    if !create && !backups.join("meta").is_dir() {
        anyhow::bail!("{} is not a backup folder", backups.display());
    }
    BackupEngine::open(backups).with_context(|| format!("cannot open the backup folder {}", backups.display()))
}

fn info_json(b: &BackupInfo) -> serde_json::Value {
    json!({"id": b.id, "sequence": b.sequence, "time": b.time, "files": b.files.len(),
           "bytes": b.bytes(), "new_bytes": b.new_bytes})
}

fn info_line(b: &BackupInfo) -> String {
    format!(
        "backup {} at sequence {}, {}, {} files, {} ({} new)",
        b.id,
        b.sequence,
        crate::fmt::utc(b.time),
        b.files.len(),
        size(b.bytes()),
        size(b.new_bytes)
    )
}

/// The size of the database's tables and logs: what a create reads.
fn source_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".sst") || n.ends_with(".log")))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn create(out: &mut Out, dir: &Path, backups: &Path, k: &Keys) -> anyhow::Result<Outcome> {
    let opts = k.write_options(dir)?;
    let db = Db::open(dir, opts).with_context(|| format!("cannot open {}", dir.display()))?;
    let mut engine = engine(backups, true)?;
    let started = Instant::now();
    let bar = out::progress(source_bytes(dir), "backing up");
    let info = engine
        .create_with_progress(&db, &mut |n| bar.inc(n))
        .with_context(|| format!("backup of {} into {}", dir.display(), backups.display()))?;
    bar.finish_and_clear();
    let took = started.elapsed().as_secs_f64();
    db.close()?;
    if out.json {
        let mut j = info_json(&info);
        j["seconds"] = json!(took);
        out.json_value(&j)?;
    } else {
        writeln!(out, "{} ({took:.3} s)", info_line(&info))?;
    }
    Ok(Outcome::Ok)
}

fn list(out: &mut Out, backups: &Path) -> anyhow::Result<Outcome> {
    let engine = engine(backups, false)?;
    let (mut infos, mut problems) = (Vec::new(), Vec::new());
    for id in engine.ids()? {
        match engine.info(id) {
            Ok(info) => infos.push(info),
            Err(e @ Error::Corruption { .. }) => problems.push(Problem::from_error(backups, &e)),
            Err(e) => return Err(e.into()),
        }
    }
    if out.json {
        let list: Vec<_> = infos.iter().map(info_json).collect();
        out.json_value(&json!({"backups": list, "problems": problems, "ok": problems.is_empty()}))?;
    } else {
        for info in &infos {
            writeln!(out, "{}", info_line(info))?;
        }
        for p in &problems {
            writeln!(out, "{p}")?;
        }
    }
    Ok(if problems.is_empty() { Outcome::Ok } else { Outcome::Problems })
}

/// What the key did for one backup in `verify`.
enum KeyCheck {
    /// No key given, or a backup of a plaintext database.
    None,
    /// The encrypted files, authenticated.
    Done(encrypted::Authenticated),
    /// The key does not open this backup's registry (it may be under an earlier master key).
    Refused(String),
}

fn verify(out: &mut Out, backups: &Path, id: Option<u64>, k: &Keys) -> anyhow::Result<Outcome> {
    let engine = engine(backups, false)?;
    let ids = match id {
        Some(id) => vec![id],
        None => engine.ids()?,
    };
    let provider = k.provider()?;
    let total = ids.iter().filter_map(|&id| engine.info(id).ok()).map(|b| b.bytes()).sum();
    let bar = out::progress(total, "verifying");
    let mut reports = Vec::new();
    for n in ids {
        let r = engine.verify_with_progress(n, &mut |b| bar.inc(b)).with_context(|| format!("verify backup {n}"))?;
        let check = match (&provider, engine.info(n)) {
            (Some(p), Ok(info)) => {
                let damaged: BTreeSet<PathBuf> = r
                    .problems
                    .iter()
                    .filter_map(|e| match e {
                        Error::Corruption { file, .. } => Some(file.clone()),
                        _ => None,
                    })
                    .collect();
                match encrypted::authenticate(backups, &info, &damaged, p.clone()) {
                    Ok(Some(a)) => KeyCheck::Done(a),
                    Ok(None) => KeyCheck::None,
                    // Asked for this backup by id: the key is wrong. Among all backups: one
                    // taken before a master-key rotation; its checksums still stand.
                    Err(e @ Error::WrongKey(_)) if id.is_some() => return Err(e.into()),
                    Err(Error::WrongKey(m)) => KeyCheck::Refused(m),
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("verify backup {n}"))),
                }
            }
            _ => KeyCheck::None,
        };
        reports.push((r, check));
    }
    bar.finish_and_clear();
    let refused = reports.iter().filter(|(_, c)| matches!(c, KeyCheck::Refused(_))).count();
    let encrypted = reports.iter().filter(|(r, _)| r.undecoded > 0).count();
    if provider.is_some() && refused > 0 && refused == encrypted {
        // The key opened none of the encrypted backups.
        let m = reports.iter().find_map(|(_, c)| match c {
            KeyCheck::Refused(m) => Some(m.clone()),
            _ => None,
        });
        return Err(Error::WrongKey(m.unwrap_or_default()).into());
    }
    let problems_of = |(r, c): &(kho::backup::VerifyReport, KeyCheck)| -> Vec<Problem> {
        let mut v: Vec<Problem> = r.problems.iter().map(|e| Problem::from_error(backups, e)).collect();
        if let KeyCheck::Done(a) = c {
            v.extend(a.problems.iter().cloned());
        }
        v
    };
    let clean = reports.iter().all(|rc| problems_of(rc).is_empty());
    if out.json {
        let list: Vec<_> = reports
            .iter()
            .map(|rc| {
                let (r, c) = rc;
                let problems = problems_of(rc);
                let (authenticated, refused) = match c {
                    KeyCheck::Done(a) => (Some(a.files), None),
                    KeyCheck::Refused(m) => (None, Some(m.clone())),
                    KeyCheck::None => (None, None),
                };
                json!({"id": r.id, "files": r.files, "bytes": r.bytes, "undecoded": r.undecoded,
                       "authenticated": authenticated, "key_refused": refused,
                       "ok": problems.is_empty(), "problems": problems})
            })
            .collect();
        out.json_value(&json!({"backups": list, "ok": clean}))?;
    } else {
        for rc in &reports {
            let (r, c) = rc;
            let problems = problems_of(rc);
            for p in &problems {
                writeln!(out, "{p}")?;
            }
            let verdict = if problems.is_empty() { "ok".to_owned() } else { format!("{} problems", problems.len()) };
            let encrypted = match c {
                KeyCheck::Done(a) => format!(", {} encrypted (authenticated with the key)", a.files),
                KeyCheck::Refused(m) => {
                    format!(", {} encrypted (checksums only: the key file does not open it: {m})", r.undecoded)
                }
                KeyCheck::None if r.undecoded > 0 => {
                    format!(", {} encrypted (checksums only; --key-file authenticates them)", r.undecoded)
                }
                KeyCheck::None => String::new(),
            };
            writeln!(out, "backup {}: {} files, {}{encrypted}: {verdict}", r.id, r.files, size(r.bytes))?;
        }
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Problems })
}

fn restore(out: &mut Out, backups: &Path, id: u64, to: &Path, k: &Keys) -> anyhow::Result<Outcome> {
    let engine = engine(backups, false)?;
    let total = engine.info(id).map(|b| b.bytes()).unwrap_or(0);
    let bar = out::progress(total, "restoring");
    let result = engine.restore_with_progress(id, to, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    let info = match result {
        Ok(info) => info,
        Err(e @ Error::Corruption { .. }) => {
            let p = Problem::from_error(backups, &e);
            if out.json {
                out.json_value(&json!({"id": id, "out": to, "problems": [p], "ok": false}))?;
            } else {
                writeln!(out, "{p}")?;
                writeln!(out, "backup {id} is damaged: not restored")?;
            }
            return Ok(Outcome::Problems);
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("restore backup {id} into {}", to.display()))),
    };
    let encrypted = crate::keys::is_encrypted(to);
    // With the key, show that the copy opens (and with which sequence number).
    let opened = match (encrypted, k.file()) {
        (true, Some(_)) => {
            let db = Db::open_read_only(to, k.read_options()?)
                .with_context(|| format!("the restored database {} does not open with the key", to.display()))?;
            Some(db.last_sequence())
        }
        _ => None,
    };
    if out.json {
        let mut j = info_json(&info);
        j["out"] = json!(to);
        j["ok"] = json!(true);
        j["encrypted"] = json!(encrypted);
        j["opened_at_sequence"] = json!(opened);
        out.json_value(&j)?;
    } else {
        writeln!(out, "restored backup {} (sequence {}) into {}", info.id, info.sequence, to.display())?;
        match (encrypted, opened) {
            (true, Some(seq)) => writeln!(out, "encrypted: opens with the key (last sequence {seq})")?,
            (true, None) => writeln!(out, "encrypted: open it with --key-file (the master key of the backup's time)")?,
            _ => {}
        }
    }
    Ok(Outcome::Ok)
}

fn prune(out: &mut Out, backups: &Path, keep: usize) -> anyhow::Result<Outcome> {
    let mut engine = engine(backups, false)?;
    let r = engine.prune(keep).with_context(|| format!("prune {}", backups.display()))?;
    if out.json {
        out.json_value(&json!({"removed": r.removed, "files_deleted": r.files_deleted, "bytes_freed": r.bytes_freed}))?;
    } else {
        writeln!(
            out,
            "removed {} backups {:?}: {} files, {} freed",
            r.removed.len(),
            r.removed,
            r.files_deleted,
            size(r.bytes_freed)
        )?;
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(crate::fmt::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(crate::fmt::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(crate::fmt::utc(1_796_409_967), "2026-12-04 18:46:07 UTC");
    }
}
