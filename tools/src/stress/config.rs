//! The `kho stress` command line and the settings a run derives from it: the operation mix,
//! durations, and the (seed-randomized) database options of each cycle.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use kho::crypt::{Encryption, KeyFileProvider};

use super::codec::MAX_KEYS;
use super::rng::{derive, Rng};

/// `kho stress`: concurrent stress, process-crash and fault-injection testing.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Exit status: 0 when every check passed, 1 on any violation or unexpected error.\n\
See docs/testing.md for what is checked and the long-run commands.")]
pub struct StressArgs {
    /// Run directory: holds the database (`db/`) and the expected state (`expected.state`).
    /// Reset at the start of a run; a non-empty directory that is not a stress run is refused.
    #[arg(long)]
    pub dir: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// How long to run: `30s`, `5m`, `1500ms`, `1h` (a bare number is seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seed of every random choice (threads, keys, kill times, faults, options). Default: from
    /// the clock, printed so the run can be repeated.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Size of the key space (keys `k00000000` ..).
    #[arg(long, default_value_t = 10_000)]
    pub keys: u32,
    /// Run the workload in a child process, kill it with SIGKILL at random moments, recover and
    /// verify that no acknowledged write is lost and nothing never written appears.
    #[arg(long, conflicts_with = "faults")]
    pub crash: bool,
    /// Run on the in-memory FaultFs, injecting EIO/ENOSPC on writes and reads, short writes,
    /// fsyncs that drop unsynced pages, bit flips on write and read, and simulated power
    /// losses; errors must surface as `Err`, no read may return a wrong value, and every
    /// recovery must keep every write acknowledged with sync (see docs/testing.md for the
    /// rule after bit flips on write).
    #[arg(long)]
    pub faults: bool,
    /// Relative operation weights, e.g. `put=30,get=25,iter=10`; operations not listed get 0.
    /// Operations: put, delete, batch, get, iter, snapshot, flush, compact; record layer: rput
    /// (insert or upsert), rdelete, rget, person (query by national ID), erase (erase_person).
    #[arg(long, default_value = DEFAULT_MIX)]
    pub ops_mix: String,
    /// Percentage of writes issued with `sync = true`.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub sync_percent: u32,
    /// Largest value filler in bytes (values are 10 bytes of header plus 0..=this).
    #[arg(long, default_value_t = 200)]
    pub value_size: usize,
    /// Interval of the progress line on stderr.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress: Duration,
    /// Crash mode: how long the child runs before it is killed, `MIN..MAX` (uniform).
    #[arg(long, default_value = "200ms..2s", value_parser = parse_interval)]
    pub kill_interval: (Duration, Duration),
    /// Encrypt the database at rest, under --key-file (created if absent) or a fresh key in
    /// `stress.key` of the run directory. Plain and crash modes.
    #[arg(long, conflicts_with = "faults")]
    pub encrypt: bool,

    /// Internal: run as the crash-mode child of cycle N.
    #[arg(long, hide = true)]
    pub child: Option<u16>,
    /// Test hook: now and then acknowledge a synced put in the oracle without writing it (a
    /// lost write). The run must fail.
    #[arg(long, hide = true)]
    pub inject_lost_write: bool,
    /// Test hook: now and then write a value behind the oracle's back (a write never issued).
    /// The run must fail.
    #[arg(long, hide = true)]
    pub inject_phantom_write: bool,
}

/// The default mix, per mille.
pub const DEFAULT_MIX: &str =
    "put=300,delete=80,batch=100,get=250,iter=140,snapshot=128,flush=1,compact=1,rput=60,rdelete=15,rget=40,person=20,erase=2";

/// One kind of workload operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Delete,
    Batch,
    Get,
    Iter,
    Snapshot,
    Flush,
    Compact,
    RecordPut,
    RecordDelete,
    RecordGet,
    PersonQuery,
    ErasePerson,
}

