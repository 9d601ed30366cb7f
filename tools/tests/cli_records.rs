//! `kho person`, `kho record` and the national-ID index check of `kho verify`, on a record
//! store built in the test through `kho::record`; index damage is made by writing raw keys
//! (layout: `docs/record-model.md`, `src/record/keys.rs`) through `Db`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use kho::{Db, Options, WriteBatch, WriteOptions};

/// The collection id the catalog gave `name` (`C | name -> u32 BE`).
fn cid(db: &Db, name: &str) -> u32 {
    let v = db.get(format!("C{name}")).unwrap().expect("a catalog entry");
    u32::from_be_bytes(v.as_ref().try_into().unwrap())
}

/// `I | id | cid (u32 BE) | pk`.
fn index_key(id: &str, cid: u32, pk: &[u8]) -> Vec<u8> {
    let mut k = vec![b'I'];
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(&cid.to_be_bytes());
    k.extend_from_slice(pk);
    k
}

/// Applies `f` to the database in `dir` through a writable open, then closes it.
fn with_db(dir: &Path, f: impl FnOnce(&Db, &mut WriteBatch)) {
    let db = Db::open(dir, Options::default()).unwrap();
    let mut b = WriteBatch::new();
    f(&db, &mut b);
    db.write(b, &WriteOptions::synced()).unwrap();
    db.close().unwrap();
}

#[test]
fn person_shows_every_record_of_a_person_across_collections() {
    let dir = fresh_store();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["person", d, PERSON_A]);
    assert!(r.stdout.starts_with(&format!("person {PERSON_A}: 3 records in 3 collections\n")), "{}", r.stdout);
    for want in [
        "collection   tax\npk           \"8012345678\"\nnational id  079190001234\npayload      {\n",
        "\"bracket\": 3",
        "\"name\": \"Nguyen Thi An\"",
        "collection   vehicle\npk           \"59-X1 123.45\"",
        "\"make\": \"Honda Wave\"",
        "collection   residence\npk           \"HCM-0001\"", // only in the log: unflushed data is seen
        "\"address\": \"12 Le Loi, Quan 1\"",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    assert!(!r.stdout.contains(PERSON_B), "only that person's records:\n{}", r.stdout);

    let j = kho_ok(0, ["person", d, PERSON_A, "--json"]).json();
    assert_eq!(j["national_id"], PERSON_A);
    assert_eq!(j["count"], 3);
    let records = j["records"].as_array().unwrap();
    let collections: BTreeSet<&str> = records.iter().map(|r| r["collection"].as_str().unwrap()).collect();
    assert_eq!(collections, BTreeSet::from(["tax", "vehicle", "residence"]));
    assert!(records.iter().all(|r| r["national_id"] == PERSON_A));
    let tax = records.iter().find(|r| r["collection"] == "tax").unwrap();
    assert_eq!(tax["pk"], "8012345678");
    assert_eq!(tax["payload"], serde_json::json!({"name": "Nguyen Thi An", "bracket": 3}));

    // A binary primary key is escaped, or hex with --hex.
    let r = kho_ok(0, ["person", d, PERSON_B]);
    assert!(r.stdout.contains("pk           \"\\x00\\xffpk\""), "{}", r.stdout);
    let j = kho_ok(0, ["--hex", "person", d, PERSON_B, "--json"]).json();
    assert!(j["records"].as_array().unwrap().iter().any(|r| r["pk"] == "00ff706b"), "{j}");
}

#[test]
fn person_without_records_or_with_a_bad_id() {
    let dir = fresh_store();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(1, ["person", d, "001190999999"]);
    assert!(r.stdout.is_empty() && r.stderr.contains("no records of 001190999999"), "{r:?}");
    let j = kho_ok(1, ["person", d, "001190999999", "--json"]).json();
    assert_eq!((j["count"].as_u64(), j["records"].as_array().map(Vec::len)), (Some(0), Some(0)));
    // Not 12 digits: cannot run.
    for bad in ["07919000123", "07919000123x", ""] {
        let r = kho_ok(2, ["person", d, bad]);
        assert!(r.stderr.contains("invalid national ID"), "{r:?}");
    }
    // A province code the default rules do not know is looked up anyway, with a note.
    let r = kho_ok(1, ["person", d, "999190000001"]);
    assert!(r.stderr.contains("note: 999190000001: province code 999"), "{}", r.stderr);
}

#[test]
fn record_prints_one_record_and_exits_1_when_absent() {
    let dir = fresh_store();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["record", d, "vehicle", "59-X1 123.45"]);
    assert!(
        r.stdout.starts_with("collection   vehicle\npk           \"59-X1 123.45\"\nnational id  079190001234\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"year\": 2019"), "{}", r.stdout);
    let j = kho_ok(0, ["record", d, "tax", "8099999999", "--json"]).json();
    assert_eq!(j["found"], true);
    assert_eq!(j["record"]["national_id"], PERSON_B);
    assert_eq!(j["record"]["payload"]["name"], "Tran Van Binh");
    // From tables and from the log alike; binary keys escaped or in hex.
    kho_ok(0, ["record", d, "residence", "HCM-0001"]);
    kho_ok(0, ["record", d, "health_insurance", "HI-00123"]);
    let r = kho_ok(0, ["record", d, "vehicle", "\\x00\\xffpk"]);
    assert!(r.stdout.contains("VinFast"), "{}", r.stdout);
    let j = kho_ok(0, ["--hex", "record", d, "vehicle", "00ff706b", "--json"]).json();
    assert_eq!(j["record"]["payload"]["make"], "VinFast");

    let r = kho_ok(1, ["record", d, "tax", "0000000000"]);
    assert!(r.stdout.is_empty() && r.stderr.contains("not found"), "{r:?}");
    let r = kho_ok(1, ["record", d, "no_such_collection", "8012345678"]);
    assert!(r.stderr.contains("no collection \"no_such_collection\""), "{r:?}");
    let j = kho_ok(1, ["record", d, "tax", "0000000000", "--json"]).json();
    assert_eq!((j["found"].as_bool(), j["record"].is_null()), (Some(false), true));
    kho_ok(2, ["record", d, "tax", "bad\\x4"]);
}

