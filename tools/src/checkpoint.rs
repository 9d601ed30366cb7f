//! `kho checkpoint DIR OUT`: a consistent, openable copy of the database in `DIR` at one
//! sequence number (`Db::checkpoint`: tables and complete logs hard-linked, a manifest of its
//! own). Opens `DIR` for writing (it rotates the log), so it takes the lock: a database used
//! by another process answers `Busy` (exit 2); run it from inside that process instead.
//! The checkpoint of an encrypted database (`--key-file`) carries its own key registry
//! under the same master key.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use kho::Db;
use serde_json::json;

use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// Arguments of `kho checkpoint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// Where the checkpoint goes (must not exist, or be empty).
    pub out: PathBuf,
}

/// Runs `kho checkpoint`: prints the sequence number the copy holds every write up to.
pub fn run(out: &mut Out, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    let opts = keys.write_options(&args.dir)?;
    let db = Db::open(&args.dir, opts).with_context(|| format!("cannot open {}", args.dir.display()))?;
    let started = Instant::now();
    let seq = db.checkpoint(&args.out).with_context(|| format!("checkpoint into {}", args.out.display()))?;
    let took = started.elapsed();
    db.close()?;
    if out.json {
        out.json_value(&json!({"dir": args.dir, "out": args.out, "sequence": seq, "seconds": took.as_secs_f64()}))?;
    } else {
        writeln!(
            out,
            "checkpoint of {} at sequence {seq} in {} ({:.3} s)",
            args.dir.display(),
            args.out.display(),
            took.as_secs_f64()
        )?;
    }
    Ok(Outcome::Ok)
}
