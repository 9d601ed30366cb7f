//! The table checks of `kho verify`: every table the manifest lists is present, of the
//! recorded size, reads end to end (`SstReader::verify`: checksums, decompression, key order,
//! properties) and agrees with its manifest entry; no table holds a sequence number above the
//! manifest's last sequence; no table is an orphan. (Overlaps in levels >= 1 and inverted key
//! ranges are manifest inconsistencies, found by the version builder as the manifest is
//! replayed.)

use std::path::Path;
use std::sync::Arc;

use indicatif::ProgressBar;
use kho::crypt::Keyring;
use kho::inspect::filename::table_path;
use kho::inspect::sst::SstReader;
use kho::inspect::version::FileMeta;
use kho::vfs::{FileSystem, StdFs};

use super::{Report, Snapshot};
use crate::dbdir::{Problem, State};
use crate::fmt::{self, Bytes};

/// A table the manifest lists, opened.
pub struct Table {
    /// What the manifest records.
    pub meta: FileMeta,
    /// The file's length, when it could be opened.
    pub len: Option<u64>,
    /// The open reader, or the problem opening it.
    pub open: Result<Arc<SstReader>, Problem>,
    /// The file does not exist.
    pub missing: bool,
}

/// Opens every table `state` lists (an open file stays readable if a writer deletes it); an
/// encrypted table with `keys`, which also refuse a plaintext table where the database
/// requires encryption and a table under a key the registry does not hold.
pub fn open_all(dir: &Path, state: &State, keys: Option<&Arc<Keyring>>) -> Vec<Table> {
    state
        .files()
        .map(|(level, meta)| {
            let path = table_path(dir, meta.number);
            let mut missing = false;
            let mut len = None;
            let open = match StdFs.open(&path) {
                Ok(file) => {
                    len = Some(file.len());
                    SstReader::open_with_keys(file, path.clone(), meta.number, None, keys)
                        .map(Arc::new)
                        .map_err(|e| Problem::from_error(&path, &e))
                }
                Err(kho::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    missing = true;
                    Err(Problem::at(&path, None, format!("missing: the manifest lists it at L{level}")))
                }
                Err(e) => Err(Problem::from_error(&path, &e)),
            };
            Table { meta: meta.clone(), len, open, missing }
        })
        .collect()
}

/// Runs the table checks of `snap` into `report`.
pub fn check(dir: &Path, snap: &Snapshot, report: &mut Report, bar: &ProgressBar) {
    let b = Bytes::Escaped;
    for t in &snap.tables {
        let path = table_path(dir, t.meta.number);
        bar.inc(t.meta.size);
        if let Some(len) = t.len {
            report.checked.bytes += len;
            if len != t.meta.size {
                report.problems.push(Problem::at(
                    &path,
                    len.min(t.meta.size),
                    format!("table is {len} bytes but the manifest records {}", t.meta.size),
                ));
            }
        }
        let reader = match &t.open {
            Ok(r) => r,
            Err(p) => {
                report.problems.push(p.clone());
                continue;
            }
        };
        match reader.verify() {
            Ok(r) => {
                report.checked.tables += 1;
                report.checked.data_blocks += r.data_blocks;
                report.checked.table_entries += r.entries;
            }
            Err(e) => report.problems.push(Problem::from_error(&path, &e)),
        }
        let p = reader.properties();
        let props_at = reader.footer_info().properties.0;
        let mut disagree = |what: &str, manifest: String, table: String| {
            report.problems.push(Problem::at(
                &path,
                props_at,
                format!("{what}: the manifest records {manifest}, the table holds {table}"),
            ));
        };
        if p.smallest_key != t.meta.smallest {
            disagree("smallest key", fmt::internal_key(b, &t.meta.smallest), fmt::internal_key(b, &p.smallest_key));
        }
        if p.largest_key != t.meta.largest {
            disagree("largest key", fmt::internal_key(b, &t.meta.largest), fmt::internal_key(b, &p.largest_key));
        }
        if p.entries != t.meta.entries {
            disagree("entries", t.meta.entries.to_string(), p.entries.to_string());
        }
        if (p.min_seq, p.max_seq) != (t.meta.smallest_seq, t.meta.largest_seq) {
            disagree(
                "sequence range",
                format!("{}..{}", t.meta.smallest_seq, t.meta.largest_seq),
                format!("{}..{}", p.min_seq, p.max_seq),
            );
        }
    }
    check_levels(dir, &snap.state, report);
    check_orphans(dir, snap, report);
}

/// No table holds a sequence number above the manifest's last sequence. (Key ranges and
/// overlaps in levels >= 1 are checked as the manifest is replayed, by the version builder
/// recovery uses: they are manifest problems at the edit that introduced them.)
fn check_levels(dir: &Path, state: &State, report: &mut Report) {
    let Some(last) = state.last_sequence else { return };
    for (_, f) in state.files().filter(|(_, f)| f.largest_seq > last) {
        report.problems.push(Problem::at(
            table_path(dir, f.number),
            None,
            format!("holds sequence {} above the manifest's last sequence {last}", f.largest_seq),
        ));
    }
}

/// Tables present but not in the manifest: leftovers of an interrupted flush or compaction
/// (problems), or, numbered at or above the next file number, tables a running writer is
/// creating (notes).
fn check_orphans(dir: &Path, snap: &Snapshot, report: &mut Report) {
    if snap.manifest.is_none() {
        return; // without a manifest every table would look orphaned; the manifest problem says it
    }
    let orphans: Vec<u64> = snap.listing.tables.iter().copied().filter(|&n| snap.state.find(n).is_none()).collect();
    if !orphans.is_empty() {
        // A writer removes a compacted table just after logging the edit: give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // ... and a flush or compaction finishing meanwhile may have logged it.
    let later = crate::dbdir::list(dir)
        .ok()
        .and_then(|l| crate::dbdir::current_manifest(dir, &l).0)
        .and_then(|n| crate::dbdir::read_manifest(dir, n, snap.keys.as_ref()).ok())
        .map(|m| m.replay());
    for n in orphans {
        let path = table_path(dir, n);
        if !path.exists() {
            report
                .notes
                .push(format!("{} was deleted while verifying (compacted by a running writer)", path.display()));
        } else if later.as_ref().is_some_and(|s| s.find(n).is_some()) {
            report.notes.push(format!("{} was added to the manifest while verifying", path.display()));
        } else if snap.state.next_file_number.is_some_and(|next| n >= next) {
            report
                .notes
                .push(format!("{} is newer than the manifest (a running writer is creating it?)", path.display()));
        } else {
            report.problems.push(Problem::at(
                &path,
                None,
                "orphan table: not in the manifest (left by an interrupted flush or compaction; \
                 the next writable open deletes it)",
            ));
        }
    }
}
