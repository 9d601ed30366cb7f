//! `kho audit`: the record layer's audit log (docs/privacy.md).
//!
//! - `kho audit DIR [--person ID --audit-key-file F] [--actor A] [--since T] [--json]` lists
//!   entries, oldest first (read-only: no lock, beside a running writer). People appear as
//!   subject tokens; `--person` computes the token of an ID with the audit key to find every
//!   access to that person.
//! - `kho audit verify DIR [--public-key HEX | --audit-key-file F]` checks the whole chain
//!   and every checkpoint signature; exit 1 on any problem, naming the first bad entry.
//! - `kho audit checkpoint DIR --audit-key-file F`: writes a signed checkpoint now and prints
//!   what to keep outside the database (`entries` and `head`).
//! - `kho audit prune DIR --before T --actor A --purpose P --audit-key-file F`: deletes the
//!   entries older than T (itself audited; needs an admin rule).
//! - `kho audit policy DIR [--set FILE.json --actor A --purpose P --audit-key-file F]`:
//!   shows the access policy, or sets it (audited; needs an admin rule once one is set).
//! - `kho audit key FILE`: creates an audit key file (mode 0600) if absent and prints its
//!   public key.
//!
//! Times (`--since`, `--before`) are `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC) or
//! milliseconds since the Unix epoch.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use kho::crypt::KeyFileProvider;
use kho::record::audit::{parse_public_key, AuditEntry, AuditOutcome, SubjectToken};
use kho::record::{AccessContext, AccessPolicy, AuditKey, AuditOptions, Store, StoreOptions};
use kho::Db;
use serde_json::json;

use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// Arguments of `kho audit`: a listing, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    list: ListArgs,
}

/// `kho audit DIR ...`: list entries.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// The database directory.
    dir: Option<PathBuf>,
    /// Only entries touching this person (needs --audit-key-file to compute the token).
    #[arg(long)]
    person: Option<String>,
    /// Only entries by this actor.
    #[arg(long)]
    actor: Option<String>,
    /// Only entries at or after this time.
    #[arg(long)]
    since: Option<String>,
    /// Only denied accesses.
    #[arg(long)]
    denied: bool,
    /// The audit key file (for --person).
    #[arg(long)]
    audit_key_file: Option<PathBuf>,
}

