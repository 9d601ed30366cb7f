//! Recovery: replaying the live logs into memtables, the checks that rule out a silent loss,
//! the clean-up of leftover files, and the [`RecoveryReport`] of anything dropped.
//!
//! Rules (see `docs/durability.md`):
//! - Every live table must exist with the size the manifest records; a missing or cut table
//!   is [`Error::Corruption`], never an empty level.
//! - The log the manifest names (its log number) must exist: it is created before the edit
//!   naming it and deleted only after a later edit moves past it.
//! - Sequence numbers continue without a gap from the manifest's last sequence through every
//!   replayed batch, in log-number order: a gap means a log holding acknowledged writes is
//!   gone (or a manifest edit that made it obsolete was dropped), which is corruption.
//! - Only the newest non-empty log may end in a damaged region; it is dropped under
//!   [`RecoveryMode::TolerateCorruptedTail`] and reported, and is corruption otherwise.
//! - A log that reads as ending damaged is read again (up to three times) before the damage
//!   is believed: a transient read error must not drop a synced write for good.
//! - Leftovers are deleted only once the recovered state is durable. A log whose damaged tail
//!   was dropped is moved to `lost/`, not deleted (the dropped bytes stay for an operator),
//!   and a table no manifest edit names is deleted only if the manifest ended clean: after a
//!   dropped manifest tail, tables numbered at or above the recovered next file number may
//!   hold the only copy of what the dropped edit described, so they go to `lost/` too.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::batch::DecodedBatch;
use crate::crypt::open_log_reader;
use crate::filename::{log_path, parse_file_name, table_path, FileKind};
use crate::memtable::Memtable;
use crate::options::{Options, RecoveryMode};
use crate::version::{TableContext, Version, VersionSet};
use crate::wal::{read_settled, DroppedTail};
use crate::{Error, Result};

/// Subdirectory that receives quarantined files.
pub(crate) const LOST_DIR: &str = "lost";

/// What recovery dropped or set aside when the database was opened
/// ([`crate::Db::recovery_report`]). Empty after a clean shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Damaged tails dropped from the newest log and from the manifest, in the order found.
    pub dropped: Vec<DroppedTail>,
    /// Files moved to `lost/` instead of being deleted (their new paths): each log whose
    /// damaged tail was dropped (what it held is kept for an operator), and tables a dropped
    /// manifest edit may have named.
    pub quarantined_files: Vec<PathBuf>,
    /// Numbers of the logs whose damaged tails were dropped.
    pub(crate) damaged_logs: Vec<u64>,
}

impl RecoveryReport {
    /// Records (log batches or manifest edits) dropped, counting each damaged region's
    /// intact headers.
    pub fn dropped_records(&self) -> u64 {
        self.dropped.iter().map(|d| d.records).sum()
    }

    /// Bytes dropped.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.iter().map(|d| d.bytes).sum()
    }

    /// True when recovery dropped and set aside nothing.
    pub fn is_clean(&self) -> bool {
        self.dropped.is_empty() && self.quarantined_files.is_empty()
    }

    /// Records a dropped tail and tells the listener.
    pub(crate) fn add_dropped(&mut self, opts: &Options, tail: DroppedTail) {
        if let Some(l) = &opts.event_listener {
            l.on_recovery_dropped(&tail);
        }
        self.dropped.push(tail);
    }
}

/// A memtable full during replay goes here (to be written as a level-0 table).
pub(super) type FullMemtableSink<'a> = &'a mut dyn FnMut(Memtable, &mut VersionSet) -> Result<()>;

/// Checks that every table of `version` exists with its recorded size.
pub(super) fn check_live_tables(ctx: &TableContext, version: &Version) -> Result<()> {
    for (level, f) in version.files() {
        let path = table_path(&ctx.dir, f.meta.number);
        let size = match ctx.fs.file_size(&path) {
            Ok(size) => size,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corruption_unknown_offset(
                    &path,
                    format!("live table of level {level} is missing (the manifest lists it)"),
                ));
            }
            Err(e) => return Err(e),
        };
        if size != f.meta.size {
            return Err(Error::corruption(
                &path,
                size.min(f.meta.size),
                format!("live table has {size} bytes, the manifest records {}", f.meta.size),
            ));
        }
    }
    Ok(())
}

