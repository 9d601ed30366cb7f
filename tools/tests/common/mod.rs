//! Shared helpers of the CLI tests: a small store built through the `kho` library, and a
//! runner that fails the test if the tool panicked.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use kho::{Db, Options, WriteBatch, WriteOptions};

/// Keys `citizen:00000` .. written by [`build`], and how many.
pub const CITIZENS: usize = 600;
/// Keys deleted by [`build`] (every 50th citizen).
pub const DELETED: usize = CITIZENS / 50;
/// Unflushed keys `pending:0` .. `pending:9`, only in the live log.
pub const PENDING: usize = 10;
/// A key with bytes that need escaping.
pub const BINARY_KEY: &[u8] = b"bin\x00\xff\"q\\";

fn options() -> Options {
    Options {
        write_buffer_size: 16 << 10,
        level0_compaction_trigger: 2,
        block_size: 512,
        level_base_bytes: 64 << 10,
        ..Options::default()
    }
}

/// The value stored at `citizen:NNNNN`.
pub fn value(i: usize) -> String {
    format!("province={:03};name=Nguyen Van {i}", i % 63 + 1)
}

/// Builds a database in `dir`: citizens written in batches and flushed, a compaction so
/// levels >= 1 hold tables, deletions, a binary key, then `PENDING` unflushed writes left in
/// the live log. Closed cleanly.
pub fn build(dir: &Path) {
    build_with(dir, options());
}

/// A new key file (mode 0600) at `path`.
pub fn new_key_file(path: &Path) -> PathBuf {
    kho::crypt::KeyFileProvider::create(path).unwrap();
    path.to_owned()
}

/// [`build`], encrypted at rest under the master key in the key file `key`.
pub fn build_encrypted(dir: &Path, key: &Path) {
    let encryption = Some(kho::crypt::Encryption::key_file(key).unwrap());
    build_with(dir, Options { encryption, ..options() });
}

fn build_with(dir: &Path, opts: Options) {
    let db = Db::open(dir, opts).unwrap();
    for chunk in (0..CITIZENS).collect::<Vec<_>>().chunks(50) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(format!("citizen:{i:05}"), value(i));
        }
        db.write(b, &WriteOptions::default()).unwrap();
    }
    db.put(BINARY_KEY, b"\x01\x02 value").unwrap();
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in (0..CITIZENS).step_by(50) {
        db.delete(format!("citizen:{i:05}")).unwrap();
    }
    db.flush().unwrap();
    for i in 0..PENDING {
        db.put(format!("pending:{i}"), format!("in the log {i}")).unwrap();
    }
    db.close().unwrap();
}

/// A fresh database in a temporary directory.
pub fn fresh() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    dir
}

/// The person [`build_store`] gives a record in each of `tax`, `vehicle` and `residence`
/// (the `residence` one only in the log).
pub const PERSON_A: &str = "079190001234";
/// A person with a `tax` record and a `vehicle` record whose primary key is binary.
pub const PERSON_B: &str = "001200000042";
/// The binary primary key of `PERSON_B`'s vehicle.
pub const BINARY_PK: &[u8] = b"\x00\xffpk";
/// Persons 0..FILLERS each get one `health_insurance` record (`HI-NNNNN`, IDs 001190NNNNNN).
pub const FILLERS: usize = 300;
/// Records in [`build_store`]'s store.
pub const RECORDS: u64 = 3 + 2 + FILLERS as u64;

/// The payload of a `tax` record.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Tax {
    pub name: String,
    pub bracket: u8,
}

/// The national ID of filler `i`.
pub fn filler_id(i: usize) -> String {
    format!("001190{i:06}")
}

