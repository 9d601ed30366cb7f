//! `kho verify` beyond single flipped bytes: cross-file checks (levels that overlap, the
//! manifest against the tables), leftovers that are notes rather than problems, and a run
//! beside a writer that is flushing and compacting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use kho::{Db, Options};

fn varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push(v as u8 | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Appends one version edit (already encoded) to the manifest as a framed record.
fn append_edit(manifest: &std::path::Path, payload: &[u8]) {
    let mut rec = Vec::new();
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.push(0);
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let hcrc = crc32fast::hash(&rec);
    rec.extend_from_slice(&hcrc.to_le_bytes());
    rec.extend_from_slice(payload);
    let mut data = std::fs::read(manifest).unwrap();
    data.extend_from_slice(&rec);
    std::fs::write(manifest, data).unwrap();
}

/// An edit moving table `f` from `from` to level `to` (tags from docs/manifest-format.md).
fn move_edit(f: &kho::inspect::version::FileMeta, from: u64, to: u64) -> Vec<u8> {
    let mut e = Vec::new();
    for v in [4, from, f.number, 5, to, f.number, f.size] {
        varint(&mut e, v);
    }
    for k in [&f.smallest, &f.largest] {
        varint(&mut e, k.len() as u64);
        e.extend_from_slice(k);
    }
    for v in [f.smallest_seq, f.largest_seq, f.entries] {
        varint(&mut e, v);
    }
    e
}

#[test]
fn overlapping_tables_in_a_sorted_level_are_reported() {
    let dir = fresh();
    let live = Db::open_read_only(dir.path(), Options::default()).unwrap().live_files();
    let (_, l0) = live.iter().find(|(level, _)| *level == 0).unwrap().clone();
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    let at = std::fs::metadata(&manifest).unwrap().len();
    append_edit(&manifest, &move_edit(&l0, 0, 1)); // its tombstones span the L1 tables' keys
    let r = kho_ok(1, ["verify", dir.path().to_str().unwrap()]);
    // The manifest problem names the edit that made the level overlap.
    let prefix = format!("{} {at} edit adds table {} at L1 overlapping table ", manifest.display(), l0.number);
    assert!(r.stdout.lines().any(|l| l.starts_with(&prefix)), "no line starting {prefix:?}:\n{}", r.stdout);
    run_everything(dir.path());
}

/// A varint-encoded edit adding table `f` at `level` (no deletion).
fn add_edit(f: &kho::inspect::version::FileMeta, level: u64) -> Vec<u8> {
    let moved = move_edit(f, 0, level);
    // `move_edit` starts with the deletion `4, 0, number`: drop it.
    let mut skip = Vec::new();
    for v in [4, 0, f.number] {
        varint(&mut skip, v);
    }
    moved[skip.len()..].to_vec()
}

/// Recovery stops at the first inconsistent edit; the tools keep going and list every one
/// at the offset of its record (`verify` and `dump manifest`, text and JSON), and commands
/// that open the database fail naming the first.
#[test]
fn every_inconsistent_edit_is_listed_at_its_offset() {
    let dir = fresh();
    let d = dir.path().to_str().unwrap();
    let live = Db::open_read_only(dir.path(), Options::default()).unwrap().live_files();
    let (_, l1) = live.iter().find(|(level, _)| *level == 1).unwrap().clone();
    let mut far = l1.clone();
    far.number = 1_000_000;
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    let mut expected: Vec<(u64, String)> = Vec::new();
    for (edit, what) in [
        (vec![4, 2, 99], "edit deletes table 99 which is not at L2".to_owned()),
        (vec![1, 0], "edit moves the log number back from ".to_owned()),
        (add_edit(&l1, 3), format!("edit adds table {} at L3 which is already live at L1", l1.number)),
        (add_edit(&far, 0), "edit adds table 1000000 at L0, not below the next file number ".to_owned()),
    ] {
        expected.push((std::fs::metadata(&manifest).unwrap().len(), what));
        append_edit(&manifest, &edit);
    }
    let m = manifest.display();
    let r = kho_ok(1, ["verify", d]);
    let dump = kho_ok(1, ["dump", "manifest", d]);
    for (at, what) in &expected {
        let line = format!("{m} {at} {what}");
        assert!(r.stdout.lines().any(|l| l.starts_with(&line)), "verify: no line {line:?} in:\n{}", r.stdout);
        assert!(dump.stdout.contains(&format!("PROBLEM: {line}")), "dump: no {line:?} in:\n{}", dump.stdout);
    }
    for doc in [kho_ok(1, ["verify", d, "--json"]).json(), kho_ok(1, ["dump", "manifest", d, "--json"]).json()] {
        let problems = doc["problems"].as_array().unwrap();
        for (at, what) in &expected {
            assert!(
                problems.iter().any(|p| p["offset"] == *at && p["what"].as_str().unwrap().starts_with(what.as_str())),
                "{what} at {at} missing from {doc}"
            );
        }
    }
    // Opening the database stops at the first.
    let r = kho_ok(2, ["get", d, "citizen:00001"]);
    let (at, what) = &expected[0];
    assert!(r.stderr.contains(&format!("corruption in {m} at offset {at}: {what}")), "{}", r.stderr);
}

#[test]
fn manifest_metadata_disagreeing_with_the_table_is_reported() {
    let dir = fresh();
    let live = Db::open_read_only(dir.path(), Options::default()).unwrap().live_files();
    let (_, mut f) = live.iter().find(|(level, _)| *level == 1).unwrap().clone();
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    f.entries += 1;
    append_edit(&manifest, &move_edit(&f, 1, 1));
    let r = kho_ok(1, ["verify", dir.path().to_str().unwrap()]);
    let table = dir.path().join(format!("{:06}.sst", f.number));
    assert!(
        r.stdout.lines().any(|l| l.starts_with(&table.display().to_string())
            && l.contains(&format!("entries: the manifest records {}, the table holds {}", f.entries, f.entries - 1))),
        "{}",
        r.stdout
    );
}

#[test]
fn an_edit_deleting_an_absent_table_is_reported() {
    let dir = fresh();
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    let size = std::fs::metadata(&manifest).unwrap().len();
    append_edit(&manifest, &[4, 2, 99]);
    let r = kho_ok(1, ["verify", dir.path().to_str().unwrap()]);
    assert!(
        r.stdout.contains(&format!("{} {size} edit deletes table 99 which is not at L2", manifest.display())),
        "{}",
        r.stdout
    );
}

#[test]
fn leftovers_are_notes_not_problems() {
    let dir = fresh();
    std::fs::write(dir.path().join("CURRENT.tmp"), "MANIFEST-0000").unwrap();
    std::fs::write(dir.path().join("README"), "not kho's").unwrap();
    let r = kho_ok(0, ["verify", dir.path().to_str().unwrap()]);
    assert!(r.stderr.contains("note: CURRENT.tmp is a temporary file"), "{}", r.stderr);
    let j = kho_ok(0, ["verify", dir.path().to_str().unwrap(), "--json"]).json();
    assert_eq!(j["ok"], true);
    assert!(!j["notes"].as_array().unwrap().is_empty());
}

#[test]
fn verify_beside_a_running_writer_finds_nothing_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 32 << 10,
        level0_compaction_trigger: 2,
        level_base_bytes: 128 << 10,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    for i in 0..2000u32 {
        db.put(format!("k{i:06}"), format!("first {i}")).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                db.put(format!("k{:06}", i % 5000), format!("value {i} {}", "x".repeat(40))).unwrap();
                if i.is_multiple_of(7) {
                    db.delete(format!("k{:06}", (i * 13) % 5000)).unwrap();
                }
                i += 1;
            }
            i
        })
    };
    let d = dir.path().to_str().unwrap();
    for _ in 0..3 {
        let r = kho(["verify", d]);
        assert_eq!(r.code, 0, "verify beside a writer:\n{}\n{}", r.stdout, r.stderr);
        let r = kho(["dump", "summary", d]);
        assert_eq!(r.code, 0, "summary beside a writer:\n{}", r.stderr);
        let r = kho(["scan", d, "--limit", "100"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 100, "the writer kept writing ({writes} writes)");
    assert!(db.stats().levels.iter().skip(1).any(|l| l.files > 0), "compactions ran meanwhile");
    db.close().unwrap();
    kho_ok(0, ["verify", d]);
}

/// A log that vanished while a later one survived: the later log's sequence numbers do not
/// continue the manifest's. `Db::open` refuses it; `kho verify` names the gap.
#[test]
fn a_missing_log_is_a_sequence_gap() {
    let before = tempfile::tempdir().unwrap();
    let after = tempfile::tempdir().unwrap();
    let db = Db::open(before.path(), Options::default()).unwrap();
    db.put("a", "1").unwrap();
    db.close().unwrap();
    for f in std::fs::read_dir(before.path()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), after.path().join(f.file_name())).unwrap();
    }
    let db = Db::open(after.path(), Options::default()).unwrap(); // "a" goes to a table
    db.put("b", "2").unwrap();
    db.close().unwrap();
    // The first directory, its log of "a" replaced by the second run's log of "b".
    std::fs::remove_file(newest_log(before.path())).unwrap();
    let later = newest_log(after.path());
    std::fs::copy(&later, before.path().join(later.file_name().unwrap())).unwrap();

    let d = before.path().to_str().unwrap();
    let r = kho_ok(1, ["verify", d]);
    assert!(r.stdout.contains("leaves a gap: writes are missing"), "{}", r.stdout);
    assert!(Db::open(before.path(), Options::default()).unwrap_err().is_corruption());
}

/// `kho checkpoint DIR OUT` prints the sequence number; the copy verifies clean and holds the
/// same data.
#[test]
fn checkpoint_makes_a_copy_that_verifies_clean() {
    let dir = fresh();
    let out = tempfile::tempdir().unwrap();
    let cp = out.path().join("cp");
    let (d, c) = (dir.path().to_str().unwrap(), cp.to_str().unwrap());
    let r = kho_ok(0, ["checkpoint", d, c]);
    assert!(r.stdout.contains("at sequence "), "{}", r.stdout);
    let j = kho_ok(0, ["--json", "verify", c]).json();
    assert_eq!(j["ok"], true, "{j}");
    let source = kho_ok(0, ["scan", d]).stdout;
    assert_eq!(kho_ok(0, ["scan", c]).stdout, source);
    // Into a non-empty directory: refused, exit 2.
    kho_ok(2, ["checkpoint", d, c]);
}