impl Op {
    pub const ALL: [Op; 13] = [
        Op::Put,
        Op::Delete,
        Op::Batch,
        Op::Get,
        Op::Iter,
        Op::Snapshot,
        Op::Flush,
        Op::Compact,
        Op::RecordPut,
        Op::RecordDelete,
        Op::RecordGet,
        Op::PersonQuery,
        Op::ErasePerson,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Delete => "delete",
            Op::Batch => "batch",
            Op::Get => "get",
            Op::Iter => "iter",
            Op::Snapshot => "snapshot",
            Op::Flush => "flush",
            Op::Compact => "compact",
            Op::RecordPut => "rput",
            Op::RecordDelete => "rdelete",
            Op::RecordGet => "rget",
            Op::PersonQuery => "person",
            Op::ErasePerson => "erase",
        }
    }
}

/// Relative weights of the operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsMix {
    weights: Vec<(Op, u64)>,
    total: u64,
}

impl OpsMix {
    /// Parses `name=weight,...`.
    pub fn parse(s: &str) -> anyhow::Result<OpsMix> {
        let mut weights: Vec<(Op, u64)> = Op::ALL.iter().map(|&op| (op, 0)).collect();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = part.split_once('=').with_context(|| format!("`{part}` is not name=weight"))?;
            let w: u64 = w.trim().parse().with_context(|| format!("weight of `{name}` is not a number"))?;
            match weights.iter_mut().find(|(op, _)| op.name() == name.trim()) {
                Some(slot) => slot.1 = w,
                None => bail!(
                    "unknown operation `{name}` (known: {})",
                    Op::ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        let total = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            bail!("the operation mix `{s}` has no operation with a positive weight");
        }
        Ok(OpsMix { weights, total })
    }

    /// Draws an operation.
    pub fn pick(&self, rng: &mut Rng) -> Op {
        let mut x = rng.below(self.total);
        for &(op, w) in &self.weights {
            if x < w {
                return op;
            }
            x -= w;
        }
        Op::Get
    }

    /// The canonical `name=weight` form (what a child is given).
    pub fn canonical(&self) -> String {
        self.weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(op, w)| format!("{}={w}", op.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Which driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Threads on the real file system; close, reopen and verify at the end.
    Plain,
    /// Parent of killed children.
    Crash,
    /// A child of the crash mode, cycle N.
    Child(u16),
    /// FaultFs with injected errors and power losses.
    Faults,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Plain => "plain (concurrent workload, clean reopen at the end)",
            Mode::Crash => "crash (child process killed with SIGKILL, recover, verify)",
            Mode::Child(_) => "crash child",
            Mode::Faults => "faults (FaultFs: EIO/ENOSPC, read errors, short writes, dropping fsyncs, bit flips, crash points, simulated power loss)",
        }
    }
}

/// Everything a run needs, resolved from the arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    pub args: StressArgs,
    pub mode: Mode,
    pub seed: u64,
    pub mix: OpsMix,
    /// `--encrypt`: the key file the database is encrypted under.
    pub key_file: Option<PathBuf>,
    /// Its key, once [`Settings::load_key`] has read (or created) it.
    encryption: OnceLock<Encryption>,
}

