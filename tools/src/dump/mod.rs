//! `kho dump`: show what is on disk, one file kind per subcommand (Pebble's `tool/`), plus
//! `dump file`, which picks the kind from the file's name (LevelDB's `dumpfile`).

pub mod manifest;
pub mod sst;
pub mod summary;
pub mod wal;

use std::io::Write;
use std::path::{Path, PathBuf};

use kho::inspect::filename::{decode_current, parse_file_name, FileKind};
use kho::Options;
use serde_json::json;

use crate::dbdir::{self, Problem};
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
    /// Any file, its kind taken from its name (`NNNNNN.log`, `NNNNNN.sst`, `MANIFEST-*`, `CURRENT`).
    File(FileArgs),
}

/// Arguments of `kho dump file`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The file.
    pub file: PathBuf,
}

/// Options for the tools' read-only opens: a modest cache, nothing created.
pub fn tool_options() -> Options {
    Options { create_if_missing: false, block_cache_capacity: 8 << 20, ..Options::default() }
}

/// Runs a `dump` subcommand.
pub fn run(out: &mut Out, cmd: &Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Summary(a) => summary::run(out, a),
        Command::Wal(a) => wal::run(out, a),
        Command::Sst(a) => sst::run(out, a),
        Command::Manifest(a) => manifest::run(out, a),
        Command::File(a) => file(out, &a.file),
    }
}

fn file(out: &mut Out, path: &Path) -> anyhow::Result<Outcome> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match parse_file_name(name) {
        Some(FileKind::Log(_)) => wal::run(out, &wal::Args { file: path.into() }),
        Some(FileKind::Table(_)) => sst::run(out, &sst::Args { file: path.into(), limit: None, from: None, to: None }),
        Some(FileKind::Manifest(_)) => manifest::run(out, &manifest::Args { path: path.into() }),
        Some(FileKind::Current) => current(out, path),
        _ => anyhow::bail!(
            "cannot tell the kind of {} from its name (want NNNNNN.log, NNNNNN.sst, MANIFEST-NNNNNN or CURRENT)",
            path.display()
        ),
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
        Err(e) => {
            let p = Problem::from_error(path, &e);
            if out.json {
                out.json_value(&json!({"file": path, "problems": [p]}))?;
            } else {
                writeln!(out, "PROBLEM: {p}")?;
            }
            Ok(Outcome::Problems)
        }
    }
}
