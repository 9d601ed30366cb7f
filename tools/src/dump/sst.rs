//! `kho dump sst FILE`: a table's footer (with how it is encrypted), properties, filter,
//! block layout (sizes, compression, sealing), index and entries (`--from`, `--to`,
//! `--limit`), then a full check — Pebble's `sstable layout/scan/check` in one. An encrypted
//! table is opened with the key registry of its directory (`--key-file`); without the key
//! only the plaintext footer is shown, and the dump fails (exit 2).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kho::inspect::filename::{parse_file_name, FileKind};
use kho::inspect::key::{internal_key, ParsedKey};
use kho::inspect::sst::{BlockKind, FooterInfo, SstReader, TableProperties, Transform};
use kho::vfs::{FileSystem, StdFs};
use kho::{ValueKind, MAX_SEQUENCE};
use serde_json::json;

use crate::dbdir::Problem;
use crate::fmt::{self, Bytes};
use crate::keys::{self, Keys};
use crate::out::{Out, Outcome};

/// Arguments of `kho dump sst`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The table file (`NNNNNN.sst`).
    pub file: PathBuf,
    /// Show at most this many entries (0: none).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Start at this user key (escaped as printed, or hex with `--hex`).
    #[arg(long)]
    pub from: Option<String>,
    /// Stop before this user key.
    #[arg(long)]
    pub to: Option<String>,
}

/// Runs `kho dump sst`.
pub fn run(out: &mut Out, args: &Args, k: &Keys) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let from = args.from.as_deref().map(|k| b.parse(k)).transpose()?;
    let to = args.to.as_deref().map(|k| b.parse(k)).transpose()?;
    let path = &args.file;
    let file = StdFs.open(path)?;
    let size = file.len();
    // The table's number is part of an encrypted table's key.
    let number = match path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name) {
        Some(FileKind::Table(n)) => n,
        _ => 0,
    };
    // The footer is plaintext: it says whether the table is encrypted, and under which key.
    let footer = SstReader::read_footer_info(&*file, path).ok();
    let ring = match footer.is_some_and(|f| f.key_id.is_some()) {
        true => match super::keys::ring_for_file(path, k) {
            Ok(r) => Some(r),
            Err(e) => {
                sealed(out, path, size, footer)?;
                return Err(e);
            }
        },
        // A plaintext table (of before encryption was on, in an encrypted database) is
        // checked against the registry only when a key is given.
        false if k.file().is_some() => k.keyring(super::dir_of(path))?,
        false => None,
    };
    let reader = match SstReader::open_with_keys(file, path.clone(), number, None, ring.as_ref()) {
        Ok(r) => Arc::new(r),
        Err(e) if keys::is_key_needed(&e) => {
            sealed(out, path, size, footer)?;
            return Err(e.into());
        }
        Err(e) => {
            let p = Problem::from_error(path, &e);
            if out.json {
                out.json_value(&json!({"file": path, "size": size, "open_error": p}))?;
            } else {
                writeln!(out, "{}: {size} bytes\nCANNOT OPEN: {p}", path.display())?;
            }
            return Ok(Outcome::Problems);
        }
    };
    let range = Range { from, to, limit: args.limit.unwrap_or(u64::MAX) };
    if out.json {
        json_dump(out, &reader, &range)
    } else {
        text_dump(out, &reader, &range)
    }
}

/// The footer line: where the metadata blocks are and how the table is encrypted.
fn footer_text(f: &FooterInfo) -> String {
    let handle = |h: (u64, u64)| format!("{}+{}", h.0, h.1);
    format!(
        "footer at {}: format version {} ({}); filter {}, properties {}, index {}",
        f.offset,
        f.format_version,
        keys::describe_table(f.key_id),
        f.filter.map_or("none".into(), handle),
        handle(f.properties),
        handle(f.index)
    )
}

fn footer_json(f: &FooterInfo) -> serde_json::Value {
    json!({"offset": f.offset, "format_version": f.format_version, "filter": f.filter,
           "properties": f.properties, "index": f.index, "encryption": keys::table_json(f.key_id)})
}

/// What a dump without the key shows of an encrypted table: its plaintext footer.
fn sealed(out: &mut Out, path: &Path, size: u64, footer: Option<FooterInfo>) -> anyhow::Result<()> {
    if out.json {
        out.json_value(&json!({"file": path, "size": size, "footer": footer.as_ref().map(footer_json),
                               "decoded": false}))?;
    } else {
        writeln!(out, "{}: {size} bytes", path.display())?;
        if let Some(f) = &footer {
            writeln!(out, "{}", footer_text(f))?;
        }
        writeln!(out, "encrypted: its blocks (properties, filter, index, entries) need the key")?;
    }
    Ok(())
}

struct Range {
    from: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
    limit: u64,
}

