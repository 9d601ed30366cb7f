//! Bad bytes in every file kind: a flipped byte and a truncation of a log, a table, the
//! manifest and `CURRENT` each make `kho verify` exit 1 with a line naming the damaged file
//! and the offset of the damaged structure; and no subcommand panics on any of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use kho::inspect::sst::{BlockKind, SstReader};
use kho::inspect::wal::LogReader;
use kho::vfs::{FileSystem, StdFs};

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// Offsets of the records of a log-framed file (a WAL or the manifest).
fn record_offsets(path: &Path) -> Vec<u64> {
    let mut r = LogReader::new(bytes::Bytes::from(std::fs::read(path).unwrap()), path);
    let mut v = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        v.push(rec.offset);
    }
    v
}

/// Runs `kho verify` (text and JSON), expects exit 1 and a problem line `FILE OFFSET ...`;
/// then runs every subcommand to check none panics.
fn expect_problem(dir: &Path, file: &Path, offset: Option<u64>, what: &str) {
    let d = dir.to_str().unwrap();
    let r = kho_ok(1, ["verify", d]);
    let prefix = match offset {
        Some(o) => format!("{} {o} ", file.display()),
        None => format!("{} - ", file.display()),
    };
    assert!(
        r.stdout.lines().any(|l| l.starts_with(&prefix) && l.contains(what)),
        "no line starting {prefix:?} and containing {what:?} in:\n{}",
        r.stdout
    );
    assert!(r.stderr.contains("problem"), "{}", r.stderr);
    let j = kho_ok(1, ["verify", d, "--json"]).json();
    assert_eq!(j["ok"], false);
    assert!(j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["file"] == file.to_str().unwrap() && p["offset"] == serde_json::json!(offset)));
    run_everything(dir);
}

fn citizens_table(dir: &Path) -> (PathBuf, Arc<SstReader>) {
    let path = files(dir, ".sst").into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let reader = SstReader::open(StdFs.open(&path).unwrap(), path.clone(), 0, None).unwrap();
    (path, Arc::new(reader))
}

#[test]
fn clean_store_verifies() {
    let dir = fresh();
    let r = kho_ok(0, ["verify", dir.path().to_str().unwrap()]);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains(": ok; read"), "{}", r.stderr);
}

#[test]
fn wal_flipped_byte_names_the_record() {
    let dir = fresh();
    let log = newest_log(dir.path());
    let recs = record_offsets(&log);
    flip(&log, recs[4] + 20);
    expect_problem(dir.path(), &log, Some(recs[4]), "checksum");
    // The dump reports the damage and resumes at the next intact record.
    let r = kho_ok(1, ["dump", "wal", log.to_str().unwrap()]);
    assert!(
        r.stdout.contains(&format!("offset {}: DAMAGED: record payload checksum mismatch", recs[4])),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("(skipping {} bytes {}..{})", recs[5] - recs[4], recs[4], recs[5])));
    assert!(r.stdout.contains("\"pending:9\""), "records after the damage are shown");
    let j = kho_ok(1, ["dump", "wal", log.to_str().unwrap(), "--json"]).json();
    let events = j["events"].as_array().unwrap();
    assert_eq!(events.len(), PENDING, "9 records and one damaged region");
    assert_eq!(events[4]["type"], "damage");
    assert_eq!(events[4]["offset"], recs[4]);
}

#[test]
fn wal_truncation_is_a_torn_tail() {
    let dir = fresh();
    let log = newest_log(dir.path());
    let recs = record_offsets(&log);
    truncate(&log, recs[PENDING - 1] + 7);
    expect_problem(dir.path(), &log, Some(recs[PENDING - 1]), "torn tail");
    // What a crash leaves: tolerated on request, and the database still opens.
    kho_ok(0, ["verify", "--tolerate-torn-tail", dir.path().to_str().unwrap()]);
    kho_ok(1, ["get", dir.path().to_str().unwrap(), &format!("pending:{}", PENDING - 1)]);
    kho_ok(0, ["get", dir.path().to_str().unwrap(), &format!("pending:{}", PENDING - 2)]);
}

#[test]
fn wal_malformed_batch_with_good_checksums_is_reported() {
    // A record whose checksums are right but whose batch does not decode (a writer bug, not
    // bit rot): rewrite the last record with a batch announcing more operations than it has.
    let dir = fresh();
    let log = newest_log(dir.path());
    let recs = record_offsets(&log);
    let last = recs[PENDING - 1];
    let mut data = std::fs::read(&log).unwrap();
    let mut payload = data[last as usize + 13..].to_vec();
    payload[8] = 2; // count = 2 (little-endian u32 after the 8-byte sequence)
    data.truncate(last as usize);
    let mut header = Vec::new();
    header.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    header.push(0);
    header.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    let hcrc = crc32fast::hash(&header);
    header.extend_from_slice(&hcrc.to_le_bytes());
    data.extend_from_slice(&header);
    data.extend_from_slice(&payload);
    std::fs::write(&log, data).unwrap();
    expect_problem(
        dir.path(),
        &log,
        Some(last + 13 + payload.len() as u64),
        "undecodable write batch: missing operation",
    );
}

