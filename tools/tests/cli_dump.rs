//! `kho dump summary|wal|sst|manifest|file` on a store built in the test: the output holds
//! the expected keys and counts, and `--json` parses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kho::Db;

fn live_tables(dir: &std::path::Path) -> Vec<(usize, kho::inspect::version::FileMeta)> {
    let db = Db::open_read_only(dir, kho::Options::default()).unwrap();
    db.live_files()
}

const TOTAL_ENTRIES: usize = CITIZENS + 1 + DELETED; // puts, the binary key, tombstones

#[test]
fn summary_shows_levels_tables_logs_and_totals() {
    let dir = fresh();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["dump", "summary", d]);
    let l1 = live_tables(dir.path()).iter().filter(|(level, _)| *level == 1).count();
    assert!(l1 >= 1);
    let l1_line = format!("L1: {l1} table");
    for want in ["CURRENT -> MANIFEST-", "L0: 1 table,", l1_line.as_str(), "\"citizen:00000\" @", "compression ratio"] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    assert!(r.stdout.contains(&format!("{TOTAL_ENTRIES} entries ({DELETED} deletions)")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("{PENDING} records, {PENDING} operations")), "{}", r.stdout);

    let j = kho_ok(0, ["dump", "summary", d, "--json"]).json();
    assert_eq!(j["totals"]["entries"], TOTAL_ENTRIES);
    assert_eq!(j["totals"]["deletions"], DELETED);
    assert_eq!(j["totals"]["tables"], live_tables(dir.path()).len());
    assert_eq!(j["tables"].as_array().unwrap().len(), live_tables(dir.path()).len());
    assert_eq!(j["logs"][0]["records"], PENDING);
    assert_eq!(j["last_sequence"], j["flushed_sequence"].as_u64().unwrap() + PENDING as u64);
    assert!(j["totals"]["compression_ratio"].as_f64().unwrap() > 1.0);
}

#[test]
fn dump_wal_shows_every_record_and_operation() {
    let dir = fresh();
    let log = newest_log(dir.path());
    let l = log.to_str().unwrap();
    let r = kho_ok(0, ["dump", "wal", l]);
    for i in 0..PENDING {
        assert!(r.stdout.contains(&format!("\"pending:{i}\" => \"in the log {i}\"")), "{}", r.stdout);
    }
    assert!(r.stdout.contains(&format!("{PENDING} records, {PENDING} operations ({PENDING} puts, 0 deletes)")));
    assert!(r.stdout.contains("ends clean"));
    assert!(r.stdout.starts_with(&format!("{l}: ")));
    assert!(r.stdout.contains("offset 0: seq "));

    let j = kho_ok(0, ["dump", "wal", l, "--json"]).json();
    let events = j["events"].as_array().unwrap();
    assert_eq!(events.len(), PENDING);
    assert_eq!(events[3]["type"], "record");
    assert_eq!(events[3]["ops"][0]["key"], "pending:3");
    assert_eq!(events[3]["ops"][0]["op"], "put");
    assert_eq!(events[3]["ops"][0]["seq"], events[3]["seq"]);
    assert_eq!(j["tail"]["state"], "clean");
    assert_eq!(j["totals"]["operations"], PENDING);

    let j = kho_ok(0, ["dump", "wal", l, "--json", "--hex"]).json();
    assert_eq!(j["events"][0]["ops"][0]["key"], "70656e64696e673a30"); // "pending:0"
}

