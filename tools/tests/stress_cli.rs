//! `kho stress` from the outside: a short smoke run of each mode passes, and the oracle can
//! fail — a lost acknowledged write or a value never issued makes the run exit with status 1
//! and a precise report.

use assert_cmd::cargo::cargo_bin_cmd;
use std::process::Output;

fn stress(dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut cmd = cargo_bin_cmd!("kho");
    cmd.arg("stress").arg("--dir").arg(dir).args(["--threads", "3", "--keys", "2000", "--progress", "2s"]).args(extra);
    cmd.output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn assert_passed(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "stress failed: {:?}\nstdout:\n{out}\nstderr:\n{err}", o.status);
    assert!(out.contains("kho stress: PASSED (0 violations)"), "{out}");
    out
}

fn assert_violation(o: &Output, what: &str) -> String {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "the run must fail\nstdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains(&format!("VIOLATION: {what}")), "expected `{what}` in the report:\n{err}");
    assert!(err.contains("history of the key"), "the report names the key's history:\n{err}");
    assert!(out.contains("FAILED (1 violation)"), "{out}");
    err
}

/// The number after `label` in the summary, e.g. `crash cycles:   7 (...)`.
fn figure(summary: &str, label: &str) -> u64 {
    let line = summary.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{summary}"));
    line[line.find(':').unwrap() + 1..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn plain_mode_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_passed(&stress(dir.path(), &["--duration", "5s", "--seed", "11"]));
    assert!(figure(&out, "operations") > 100, "{out}");
    assert!(out.contains("records checked after reopen") && out.contains("index verified"), "{out}");
}

#[test]
fn crash_mode_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_passed(&stress(
        dir.path(),
        &["--crash", "--duration", "8s", "--seed", "12", "--kill-interval", "100ms..700ms"],
    ));
    assert!(figure(&out, "crash cycles") >= 3, "{out}");
    assert!(out.contains("recoveries: min"), "{out}");
}

/// `--encrypt`: the database is encrypted at rest under a key file made in the run
/// directory, in the plain and the crash mode (whose children open it with the same key).
#[test]
fn encrypted_plain_and_crash_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_passed(&stress(dir.path(), &["--encrypt", "--duration", "2s", "--seed", "21"]));
    assert!(out.contains("AES-256-GCM at rest"), "the summary says so: {out}");
    let key = dir.path().join("stress.key");
    assert!(key.exists() && dir.path().join("db").join("KEYRING").exists());
    let out = assert_passed(&stress(
        dir.path(),
        &["--encrypt", "--crash", "--duration", "3s", "--seed", "22", "--kill-interval", "100ms..500ms"],
    ));
    assert!(figure(&out, "crash cycles") >= 2, "{out}");
    let verify = cargo_bin_cmd!("kho")
        .args(["--key-file", key.to_str().unwrap(), "verify", "--tolerate-torn-tail"])
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn faults_mode_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_passed(&stress(dir.path(), &["--faults", "--duration", "6s", "--seed", "13"]));
    assert!(figure(&out, "fault epochs") >= 3, "{out}");
    assert!(figure(&out, "errors (Err)") > 0, "injected faults surface as errors: {out}");
}

/// The oracle can fail in crash mode: the child acknowledges synced puts it never wrote;
/// with a write-only mix the child reads nothing, so the parent's check after the kill is what
/// must catch it.
#[test]
fn lost_write_fails_crash_mode() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--crash", "--inject-lost-write", "--ops-mix", "put=1", "--duration", "20s", "--seed", "14"];
    let err = assert_violation(&stress(dir.path(), &args), "acknowledged write lost");
    assert!(err.contains("during:    recovery after crash cycle"), "found by the parent:\n{err}");
    assert!(err.contains("INJECTED: acknowledged but never written"), "{err}");
}

/// The record layer's oracle can fail too: with a record-only write mix, the parent's check
/// of every record after a kill must catch record puts acknowledged but never written.
#[test]
fn lost_record_write_fails_crash_mode() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--crash", "--inject-lost-write", "--ops-mix", "rput=1", "--duration", "20s", "--seed", "17"];
    let err = assert_violation(&stress(dir.path(), &args), "acknowledged write lost");
    assert!(err.contains("key:       record "), "names the record:\n{err}");
    assert!(err.contains("during:    recovery after crash cycle"), "found by the parent:\n{err}");
}

/// The same hook in faults mode: a synced acknowledgement that is not in the store is caught
/// (by a read, or by the check after a recovery).
#[test]
fn lost_write_fails_faults_mode() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--faults", "--inject-lost-write", "--duration", "20s", "--seed", "15"];
    assert_violation(&stress(dir.path(), &args), "acknowledged write lost");
}

/// A value of a version the oracle never issued is caught by the readers.
#[test]
fn phantom_write_fails_plain_mode() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--inject-phantom-write", "--duration", "20s", "--seed", "16"];
    let err = assert_violation(&stress(dir.path(), &args), "a value that was never written");
    assert!(err.contains("rerun:     kho stress"), "{err}");
}

/// One key, four threads: every operation collides, so reads see writes in flight all the
/// time.
#[test]
fn a_single_contended_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = cargo_bin_cmd!("kho");
    cmd.arg("stress").arg("--dir").arg(dir.path()).args(["--threads", "4", "--keys", "1", "--duration", "3s"]);
    let out = assert_passed(&cmd.output().unwrap());
    assert!(figure(&out, "operations") > 100, "{out}");
}

#[test]
fn refuses_a_directory_that_is_not_a_stress_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let o = stress(dir.path(), &["--duration", "1s"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("refusing to use it"), "{}", text(&o).1);
    assert!(dir.path().join("precious.txt").exists());
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--ops-mix", "jump=1"][..], &["--crash", "--faults"], &["--duration", "5 parsecs"], &["--keys", "0"]]
    {
        let o = stress(dir.path(), args);
        assert!(!o.status.success(), "{args:?} should be refused");
    }
}
