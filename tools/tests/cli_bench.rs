//! `kho bench` speaks db_bench: every benchmark name is accepted, every result line has the
//! shape `../shared/bench/compare.sh` parses (a standalone `ops/sec` field preceded by the
//! rate), and the extra figures follow.

use assert_cmd::Command;

#[test]
fn every_benchmark_prints_a_db_bench_line() {
    let dir = tempfile::tempdir().unwrap();
    let names = "fillseq,fillrandom,overwrite,fillsync,readrandom,seekrandom,readseq,readreverse,readwhilewriting,deleterandom,compact,stats";
    let out = Command::cargo_bin("kho")
        .unwrap()
        .args([
            "bench",
            &format!("--db={}", dir.path().join("db").display()),
            &format!("--benchmarks={names}"),
            "--num=3000",
            "--reads=500",
            "--key_size=16",
            "--value_size=100",
            "--threads=2",
            "--compression_ratio=0.5",
            "--seek_nexts=10",
            "--histogram=1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for name in names.split(',').filter(|n| !matches!(*n, "compact" | "stats")) {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name) && l.contains("ops/sec"))
            .unwrap_or_else(|| panic!("no result line for {name} in:\n{stdout}"));
        // compare.sh: the field before the standalone `ops/sec` field is the rate.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == "ops/sec").unwrap_or_else(|| panic!("{line}"));
        let rate: f64 = fields[at - 1].parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(rate > 0.0, "{line}");
        assert_eq!(fields[1], ":", "{line}");
    }
    assert!(stdout.contains("latency us: p50"), "{stdout}");
    assert!(stdout.contains("write-amp"), "{stdout}");
    assert!(stdout.contains("** Compaction Stats **"), "{stdout}");
    assert!(stdout.contains("of 1000 found"), "two threads, 500 reads each: {stdout}");
}

/// The record workloads: `ingest` files records through `Store` batches, `personlookup`
/// finds them again (nearly every lookup hits a person with records).
#[test]
fn record_workloads_ingest_and_find_persons() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("kho")
        .unwrap()
        .args([
            "bench",
            &format!("--db={}", dir.path().join("db").display()),
            "--benchmarks=ingest,personlookup",
            "--num=4000",
            "--reads=400",
            "--records_per_batch=300",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name) && l.contains("ops/sec"))
            .unwrap_or_else(|| panic!("no result line for {name} in:\n{stdout}"))
            .to_string()
    };
    assert!(line("ingest").contains(" 4000 operations"), "{stdout}");
    let lookup = line("personlookup");
    let found: u64 = lookup
        .split('(')
        .nth(1)
        .and_then(|f| f.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{lookup}"));
    assert!(found >= 390 && lookup.contains("of 400 found"), "{lookup}");
    // What ingest wrote is a consistent record store.
    let verify =
        Command::cargo_bin("kho").unwrap().args(["verify", dir.path().join("db").to_str().unwrap()]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// `import` bulk-loads the same population with `Store::import`: a db_bench line, the
/// import-only rate, a store `kho verify` accepts, and persons `personlookup` finds.
#[test]
fn import_bulk_loads_the_population() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("kho")
        .unwrap()
        .args([
            "bench",
            &format!("--db={}", dir.path().join("db").display()),
            "--benchmarks=import,personlookup",
            "--num=4000",
            "--reads=400",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let import = stdout
        .lines()
        .find(|l| l.starts_with("import ") && l.contains("ops/sec"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(import.contains(" 4000 operations"), "{stdout}");
    assert!(stdout.contains("generated 4000 records in") && stdout.contains("records/s;"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("import")).count(), 1, "one line for compare.sh: {stdout}");
    let lookup = stdout.lines().find(|l| l.starts_with("personlookup")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(lookup.contains("of 400 found") && !lookup.contains("(0 of"), "{lookup}");
    let verify =
        Command::cargo_bin("kho").unwrap().args(["verify", dir.path().join("db").to_str().unwrap()]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// `--encrypt=both`: each benchmark plaintext, then encrypted (`NAME+enc`), and the ratio;
/// the encrypted database opens only with the key file given, which was created.
#[test]
fn encrypt_both_runs_each_benchmark_plain_then_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bench.key");
    let db = dir.path().join("db");
    let out = Command::cargo_bin("kho")
        .unwrap()
        .args([
            "bench",
            &format!("--db={}", db.display()),
            "--benchmarks=fillrandom,readrandom,stats",
            "--num=2000",
            "--encrypt=both",
            "--key-file",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for name in ["fillrandom", "fillrandom+enc", "readrandom", "readrandom+enc"] {
        assert!(
            stdout.lines().any(|l| l.split_whitespace().next() == Some(name) && l.contains("ops/sec")),
            "no result line for {name} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("readrandom   : encrypted/plaintext "), "{stdout}");
    assert!(stdout.contains("encrypted vs plaintext (ops/sec ratio):"), "{stdout}");
    assert!(
        key.exists() && db.join("encrypted").join("KEYRING").exists() && !db.join("plain").join("KEYRING").exists()
    );
    let verify = |key: Option<&std::path::Path>| {
        let mut c = Command::cargo_bin("kho").unwrap();
        if let Some(k) = key {
            c.args(["--key-file", k.to_str().unwrap()]);
        }
        c.args(["verify", db.join("encrypted").to_str().unwrap()]).output().unwrap().status.code()
    };
    assert_eq!(verify(Some(&key)), Some(0));
    assert_eq!(verify(None), Some(2));
}

#[test]
fn unknown_benchmark_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("kho")
        .unwrap()
        .args(["bench", &format!("--db={}", dir.path().join("db").display()), "--benchmarks=nosuch", "--num=10"])
        .assert()
        .failure();
}
