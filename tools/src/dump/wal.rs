//! `kho dump wal FILE`: every record of a write-ahead log — offset, sequence, operations —
//! and every damaged region with its offset and reason. Nothing is skipped silently: after
//! damage the dump resumes at the next intact record and says which bytes it passed over.
//! An encrypted log is opened with the key registry of its directory (`--key-file`), every
//! record authenticated; without the key only its segment header is shown (exit 2).

use std::io::Write;
use std::path::PathBuf;

use kho::inspect::batch::DecodedBatch;
use kho::inspect::wal::{peek_segment_header, TailState, HEADER_LEN};
use serde_json::json;

use crate::dbdir::{self, LogEvent};
use crate::fmt;
use crate::keys::{self, Keys};
use crate::out::{Out, Outcome};

/// Arguments of `kho dump wal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log file (`NNNNNN.log`).
    pub file: PathBuf,
}

/// Counts over the whole log.
#[derive(Debug, Default, serde::Serialize)]
struct Totals {
    records: u64,
    operations: u64,
    puts: u64,
    deletes: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    damaged_regions: u64,
    malformed_batches: u64,
}

/// Runs `kho dump wal`.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let path = &args.file;
    let data = dbdir::read(path)?;
    let size = data.len() as u64;
    let b = out.bytes;
    let mut t = Totals::default();
    let json = out.json;
    let header = peek_segment_header(&data);
    let ring = match header {
        Some(_) => match super::keys::ring_for_file(path, k) {
            Ok(r) => Some(r),
            Err(e) => {
                if json {
                    out.json_value(&json!({"file": path, "size": size, "encryption": keys::json(header.as_ref()),
                                           "decoded": false}))?;
                } else {
                    writeln!(out, "{}: {size} bytes ({})", path.display(), keys::describe(header.as_ref()))?;
                    writeln!(out, "encrypted: its records need the key")?;
                }
                return Err(e);
            }
        },
        None => None,
    };
    let ring = ring.as_ref();
    let tail = if json {
        let mut doc = out.json_doc()?;
        doc.field("file", &path)?;
        doc.field("size", &size)?;
        doc.field("encryption", &keys::json(header.as_ref()))?;
        doc.list("events")?;
        let tail = dbdir::walk_log(data, path, ring, |ev| Ok(doc.item(&event_json(&ev, b, &mut t))?))?.tail;
        doc.field("tail", &tail_json(&tail, size))?;
        doc.field("totals", &t)?;
        doc.finish()?;
        tail
    } else {
        writeln!(out, "{}: {size} bytes ({})", path.display(), keys::describe(header.as_ref()))?;
        let tail = dbdir::walk_log(data, path, ring, |ev| {
            for line in event_text(&ev, b, &mut t) {
                writeln!(out, "{line}")?;
            }
            Ok(())
        })?
        .tail;
        match &tail {
            TailState::Clean => {}
            TailState::Torn { offset, reason } => writeln!(
                out,
                "offset {offset}: TORN TAIL: {reason} ({} bytes to the end of the file)",
                size.saturating_sub(*offset)
            )?,
        }
        let seqs = match (t.first_seq, t.last_seq) {
            (Some(a), Some(z)) => format!("sequences {a}..{z}"),
            _ => "no sequences".into(),
        };
        writeln!(
            out,
            "{} records, {} operations ({} puts, {} deletes), {seqs}; {} damaged regions, {} malformed batches; {}",
            t.records,
            t.operations,
            t.puts,
            t.deletes,
            t.damaged_regions,
            t.malformed_batches,
            if matches!(tail, TailState::Clean) { "ends clean" } else { "ends torn" }
        )?;
        tail
    };
    let intact = t.damaged_regions == 0 && t.malformed_batches == 0 && tail == TailState::Clean;
    Ok(if intact { Outcome::Ok } else { Outcome::Problems })
}

/// One decoded operation: (seq, kind, key, value).
type Op<'a> = (u64, kho::ValueKind, &'a [u8], &'a [u8]);

