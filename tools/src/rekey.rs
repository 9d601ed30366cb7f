//! `kho rekey DIR --key-file K [--rotate] [--new-master FILE] [--convert]`: key operations
//! on an encrypted database (docs/encryption.md, "Rotation and re-encryption"):
//!
//! 1. `--rotate`: a new data key, made current (`Db::rotate_key`);
//! 2. always: `Db::reencrypt` — the log, the memtables, every table under an older key and
//!    the manifest rewritten under the current key, then the keys no file uses retired;
//! 3. `--new-master FILE`: the key registry put under the master key in FILE (created, mode
//!    0600, if absent) with `Db::rotate_master_key`; no data file is rewritten, and from then
//!    on only FILE opens the database.
//!
//! `--convert` encrypts a plaintext database: the open creates a key registry under K and
//! the re-encryption rewrites every plaintext file. Without it a plaintext database is
//! refused, so a mistyped directory is never encrypted by accident.
//!
//! Opens `DIR` for writing: a database another process holds answers `Busy` (exit 2).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use kho::crypt::{KeyFileProvider, KeyProvider};
use kho::{Db, Options};
use serde_json::json;

use crate::keys::{self, Keys};
use crate::out::{Out, Outcome};

/// Arguments of `kho rekey`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// Start a new data key first, so that everything is rewritten under it.
    #[arg(long)]
    pub rotate: bool,
    /// Afterwards put the key registry under the master key in this file (created with mode
    /// 0600 if absent); from then on the database opens only with it.
    #[arg(long, value_name = "FILE")]
    pub new_master: Option<PathBuf>,
    /// Encrypt a plaintext database with --key-file (every file is rewritten).
    #[arg(long)]
    pub convert: bool,
}

/// Runs `kho rekey`.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let dir = &args.dir;
    let encrypted = keys::is_encrypted(dir);
    let Some(key_file) = k.file() else {
        if encrypted {
            return Err(kho::Error::KeyNeeded { path: dir.to_owned() }.into());
        }
        anyhow::bail!("kho rekey needs --key-file: the master key to encrypt {} under", dir.display());
    };
    if !encrypted && !args.convert {
        anyhow::bail!(
            "{} is not encrypted (no key registry); pass --convert to encrypt it with {}",
            dir.display(),
            key_file.display()
        );
    }
    let opts = Options { create_if_missing: false, encryption: k.encryption()?, ..Options::default() };
    let started = Instant::now();
    let db = Db::open(dir, opts).with_context(|| format!("cannot open {}", dir.display()))?;
    let rotated = match args.rotate {
        true => Some(db.rotate_key().context("starting a new data key")?),
        false => None,
    };
    let report = db.reencrypt().context("re-encrypting")?;
    let old_master = db.keyring().map(|r| r.master_id()).unwrap_or_default();
    let new_master = match &args.new_master {
        Some(path) => {
            let p =
                KeyFileProvider::open_or_create(path).with_context(|| format!("--new-master {}", path.display()))?;
            let id = p.id().to_owned();
            db.rotate_master_key(Arc::new(p) as Arc<dyn KeyProvider>).context("rotating the master key")?;
            Some((path.clone(), id))
        }
        None => None,
    };
    let master_id = db.keyring().map(|r| r.master_id()).unwrap_or_default();
    db.close()?;
    let took = started.elapsed().as_secs_f64();
    if out.json {
        out.json_value(&json!({
            "dir": dir, "converted": !encrypted, "rotated_to": rotated, "key_id": report.key_id,
            "tables_rewritten": report.tables_rewritten, "bytes_rewritten": report.bytes_rewritten,
            "retired_keys": report.retired_keys, "master_key_id": master_id,
            "new_master_file": new_master.as_ref().map(|(p, _)| p), "seconds": took,
        }))?;
        return Ok(Outcome::Ok);
    }
    if !encrypted {
        writeln!(out, "{}: encrypted with the master key {master_id} (it had no key registry)", dir.display())?;
    }
    if let Some(id) = rotated {
        writeln!(out, "new data key {id}, now current")?;
    }
    let retired = match report.retired_keys.as_slice() {
        [] => "no data key retired".to_owned(),
        ids => format!("retired data keys {}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
    };
    writeln!(
        out,
        "re-encrypted {} under data key {}: rewrote {} ({}), the log and the manifest; {retired} ({took:.3} s)",
        dir.display(),
        report.key_id,
        crate::fmt::count(report.tables_rewritten, "table"),
        crate::fmt::size(report.bytes_rewritten)
    )?;
    if let Some((path, id)) = new_master.as_ref().filter(|(_, id)| *id == old_master) {
        writeln!(out, "master key unchanged: {} holds the same key ({id})", path.display())?;
    } else if let Some((path, id)) = &new_master {
        writeln!(out, "master key now {id} ({}); {} no longer opens the database", path.display(), key_file.display())?;
    }
    Ok(Outcome::Ok)
}
