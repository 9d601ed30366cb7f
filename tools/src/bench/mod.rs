//! `kho bench`: a db_bench-compatible benchmark. It takes db_bench's flags and benchmark
//! names and prints db_bench's line shape (`NAME : X micros/op Y ops/sec S seconds N operations; Z MB/s`), so
//! `../shared/bench/compare.sh` can put kho and RocksDB side by side, followed by latency
//! percentiles, write amplification, disk bytes and peak memory.
//!
//! `--encrypt=1` runs encrypted at rest (under `--key-file`, or a random key held only in
//! memory for the run); `--encrypt=both` runs each benchmark on a plaintext database, then
//! the same benchmark on an encrypted one (`NAME+enc` lines; `--db DIR` then holds
//! `DIR/plain` and `DIR/encrypted`), and prints the encrypted/plaintext ratio of each. The two
//! databases are open side by side, so one's background compactions can overlap the other's
//! run: compare ratios over several runs, on an idle machine.

mod gen;
mod report;
mod workloads;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use kho::crypt::{Encryption, KeyFileProvider, SecretKey};

use crate::keys::Keys;

pub use workloads::Workload;

/// Flags, named and defaulted as db_bench's.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Comma-separated benchmarks: fillseq, fillrandom, overwrite, fillsync, readrandom,
    /// seekrandom, readseq, readreverse, readwhilewriting, deleterandom, compact (a full
    /// `compact_range`), stats; record layer: ingest (`--num` synthetic records with their
    /// national-ID index, fresh store), import (the same population's first `--num` records
    /// bulk-loaded with `Store::import`, fresh store), personlookup (`Store::person` of random persons),
    /// feedread (with `--feed=1`: drain the change feed `ingest` wrote).
    #[arg(long, default_value = "fillseq,fillrandom,overwrite,readrandom,seekrandom,readseq,readreverse")]
    pub benchmarks: String,
    /// Number of keys.
    #[arg(long, default_value_t = 1_000_000)]
    pub num: u64,
    /// Number of reads (default: `num`).
    #[arg(long)]
    pub reads: Option<u64>,
    /// Key size in bytes (at least 8).
    #[arg(long = "key_size", default_value_t = 16)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long = "value_size", default_value_t = 100)]
    pub value_size: usize,
    /// Fraction of a value zstd can remove (0.5: half-compressible values).
    #[arg(long = "compression_ratio", default_value_t = 0.5)]
    pub compression_ratio: f64,
    /// Concurrent threads per benchmark.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Fsync every write (0/1).
    #[arg(long, default_value = "0", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub sync: bool,
    /// `next()` calls after each seek in seekrandom.
    #[arg(long = "seek_nexts", default_value_t = 0)]
    pub seek_nexts: u64,
    /// Print a latency histogram summary (0/1); percentiles are always printed.
    #[arg(long, default_value = "0", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub histogram: bool,
    /// Database directory (default: a fresh temporary directory).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Seed for key choice.
    #[arg(long, default_value_t = 301)]
    pub seed: u64,
    /// Memtable size in bytes (db_bench's `--write_buffer_size`).
    #[arg(long = "write_buffer_size", default_value_t = 64 << 20)]
    pub write_buffer_size: usize,
    /// Memtables in memory at once, the active one included (db_bench's
    /// `--max_write_buffer_number`: `Options::max_immutable_memtables` + 1, at least 2);
    /// default: the engine's.
    #[arg(long = "max_write_buffer_number", value_parser = clap::value_parser!(u64).range(2..))]
    pub max_write_buffer_number: Option<u64>,
    /// Nice value the compaction thread adds to the process's (Linux; 0..=19); default: the
    /// engine's (`Options::compaction_thread_nice`).
    #[arg(long = "compaction_thread_nice")]
    pub compaction_thread_nice: Option<i32>,
    /// Block cache capacity in bytes (db_bench's `--cache_size`).
    #[arg(long = "cache_size", default_value_t = 64 << 20)]
    pub cache_size: usize,
    /// zstd level for SSTable blocks (0: store raw).
    #[arg(long = "compression_level", default_value_t = 3, allow_negative_numbers = true)]
    pub compression_level: i32,
    /// zstd level per LSM level, comma-separated (`1,1,3`: levels 0 and 1 at 1, level 2 at
    /// 3, deeper levels at `--compression_level`); empty: the engine's default.
    #[arg(long = "compression_per_level", value_delimiter = ',', allow_negative_numbers = true)]
    pub compression_per_level: Option<Vec<i32>>,
    /// Uncompressed data block size in bytes (db_bench's `--block_size`).
    #[arg(long = "block_size", default_value_t = 4096)]
    pub block_size: usize,
    /// Bloom filter bits per key.
    #[arg(long = "bloom_bits", default_value_t = 10)]
    pub bloom_bits: u32,
    /// `ingest`: records per `Store` batch (each batch is one atomic engine write).
    #[arg(long = "records_per_batch", default_value_t = 1000)]
    pub records_per_batch: usize,
    /// Record workloads: open the store with the change feed on (0/1), with a subscription
    /// `bench` that `feedread` drains.
    #[arg(long, default_value = "0", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub feed: bool,
    /// Record workloads: open the store with the audit log on (0/1); `ingest` commits its
    /// batches and `personlookup` reads as an actor, every access recorded (docs/privacy.md).
    #[arg(long, default_value = "0", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub audit: bool,
    /// Record workloads: seal payloads under person keys (0/1) kept in a vault database
    /// beside the benchmark's (`DIR-vault`; crypto-shredding, docs/privacy.md).
    #[arg(long = "person-keys", default_value = "0", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub person_keys: bool,
    /// Encryption at rest: 0 (off), 1 (on), both (each benchmark plaintext, then encrypted,
    /// and the ratio). The key: --key-file (created if absent), else a random one in memory.
    #[arg(long, default_value = "0", value_enum)]
    pub encrypt: Encrypt,
}