/// Decodes a record's batch: its header, its operations, and the first error as
/// (file offset, what).
fn decode(rec: &kho::inspect::wal::LogRecord) -> (Option<DecodedBatch<'_>>, Vec<Op<'_>>, Option<(u64, String)>) {
    let payload_at = rec.offset + HEADER_LEN as u64;
    let batch = match DecodedBatch::parse(&rec.payload) {
        Ok(b) => b,
        Err(what) => return (None, Vec::new(), Some((payload_at, what))),
    };
    let mut ops = Vec::new();
    let mut seq = batch.seq;
    for op in batch.ops() {
        match op {
            Ok((kind, key, value)) => ops.push((seq, kind, key, value)),
            Err(e) => return (Some(batch), ops, Some((payload_at + e.offset as u64, e.what.to_string()))),
        }
        seq = seq.wrapping_add(1);
    }
    (Some(batch), ops, None)
}

fn count(t: &mut Totals, ops: &[Op<'_>], error: bool) {
    t.records += 1;
    t.malformed_batches += u64::from(error);
    for &(seq, kind, _, _) in ops {
        t.operations += 1;
        match kind {
            kho::ValueKind::Put => t.puts += 1,
            kho::ValueKind::Delete => t.deletes += 1,
        }
        t.first_seq = Some(t.first_seq.map_or(seq, |s| s.min(seq)));
        t.last_seq = Some(t.last_seq.map_or(seq, |s| s.max(seq)));
    }
}

fn event_text(ev: &LogEvent, b: fmt::Bytes, t: &mut Totals) -> Vec<String> {
    match ev {
        LogEvent::Record(rec) => {
            let (batch, ops, err) = decode(rec);
            count(t, &ops, err.is_some());
            let head = match batch {
                Some(batch) => format!(
                    "offset {}: seq {}, {} ops, {} bytes",
                    rec.offset,
                    batch.seq,
                    batch.count,
                    rec.payload.len()
                ),
                None => format!("offset {}: {} bytes", rec.offset, rec.payload.len()),
            };
            let mut lines = vec![head];
            for (seq, kind, key, value) in ops {
                lines.push(match kind {
                    kho::ValueKind::Put => format!("  put {seq} {} => {}", b.quoted(key), b.quoted(value)),
                    kho::ValueKind::Delete => format!("  del {seq} {}", b.quoted(key)),
                });
            }
            if let Some((at, what)) = err {
                lines.push(format!("offset {at}: MALFORMED BATCH: {what}"));
            }
            lines
        }
        LogEvent::Damage { offset, what, skipped } => {
            t.damaged_regions += 1;
            vec![format!(
                "offset {offset}: DAMAGED: {what} (skipping {} bytes {}..{})",
                skipped.end - skipped.start,
                skipped.start,
                skipped.end
            )]
        }
    }
}

fn event_json(ev: &LogEvent, b: fmt::Bytes, t: &mut Totals) -> serde_json::Value {
    match ev {
        LogEvent::Record(rec) => {
            let (batch, ops, err) = decode(rec);
            count(t, &ops, err.is_some());
            let ops: Vec<_> = ops
                .iter()
                .map(|&(seq, kind, key, value)| match kind {
                    kho::ValueKind::Put => json!({"seq": seq, "op": "put", "key": b.show(key), "value": b.show(value)}),
                    kho::ValueKind::Delete => json!({"seq": seq, "op": "del", "key": b.show(key)}),
                })
                .collect();
            json!({
                "type": "record",
                "offset": rec.offset,
                "len": rec.payload.len(),
                "seq": batch.map(|b| b.seq),
                "count": batch.map(|b| b.count),
                "ops": ops,
                "error": err.map(|(offset, what)| json!({"offset": offset, "what": what})),
            })
        }
        LogEvent::Damage { offset, what, skipped } => {
            t.damaged_regions += 1;
            json!({"type": "damage", "offset": offset, "what": what, "skipped": [skipped.start, skipped.end]})
        }
    }
}

/// The tail as JSON: `{"state": "clean"}` or `{"state": "torn", "offset", "reason", "bytes"}`.
pub fn tail_json(tail: &TailState, size: u64) -> serde_json::Value {
    match tail {
        TailState::Clean => json!({"state": "clean"}),
        TailState::Torn { offset, reason } => {
            json!({"state": "torn", "offset": offset, "reason": reason, "bytes": size.saturating_sub(*offset)})
        }
    }
}
