//! `kho dump summary|wal|sst|manifest|file` on a store built in the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn smoke() {
    let dir = fresh();
    let d = dir.path().to_str().unwrap();
    let r = kho_ok(0, ["dump", "summary", d]);
    println!("{}", r.stdout);
    let r = kho_ok(0, ["verify", d]);
    println!("{}{}", r.stdout, r.stderr);
    let r = kho_ok(0, ["dump", "manifest", d]);
    println!("{}", r.stdout);
    let r = kho_ok(0, ["dump", "wal", newest_log(dir.path()).to_str().unwrap()]);
    println!("{}", r.stdout);
    let sst = files(dir.path(), ".sst").pop().unwrap();
    let r = kho_ok(0, ["dump", "sst", sst.to_str().unwrap(), "--limit", "5"]);
    println!("{}", r.stdout);
    panic!("show");
}
