//! `kho dump`: show what is on disk, one file kind per subcommand (Pebble's `tool/`), plus
//! `dump file`, which picks the kind from the file's name (LevelDB's `dumpfile`).
//!
//! Every dump says how each file is encrypted (`plain`, or the scheme and data key id). An
//! encrypted file is decoded with `--key-file` (the key registry of the file's directory);
//! without it the dump shows what is plaintext — a table's footer, a log's or manifest's
//! segment header, a registry's master-key id — and then fails with exit 2 and
//! `database is encrypted: --key-file needed`.

pub mod keys;
pub mod manifest;
pub mod sst;
pub mod summary;
pub mod wal;

use std::io::Write;
use std::path::{Path, PathBuf};

use kho::inspect::filename::{decode_current, parse_file_name, FileKind};
use serde_json::json;

use crate::dbdir::{self, Problem};
use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// The `dump` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Levels, tables, logs, manifest, last sequence, raw vs stored bytes.
    Summary(summary::Args),
    /// Every record of a write-ahead log, and where and why it is damaged.
    Wal(wal::Args),
    /// A table: footer, properties, filter, blocks, index, entries, check.
    Sst(sst::Args),
    /// Each version edit of the manifest, in order.
    Manifest(manifest::Args),
    /// The key registry of an encrypted database: data key ids, the current one, the master
    /// key's id, and which files each key seals (never a key's bytes).
    Keys(keys::Args),
    /// Any file, its kind taken from its name (`NNNNNN.log`, `NNNNNN.sst`, `MANIFEST-*`,
    /// `CURRENT`, `KEYRING`, `KEYS-*`).
    File(FileArgs),
}

/// Arguments of `kho dump file`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The file.
    pub file: PathBuf,
}

/// Runs a `dump` subcommand.
pub fn run(out: &mut Out, cmd: &Command, k: &Keys) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Summary(a) => summary::run(out, a, k),
        Command::Wal(a) => wal::run(out, a, k),
        Command::Sst(a) => sst::run(out, a, k),
        Command::Manifest(a) => manifest::run(out, a, k),
        Command::Keys(a) => keys::run(out, a, k),
        Command::File(a) => file(out, &a.file, k),
    }
}

fn file(out: &mut Out, path: &Path, k: &Keys) -> anyhow::Result<Outcome> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match parse_file_name(name) {
        Some(FileKind::Log(_)) => wal::run(out, &wal::Args { file: path.into() }, k),
        Some(FileKind::Table(_)) => {
            sst::run(out, &sst::Args { file: path.into(), limit: None, from: None, to: None }, k)
        }
        Some(FileKind::Manifest(_)) => manifest::run(out, &manifest::Args { path: path.into() }, k),
        Some(FileKind::Current) => current(out, path),
        Some(FileKind::Keyring | FileKind::Keys(_)) => keys::file(out, path, k),
        _ => anyhow::bail!(
            "cannot tell the kind of {} from its name (want NNNNNN.log, NNNNNN.sst, MANIFEST-NNNNNN, CURRENT, \
             KEYRING or KEYS-NNNNNN)",
            path.display()
        ),
    }
}

/// The directory a file given on the command line is in (its database's, for the key
/// registry).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn current(out: &mut Out, path: &Path) -> anyhow::Result<Outcome> {
    let decoded = dbdir::read(path).and_then(|data| decode_current(path, &data));
    match decoded {
        Ok(n) => {
            let name = kho::inspect::filename::manifest_name(n);
            if out.json {
                out.json_value(&json!({"file": path, "manifest": name, "number": n}))?;
            } else {
                writeln!(out, "{}: names {name}", path.display())?;
            }
            Ok(Outcome::Ok)
        }
        Err(e) => file_problem(out, path, &e),
    }
}

/// Prints the one problem that stopped reading `path` (a `PROBLEM:` line, or a JSON document
/// naming the file); exit status 1.
pub fn file_problem(out: &mut Out, path: &std::path::Path, e: &kho::Error) -> anyhow::Result<Outcome> {
    let p = Problem::from_error(path, e);
    if out.json {
        out.json_value(&json!({"file": path, "problems": [p]}))?;
    } else {
        writeln!(out, "PROBLEM: {p}")?;
    }
    Ok(Outcome::Problems)
}