/// Replays every live log in order into a memtable, handing each full one to `on_full`
/// (when `None`, everything stays in memory), and records a dropped tail in `report`.
/// Returns the last sequence number seen and the memtable holding the rest.
pub(super) fn replay_logs(
    ctx: &TableContext,
    opts: &Options,
    versions: &mut VersionSet,
    mut on_full: Option<FullMemtableSink<'_>>,
    report: &mut RecoveryReport,
) -> Result<(u64, Memtable)> {
    let mut logs: Vec<u64> = ctx
        .fs
        .list(&ctx.dir)?
        .iter()
        .filter_map(|n| match parse_file_name(n) {
            Some(FileKind::Log(n)) if n >= versions.log_number => Some(n),
            _ => None,
        })
        .collect();
    logs.sort_unstable();
    // The log the manifest names was created (and its name synced) before the edit naming it
    // was written, and is deleted only after a later edit moves past it: if it is gone, the
    // writes in it are gone too, and nothing later would show the gap if they were the last.
    // (Log number 0: no manifest yet, a new database.)
    if versions.log_number > 0 && logs.first() != Some(&versions.log_number) {
        return Err(Error::corruption_unknown_offset(
            log_path(&ctx.dir, versions.log_number),
            "the log the manifest names as holding the newest writes is missing",
        ));
    }
    let mut last_seq = versions.last_sequence;
    let mut mem = Memtable::unfiltered(0);
    for (i, &number) in logs.iter().enumerate() {
        versions.next_file_number = versions.next_file_number.max(number + 1);
        let path = log_path(&ctx.dir, number);
        let mut reader = open_log_reader(read_settled(ctx.fs.as_ref(), &path)?, &path, ctx.keys.as_ref());
        while let Some(rec) = reader.next_record()? {
            let payload_at = rec.offset + crate::wal::format::HEADER_LEN as u64;
            let batch = DecodedBatch::parse(&rec.payload).map_err(|w| Error::corruption(&path, payload_at, w))?;
            if batch.seq != last_seq + 1 {
                return Err(Error::corruption(
                    &path,
                    rec.offset,
                    format!(
                        "batch starts at sequence {} but the data before it ends at {last_seq}: \
                         writes between them are missing (a log deleted, or a manifest edit lost)",
                        batch.seq
                    ),
                ));
            }
            let mut seq = batch.seq;
            for op in batch.ops() {
                let (kind, key, value) =
                    op.map_err(|e| Error::corruption(&path, payload_at + e.offset as u64, e.what))?;
                mem.insert(key, seq, kind, value);
                seq += 1;
            }
            last_seq = seq - 1;
            if let Some(sink) = on_full.as_mut() {
                if mem.approximate_size() >= opts.write_buffer_size {
                    sink(std::mem::replace(&mut mem, Memtable::unfiltered(0)), versions)?;
                }
            }
        }
        if let Some(tail) = reader.dropped_tail() {
            // Only the newest log can end torn: older ones were fsynced before the switch.
            // Empty logs after it do not count: an open that failed (or was killed) after
            // creating its new log but before switching `CURRENT` leaves one behind, and the
            // next open replays it too.
            let mut newest = true;
            for &later in &logs[i + 1..] {
                newest &= ctx.fs.file_size(&log_path(&ctx.dir, later))? == 0;
            }
            if !newest || opts.recovery_mode == RecoveryMode::AbsoluteConsistency {
                let why = if newest {
                    "damaged tail (absolute consistency requested)"
                } else {
                    "damaged tail in a log that is not the newest"
                };
                return Err(Error::corruption(&path, tail.offset, format!("{}: {why}", tail.reason)));
            }
            report.damaged_logs.push(number);
            report.add_dropped(opts, tail);
        }
    }
    Ok((last_seq, mem))
}

/// Removes files no longer referenced: old logs and manifests, temporary files and tables
/// the current version does not list (outputs of an interrupted flush or compaction). Logs
/// with a dropped tail, and tables numbered at or above `quarantine_from`, are moved to
/// `lost/` instead (see the module docs).
pub(super) fn delete_obsolete_files(
    ctx: &TableContext,
    opts: &Options,
    versions: &VersionSet,
    quarantine_from: Option<u64>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let live: HashSet<u64> = versions.current().files().map(|(_, f)| f.meta.number).collect();
    for name in ctx.fs.list(&ctx.dir)? {
        let path = ctx.dir.join(&name);
        let (garbage, quarantine) = match parse_file_name(&name) {
            Some(FileKind::Log(n)) if n < versions.log_number => (true, report.damaged_logs.contains(&n)),
            Some(FileKind::Manifest(n)) => (n != versions.manifest_number(), false),
            Some(FileKind::Table(n)) if !live.contains(&n) => (true, quarantine_from.is_some_and(|from| n >= from)),
            Some(FileKind::Temp) => (true, false),
            _ => (false, false),
        };
        if quarantine {
            let lost = ctx.dir.join(LOST_DIR);
            ctx.fs.create_dir_all(&lost)?;
            let to = lost.join(&name);
            ctx.fs.rename(&path, &to)?;
            ctx.fs.sync_dir(&lost)?;
            ctx.fs.sync_dir(&ctx.dir)?;
            if let Some(l) = &opts.event_listener {
                l.on_file_quarantined(&to);
            }
            report.quarantined_files.push(to);
        } else if garbage {
            ctx.fs.remove(&path)?;
        }
    }
    Ok(())
}