impl Settings {
    /// `key_file` is `--key-file` (the default key file of `--encrypt` is in the run directory).
    pub fn from_args(args: StressArgs, key_file: Option<&std::path::Path>) -> anyhow::Result<Arc<Settings>> {
        if args.threads == 0 || args.threads > 200 {
            bail!("--threads must be between 1 and 200");
        }
        if args.keys == 0 || args.keys > MAX_KEYS {
            bail!("--keys must be between 1 and {MAX_KEYS}");
        }
        if args.value_size > 1 << 20 {
            bail!("--value-size is at most 1 MiB");
        }
        let (lo, hi) = args.kill_interval;
        if lo > hi {
            bail!("--kill-interval MIN..MAX needs MIN <= MAX");
        }
        let mix = OpsMix::parse(&args.ops_mix)?;
        let mode = match (args.child, args.crash, args.faults) {
            (Some(cycle), _, _) => Mode::Child(cycle),
            (None, true, _) => Mode::Crash,
            (None, false, true) => Mode::Faults,
            (None, false, false) => Mode::Plain,
        };
        let seed = args.seed.unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            now.as_nanos() as u64 % 1_000_000_000
        });
        let key_file = args.encrypt.then(|| key_file.map_or_else(|| args.dir.join("stress.key"), |k| k.to_owned()));
        Ok(Arc::new(Settings { args, mode, seed, mix, key_file, encryption: OnceLock::new() }))
    }

    /// With `--encrypt`, reads the key file, creating it (mode 0600) if absent; call after the
    /// run directory is prepared (which would delete a key file inside it).
    pub fn load_key(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.key_file {
            let p = KeyFileProvider::open_or_create(path).with_context(|| format!("key file {}", path.display()))?;
            let _ = self.encryption.set(Encryption::new(Arc::new(p)));
        }
        Ok(())
    }

    /// The database options of `cycle`: small memtables and levels so flushes and compactions
    /// run constantly, with block size, compression, bloom filter and cache drawn from the seed
    /// (as RocksDB's crash test randomizes options) so that reopens also change the options.
    pub fn db_options(&self, cycle: u64, fs: Option<kho::vfs::SharedFs>) -> (kho::Options, String) {
        let mut rng = Rng::new(derive(self.seed, &[0x0b7, cycle]));
        let write_buffer_size = *rng.pick(&[32 << 10, 128 << 10, 512 << 10]);
        let block_size = *rng.pick(&[256, 1024, 4096]);
        let compression_level = *rng.pick(&[0, 1, 3]);
        let bloom_bits_per_key = *rng.pick(&[0, 10]);
        let block_cache_capacity = *rng.pick(&[0, 256 << 10, 8 << 20]);
        let level0_compaction_trigger = *rng.pick(&[2, 4]);
        let level_base_bytes = *rng.pick(&[256 << 10, 1 << 20]);
        let target_file_size = *rng.pick(&[64 << 10, 256 << 10]);
        let desc = format!(
            "write_buffer {} KiB, block {block_size} B, zstd {compression_level}, bloom {bloom_bits_per_key}, \
             cache {} KiB, L0 trigger {level0_compaction_trigger}, L1 {} KiB, file {} KiB",
            write_buffer_size >> 10,
            block_cache_capacity >> 10,
            level_base_bytes >> 10,
            target_file_size >> 10
        );
        let mut o = kho::Options {
            write_buffer_size,
            block_size,
            compression_level,
            bloom_bits_per_key,
            block_cache_capacity,
            level0_compaction_trigger,
            level_base_bytes,
            target_file_size,
            num_levels: 5,
            level_multiplier: 4,
            ..kho::Options::default()
        };
        if let Some(fs) = fs {
            o.fs = fs;
        }
        o.encryption = self.encryption.get().cloned();
        let desc = if o.encryption.is_some() { format!("{desc}, encrypted") } else { desc };
        (o, desc)
    }
}

/// Parses `30s`, `5m`, `1500ms`, `2h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration like 30s, 5m or 500ms"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `MIN..MAX` durations (or one duration for both).
pub fn parse_interval(s: &str) -> Result<(Duration, Duration), String> {
    match s.split_once("..") {
        Some((a, b)) => Ok((parse_duration(a)?, parse_duration(b)?)),
        None => parse_duration(s).map(|d| (d, d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_interval("100ms..1s"), Ok((Duration::from_millis(100), Duration::from_secs(1))));
    }

    #[test]
    fn mix_parses_picks_and_round_trips() {
        let mix = OpsMix::parse(DEFAULT_MIX).unwrap();
        assert_eq!(OpsMix::parse(&mix.canonical()).unwrap(), mix);
        let only_puts = OpsMix::parse("put=1").unwrap();
        let mut rng = Rng::new(3);
        assert!((0..100).all(|_| only_puts.pick(&mut rng) == Op::Put));
        assert!(OpsMix::parse("put=0").is_err());
        assert!(OpsMix::parse("jump=3").unwrap_err().to_string().contains("unknown operation"));
    }
}
