//! `kho import DIR --collection C FILE.jsonl`: bulk-loads JSON lines into one collection
//! through `Store::import` (all or nothing; docs/record-model.md, "Import").
//!
//! Each non-blank line is one JSON object: its `--pk-field` (a string or an integer) is the
//! primary key, its `--id-field` (a string) the national ID; the other fields are the
//! payload (stored as MessagePack, shown by `kho record`/`kho person` as JSON). Every line is
//! checked first; every invalid one is reported as `line N: reason` on stderr — naming the
//! field and the rule, never the payload, and an ID only redacted (`kho::util::redact`) —
//! and nothing is imported (exit 1). The database is created if it does not exist.
//! Memory: the whole file is held (parsed) until the import is installed.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use kho::record::{Error as RecordError, NationalId, Store, StoreOptions};
use serde_json::{json, Map, Value};

use crate::keys::Keys;
use crate::out::{Out, Outcome};

/// Arguments of `kho import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory (created if missing).
    pub dir: PathBuf,
    /// The JSON-lines file: one record (a JSON object) per line.
    pub file: PathBuf,
    /// The collection to import into (created if needed).
    #[arg(long)]
    pub collection: String,
    /// The field holding the national ID (12 digits, a string).
    #[arg(long, default_value = "national_id")]
    pub id_field: String,
    /// The field holding the primary key (a string or an integer).
    #[arg(long, default_value = "pk")]
    pub pk_field: String,
    /// The person-key vault directory of a store with person keys (crypto-shredding).
    #[arg(long)]
    pub vault: Option<PathBuf>,
}

/// The rows read, with the line each came from, and the lines refused (the first
/// [`kho::record::MAX_LISTED_ROW_PROBLEMS`] listed, all counted).
struct Rows {
    rows: Vec<(String, NationalId, Map<String, Value>)>,
    lines: Vec<u64>,
    problems: Vec<(u64, String)>,
    invalid: u64,
}

/// Runs `kho import`.
pub fn run(out: &mut Out, args: &Args, keys: &Keys) -> anyhow::Result<Outcome> {
    let rows = read_rows(args)?;
    if rows.invalid > 0 {
        return report_problems(out, &rows.problems, rows.invalid);
    }
    let store = open_store(&args.dir, keys, args.vault.as_deref())?;
    let bar = crate::out::spinner("importing");
    let result = store.import(&args.collection, rows.rows);
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(RecordError::ImportRejected { rows: listed, count }) => {
            let problems: Vec<(u64, String)> = listed
                .iter()
                .map(|p| (rows.lines.get(p.row as usize).copied().unwrap_or(0), p.error.to_string()))
                .collect();
            store.close()?;
            return report_problems(out, &problems, count);
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("importing into {}", args.collection))),
    };
    store.close()?;
    if out.json {
        out.json_value(&json!({
            "imported": true,
            "collection": args.collection,
            "rows": report.rows,
            "tables": report.tables,
            "bytes": report.bytes,
            "sequence": report.sequence,
        }))?;
    } else {
        writeln!(
            out,
            "imported {} into {}: {}, {} bytes, sequence {}",
            crate::fmt::count(report.rows, "record"),
            args.collection,
            crate::fmt::count(report.tables as u64, "table"),
            report.bytes,
            report.sequence
        )?;
    }
    Ok(Outcome::Ok)
}

/// Prints `line N: reason` for each problem on stderr (and how many more were not listed),
/// or with `--json` one object on stdout; exit 1.
fn report_problems(out: &mut Out, problems: &[(u64, String)], count: u64) -> anyhow::Result<Outcome> {
    if out.json {
        let listed: Vec<serde_json::Value> =
            problems.iter().map(|(line, why)| json!({"line": line, "reason": why})).collect();
        out.json_value(&json!({"imported": false, "invalid": count, "problems": listed}))?;
        return Ok(Outcome::Problems);
    }
    for (line, why) in problems {
        eprintln!("line {line}: {why}");
    }
    if count > problems.len() as u64 {
        eprintln!("... and {} more", count - problems.len() as u64);
    }
    eprintln!("kho: {} invalid; nothing imported", crate::fmt::count(count, "row"));
    Ok(Outcome::Problems)
}

/// Reads and checks every line (JSON, the two fields, the ID's format) with a progress bar.
fn read_rows(args: &Args) -> anyhow::Result<Rows> {
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let bar = crate::out::progress(file.metadata().map_or(0, |m| m.len()), "reading");
    let mut reader = std::io::BufReader::new(bar.wrap_read(file));
    let mut rows = Rows { rows: Vec::new(), lines: Vec::new(), problems: Vec::new(), invalid: 0 };
    let mut buf = Vec::new();
    for n in 1u64.. {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).with_context(|| format!("reading {}", args.file.display()))? == 0 {
            break;
        }
        let parsed = match std::str::from_utf8(&buf) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => parse_line(line, args),
            Err(_) => Err("not UTF-8".to_string()),
        };
        match parsed {
            Ok(row) => {
                rows.rows.push(row);
                rows.lines.push(n);
            }
            Err(why) => {
                rows.invalid += 1;
                if rows.problems.len() < kho::record::MAX_LISTED_ROW_PROBLEMS {
                    rows.problems.push((n, why));
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// One line as a row, or why not (naming fields and rules, never values).
fn parse_line(line: &str, args: &Args) -> Result<(String, NationalId, Map<String, Value>), String> {
    let mut obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err("not a JSON object".into()),
        // serde_json's messages name the position and what was expected, not the input.
        Err(e) => return Err(format!("invalid JSON: {e}")),
    };
    let id = match obj.remove(&args.id_field) {
        Some(Value::String(s)) => NationalId::parse(&s).map_err(|e| e.to_string())?,
        Some(_) => return Err(format!("field {:?} (the national ID) is not a string", args.id_field)),
        None => return Err(format!("no field {:?} (the national ID)", args.id_field)),
    };
    let pk = match obj.remove(&args.pk_field) {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(format!("field {:?} (the primary key) is not a string or an integer", args.pk_field)),
        None => return Err(format!("no field {:?} (the primary key)", args.pk_field)),
    };
    Ok((pk, id, obj))
}

/// The record store in `dir` for writing, created if missing.
fn open_store(dir: &Path, keys: &Keys, vault: Option<&Path>) -> anyhow::Result<Store> {
    let person_keys = vault.map(|v| crate::erase::open_vault(v, keys, false)).transpose()?;
    let opts = keys.write_options(dir)?;
    let db = kho::Db::open(dir, kho::Options { create_if_missing: true, ..opts })
        .with_context(|| format!("cannot open {}", dir.display()))?;
    Ok(Store::open(db, StoreOptions { person_keys, ..StoreOptions::default() })?)
}
