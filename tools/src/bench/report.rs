//! Printing: db_bench's header and result line, then kho's extra figures.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::BenchArgs;

/// The figures of one finished benchmark.
pub struct Outcome<'a> {
    pub name: &'a str,
    pub ops: u64,
    pub bytes: u64,
    pub threads: usize,
    pub elapsed: Duration,
    pub found: Option<u64>,
    pub hist: &'a Histogram<u64>,
    pub stats: kho::DbStats,
    pub dir: &'a Path,
    pub verbose_histogram: bool,
    /// Peak anonymous resident memory so far, in bytes ([`AnonPeak`]).
    pub anon_peak: u64,
}

pub fn print_header(args: &BenchArgs, dir: &Path) {
    println!("kho:        version {}", env!("CARGO_PKG_VERSION"));
    println!("Keys:       {} bytes each", args.key_size);
    println!(
        "Values:     {} bytes each ({} bytes after compression)",
        args.value_size,
        (args.value_size as f64 * args.compression_ratio) as usize
    );
    println!("Entries:    {}", args.num);
    println!("Threads:    {}", args.threads);
    println!("Database:   {}", dir.display());
    println!(
        "Compression: zstd level {}, {}-byte blocks, bloom {} bits/key",
        args.compression_level, args.block_size, args.bloom_bits
    );
    println!("------------------------------------------------");
}

/// The header's encryption line.
pub fn print_encryption(on: bool) {
    println!("Encryption: {}", if on { "AES-256-GCM (encryption at rest)" } else { "none" });
}

/// db_bench's line: `name : X micros/op Y ops/sec S seconds N operations; Z MB/s (found ...)`,
/// then percentiles
/// and kho's engine figures on the following lines.
pub fn print_outcome(o: &Outcome<'_>) {
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let ops = o.ops.max(1);
    let micros_per_op = secs * 1e6 * o.threads as f64 / ops as f64;
    let ops_per_sec = ops as f64 / secs;
    // Exactly db_bench's shape (RocksDB 7.x): `ops/sec` stands alone as a field, which
    // `compare.sh` relies on.
    let mut line = format!(
        "{:<12} : {:>11.3} micros/op {:.0} ops/sec {:.3} seconds {} operations;",
        o.name, micros_per_op, ops_per_sec, secs, o.ops
    );
    if o.bytes > 0 {
        line += &format!(" {:>6.1} MB/s", o.bytes as f64 / 1_048_576.0 / secs);
    }
    if let Some(found) = o.found {
        line += &format!(" ({found} of {} found)", o.ops);
    }
    println!("{line}");
    if !o.hist.is_empty() {
        let us = |q: f64| o.hist.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:<12}  latency us: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} samples)",
            "",
            us(0.5),
            us(0.99),
            us(0.999),
            o.hist.max() as f64 / 1000.0,
            o.hist.len()
        );
    }
    if o.verbose_histogram {
        for q in [0.5, 0.75, 0.9, 0.99, 0.999, 0.9999] {
            println!("{:<12}  p{:<7} {:>10.2} us", "", q * 100.0, o.hist.value_at_quantile(q) as f64 / 1000.0);
        }
    }
    println!(
        "{:<12}  write-amp {:.2}  disk {:.1} MB  peak-mem {:.1} MB (anon {:.1} MB)  L0 files {}  stalls {} ({:.2} s)",
        "",
        o.stats.write_amplification(),
        dir_bytes(o.dir) as f64 / 1_048_576.0,
        peak_rss_bytes() as f64 / 1_048_576.0,
        o.anon_peak as f64 / 1_048_576.0,
        o.stats.levels.first().map_or(0, |l| l.files),
        o.stats.write_slowdowns + o.stats.write_stops,
        o.stats.stall_micros as f64 / 1e6
    );
}

/// Bytes of every file in `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// The process's peak resident set size (`VmHWM` in /proc/self/status), 0 if unknown. It
/// counts the pages of memory-mapped tables a read or compaction touched (page cache the
/// kernel can drop), so it overstates what kho allocates: see [`AnonPeak`].
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:").map_or(0, |kb| kb * 1024)
}

/// A field of /proc/self/status in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
}

/// The peak of the process's anonymous resident memory (`RssAnon`: heap, memtables, block
/// cache — what the memory bound is about), sampled every 20 ms by a background thread.
pub struct AnonPeak {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl AnonPeak {
    /// Starts sampling.
    pub fn start() -> AnonPeak {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kib.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib("RssAnon:") {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        AnonPeak { peak_kib, stop }
    }

    /// The highest sample so far, in bytes.
    pub fn bytes(&self) -> u64 {
        if let Some(kib) = status_kib("RssAnon:") {
            self.peak_kib.fetch_max(kib, Ordering::Relaxed);
        }
        self.peak_kib.load(Ordering::Relaxed) * 1024
    }
}

impl Drop for AnonPeak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