/// Who acts, with the audit key: for the commands that write.
#[derive(Debug, clap::Args)]
pub struct ActorArgs {
    /// The acting agency or service.
    #[arg(long)]
    pub actor: Option<String>,
    /// The declared purpose.
    #[arg(long)]
    pub purpose: Option<String>,
    /// The audit key file of an audited store.
    #[arg(long)]
    pub audit_key_file: Option<PathBuf>,
    /// The person-key vault directory of a store with person keys (crypto-shredding).
    #[arg(long)]
    pub vault: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check the whole chain and every checkpoint signature; exit 1 on tampering.
    Verify {
        /// The database directory.
        dir: PathBuf,
        /// The checkpoint-verifying public key (64 hex digits), as `kho audit key` prints it.
        #[arg(long, conflicts_with = "audit_key_file")]
        public_key: Option<String>,
        /// The audit key file (its public key is used).
        #[arg(long)]
        audit_key_file: Option<PathBuf>,
    },
    /// Write a signed checkpoint now and print what to keep outside the database.
    Checkpoint {
        /// The database directory.
        dir: PathBuf,
        /// The audit key file.
        #[arg(long)]
        audit_key_file: PathBuf,
    },
    /// Delete the entries older than --before (audited; needs an admin rule).
    Prune {
        /// The database directory.
        dir: PathBuf,
        /// Entries before this time go.
        #[arg(long)]
        before: String,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Show the access policy, or set it from a JSON file (audited).
    Policy {
        /// The database directory.
        dir: PathBuf,
        /// A JSON file: {"rules": [{"actor", "collections", "purposes", "read", "write", "admin"}]}.
        #[arg(long)]
        set: Option<PathBuf>,
        #[command(flatten)]
        who: ActorArgs,
    },
    /// Create an audit key file (mode 0600) if absent; print its public key.
    Key {
        /// The key file.
        file: PathBuf,
    },
}

/// Runs `kho audit`.
pub fn run(out: &mut Out, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    match &args.command {
        None => list(out, &args.list, keys),
        Some(Command::Verify { dir, public_key, audit_key_file }) => {
            verify(out, dir, public_key.as_deref(), audit_key_file.as_deref(), keys)
        }
        Some(Command::Checkpoint { dir, audit_key_file }) => checkpoint(out, dir, audit_key_file, keys),
        Some(Command::Prune { dir, before, who }) => prune(out, dir, before, who, keys),
        Some(Command::Policy { dir, set, who }) => policy(out, dir, set.as_deref(), who, keys),
        Some(Command::Key { file }) => key(out, file),
    }
}

/// The audit key in `file`.
pub fn audit_key(file: &Path) -> anyhow::Result<AuditKey> {
    AuditKey::from_key_file(file).with_context(|| format!("cannot read the audit key file {}", file.display()))
}

/// Opens `dir` read-only as a store (no lock).
fn open_read_only(dir: &Path, keys: &Keys) -> anyhow::Result<Store> {
    let db = crate::kv::open(dir, keys)?;
    Ok(Store::open_read_only(db, StoreOptions::default())?)
}

/// Opens `dir` for writing as a store, with the audit key and the person-key vault `who`
/// names.
pub fn open_writable(dir: &Path, keys: &Keys, who: &ActorArgs) -> anyhow::Result<Store> {
    let audit = who.audit_key_file.as_deref().map(audit_key).transpose()?.map(AuditOptions::new);
    let person_keys = who.vault.as_deref().map(|v| crate::erase::open_vault(v, keys, false)).transpose()?;
    let opts = keys.write_options(dir)?;
    let opts = kho::Options { create_if_missing: false, ..opts };
    let db = Db::open(dir, opts).with_context(|| format!("cannot open {}", dir.display()))?;
    Ok(Store::open(db, StoreOptions { audit, person_keys, ..StoreOptions::default() })?)
}

/// The access context from `--actor` and `--purpose`.
pub fn context(who: &ActorArgs) -> anyhow::Result<AccessContext> {
    match (&who.actor, &who.purpose) {
        (Some(a), Some(p)) => Ok(AccessContext::new(a.as_str(), p.as_str())?),
        _ => bail!("this needs --actor and --purpose (the store audits every access)"),
    }
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (UTC, an optional trailing `Z`) or milliseconds
/// since the Unix epoch, as milliseconds.
pub fn parse_time(s: &str) -> anyhow::Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || anyhow::anyhow!("time {s:?}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or milliseconds");
    let s = s.trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date.split('-').map(|p| p.parse().map_err(|_| bad())).collect::<anyhow::Result<_>>()?;
    let t: Vec<i64> = time.split(':').map(|p| p.parse().map_err(|_| bad())).collect::<anyhow::Result<_>>()?;
    let ([y, m, day], [hh, mm, ss @ ..]) = (d.as_slice(), t.as_slice()) else { return Err(bad()) };
    let ss = ss.first().copied().unwrap_or(0);
    if !(1..=12).contains(m)
        || !(1..=31).contains(day)
        || !(0..24).contains(hh)
        || !(0..60).contains(mm)
        || !(0..61).contains(&ss)
    {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if *m <= 2 { y - 1 } else { *y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000).map_err(|_| bad())
}

fn tokens(e: &AuditEntry) -> Vec<String> {
    e.subjects.iter().map(SubjectToken::to_hex).collect()
}

fn entry_json(e: &AuditEntry) -> serde_json::Value {
    json!({
        "index": e.index,
        "position": e.position,
        "time_ms": e.time_ms,
        "time": crate::fmt::utc_ms(e.time_ms),
        "action": e.action.as_str(),
        "outcome": if e.outcome == AuditOutcome::Allowed { "allowed" } else { "denied" },
        "actor": e.actor,
        "purpose": e.purpose,
        "collections": e.collections,
        "id_prefix": e.id_prefix,
        "subjects": tokens(e),
        "count": e.count,
    })
}

fn list(out: &mut Out, args: &ListArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let Some(dir) = &args.dir else { bail!("kho audit DIR: which database?") };
    let store = open_read_only(dir, keys)?;
    let token = match &args.person {
        Some(p) => {
            let Some(f) = &args.audit_key_file else {
                bail!("--person needs --audit-key-file (to compute the person's token)")
            };
            let id = kho::record::NationalId::parse(p)?;
            Some(audit_key(f)?.subject_token(&id))
        }
        None => None,
    };
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let mut shown = 0u64;
    let mut doc = if out.json { Some(Vec::new()) } else { None };
    for e in store.audit_entries()? {
        let e = e?;
        if token.is_some_and(|t| !e.subjects.contains(&t))
            || args.actor.as_ref().is_some_and(|a| *a != e.actor)
            || since.is_some_and(|s| e.time_ms < s)
            || (args.denied && e.outcome != AuditOutcome::Denied)
        {
            continue;
        }
        shown += 1;
        match doc.as_mut() {
            Some(list) => list.push(entry_json(&e)),
            None => {
                let outcome = if e.outcome == AuditOutcome::Allowed { "" } else { " DENIED" };
                let subjects = match e.subjects.len() {
                    0 => "-".to_string(),
                    1..=3 => tokens(&e).join(","),
                    n => format!("{n} people"),
                };
                let what = if e.collections.is_empty() { "-".to_string() } else { e.collections.join(",") };
                let prefix = e.id_prefix.as_deref().map(|p| format!(" prefix={p}")).unwrap_or_default();
                writeln!(
                    out,
                    "{:>6} {} {}{outcome} {} for {:?} {what}{prefix} subjects={subjects} count={}",
                    e.index,
                    crate::fmt::utc_ms(e.time_ms),
                    e.action.as_str(),
                    e.actor,
                    e.purpose,
                    e.count
                )?;
            }
        }
    }
    if let Some(list) = doc {
        out.json_value(&json!({"entries": list, "count": shown}))?;
    }
    Ok(Outcome::Ok)
}

fn verify(
    out: &mut Out,
    dir: &Path,
    public_key: Option<&str>,
    audit_key_file: Option<&Path>,
    keys: &Keys,
) -> anyhow::Result<Outcome> {
    let pinned_key = match (public_key, audit_key_file) {
        (Some(h), _) => Some(parse_public_key(h).context("--public-key: expected 64 hex digits")?),
        (None, Some(f)) => Some(audit_key(f)?.public_key()),
        (None, None) => None,
    };
    let store = open_read_only(dir, keys)?;
    let r = store.verify_audit(pinned_key, None)?;
    if out.json {
        let problems: Vec<_> = r
            .problems
            .iter()
            .map(|p| json!({"position": p.position, "index": p.expected_index, "what": p.what}))
            .collect();
        out.json_value(&json!({
            "clean": r.is_clean(),
            "entries": r.entries,
            "checkpoints": r.checkpoints,
            "unsigned_tail": r.unsigned_tail,
            "first_index": r.first_index,
            "key_pinned": r.key_pinned,
            "problems": problems,
        }))?;
    } else {
        for p in &r.problems {
            writeln!(out, "entry {} (position {}): {}", p.expected_index, p.position, p.what)?;
        }
        writeln!(
            out,
            "{}: {} entries from index {}, {} signed checkpoints, {} entries after the last checkpoint{}",
            if r.is_clean() { "clean" } else { "TAMPERED" },
            r.entries,
            r.first_index,
            r.checkpoints,
            r.unsigned_tail,
            if r.key_pinned { "" } else { " (public key taken from the database: pin it with --public-key)" }
        )?;
    }
    Ok(if r.is_clean() { Outcome::Ok } else { Outcome::Problems })
}

fn checkpoint(out: &mut Out, dir: &Path, audit_key_file: &Path, keys: &Keys) -> anyhow::Result<Outcome> {
    let store = open_writable(
        dir,
        keys,
        &ActorArgs { actor: None, purpose: None, audit_key_file: Some(audit_key_file.to_path_buf()), vault: None },
    )?;
    let c = store.audit_checkpoint()?;
    store.close()?;
    let head = crate::fmt::hex(&c.head_hash);
    if out.json {
        out.json_value(&json!({"entries": c.entries, "head": head}))?;
    } else {
        writeln!(out, "entries {} head {head}", c.entries)?;
    }
    Ok(Outcome::Ok)
}

fn prune(out: &mut Out, dir: &Path, before: &str, who: &ActorArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let before = parse_time(before)?;
    let ctx = context(who)?;
    let store = open_writable(dir, keys, who)?;
    let n = store.as_actor(ctx).prune_audit(before)?;
    store.close()?;
    if out.json {
        out.json_value(&json!({"pruned": n}))?;
    } else {
        writeln!(out, "pruned {}", crate::fmt::count(n, "entry"))?;
    }
    Ok(Outcome::Ok)
}

fn policy(out: &mut Out, dir: &Path, set: Option<&Path>, who: &ActorArgs, keys: &Keys) -> anyhow::Result<Outcome> {
    let Some(file) = set else {
        let store = open_read_only(dir, keys)?;
        let (version, p) = store.access_policy().map_or((0, None), |(v, p)| (v, Some(p)));
        let text = serde_json::to_string_pretty(&json!({"version": version, "policy": p}))?;
        writeln!(out, "{text}")?;
        return Ok(Outcome::Ok);
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let p: AccessPolicy = serde_json::from_str(&text).with_context(|| format!("{} is not a policy", file.display()))?;
    let ctx = context(who)?;
    let store = open_writable(dir, keys, who)?;
    let version = store.as_actor(ctx).set_policy(p)?;
    store.close()?;
    writeln!(out, "policy version {version}")?;
    Ok(Outcome::Ok)
}

fn key(out: &mut Out, file: &Path) -> anyhow::Result<Outcome> {
    KeyFileProvider::open_or_create(file).with_context(|| format!("cannot create {}", file.display()))?;
    writeln!(out, "public key {}", audit_key(file)?.public_key_hex())?;
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_parse_as_utc_milliseconds() {
        assert_eq!(parse_time("1970-01-01").unwrap(), 0);
        assert_eq!(parse_time("2026-12-05T07:30:00Z").unwrap(), 1_796_455_800_000);
        assert_eq!(parse_time("2000-03-01 00:00").unwrap(), 951_868_800_000);
        assert_eq!(parse_time("1234").unwrap(), 1234);
        for bad in ["2026-13-01", "yesterday", "2026-12", "2026-12-05T25:00"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
