//! The `kho` command-line tool: one subcommand per module, this file only dispatches.
//! Exit status: 0 done and clean, 1 done and found problems (damage, a failed check,
//! a key not found), 2 could not run (bad arguments, unreadable directory, an encrypted
//! database without `--key-file` or with the wrong one, ...).

mod audit;
mod backup;
mod bench;
mod checkpoint;
mod cluster;
mod dbdir;
mod demo;
mod dump;
mod erase;
mod feed;
mod fmt;
mod import;
mod json;
mod keys;
mod kv;
mod out;
mod record_cmds;
mod rekey;
mod stress;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::out::{Out, Outcome};

/// mimalloc instead of the system allocator: the engine allocates and frees a block buffer
/// for every block-cache miss, and glibc's per-thread heaps kept trimming and regrowing under
/// that pattern (`mprotect` and fresh-page faults were 15-20% of a sequential scan).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`mimalloc.h`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed pages before returning them to the OS. Its default (10 ms)
/// gave back the pages of evicted cache blocks between two misses, and re-faulting them
/// (`clear_page_erms`) was a quarter of a cold sequential scan; a second keeps steady-state
/// churn in process while still returning memory after a burst.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// kho: an embedded storage engine for person-centric records — tools to demo, benchmark,
/// inspect, verify and stress a database. The inspection commands (dump, get, scan, person,
/// record, verify) open the database read-only: they never write, never take the writer's
/// lock, and work on a copy of a damaged database or beside a running writer.
#[derive(Parser)]
#[command(name = "kho", version, about, max_term_width = 100)]
struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Show keys and values as hex, and read keys given on the command line as hex.
    #[arg(long, global = true)]
    hex: bool,
    /// The master key of an encrypted database: a file of 64 hex digits (or 32 bytes) that
    /// only its owner can read (mode 0600). Every command that reads or writes a database
    /// takes it; without it an encrypted database is refused (exit 2).
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic population, ingest it through the record store and show what
    /// was stored, one person's records and a province query.
    Demo(demo::DemoArgs),
    /// db_bench-compatible benchmark (`--benchmarks=fillseq,readrandom,...`).
    Bench(bench::BenchArgs),
    /// Show what is on disk, file by file.
    #[command(subcommand)]
    Dump(dump::Command),
    /// Print the value of one key.
    Get(kv::GetArgs),
    /// Print keys and values in order.
    Scan(kv::ScanArgs),
    /// Every record of one person (national ID) across collections, payloads as JSON.
    Person(record_cmds::PersonArgs),
    /// One record (collection and primary key), payload as JSON.
    Record(record_cmds::RecordArgs),
    /// Read every file end to end and check the national-ID index against the records;
    /// print one line `file offset what` per problem.
    Verify(verify::Args),
    /// Concurrent stress, process-crash (--crash) and fault-injection (--faults) testing.
    Stress(stress::StressArgs),
    /// A consistent, openable copy of the database at one sequence number (tables
    /// hard-linked); prints the sequence number.
    Checkpoint(checkpoint::Args),
    /// Print a subscription's changes as lines (JSON lines with --json) and acknowledge
    /// them; --list shows subscriptions, positions and lag.
    Feed(feed::Args),
    /// Incremental, verified backups: create, list, verify, restore, prune.
    #[command(subcommand)]
    Backup(backup::Command),
    /// Re-encrypt an encrypted database under its current data key (optionally a new one
    /// first) and retire the keys no file uses; optionally put it under a new master key.
    Rekey(rekey::Args),
    /// The audit log of a record store: list entries (by person, actor, time), verify the
    /// chain and signatures, checkpoint, prune, show or set the access policy, create a key.
    Audit(audit::Args),
    /// Bulk-load a JSON-lines file into one collection: every line checked first, then all
    /// records installed at once (or nothing, with each invalid line reported).
    Import(import::Args),
    /// Replicated record stores over Raft (kho-raft): `kho cluster demo`.
    #[command(subcommand)]
    Cluster(cluster::Command),
    /// Erase a person (destroying their person key first, with --vault) and write the
    /// erasure receipt; or check a receipt (--check-receipt FILE DIR).
    Erase(erase::Args),
}

fn main() -> ExitCode {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; any value is
    // valid for this option, and it is set before any thread of ours starts. Every CLI test
    // runs through here.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    let cli = Cli::parse();
    let mut out = Out::stdout(cli.json, cli.hex);
    let keys = keys::Keys::new(cli.key_file);
    let k = &keys;
    let result = match cli.command {
        Command::Demo(args) => demo::run(args, k).map(|()| Outcome::Ok),
        Command::Bench(args) => bench::run(args, k).map(|()| Outcome::Ok),
        Command::Dump(c) => dump::run(&mut out, &c, k),
        Command::Get(a) => kv::get(&mut out, &a, k),
        Command::Scan(a) => kv::scan(&mut out, &a, k),
        Command::Person(a) => record_cmds::person(&mut out, &a, k),
        Command::Record(a) => record_cmds::record(&mut out, &a, k),
        Command::Verify(a) => verify::run(&mut out, &a, k),
        Command::Checkpoint(a) => checkpoint::run(&mut out, &a, k),
        Command::Feed(a) => feed::run(&mut out, &a, k),
        Command::Backup(c) => backup::run(&mut out, &c, k),
        Command::Rekey(a) => rekey::run(&mut out, &a, k),
        Command::Audit(a) => audit::run(&mut out, &a, k),
        Command::Erase(a) => erase::run(&mut out, &a, k),
        Command::Import(a) => import::run(&mut out, &a, k),
        Command::Cluster(c) => cluster::run(c),
        Command::Stress(a) => stress::run(a, k).map(|passed| if passed { Outcome::Ok } else { Outcome::Problems }),
    };
    let result = result.and_then(|o| {
        std::io::Write::flush(&mut out)?;
        Ok(o)
    });
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS, // `kho dump ... | head`
        Err(e) => {
            // A missing or wrong key is one fixed line, whatever the command was doing.
            eprintln!("kho: error: {}", keys::key_error(&e).unwrap_or_else(|| message(&e)));
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The error and its causes on one line, leaving out causes the message already quotes
/// (kho's errors include their source).
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}
