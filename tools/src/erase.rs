//! `kho erase`: erase a person and write the erasure receipt; check a receipt later
//! (docs/privacy.md, "Provable erasure").
//!
//! - `kho erase DIR NATIONAL_ID [--actor A --purpose P --audit-key-file F] [--vault V]
//!   [--receipt FILE] [--no-purge]`: with person keys (`--vault`), destroys the person's key
//!   first (synced, compacted out of the vault's files), then deletes every record and index
//!   entry (one synced write, audited when the store keeps an audit log), then — unless
//!   `--no-purge` — compacts the erased data out of the store's files and rewrites its
//!   manifest. The receipt (JSON, mode 0600) names the person only by subject token.
//!   Exit 1 when the purge is incomplete (a reader still pins erased data).
//! - `kho erase --check-receipt FILE DIR [--vault V] [--national-id ID] [--public-key HEX]`:
//!   checks, for DIR (the store, or a checkpoint or restored backup made before the
//!   erasure), that the destroyed key is gone from the vault, counts the records there
//!   sealed under it (unreadable ciphertext), verifies the audit log against the receipt's
//!   checkpoint, and with `--national-id` searches every file of DIR for the ID's bytes.
//!   Exit 0 when everything holds, 1 naming what does not.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kho::record::audit::{parse_public_key, AuditCheckpoint};
use kho::record::vault::{KeyStatus, KEY_ID_LEN};
use kho::record::{ErasureReceipt, NationalId, PersonKeys, Store, StoreOptions};
use kho::Db;
use serde_json::json;

use crate::audit::ActorArgs;
use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// Arguments of `kho erase`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    #[arg(required_unless_present = "check_receipt")]
    pub dir: Option<PathBuf>,
    /// The person's 12-digit national ID.
    #[arg(required_unless_present = "check_receipt")]
    pub national_id: Option<String>,
    /// Write the erasure receipt (JSON) here.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// Leave the physical purge for later (`Store::purge_erased`).
    #[arg(long)]
    pub no_purge: bool,
    /// Check a receipt instead: `kho erase --check-receipt FILE DIR`.
    #[arg(long, value_name = "FILE")]
    pub check_receipt: Option<PathBuf>,
    /// With --check-receipt: also search every file of DIR for this ID's bytes.
    #[arg(long = "id", requires = "check_receipt")]
    pub check_id: Option<String>,
    /// With --check-receipt: the audit log's public key (64 hex digits).
    #[arg(long, requires = "check_receipt")]
    pub public_key: Option<String>,
    #[command(flatten)]
    pub who: ActorArgs,
}

/// Runs `kho erase`.
pub fn run(out: &mut Out, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    if let Some(receipt) = &args.check_receipt {
        // `kho erase --check-receipt FILE DIR`: DIR lands in the first positional.
        let Some(dir) = &args.dir else { bail!("--check-receipt FILE DIR: which directory?") };
        return check(out, receipt, dir, args, keys);
    }
    let (Some(dir), Some(id)) = (&args.dir, &args.national_id) else { bail!("kho erase DIR NATIONAL_ID") };
    erase(out, dir, id, args, keys)
}

/// Opens the vault in `dir` with the database's key (read-only when `read_only`).
pub fn open_vault(dir: &Path, keys: &Keys, read_only: bool) -> anyhow::Result<PersonKeys> {
    let db = if read_only {
        crate::kv::open(dir, keys)?
    } else {
        let opts = keys.write_options(dir)?;
        Db::open(dir, kho::Options { create_if_missing: false, ..opts })
            .with_context(|| format!("cannot open the vault {}", dir.display()))?
    };
    Ok(PersonKeys::open(db)?)
}

/// `N` bytes from hex digits (via [`crate::fmt::parse_hex`]); `None` if not exactly that.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    crate::fmt::parse_hex(s).ok()?.try_into().ok()
}

fn receipt_json(r: &ErasureReceipt, records: usize, purged: bool, vault: Option<&PersonKeys>) -> serde_json::Value {
    json!({
        "kho_erasure_receipt": 1,
        "time_ms": r.time_ms,
        "time": crate::fmt::utc_ms(r.time_ms),
        "subject": r.subject.map(|t| t.to_hex()),
        "destroyed_key": r.destroyed_key.map(|k| crate::fmt::hex(&k)),
        "vault": vault.map(|v| crate::fmt::hex(&v.vault_id())),
        "records_erased": records,
        "audit_position": r.audit_position,
        "audit_checkpoint": r.audit_checkpoint.map(|c| json!({
            "entries": c.entries,
            "head": crate::fmt::hex(&c.head_hash),
            "public_key": crate::fmt::hex(&c.public_key),
        })),
        "tables_until_purge": r.tables_until_purge,
        "purged": purged,
    })
}

