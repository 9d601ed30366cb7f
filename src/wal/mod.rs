//! The write-ahead log: an append-only file of checksummed, length-framed records.
//!
//! The same framing carries two kinds of payload: encoded [`crate::WriteBatch`]es in
//! `NNNNNN.log` files and encoded `VersionEdit`s in `MANIFEST-NNNNNN`. The byte layout is
//! specified in `docs/wal-format.md`; its constants live in [`format`].
//!
//! Invariants:
//! - A record is appended whole by one `append` call; a crash can only tear the records
//!   written since the last `sync`, which are at the end of the file.
//! - Readers never skip a damaged record silently: a damaged record followed by an intact
//!   one is [`crate::Error::Corruption`]; a damaged record with nothing intact after it is a
//!   *torn tail*, which the caller accepts or rejects according to its recovery mode.

pub(crate) mod format;
mod reader;
mod writer;

pub use format::HEADER_LEN;
pub(crate) use reader::read_settled;
pub use reader::{peek_segment_header, DroppedTail, LogReader, LogRecord, TailState};
pub(crate) use writer::LogWriter;