/// Walks the selected entries, handing each `(internal key, value)` to `f`. The outer error
/// is an output failure (stop); the inner one a read error of the table (report it).
fn scan(
    reader: &Arc<SstReader>,
    r: &Range,
    mut f: impl FnMut(&[u8], &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<kho::Result<()>> {
    if r.limit == 0 {
        return Ok(Ok(()));
    }
    let mut it = reader.iter();
    let first = match &r.from {
        Some(k) => it.seek(&internal_key(k, MAX_SEQUENCE, ValueKind::Put)),
        None => it.seek_to_first(),
    };
    if let Err(e) = first {
        return Ok(Err(e));
    }
    let mut n = 0;
    while it.valid() && n < r.limit {
        let key = it.key();
        let user_key = ParsedKey::parse(key).map_or(key, |p| p.user_key);
        if r.to.as_deref().is_some_and(|to| user_key >= to) {
            break;
        }
        f(key, &it.value())?;
        n += 1;
        if let Err(e) = it.next() {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

fn transform_name(t: Transform) -> &'static str {
    match t {
        Transform::Raw => "raw",
        Transform::Zstd => "zstd",
        Transform::ZstdSealed => "zstd+aes-256-gcm",
        Transform::RawSealed => "raw+aes-256-gcm",
        _ => "unknown",
    }
}

fn kind_name(k: BlockKind) -> &'static str {
    match k {
        BlockKind::Data => "data",
        BlockKind::Filter => "filter",
        BlockKind::Properties => "properties",
        BlockKind::Index => "index",
        _ => "unknown",
    }
}

/// Estimated false-positive rate of a blocked bloom filter (format version 2: 512-bit
/// blocks) of `m` bits and `k` probes holding `n` keys: the classic rate of one block,
/// averaged over the Poisson-distributed number of keys that land in a block.
fn bloom_fp(m: u64, k: u8, n: u64) -> f64 {
    const BLOCK_BITS: f64 = 512.0;
    if m == 0 {
        return 1.0;
    }
    let lambda = n as f64 * BLOCK_BITS / m as f64; // mean keys per block
    let block_fp = |keys: f64| (1.0 - (-f64::from(k) * keys / BLOCK_BITS).exp()).powi(i32::from(k));
    let (mut total, mut p) = (0.0, (-lambda).exp()); // p = P(i keys in the block)
    let last = (lambda + 12.0 * lambda.sqrt() + 12.0) as u32;
    for i in 0..=last {
        total += p * block_fp(f64::from(i));
        p *= lambda / f64::from(i + 1);
    }
    total
}

fn props_json(p: &TableProperties, b: Bytes) -> serde_json::Value {
    json!({
        "entries": p.entries, "deletions": p.deletions, "data_blocks": p.data_blocks,
        "raw_key_bytes": p.raw_key_bytes, "raw_value_bytes": p.raw_value_bytes,
        "raw_data_bytes": p.raw_data_bytes, "stored_data_bytes": p.stored_data_bytes,
        "smallest_key": fmt::internal_key_json(b, &p.smallest_key),
        "largest_key": fmt::internal_key_json(b, &p.largest_key),
        "min_seq": p.min_seq, "max_seq": p.max_seq,
        "compression_level": p.compression_level, "bloom_bits_per_key": p.bloom_bits_per_key,
        "creation_time": p.creation_time, "file_size": p.file_size,
    })
}

fn entry_json(b: Bytes, key: &[u8], value: &[u8]) -> serde_json::Value {
    let mut v = fmt::internal_key_json(b, key);
    if ParsedKey::parse(key).is_some_and(|p| p.kind == ValueKind::Put) {
        v["value"] = json!(b.show(value));
    }
    v
}

fn json_dump(out: &mut Out, reader: &Arc<SstReader>, range: &Range) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let p = reader.properties();
    let f = reader.footer_info();
    let mut problems = Vec::new();
    let mut doc = out.json_doc()?;
    doc.field("file", &reader.path())?;
    doc.field("size", &p.file_size)?;
    doc.field("footer", &footer_json(&f))?;
    doc.field("properties", &props_json(p, b))?;
    doc.field(
        "filter",
        &reader.filter_info().map(|fi| {
            json!({"bits": fi.bits, "bytes": fi.bits / 8, "probes": fi.probes,
                   "estimated_false_positive_rate": bloom_fp(fi.bits, fi.probes, p.entries)})
        }),
    )?;
    doc.list("blocks")?;
    match reader.layout() {
        Ok(layout) => {
            for bl in layout {
                doc.item(&json!({"kind": kind_name(bl.kind), "offset": bl.offset, "stored_size": bl.stored_size,
                                 "raw_size": bl.raw_size, "transform": transform_name(bl.transform)}))?;
            }
        }
        Err(e) => problems.push(Problem::from_error(reader.path(), &e)),
    }
    doc.list("index")?;
    for e in reader.index_entries() {
        doc.item(&json!({"key": fmt::internal_key_json(b, &e.key), "offset": e.offset, "size": e.size}))?;
    }
    doc.list("entries")?;
    if let Err(e) = scan(reader, range, |k, v| Ok(doc.item(&entry_json(b, k, v))?))? {
        problems.push(Problem::from_error(reader.path(), &e));
    }
    let check = reader.verify();
    match &check {
        Ok(r) => doc.field("check", &json!({"ok": true, "data_blocks": r.data_blocks, "entries": r.entries}))?,
        Err(e) => {
            problems.push(Problem::from_error(reader.path(), e));
            doc.field("check", &json!({"ok": false}))?;
        }
    }
    doc.field("problems", &problems)?;
    doc.finish()?;
    Ok(if problems.is_empty() { Outcome::Ok } else { Outcome::Problems })
}

fn text_dump(out: &mut Out, reader: &Arc<SstReader>, range: &Range) -> anyhow::Result<Outcome> {
    let b = out.bytes;
    let p = reader.properties();
    let f = reader.footer_info();
    let mut problems = Vec::new();
    writeln!(out, "{}: {} bytes", reader.path().display(), p.file_size)?;
    writeln!(out, "{}", footer_text(&f))?;
    writeln!(out, "properties:")?;
    writeln!(out, "  entries            {} ({} deletions)", p.entries, p.deletions)?;
    writeln!(out, "  data blocks        {}", p.data_blocks)?;
    writeln!(
        out,
        "  keys               {} .. {}",
        fmt::internal_key(b, &p.smallest_key),
        fmt::internal_key(b, &p.largest_key)
    )?;
    writeln!(out, "  sequences          {}..{}", p.min_seq, p.max_seq)?;
    writeln!(out, "  raw keys / values  {} / {} bytes", p.raw_key_bytes, p.raw_value_bytes)?;
    writeln!(
        out,
        "  data blocks        {} bytes raw, {} stored (compression ratio {})",
        p.raw_data_bytes,
        p.stored_data_bytes,
        fmt::ratio(p.raw_data_bytes, p.stored_data_bytes)
    )?;
    let compression = match p.compression_level {
        0 => "none".to_owned(),
        l => format!("zstd level {l}"),
    };
    writeln!(out, "  compression        {compression}")?;
    writeln!(out, "  bloom bits/key     {}", p.bloom_bits_per_key)?;
    writeln!(out, "  created            {} (unix seconds)", p.creation_time)?;
    match reader.filter_info() {
        Some(fi) => writeln!(
            out,
            "filter: {} bits ({} bytes), {} probes, {:.1} bits per entry, ~{:.2}% false positives",
            fi.bits,
            fi.bits / 8,
            fi.probes,
            if p.entries == 0 { 0.0 } else { fi.bits as f64 / p.entries as f64 },
            100.0 * bloom_fp(fi.bits, fi.probes, p.entries)
        )?,
        None => writeln!(out, "filter: none")?,
    }
    writeln!(out, "blocks:")?;
    writeln!(out, "  {:<11} {:>10} {:>10} {:>10}  transform", "kind", "offset", "stored", "raw")?;
    match reader.layout() {
        Ok(layout) => {
            for bl in layout {
                writeln!(
                    out,
                    "  {:<11} {:>10} {:>10} {:>10}  {}",
                    kind_name(bl.kind),
                    bl.offset,
                    bl.stored_size,
                    bl.raw_size,
                    transform_name(bl.transform)
                )?;
            }
        }
        Err(e) => {
            let pr = Problem::from_error(reader.path(), &e);
            writeln!(out, "  LAYOUT ERROR: {pr}")?;
            problems.push(pr);
        }
    }
    let index = reader.index_entries();
    writeln!(out, "index: {} entries", index.len())?;
    for (i, e) in index.iter().enumerate() {
        writeln!(out, "  {i:>4}  {} -> block {}+{}", fmt::internal_key(b, &e.key), e.offset, e.size)?;
    }
    writeln!(out, "entries:")?;
    let mut shown = 0u64;
    let scanned = scan(reader, range, |k, v| {
        shown += 1;
        match ParsedKey::parse(k) {
            Some(pk) if pk.kind == ValueKind::Put => writeln!(out, "  {} => {}", fmt::internal_key(b, k), b.quoted(v))?,
            _ => writeln!(out, "  {}", fmt::internal_key(b, k))?,
        }
        Ok(())
    })?;
    if let Err(e) = scanned {
        let pr = Problem::from_error(reader.path(), &e);
        writeln!(out, "  SCAN ERROR: {pr}")?;
        problems.push(pr);
    }
    writeln!(out, "  ({shown} shown of {})", p.entries)?;
    match reader.verify() {
        Ok(r) => writeln!(out, "check: ok ({} data blocks, {} entries)", r.data_blocks, r.entries)?,
        Err(e) => {
            let pr = Problem::from_error(reader.path(), &e);
            writeln!(out, "check: FAILED: {pr}")?;
            problems.push(pr);
        }
    }
    Ok(if problems.is_empty() { Outcome::Ok } else { Outcome::Problems })
}

#[cfg(test)]
mod tests {
    use super::bloom_fp;

    #[test]
    fn blocked_bloom_estimate_is_a_little_above_the_classic_rate() {
        // 10 bits a key, 6 probes: the classic formula gives 0.84%; a blocked filter ~1%.
        let fp = bloom_fp(10_000_000, 6, 1_000_000);
        assert!((0.0085..0.0125).contains(&fp), "{fp}");
        assert_eq!(bloom_fp(0, 6, 10), 1.0);
        assert!(bloom_fp(512, 6, 0) < 1e-12);
    }
}