#[test]
fn person_and_record_need_a_record_store() {
    let dir = fresh(); // plain key-value data
    let d = dir.path().to_str().unwrap();
    for args in [vec!["person", d, PERSON_A], vec!["record", d, "tax", "1"]] {
        let r = kho_ok(2, &args);
        assert!(r.stderr.contains("holds no record store"), "{r:?}");
    }
    kho_ok(2, ["person", dir.path().join("absent").to_str().unwrap(), PERSON_A]);
}

#[test]
fn the_tools_write_nothing_to_a_record_store() {
    let dir = fresh_store();
    let listing = || {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
            .collect();
        v.sort();
        v
    };
    let before = listing();
    let d = dir.path().to_str().unwrap();
    kho_ok(0, ["person", d, PERSON_A]);
    kho_ok(0, ["record", d, "tax", "8012345678"]);
    kho_ok(0, ["verify", d]);
    assert_eq!(listing(), before);
}

#[test]
fn a_clean_store_verifies_clean() {
    let dir = fresh_store();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["verify", d]);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("{d}: ok; "))
            && r.stderr.contains(&format!("national-ID index: {RECORDS} entries against {RECORDS} records")),
        "{}",
        r.stderr
    );
    let j = kho_ok(0, ["verify", d, "--json"]).json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["problems"], serde_json::json!([]));
    assert_eq!(j["index"]["checked"], true);
    assert_eq!(j["index"]["records"], RECORDS);
    assert_eq!(j["index"]["index_entries"], RECORDS);
    assert_eq!((j["index"]["missing"].as_u64(), j["index"]["dangling"].as_u64()), (Some(0), Some(0)));

    // Plain key-value data is not a record store: a note, not a problem.
    let plain = fresh();
    let r = kho_ok(0, ["verify", plain.path().to_str().unwrap()]);
    assert!(r.stderr.contains("note: no record store"), "{}", r.stderr);
    let j = kho_ok(0, ["verify", plain.path().to_str().unwrap(), "--json"]).json();
    assert_eq!(j["index"]["checked"], false);
}

#[test]
fn verify_reports_dangling_and_missing_index_entries() {
    let dir = fresh_store();
    let stranger = "001190888888";
    with_db(dir.path(), |db, b| {
        let (tax, vehicle) = (cid(db, "tax"), cid(db, "vehicle"));
        b.delete(index_key(PERSON_A, tax, b"8012345678")); // missing (the record is in a table)
        b.put(index_key(stranger, vehicle, b"ghost"), b""); // dangling: no record
        b.put(index_key(stranger, tax, b"8099999999"), b""); // dangling: PERSON_B's record
    });
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(1, ["verify", d]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "index - missing entry I|079190001234|tax|8012345678: record R|tax|8012345678 has no index entry",
            "index - dangling entry I|001190888888|tax|8099999999: the record belongs to 001200000042",
            "index - dangling entry I|001190888888|vehicle|ghost: no record",
        ],
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("3 problems;"), "{}", r.stderr);

    let j = kho_ok(1, ["verify", d, "--json"]).json();
    assert_eq!(j["ok"], false);
    let problems = j["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3);
    assert!(problems.iter().all(|p| p["file"] == "index" && p["offset"].is_null()), "{j}");
    assert_eq!(problems[2]["what"], "dangling entry I|001190888888|vehicle|ghost: no record");
    assert_eq!((j["index"]["missing"].as_u64(), j["index"]["dangling"].as_u64()), (Some(1), Some(2)));
    assert_eq!(j["index"]["records"], RECORDS);
    assert_eq!(j["index"]["index_entries"], RECORDS + 1);

    // person trusts the records: the stranger has none, PERSON_A's tax record is unreachable.
    kho_ok(1, ["person", d, stranger]);
    let j = kho_ok(0, ["person", d, PERSON_A, "--json"]).json();
    assert_eq!(j["count"], 2);
}

#[test]
fn verify_reports_malformed_record_layer_keys() {
    let dir = fresh_store();
    with_db(dir.path(), |db, b| {
        let tax = cid(db, "tax");
        let mut k = vec![b'R'];
        k.extend_from_slice(&tax.to_be_bytes());
        k.extend_from_slice(b"bad");
        b.put(k, b"\x07junk"); // an undecodable record value
        b.put(b"Ishort", b""); // an index key of the wrong shape
    });
    let r = kho_ok(1, ["verify", dir.path().to_str().unwrap()]);
    assert!(r.stdout.lines().any(|l| l == "index - malformed key \"Ishort\": malformed index key"), "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("index - malformed key \"R\\x00\\x00\\x00\\x02bad\": unknown record format 7")),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

#[test]
fn a_damaged_record_store_never_panics_the_tools() {
    let dir = fresh_store();
    let table = files(dir.path(), ".sst").into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let mut data = std::fs::read(&table).unwrap();
    data[100] ^= 0x5a;
    std::fs::write(&table, data).unwrap();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(1, ["verify", d]);
    assert!(r.stdout.lines().any(|l| l.starts_with(&table.display().to_string())), "{}", r.stdout);
    for fixture_id in [PERSON_A, PERSON_B, &filler_id(7)] {
        kho(["person", d, fixture_id]);
        kho(["person", d, fixture_id, "--json"]);
    }
    kho(["record", d, "health_insurance", "HI-00007"]);
    run_everything(dir.path());
}