fn erase(out: &mut Out, dir: &Path, id: &str, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    let id = NationalId::parse(id)?;
    let vault = args.who.vault.as_deref().map(|v| open_vault(v, keys, false)).transpose()?;
    let audit = args.who.audit_key_file.as_deref().map(crate::audit::audit_key).transpose()?;
    let opts = keys.write_options(dir)?;
    let db = Db::open(dir, kho::Options { create_if_missing: false, ..opts })
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let store = Store::open(
        db,
        StoreOptions {
            audit: audit.map(kho::record::AuditOptions::new),
            person_keys: vault.clone(),
            ..StoreOptions::default()
        },
    )?;
    let erasure = match (&args.who.actor, &args.who.purpose) {
        (None, None) => store.erase_person(&id)?,
        _ => store.as_actor(crate::audit::context(&args.who)?).erase_person(&id)?,
    };
    let mut outcome = Outcome::Ok;
    let purged = if args.no_purge {
        false
    } else {
        match store.purge_erased(&erasure) {
            Ok(()) => true,
            Err(e @ kho::record::Error::PurgeIncomplete { .. }) => {
                eprintln!("kho: {e}");
                outcome = Outcome::Problems;
                false
            }
            Err(e) => return Err(e.into()),
        }
    };
    store.close()?;
    let receipt = receipt_json(&erasure.receipt, erasure.records, purged, vault.as_ref());
    if let Some(path) = &args.receipt {
        let text = serde_json::to_string_pretty(&receipt)? + "\n";
        write_private(path, text.as_bytes())?;
    }
    if out.json {
        out.json_value(&receipt)?;
    } else {
        writeln!(
            out,
            "erased {} of {}; person key {}; {}",
            crate::fmt::count(erasure.records as u64, "record"),
            receipt["subject"].as_str().map_or_else(|| "the person".to_string(), |t| format!("subject {t}")),
            receipt["destroyed_key"]
                .as_str()
                .map_or_else(|| "none (no vault)".to_string(), |k| format!("{k} destroyed")),
            if purged { "purged from the files" } else { "not purged yet" }
        )?;
        if let Some(p) = &args.receipt {
            writeln!(out, "receipt: {}", p.display())?;
        }
    }
    Ok(outcome)
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn check(out: &mut Out, receipt: &Path, dir: &Path, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(receipt).with_context(|| format!("cannot read {}", receipt.display()))?;
    let r: serde_json::Value = serde_json::from_str(&text).context("the receipt is not JSON")?;
    if r["kho_erasure_receipt"] != 1 {
        bail!("{} is not a kho erasure receipt", receipt.display());
    }
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    // DIR is a copy made before the erasure (a checkpoint, a restored backup): it still holds
    // the person's records, sealed under the destroyed key, and its audit log ends before.
    let mut older_copy = false;
    let store = Store::open_read_only(
        crate::kv::open(dir, keys)?,
        StoreOptions {
            person_keys: args.who.vault.as_deref().map(|v| open_vault(v, keys, true)).transpose()?,
            ..StoreOptions::default()
        },
    )?;
    if let Some(k) = r["destroyed_key"].as_str() {
        let key_id: [u8; KEY_ID_LEN] = unhex(k).context("receipt: destroyed_key is not 16 hex digits")?;
        match args.who.vault.as_deref() {
            None => problems.push("the receipt names a destroyed person key: give --vault to check it".to_string()),
            Some(v) => match open_vault(v, keys, true)?.key_status(&key_id)? {
                KeyStatus::Destroyed => facts.push(format!("person key {k} is destroyed in the vault")),
                KeyStatus::Live => problems.push(format!("person key {k} is still live in the vault")),
                KeyStatus::Unknown => {
                    problems.push(format!("the vault never held person key {k}: is it the store's vault?"))
                }
            },
        }
        let n = store.records_sealed_under(&key_id)?;
        facts.push(format!("{n} record(s) in {} sealed under it: ciphertext no key opens", dir.display()));
        older_copy |= n > 0;
    }
    if let Some(c) = r["audit_checkpoint"].as_object() {
        let pk = match &args.public_key {
            Some(h) => parse_public_key(h).context("--public-key: expected 64 hex digits")?,
            None => c.get("public_key").and_then(|v| v.as_str()).and_then(unhex).context("receipt: public_key")?,
        };
        let pin = AuditCheckpoint {
            entries: c.get("entries").and_then(serde_json::Value::as_u64).context("receipt: entries")?,
            head_hash: c.get("head").and_then(|v| v.as_str()).and_then(unhex).context("receipt: head")?,
            public_key: pk,
        };
        match store.verify_audit(Some(pk), Some(&pin)) {
            Ok(rep) if rep.is_clean() => {
                facts.push(format!("the audit log holds the erasure: chain clean through entry {}", pin.entries))
            }
            Ok(rep) if rep.first_index + rep.entries < pin.entries && rep.problems.len() == 1 => {
                older_copy = true;
                facts.push(format!("this copy's audit log ({} entries) ends before the erasure", rep.entries));
            }
            Ok(rep) => {
                problems.extend(rep.problems.iter().map(|p| format!("audit entry {}: {}", p.expected_index, p.what)))
            }
            Err(e) => problems.push(format!("audit log: {e}")),
        }
    }
    if let Some(id) = &args.check_id {
        let id = NationalId::parse(id)?;
        let hits = crate::fmt::files_holding(dir, id.as_bytes())?;
        if hits.is_empty() {
            facts.push(format!("no file of {} holds the ID", dir.display()));
        } else if older_copy {
            facts.push(format!(
                "note: this copy predates the erasure; its keys still name the ID (in {}), its payloads are unreadable",
                hits.join(", ")
            ));
        } else {
            problems.push(format!("the ID is still in {}", hits.join(", ")));
        }
    }
    if out.json {
        out.json_value(&json!({"ok": problems.is_empty(), "facts": facts, "problems": problems}))?;
    } else {
        for f in &facts {
            writeln!(out, "ok: {f}")?;
        }
        for p in &problems {
            writeln!(out, "PROBLEM: {p}")?;
        }
    }
    Ok(if problems.is_empty() { Outcome::Ok } else { Outcome::Problems })
}
