//! Reading a database directory file by file, without opening the database: the listing
//! (file kind from the name, as LevelDB's `dumpfile` does), walking a log record by record
//! with every damaged region reported, and loading and replaying the manifest. In an
//! encrypted database the logs and the manifest are opened with the key registry
//! (`keys.rs`); without it an encrypted file is `Error::KeyNeeded`.
//!
//! Shared by `dump summary`, `dump wal`, `dump manifest` and `verify`, which must keep going
//! where `Db::open` would stop at the first problem.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kho::crypt::{Keyring, SegmentHeader};
use kho::inspect::filename::{decode_current, manifest_name, parse_file_name, FileKind, CURRENT};
use kho::inspect::version::{FileMeta, Inconsistency, VersionBuilder, VersionEdit, MAX_LEVELS};
use kho::inspect::wal::{DroppedTail, LogReader, LogRecord, TailState};
use kho::Error;

/// The files of a database directory, by kind. Numbers are sorted ascending.
#[derive(Debug, Default)]
pub struct Listing {
    /// `CURRENT` exists.
    pub current: bool,
    /// `MANIFEST-NNNNNN` numbers.
    pub manifests: Vec<u64>,
    /// `NNNNNN.log` numbers.
    pub logs: Vec<u64>,
    /// `NNNNNN.sst` numbers.
    pub tables: Vec<u64>,
    /// `KEYRING` exists (the database is encrypted).
    pub keyring: bool,
    /// `KEYS-NNNNNN` numbers (key registries).
    pub registries: Vec<u64>,
    /// `*.tmp` names.
    pub temps: Vec<String>,
    /// Names kho does not own (besides `LOCK`).
    pub foreign: Vec<String>,
}

/// Lists `dir`.
pub fn list(dir: &Path) -> anyhow::Result<Listing> {
    let mut l = Listing::default();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        match parse_file_name(&name) {
            Some(FileKind::Current) => l.current = true,
            Some(FileKind::Manifest(n)) => l.manifests.push(n),
            Some(FileKind::Log(n)) => l.logs.push(n),
            Some(FileKind::Table(n)) => l.tables.push(n),
            Some(FileKind::Temp) => l.temps.push(name),
            Some(FileKind::Keyring) => l.keyring = true,
            Some(FileKind::Keys(n)) => l.registries.push(n),
            Some(FileKind::Lock) => {}
            _ => l.foreign.push(name),
        }
    }
    l.manifests.sort_unstable();
    l.logs.sort_unstable();
    l.tables.sort_unstable();
    l.registries.sort_unstable();
    l.temps.sort();
    l.foreign.sort();
    Ok(l)
}

/// What walking a log meets, in file order.
#[derive(Debug)]
pub enum LogEvent {
    /// An intact record.
    Record(LogRecord),
    /// Damaged bytes followed by an intact record at `skipped.end`.
    Damage {
        /// Where the damage starts.
        offset: u64,
        /// What was wrong.
        what: String,
        /// The bytes passed over to reach the next intact record.
        skipped: Range<u64>,
    },
}

/// How a walked log ended: clean or torn, and the torn tail as recovery would drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEnd {
    /// Clean or torn.
    pub tail: TailState,
    /// The torn tail (where, how many bytes and records, why), `None` when clean.
    pub dropped: Option<DroppedTail>,
    /// The segment header of an encrypted log (`None`: plaintext).
    pub header: Option<SegmentHeader>,
}