/// Builds a record store in `dir` through `kho::record`: collections created in the order
/// `health_insurance` (id 1), `tax` (2), `vehicle` (3), `residence` (4); fillers flushed and
/// compacted into tables, `PERSON_A` and `PERSON_B` flushed except `PERSON_A`'s residence,
/// which stays in the log. Closed cleanly.
pub fn build_store(dir: &Path) {
    use kho::record::{NationalId, Store, StoreOptions};
    let store = Store::open(Db::open(dir, options()).unwrap(), StoreOptions::default()).unwrap();
    let id = |s: &str| NationalId::parse(s).unwrap();
    for chunk in (0..FILLERS).collect::<Vec<_>>().chunks(50) {
        let mut b = store.batch();
        for &i in chunk {
            b.upsert(
                "health_insurance",
                format!("HI-{i:05}"),
                &id(&filler_id(i)),
                &serde_json::json!({"card": format!("HC4{i:012}"), "hospital": i % 7}),
            )
            .unwrap();
        }
        b.commit().unwrap();
    }
    let (a, b) = (id(PERSON_A), id(PERSON_B));
    store.insert("tax", "8012345678", &a, &Tax { name: "Nguyen Thi An".into(), bracket: 3 }).unwrap();
    store.insert("tax", "8099999999", &b, &Tax { name: "Tran Van Binh".into(), bracket: 1 }).unwrap();
    store.insert("vehicle", "59-X1 123.45", &a, &serde_json::json!({"make": "Honda Wave", "year": 2019})).unwrap();
    store.insert("vehicle", BINARY_PK, &b, &serde_json::json!({"make": "VinFast", "year": 2023})).unwrap();
    store.db().flush().unwrap();
    store.db().compact_range::<&[u8], _>(..).unwrap();
    store
        .insert("residence", "HCM-0001", &a, &serde_json::json!({"address": "12 Le Loi, Quan 1", "since": 2015}))
        .unwrap();
    store.close().unwrap();
}

/// A fresh record store in a temporary directory.
pub fn fresh_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path());
    dir
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The files under `dir` holding `needle`, as (file, needle) pairs.
pub fn files_holding(dir: &Path, needles: &[Vec<u8>]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for f in all_files(dir) {
        let data = std::fs::read(&f).unwrap();
        for n in needles {
            if data.windows(n.len()).any(|w| w == &n[..]) {
                found.push((f.clone(), String::from_utf8_lossy(n).into_owned()));
            }
        }
    }
    found
}

/// Files of `dir` whose names end with `suffix` (or start with it, for `MANIFEST-`), sorted.
pub fn files(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(pattern) || name.starts_with(pattern)
        })
        .collect();
    v.sort();
    v
}

/// The one live log (the newest `.log`).
pub fn newest_log(dir: &Path) -> PathBuf {
    files(dir, ".log").pop().expect("a log")
}

/// What a run of the tool printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Parses stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `kho ARGS`, asserting it did not panic.
pub fn kho<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = assert_cmd::Command::cargo_bin("kho").unwrap().args(&args).output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        run.code != 101 && !run.stderr.contains("panicked"),
        "kho {args:?} panicked (exit {}):\n{}",
        run.code,
        run.stderr
    );
    assert!(run.code >= 0, "kho {args:?} was killed by a signal: {run:?}");
    run
}

/// Runs `kho ARGS` and asserts the exit code.
pub fn kho_ok<I, S>(code: i32, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let run = kho(&args);
    assert_eq!(run.code, code, "kho {args:?}:\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    run
}

/// Every subcommand of the tool on `dir`, each also with `--json`; asserts none panics and
/// that every `--json` run that completed (exit 0 or 1) printed one JSON document.
pub fn run_everything(dir: &Path) {
    run_everything_with(dir, &[]);
}

/// [`run_everything`] with `global` (e.g. `--key-file K`) before every command's arguments.
pub fn run_everything_with(dir: &Path, global: &[&str]) {
    let d = dir.to_str().unwrap().to_owned();
    let mut commands: Vec<Vec<String>> = vec![
        vec!["dump".into(), "summary".into(), d.clone()],
        vec!["dump".into(), "manifest".into(), d.clone()],
        vec!["verify".into(), d.clone()],
        vec!["verify".into(), "--tolerate-torn-tail".into(), d.clone()],
        vec!["get".into(), d.clone(), "citizen:00001".into()],
        vec!["scan".into(), d.clone(), "--limit".into(), "1000".into()],
        vec!["person".into(), d.clone(), PERSON_A.into()],
        vec!["record".into(), d.clone(), "tax".into(), "8012345678".into()],
        vec!["dump".into(), "keys".into(), d.clone()],
    ];
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path().to_str().unwrap().to_owned();
        commands.push(vec!["dump".into(), "file".into(), p.clone()]);
        if p.ends_with(".log") {
            commands.push(vec!["dump".into(), "wal".into(), p.clone()]);
        }
        if p.ends_with(".sst") {
            commands.push(vec!["dump".into(), "sst".into(), p.clone(), "--from".into(), "citizen:001".into()]);
        }
    }
    for args in commands {
        let args: Vec<String> = global.iter().map(|g| g.to_string()).chain(args).collect();
        kho(&args);
        let mut json = args.clone();
        json.push("--json".into());
        let r = kho(&json);
        if r.code == 0 || r.code == 1 {
            r.json();
        }
    }
}
