//! The log checks of `kho verify`: every live log (numbered at or above the manifest's log
//! number) is read record by record; every damaged region, undecodable batch and sequence
//! number that does not continue the manifest's and the previous batch's is a problem. A torn tail is a problem in a log that is not the newest
//! (it was synced before the writer switched logs); in the newest log it is what a crash
//! leaves (recovery drops it): a problem unless `--tolerate-torn-tail`, and a note when the
//! file is still growing (a running writer is appending).

use std::path::Path;

use indicatif::ProgressBar;
use kho::inspect::batch::DecodedBatch;
use kho::inspect::filename::log_path;
use kho::inspect::wal::{LogReader, TailState, HEADER_LEN};
use kho::Error;

use super::{Report, Snapshot};
use crate::dbdir::{self, LogEvent, Problem};

/// Runs the log checks of `snap` into `report`.
pub fn check(
    dir: &Path,
    snap: &Snapshot,
    tolerate_torn_tail: bool,
    report: &mut Report,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let live: Vec<u64> =
        snap.listing.logs.iter().copied().filter(|&n| snap.state.log_number.is_none_or(|l| n >= l)).collect();
    for &n in snap.listing.logs.iter().filter(|n| !live.contains(n)) {
        report
            .notes
            .push(format!("{:06}.log is obsolete (its data is in tables; the next writable open deletes it)", n));
    }
    // Sequence numbers continue without a gap from the manifest's last sequence across the
    // live logs, in file-number order (recovery refuses a gap: writes would be missing).
    let mut next_seq: Option<u64> = snap.state.last_sequence.map(|s| s + 1);
    for (i, &n) in live.iter().enumerate() {
        let path = log_path(dir, n);
        let data = match dbdir::read(&path) {
            Ok(d) => d,
            Err(kho::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                report
                    .notes
                    .push(format!("{} was deleted while verifying (flushed by a running writer)", path.display()));
                continue;
            }
            Err(e) => {
                report.problems.push(Problem::from_error(&path, &e));
                continue;
            }
        };
        let size = data.len() as u64;
        bar.inc(size);
        report.checked.logs += 1;
        report.checked.bytes += size;
        let mut records = 0u64;
        let walked = dbdir::walk_log(data.clone(), &path, snap.keys.as_ref(), |ev| {
            match ev {
                LogEvent::Record(rec) => {
                    records += 1;
                    report.checked.log_records += 1;
                    check_batch(&path, &rec, &mut next_seq, report);
                }
                LogEvent::Damage { offset, what, skipped } => report.problems.push(Problem::at(
                    &path,
                    offset,
                    format!("{what} (bytes {}..{} unreadable)", skipped.start, skipped.end),
                )),
            }
            Ok(())
        });
        let end = match walked {
            Ok(end) => end,
            Err(e) => match e.downcast::<Error>() {
                // Encrypted, and no registry (missing or damaged: reported) to open it with.
                Ok(e @ Error::KeyNeeded { .. }) => {
                    report.problems.push(Problem::from_error(&path, &e));
                    continue;
                }
                Ok(e) => return Err(e.into()),
                Err(e) => return Err(e),
            },
        };
        if let Some(k) = &snap.keys {
            if end.header.is_none() && records > 0 && k.requires_encryption(n) {
                report.problems.push(Problem::at(
                    &path,
                    0,
                    "plaintext log where the database requires every file to be encrypted",
                ));
            }
        }
        let TailState::Torn { offset, reason } = end.tail else { continue };
        let newest = live[i + 1..].iter().all(|&later| dbdir::read(&log_path(dir, later)).is_ok_and(|d| d.is_empty()));
        let at = |what: String| Problem::at(&path, offset, what);
        let records = dropped_records(data, &path, snap.keys.as_ref());
        let dropped = format!("{records} record(s), {} bytes", size.saturating_sub(offset));
        if !newest {
            report.problems.push(at(format!("torn tail in a log that is not the newest: {reason}")));
        } else if dbdir::still_growing(&path, size) {
            report
                .notes
                .push(format!("{} is being appended to (a running writer?); its tail was in flight", path.display()));
        } else if tolerate_torn_tail {
            report.notes.push(format!(
                "{}: torn tail at {offset} tolerated, {dropped} that recovery drops and reports: {reason}",
                path.display()
            ));
        } else {
            report.problems.push(at(format!(
                "torn tail: {reason} ({dropped}; recovery drops them and reports it, or refuses under \
                 absolute consistency. After a crash they are writes never acknowledged as synced; \
                 on a damaged disk they may be synced ones)"
            )));
        }
    }
    Ok(())
}

/// How many records the damaged tail of the log `data` holds (as recovery counts them).
fn dropped_records(data: bytes::Bytes, path: &Path, keys: Option<&std::sync::Arc<kho::crypt::Keyring>>) -> u64 {
    let mut reader = LogReader::new(data, path);
    if let Some(k) = keys {
        reader = reader.with_keys(k.clone());
    }
    loop {
        match reader.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => return reader.dropped_tail().map_or(0, |d| d.records),
            Err(_) => {
                if reader.resync().is_none() {
                    return 0;
                }
            }
        }
    }
}

/// Decodes the batch in `rec` and checks its sequence numbers continue the previous batch's.
fn check_batch(path: &Path, rec: &kho::inspect::wal::LogRecord, next_seq: &mut Option<u64>, report: &mut Report) {
    let payload_at = rec.offset + HEADER_LEN as u64;
    let batch = match DecodedBatch::parse(&rec.payload) {
        Ok(b) => b,
        Err(what) => {
            report.problems.push(Problem::at(path, payload_at, format!("undecodable write batch: {what}")));
            return;
        }
    };
    for op in batch.ops() {
        match op {
            Ok(_) => report.checked.log_operations += 1,
            Err(e) => {
                report.problems.push(Problem::at(
                    path,
                    payload_at + e.offset as u64,
                    format!("undecodable write batch: {}", e.what),
                ));
                return;
            }
        }
    }
    if let Some(expected) = *next_seq {
        if batch.seq != expected {
            let how = if batch.seq < expected { "goes backwards" } else { "leaves a gap: writes are missing" };
            report.problems.push(Problem::at(
                path,
                rec.offset,
                format!(
                    "batch sequence {} {how} (the data before it ends at {})",
                    batch.seq,
                    expected.saturating_sub(1)
                ),
            ));
        }
    }
    *next_seq = Some(batch.seq.saturating_add(u64::from(batch.count)));
}
