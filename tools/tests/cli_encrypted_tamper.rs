//! `kho verify --key-file` authenticates every sealed block and record: a flipped byte in a
//! sealed table block is reported as `file offset what` (exit 1) — as media damage when the
//! block's CRC no longer matches, as tampering ("does not authenticate") when the CRC was
//! made right again — and so is a sealed log record altered with both its CRCs fixed.
//! Without the key the damaged database is still refused (exit 2), never misread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// The `verify` line for `file` at `offset`, if any.
fn line_at<'a>(stdout: &'a str, file: &str, offset: u64) -> Option<&'a str> {
    stdout.lines().find(|l| l.starts_with(&format!("{file} {offset} ")))
}

#[test]
fn a_changed_sealed_block_or_record_is_named_by_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, key) = (tmp.path().join("db"), new_key_file(&tmp.path().join("k")));
    build_encrypted(&db, &key);
    let (d, k) = (s(&db), s(&key));
    kho_ok(0, ["--key-file", &k, "verify", &d]);

    // A table's third data block, from the dump's layout.
    let table = files(&db, ".sst").remove(0);
    let t = s(&table);
    let dump = kho_ok(0, ["--key-file", &k, "--json", "dump", "sst", &t, "--limit", "0"]).json();
    let block = dump["blocks"].as_array().unwrap().iter().filter(|b| b["kind"] == "data").nth(2).unwrap().clone();
    assert!(block["transform"].as_str().unwrap().ends_with("+aes-256-gcm"), "{block}");
    let (at, stored) = (block["offset"].as_u64().unwrap(), block["stored_size"].as_u64().unwrap());
    let payload = at as usize..(at + stored - 5) as usize; // then transform: u8 | crc32 LE
    let good = std::fs::read(&table).unwrap();
    let mut bad = good.clone();
    bad[payload.start + payload.len() / 2] ^= 0x04;

    // Media damage: the CRC catches it.
    std::fs::write(&table, &bad).unwrap();
    let r = kho_ok(1, ["--key-file", &k, "verify", &d]);
    let line = line_at(&r.stdout, &t, at).unwrap_or_else(|| panic!("no line for {t} {at}:\n{}", r.stdout));
    assert!(line.contains("checksum"), "{line}");

    // Tampering: the CRC made right again, the tag catches it.
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bad[payload.clone()]);
    crc.update(&bad[payload.end..payload.end + 1]);
    bad[payload.end + 1..payload.end + 5].copy_from_slice(&crc.finalize().to_le_bytes());
    std::fs::write(&table, &bad).unwrap();
    let r = kho_ok(1, ["--key-file", &k, "verify", &d]);
    let line = line_at(&r.stdout, &t, at).unwrap_or_else(|| panic!("no line for {t} {at}:\n{}", r.stdout));
    assert!(line.contains("does not authenticate"), "{line}");
    let r = kho_ok(1, ["--key-file", &k, "dump", "sst", &t, "--limit", "0"]);
    assert!(r.stdout.contains(&format!("check: FAILED: {t} {at} ")), "{}", r.stdout);
    // Without the key: refused, not misread.
    let r = kho_ok(2, ["verify", &d]);
    assert_eq!(r.stderr.trim_end(), "kho: error: database is encrypted: --key-file needed");
    std::fs::write(&table, &good).unwrap();
    kho_ok(0, ["--key-file", &k, "verify", &d]);

    // A sealed log record changed, with its payload and header CRCs fixed.
    let log = newest_log(&db);
    let l = s(&log);
    let wal = kho_ok(0, ["--key-file", &k, "--json", "dump", "wal", &l]).json();
    let records: Vec<&serde_json::Value> =
        wal["events"].as_array().unwrap().iter().filter(|e| e["type"] == "record").collect();
    assert!(records.len() >= 3, "{wal}");
    assert_eq!(wal["encryption"]["scheme"], "AES-256-GCM");
    let at = records[1]["offset"].as_u64().unwrap() as usize;
    let good = std::fs::read(&log).unwrap();
    let mut bad = good.clone();
    // The frame: len u32 | transform u8 | payload crc | header crc, then the sealed payload
    // (the batch the dump decoded, and a 16-byte tag).
    let len = u32::from_le_bytes(bad[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(len, records[1]["len"].as_u64().unwrap() as usize + 16);
    let body = at + 13..at + 13 + len;
    bad[body.start + len / 2] ^= 0x10;
    let payload_crc = crc32fast::hash(&bad[body.clone()]).to_le_bytes();
    bad[at + 5..at + 9].copy_from_slice(&payload_crc);
    let header_crc = crc32fast::hash(&bad[at..at + 9]).to_le_bytes();
    bad[at + 9..at + 13].copy_from_slice(&header_crc);
    std::fs::write(&log, &bad).unwrap();
    let r = kho_ok(1, ["--key-file", &k, "verify", "--tolerate-torn-tail", &d]);
    let line = line_at(&r.stdout, &l, at as u64).unwrap_or_else(|| panic!("no line for {l} {at}:\n{}", r.stdout));
    assert!(line.contains("does not authenticate"), "{line}");
    let r = kho_ok(1, ["--key-file", &k, "dump", "wal", &l]);
    assert!(r.stdout.contains(&format!("offset {at}: DAMAGED: ")), "{}", r.stdout);
    std::fs::write(&log, &good).unwrap();
    kho_ok(0, ["--key-file", &k, "verify", &d]);

    // A plaintext log where the registry requires encryption (the same writes, from a
    // plaintext build): refused even though every record is intact.
    let plain = tmp.path().join("plain");
    build(&plain);
    std::fs::copy(newest_log(&plain), &log).unwrap();
    let r = kho_ok(1, ["--key-file", &k, "verify", &d]);
    let line = line_at(&r.stdout, &l, 0).unwrap_or_else(|| panic!("no line for {l} 0:\n{}", r.stdout));
    assert!(line.contains("plaintext log where the database requires every file to be encrypted"), "{line}");
    std::fs::write(&log, &good).unwrap();

    // Every command on every file, with the key and without: no panic, and every run that
    // completed printed one JSON document with --json.
    run_everything_with(&db, &["--key-file", &k]);
    run_everything(&db);
}
