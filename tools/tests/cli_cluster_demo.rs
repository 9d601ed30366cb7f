//! `kho cluster demo`, small: three replicas over TCP on 127.0.0.1, the leader killed
//! mid-ingest, a new leader, the old one restarted and caught up, and all replicas equal.

#![allow(clippy::unwrap_used)]

use assert_cmd::cargo::cargo_bin_cmd;

#[test]
fn cluster_demo_fails_over_and_ends_with_equal_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let out = cargo_bin_cmd!("kho")
        .args(["cluster", "demo", "--persons", "1500", "--batch", "100"])
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("killed leader node"), "{stdout}");
    assert!(stdout.contains("took over"), "{stdout}");
    assert!(stdout.contains("restarted node"), "{stdout}");
    assert!(stdout.contains("all 3 replicas agree"), "{stdout}");
    assert_eq!(stdout.matches("index clean").count(), 3, "{stdout}");
}
