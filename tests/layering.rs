//! The layering holds (docs/architecture.md, "Layers"): checked on the source text, so a
//! change that crosses a layer fails here with the file and line that does it.
//! - the engine (`src/` outside `record/`) never names the record layer;
//! - iterators (`src/iter/`) never import the database facade (`db`), which builds them;
//! - the storage formats (`wal/`, `sst/`, `memtable/`, `vfs/`) never import `db`, `version`,
//!   `compaction` or `record`;
//! - the shared primitives (`src/util/`) import nothing of the crate outside `util`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every line of a file under `src/<under>` that names one of `forbidden` (code, not comments).
fn offenders(under: &str, skip: &[&str], forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join(under), &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if skip.iter().any(|s| rel.starts_with(s)) {
            continue;
        }
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_engine_never_names_the_record_layer() {
    let found = offenders("", &["record/", "lib.rs"], &["record::", "crate::record"]);
    assert!(found.is_empty(), "the engine names the record layer:\n{}", found.join("\n"));
}

#[test]
fn iterators_do_not_import_the_database() {
    let found = offenders("iter", &[], &["crate::db", "super::db"]);
    assert!(found.is_empty(), "iter/ imports db/:\n{}", found.join("\n"));
}

#[test]
fn formats_do_not_import_higher_layers() {
    for low in ["wal", "sst", "memtable", "vfs"] {
        let found = offenders(low, &[], &["crate::db", "crate::version", "crate::compaction", "crate::record"]);
        assert!(found.is_empty(), "{low}/ imports a higher layer:\n{}", found.join("\n"));
    }
}

#[test]
fn shared_primitives_import_nothing_above_them() {
    let found: Vec<String> = offenders("util", &[], &["crate::", "super::super"])
        .into_iter()
        .filter(|line| line.contains("super::super") || line.replace("crate::util", "").contains("crate::"))
        .collect();
    assert!(found.is_empty(), "util/ imports a module above it:\n{}", found.join("\n"));
}