#[test]
fn dump_sst_shows_footer_properties_filter_blocks_index_entries_and_check() {
    let dir = fresh();
    let (_, meta) = live_tables(dir.path())
        .into_iter()
        .find(|(level, m)| {
            *level == 1 && m.smallest[..] <= b"citizen:00000"[..] && m.largest[..] >= b"citizen:00105"[..]
        })
        .unwrap_or_else(|| panic!("no L1 table holds citizens 0..=105: {:?}", live_tables(dir.path())));
    // How many keys the table holds depends on flush and output-cutting sizes.
    let n = meta.entries;
    let sst = dir.path().join(format!("{:06}.sst", meta.number));
    let s = sst.to_str().unwrap();
    let r = kho_ok(0, ["dump", "sst", s]);
    for want in [
        "footer at ",
        "format version 2",
        format!("entries            {n} (0 deletions)").as_str(),
        "compression        zstd level 3",
        "filter: ",
        "6 probes",
        "blocks:",
        "index: ",
        "check: ok",
        format!("({n} shown of {n})").as_str(),
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    // Settled values at the bottommost level carry sequence 0; the key and value must show.
    let line = r.stdout.lines().find(|l| l.contains("\"citizen:00042\" @ ")).unwrap_or_default();
    assert!(line.ends_with(&format!("put => \"{}\"", value(42))), "{}", r.stdout);

    let r = kho_ok(0, ["dump", "sst", s, "--from", "citizen:00100", "--to", "citizen:00105"]);
    assert!(r.stdout.contains(&format!("(5 shown of {n})")), "{}", r.stdout);
    assert!(r.stdout.contains("\"citizen:00104\"") && !r.stdout.contains("\"citizen:00105\" @"));

    let j = kho_ok(0, ["dump", "sst", s, "--from", "citizen:00000", "--limit", "7", "--json"]).json();
    assert_eq!(j["properties"]["entries"], n);
    assert_eq!(j["entries"].as_array().unwrap().len(), 7);
    assert_eq!(j["entries"][0]["user_key"], "citizen:00000");
    assert_eq!(j["entries"][0]["value"], value(0));
    assert_eq!(j["check"]["ok"], true);
    let blocks = j["blocks"].as_array().unwrap();
    let data_blocks = blocks.iter().filter(|b| b["kind"] == "data").count();
    assert_eq!(data_blocks as u64, j["properties"]["data_blocks"].as_u64().unwrap());
    assert_eq!(j["index"].as_array().unwrap().len(), data_blocks);
    assert!(blocks.iter().any(|b| b["kind"] == "filter") && j["filter"]["probes"] == 6);
    assert!(blocks.iter().all(|b| b["transform"] == "zstd" || b["transform"] == "raw"));
}

#[test]
fn dump_manifest_shows_each_edit_and_the_state() {
    let dir = fresh();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["dump", "manifest", d]);
    for want in
        ["CURRENT -> MANIFEST-", "edit 0 at offset 0", "add L0 table", "add L1 table", "delete L0 table", "state: "]
    {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    let j = kho_ok(0, ["dump", "manifest", d, "--json"]).json();
    let live = live_tables(dir.path());
    let files = j["state"]["files"].as_array().unwrap();
    assert_eq!(files.len(), live.len());
    for (level, meta) in &live {
        assert!(files.iter().any(|f| f["number"] == meta.number && f["level"] == *level && f["size"] == meta.size));
    }
    assert!(j["edits"].as_array().unwrap().len() >= 5);
    assert_eq!(j["problems"], serde_json::json!([]));
    // The manifest file itself, by path.
    let manifest = files_of(dir.path(), "MANIFEST-");
    let j2 = kho_ok(0, ["dump", "manifest", manifest.to_str().unwrap(), "--json"]).json();
    assert_eq!(j2["edits"], j["edits"]);
}

fn files_of(dir: &std::path::Path, prefix: &str) -> std::path::PathBuf {
    files(dir, prefix).pop().unwrap()
}

#[test]
fn dump_file_detects_the_kind_from_the_name() {
    let dir = fresh();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let manifest = files_of(dir.path(), "MANIFEST-");
    let r = kho_ok(0, ["dump", "file", &p("CURRENT")]);
    assert!(r.stdout.contains(&format!("names {}", manifest.file_name().unwrap().to_str().unwrap())));
    assert!(kho_ok(0, ["dump", "file", newest_log(dir.path()).to_str().unwrap()]).stdout.contains("records"));
    let sst = files(dir.path(), ".sst").pop().unwrap();
    assert!(kho_ok(0, ["dump", "file", sst.to_str().unwrap()]).stdout.contains("footer at"));
    assert!(kho_ok(0, ["dump", "file", manifest.to_str().unwrap()]).stdout.contains("edit 0"));
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let r = kho_ok(2, ["dump", "file", &p("notes.txt")]);
    assert!(r.stderr.contains("cannot tell the kind"));
}

#[test]
fn every_subcommand_runs_and_its_json_parses() {
    let dir = fresh();
    run_everything(dir.path());
}