/// `--encrypt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encrypt {
    /// Plaintext.
    #[value(name = "0", alias = "false")]
    Off,
    /// Encrypted at rest.
    #[value(name = "1", alias = "true")]
    On,
    /// Plaintext, then encrypted, with the ratio.
    #[value(name = "both")]
    Both,
}

fn parse_flag(s: &str) -> Result<bool, String> {
    match s {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("expected 0/1 or true/false, got {other}")),
    }
}

/// The encryption of the encrypted runs: the key file's master key (created if absent), or a
/// random key that lives as long as the run.
fn encryption(keys: &Keys) -> anyhow::Result<Encryption> {
    let provider = match keys.file() {
        Some(path) => {
            KeyFileProvider::open_or_create(path).with_context(|| format!("--key-file {}", path.display()))?
        }
        None => KeyFileProvider::from_key("(a random key for this run)", SecretKey::random()?),
    };
    Ok(Encryption::new(Arc::new(provider)))
}

/// Runs every benchmark named in `--benchmarks`, in order, on one database directory (two
/// with `--encrypt=both`).
pub fn run(args: BenchArgs, keys: &Keys) -> anyhow::Result<()> {
    if args.key_size < 8 {
        bail!("--key_size must be at least 8");
    }
    let tmp;
    let dir = match &args.db {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary database directory")?;
            tmp.path().join("kho-bench")
        }
    };
    report::print_header(&args, &dir);
    let workloads: Vec<Workload> = args
        .benchmarks
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<anyhow::Result<_>>()?;
    if args.encrypt != Encrypt::Both {
        let enc = match args.encrypt {
            Encrypt::On => Some(encryption(keys)?),
            _ => None,
        };
        report::print_encryption(enc.is_some());
        let mut bench = workloads::Bench::new(args.clone(), dir, enc, "");
        for w in workloads {
            bench.run(w)?;
        }
        return bench.close();
    }
    report::print_encryption(true);
    let mut plain = workloads::Bench::new(args.clone(), dir.join("plain"), None, "");
    let mut encrypted = workloads::Bench::new(args.clone(), dir.join("encrypted"), Some(encryption(keys)?), "+enc");
    let mut ratios = Vec::new();
    for w in workloads {
        let p = plain.run(w)?;
        let e = encrypted.run(w)?;
        if let (Some(p), Some(e)) = (p, e) {
            let ratio = e / p.max(1e-9);
            println!("{:<12} : encrypted/plaintext {ratio:.2}x ops/sec", w.name());
            ratios.push((w.name(), ratio));
        }
    }
    plain.close()?;
    encrypted.close()?;
    if !ratios.is_empty() {
        println!("------------------------------------------------");
        println!("encrypted vs plaintext (ops/sec ratio):");
        for (name, ratio) in ratios {
            println!("  {name:<14} {ratio:.2}x");
        }
    }
    Ok(())
}