#[test]
fn sst_flipped_byte_in_a_data_block_names_the_block() {
    let dir = fresh();
    let (path, reader) = citizens_table(dir.path());
    let third = reader.layout().unwrap().into_iter().filter(|b| b.kind == BlockKind::Data).nth(2).unwrap();
    drop(reader);
    flip(&path, third.offset + 9);
    expect_problem(dir.path(), &path, Some(third.offset), "block checksum");
    let r = kho_ok(1, ["dump", "sst", path.to_str().unwrap()]);
    assert!(r.stdout.contains("check: FAILED"), "{}", r.stdout);
}

#[test]
fn sst_flipped_byte_in_the_footer_names_the_footer() {
    let dir = fresh();
    let (path, reader) = citizens_table(dir.path());
    let footer = reader.footer_info().offset;
    drop(reader);
    flip(&path, footer + 3);
    expect_problem(dir.path(), &path, Some(footer), "footer checksum");
    let r = kho_ok(1, ["dump", "sst", path.to_str().unwrap()]);
    assert!(r.stdout.contains(&format!("CANNOT OPEN: {} {footer} ", path.display())), "{}", r.stdout);
}

#[test]
fn sst_truncation_names_the_size() {
    let dir = fresh();
    let (path, reader) = citizens_table(dir.path());
    let len = reader.properties().file_size;
    drop(reader);
    truncate(&path, len - 10);
    expect_problem(
        dir.path(),
        &path,
        Some(len - 10),
        &format!("table is {} bytes but the manifest records {len}", len - 10),
    );
}

#[test]
fn missing_and_orphan_tables_are_reported() {
    let dir = fresh();
    let (path, reader) = citizens_table(dir.path());
    drop(reader);
    let orphan = dir.path().join("000003.sst"); // a number the manifest never gave a live table
    std::fs::rename(&path, &orphan).unwrap();
    expect_problem(dir.path(), &path, None, "missing: the manifest lists it at L1");
    expect_problem(dir.path(), &orphan, None, "orphan table");
}

#[test]
fn manifest_flipped_byte_names_the_record() {
    let dir = fresh();
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    let recs = record_offsets(&manifest);
    flip(&manifest, recs[2] + 15);
    expect_problem(dir.path(), &manifest, Some(recs[2]), "checksum");
    let r = kho_ok(1, ["dump", "manifest", dir.path().to_str().unwrap()]);
    assert!(r.stdout.contains(&format!("PROBLEM: {} {} ", manifest.display(), recs[2])), "{}", r.stdout);
}

#[test]
fn manifest_truncation_is_a_torn_tail() {
    let dir = fresh();
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    let recs = record_offsets(&manifest);
    let last = *recs.last().unwrap();
    truncate(&manifest, last + 20);
    expect_problem(dir.path(), &manifest, Some(last), "torn tail");
    // Shown explicitly: what is dropped and what each recovery mode does with it.
    let d = dir.path().to_str().unwrap();
    let what = "20 bytes to the end of the file, 1 record: an edit whose write never completed; recovery drops \
                it under the default recovery mode and refuses to open under absolute consistency";
    let r = kho_ok(1, ["verify", d]);
    assert!(
        r.stdout.contains(&format!("{} {last} torn tail: ", manifest.display())) && r.stdout.contains(what),
        "{}",
        r.stdout
    );
    let r = kho(["verify", "--tolerate-torn-tail", d]);
    assert!(r.stderr.contains(what) && r.stderr.contains("(tolerated)"), "{}", r.stderr);
    let r = kho_ok(1, ["dump", "manifest", d]);
    assert!(r.stdout.contains(&format!("offset {last}: TORN TAIL: ")) && r.stdout.contains(what), "{}", r.stdout);
    let j = kho_ok(1, ["dump", "manifest", d, "--json"]).json();
    assert_eq!(
        (&j["dropped_tail"]["offset"], &j["dropped_tail"]["bytes"], &j["dropped_tail"]["records"]),
        (&serde_json::json!(last), &serde_json::json!(20), &serde_json::json!(1))
    );
    let clean = fresh();
    let j = kho_ok(0, ["dump", "manifest", clean.path().to_str().unwrap(), "--json"]).json();
    assert!(j["dropped_tail"].is_null(), "{j}");
}

#[test]
fn current_flipped_byte_names_the_checksum_line() {
    let dir = fresh();
    let current = dir.path().join("CURRENT");
    flip(&current, 3);
    // "MANIFEST-NNNNNN\n" is 16 bytes: the checksum line after it no longer matches.
    expect_problem(dir.path(), &current, Some(16), "checksum");
    // The one manifest present is still verified.
    let j = kho_ok(1, ["verify", dir.path().to_str().unwrap(), "--json"]).json();
    assert_eq!(j["problems"].as_array().unwrap().len(), 1, "{j}");
    assert!(j["checked"]["tables"].as_u64().unwrap() > 0);
}

#[test]
fn current_truncation_is_reported() {
    let dir = fresh();
    let current = dir.path().join("CURRENT");
    truncate(&current, 10);
    expect_problem(dir.path(), &current, Some(0), "no newline");
    truncate(&current, 0);
    expect_problem(dir.path(), &current, Some(0), "no newline");
}