/// Walks every record of the log bytes `data` (read from `path`), handing each intact record
/// and each damaged region to `f`; returns how the log ended. Nothing is skipped silently.
/// An encrypted log is opened with `keys` (every sealed record authenticated; one that does
/// not is damage like any other); without them it is `Error::KeyNeeded`.
pub fn walk_log(
    data: bytes::Bytes,
    path: &Path,
    keys: Option<&Arc<Keyring>>,
    mut f: impl FnMut(LogEvent) -> anyhow::Result<()>,
) -> anyhow::Result<LogEnd> {
    let mut reader = LogReader::new(data, path);
    if let Some(k) = keys {
        reader = reader.with_keys(Arc::clone(k));
    }
    loop {
        match reader.next_record() {
            Ok(Some(rec)) => f(LogEvent::Record(rec))?,
            Ok(None) => {
                let tail = reader.tail().cloned().unwrap_or(TailState::Clean);
                let header = reader.segment_header().cloned();
                return Ok(LogEnd { tail, dropped: reader.dropped_tail(), header });
            }
            Err(Error::Corruption { offset, what, .. }) => {
                let Some(skipped) = reader.resync() else {
                    anyhow::bail!(
                        "{}: reader stopped at {} and cannot resynchronise: {what}",
                        path.display(),
                        offset.map_or("an unknown offset".to_owned(), |o| o.to_string())
                    );
                };
                // The log reader always names the damaged record; it is where resync starts.
                f(LogEvent::Damage { offset: offset.unwrap_or(skipped.start), what, skipped })?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<bytes::Bytes, Error> {
    std::fs::read(path).map(bytes::Bytes::from).map_err(|source| Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// One record of a manifest.
#[derive(Debug)]
pub struct ManifestRecord {
    /// File offset of the record's header.
    pub offset: u64,
    /// Payload bytes.
    pub len: usize,
    /// The decoded edit, or (file offset, what) when the payload does not decode.
    pub edit: Result<VersionEdit, (u64, String)>,
}

/// A problem found in a file: `file offset what`, the line `kho verify` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file at fault.
    pub file: PathBuf,
    /// Byte offset within it, when the problem has one.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl Problem {
    /// A problem at `offset` of `file`.
    pub fn at(file: impl Into<PathBuf>, offset: impl Into<Option<u64>>, what: impl Into<String>) -> Self {
        Problem { file: file.into(), offset: offset.into(), what: what.into() }
    }

    /// The problem a library error describes, `file` standing in when it names none.
    pub fn from_error(file: &Path, e: &Error) -> Self {
        match e {
            Error::Corruption { file, offset, what } => Problem::at(file, *offset, what),
            Error::Io { path, source, op } => Problem::at(path, None, format!("cannot {op}: {source}")),
            // Only seen once the registry was looked for: it is missing or unusable.
            Error::KeyNeeded { path } => {
                Problem::at(path, None, "encrypted, but no key registry could be opened to read it")
            }
            other => Problem::at(file, None, other.to_string()),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} {o} {}", self.file.display(), self.what),
            None => write!(f, "{} - {}", self.file.display(), self.what),
        }
    }
}

/// The manifest named by `CURRENT` (or the only manifest, when `CURRENT` is unusable), read
/// record by record.
#[derive(Debug)]
pub struct Manifest {
    /// Its number.
    pub number: u64,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Every intact record, in order.
    pub records: Vec<ManifestRecord>,
    /// Damaged regions followed by intact records, as problems.
    pub damage: Vec<Problem>,
    /// How the log ended.
    pub tail: TailState,
    /// The torn tail recovery drops (under the default recovery mode; under absolute
    /// consistency the open fails instead), `None` when the manifest ends clean.
    pub dropped_tail: Option<DroppedTail>,
    /// The segment header of an encrypted manifest (`None`: plaintext).
    pub header: Option<SegmentHeader>,
}

/// Which manifest `CURRENT` names, and the problem with `CURRENT` if any. When `CURRENT` is
/// missing or damaged and exactly one manifest exists, that one is used (and the problem
/// still reported).
pub fn current_manifest(dir: &Path, listing: &Listing) -> (Option<u64>, Option<Problem>) {
    let path = dir.join(CURRENT);
    let named = if listing.current {
        read(&path).and_then(|data| decode_current(&path, &data)).map_err(|e| Problem::from_error(&path, &e))
    } else {
        Err(Problem::at(&path, None, "missing: the database has no CURRENT pointer"))
    };
    match named {
        Ok(n) if listing.manifests.contains(&n) => (Some(n), None),
        Ok(n) => (None, Some(Problem::at(&path, 0, format!("names {} which does not exist", manifest_name(n))))),
        Err(p) => match listing.manifests.as_slice() {
            [only] => (Some(*only), Some(p)),
            _ => (None, Some(p)),
        },
    }
}

/// Reads manifest `number` of `dir` record by record, decoding each edit (opening an
/// encrypted one with `keys`).
pub fn read_manifest(dir: &Path, number: u64, keys: Option<&Arc<Keyring>>) -> Result<Manifest, Error> {
    let path = dir.join(manifest_name(number));
    read_manifest_file(&path, number, keys)
}

/// Reads the manifest at `path` record by record, decoding each edit (opening an encrypted
/// one with `keys`; without them it is `Error::KeyNeeded`).
pub fn read_manifest_file(path: &Path, number: u64, keys: Option<&Arc<Keyring>>) -> Result<Manifest, Error> {
    let data = read(path)?;
    let size = data.len() as u64;
    let mut records = Vec::new();
    let mut damage = Vec::new();
    let end = walk_log(data, path, keys, |ev| {
        match ev {
            LogEvent::Record(rec) => {
                let payload_at = rec.offset + kho::inspect::wal::HEADER_LEN as u64;
                let edit = VersionEdit::decode(&rec.payload).map_err(|(at, what)| (payload_at + at as u64, what));
                records.push(ManifestRecord { offset: rec.offset, len: rec.payload.len(), edit });
            }
            LogEvent::Damage { offset, what, skipped } => damage.push(Problem::at(
                path,
                offset,
                format!("{what} (bytes {}..{} unreadable)", skipped.start, skipped.end),
            )),
        }
        Ok(())
    })
    .map_err(|e| match e.downcast::<Error>() {
        Ok(engine) => engine, // a key needed, an I/O error: not damage
        Err(e) => Error::Corruption { file: path.to_path_buf(), offset: None, what: e.to_string() },
    })?;
    Ok(Manifest {
        number,
        path: path.to_path_buf(),
        size,
        records,
        damage,
        tail: end.tail,
        dropped_tail: end.dropped,
        header: end.header,
    })
}

/// The live file set and counters that replaying a manifest's edits through
/// [`VersionBuilder`] gives (as recovery does), plus every inconsistency found on the way.
#[derive(Debug, Default)]
pub struct State {
    /// Live tables per level (index = level), by file number.
    pub levels: Vec<BTreeMap<u64, FileMeta>>,
    /// Logs numbered below this hold only flushed data.
    pub log_number: Option<u64>,
    /// The next file number to hand out.
    pub next_file_number: Option<u64>,
    /// The last sequence number in a flushed table.
    pub last_sequence: Option<u64>,
    /// Every check an edit failed (at the offset of its record), then every check of the
    /// end state (missing counters, no offset).
    pub inconsistencies: Vec<Inconsistency>,
}

impl State {
    /// The level of live table `number`.
    pub fn find(&self, number: u64) -> Option<(usize, &FileMeta)> {
        self.levels.iter().enumerate().find_map(|(l, files)| files.get(&number).map(|f| (l, f)))
    }

    /// Every live table as (level, meta), level by level, by number.
    pub fn files(&self) -> impl Iterator<Item = (usize, &FileMeta)> {
        self.levels.iter().enumerate().flat_map(|(l, fs)| fs.values().map(move |f| (l, f)))
    }
}

impl Manifest {
    /// Replays the edits that decoded, in order, through the builder recovery uses, keeping
    /// going past inconsistencies. The tools do not know the database's `num_levels`, so
    /// levels are checked against [`MAX_LEVELS`], the most any database has.
    pub fn replay(&self) -> State {
        let mut builder = VersionBuilder::new(MAX_LEVELS as usize);
        let mut inconsistencies = Vec::new();
        for r in &self.records {
            if let Ok(e) = &r.edit {
                inconsistencies.extend(builder.apply(e, Some(r.offset)));
            }
        }
        inconsistencies.extend(builder.finish());
        State {
            log_number: builder.log_number(),
            next_file_number: builder.next_file_number(),
            last_sequence: builder.last_sequence(),
            levels: builder.into_levels(),
            inconsistencies,
        }
    }
}

/// True when the file at `path` no longer has length `size`, now or after a short wait: a
/// running writer is appending to it, so a torn tail read a moment ago was a write in flight.
pub fn still_growing(path: &Path, size: u64) -> bool {
    let len = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len() != size {
        return true;
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    len() != size
}
