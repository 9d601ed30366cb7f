//! `kho backup create|list|verify|restore|prune`: incremental, verified backups in a backup
//! folder (`kho::backup::BackupEngine`; layout and format in docs/sync.md, "Backups").
//!
//! `create` opens the database for writing (the checkpoint under it rotates the log), so a
//! database another process holds answers `Busy` (exit 2). Exit 1 when a check found damage:
//! `verify` (one line `file offset what` per problem, as `kho verify` prints them), `list`
//! with damaged metadata, `restore` of a damaged backup. Long copies show a progress bar
//! when stderr is a terminal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use kho::backup::{BackupEngine, BackupInfo};
use kho::{Db, Error, Options};
use serde_json::json;

use crate::dbdir::Problem;
use crate::fmt::size;
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
pub fn run(out: &mut Out, command: &Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Create { dir, backups } => create(out, dir, backups),
        Command::List { backups } => list(out, backups),
        Command::Verify { backups, id } => verify(out, backups, *id),
        Command::Restore { backups, id, out: to } => restore(out, backups, *id, to),
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
        utc(b.time),
        b.files.len(),
        size(b.bytes()),
        size(b.new_bytes)
    )
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm
/// of Howard Hinnant's date library).
fn utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
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

fn create(out: &mut Out, dir: &Path, backups: &Path) -> anyhow::Result<Outcome> {
    let opts = Options { create_if_missing: false, ..Options::default() };
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

fn verify(out: &mut Out, backups: &Path, id: Option<u64>) -> anyhow::Result<Outcome> {
    let engine = engine(backups, false)?;
    let ids = match id {
        Some(id) => vec![id],
        None => engine.ids()?,
    };
    let total = ids.iter().filter_map(|&id| engine.info(id).ok()).map(|b| b.bytes()).sum();
    let bar = out::progress(total, "verifying");
    let mut reports = Vec::new();
    for id in ids {
        reports
            .push(engine.verify_with_progress(id, &mut |n| bar.inc(n)).with_context(|| format!("verify backup {id}"))?);
    }
    bar.finish_and_clear();
    let clean = reports.iter().all(|r| r.is_clean());
    if out.json {
        let list: Vec<_> = reports
            .iter()
            .map(|r| {
                let problems: Vec<Problem> = r.problems.iter().map(|e| Problem::from_error(backups, e)).collect();
                json!({"id": r.id, "files": r.files, "bytes": r.bytes, "undecoded": r.undecoded,
                       "problems": problems, "ok": r.is_clean()})
            })
            .collect();
        out.json_value(&json!({"backups": list, "ok": clean}))?;
    } else {
        for r in &reports {
            for e in &r.problems {
                writeln!(out, "{}", Problem::from_error(backups, e))?;
            }
            let verdict = if r.is_clean() { "ok".to_owned() } else { format!("{} problems", r.problems.len()) };
            let undecoded =
                if r.undecoded > 0 { format!(", {} encrypted (checksums only)", r.undecoded) } else { String::new() };
            writeln!(out, "backup {}: {} files, {}{undecoded}: {verdict}", r.id, r.files, size(r.bytes))?;
        }
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Problems })
}

fn restore(out: &mut Out, backups: &Path, id: u64, to: &Path) -> anyhow::Result<Outcome> {
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
    if out.json {
        let mut j = info_json(&info);
        j["out"] = json!(to);
        j["ok"] = json!(true);
        out.json_value(&j)?;
    } else {
        writeln!(out, "restored backup {} (sequence {}) into {}", info.id, info.sequence, to.display())?;
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
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_796_409_967), "2026-12-04 18:46:07 UTC");
    }
}
