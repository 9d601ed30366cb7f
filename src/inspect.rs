//! **Inspection**: what `kho dump` and `kho verify` need to read a database's files one by
//! one, without opening the database — the log and manifest framing, write batches, version
//! edits and the checked version builder, SSTables, file names and internal keys. Everything
//! here decodes untrusted bytes: every decoder returns [`crate::Error::Corruption`] on bad
//! input and never panics (`tests/decoders_never_panic.rs`, `fuzz/`).
//!
//! An application does not need this module: [`crate::Db`] and [`crate::record::Store`]
//! are the API. The formats are specified in `docs/` (`wal-format.md`, `sst-format.md`,
//! `manifest-format.md`).

/// Log records (the framing of `NNNNNN.log` and `MANIFEST-NNNNNN`), and how a log ends.
pub mod wal {
    pub use crate::wal::{peek_segment_header, DroppedTail, LogReader, LogRecord, TailState, HEADER_LEN};
}

/// Write batches as logged: [`DecodedBatch`](batch::DecodedBatch) walks one.
pub mod batch {
    pub use crate::batch::{BatchError, BatchOps, DecodedBatch};
}

/// Version edits, the manifest, and the one checked builder that replays them.
pub mod version {
    pub use crate::version::{
        read_manifest, FileMeta, Inconsistency, ManifestEdits, VersionBuilder, VersionEdit, MAX_LEVELS,
    };
}

/// SSTables: a reader with a full check, its layout, footer, index and filter, and a writer
/// (for tests that craft tables).
pub mod sst {
    pub use crate::sst::{
        BlockInfo, BlockKind, FilterInfo, FooterInfo, IndexEntryInfo, SstIter, SstOptions, SstReader, SstWriter,
        TableProperties, Transform, VerifyReport, ENCRYPTED_FORMAT_VERSION, FORMAT_VERSION, TABLE_MAGIC,
    };
}

/// The names of a database's files.
pub mod filename {
    pub use crate::filename::{
        decode_current, decode_keyring, keys_name, log_path, manifest_name, parse_file_name, table_path, FileKind,
        CURRENT, KEYRING, LOCK,
    };
}

/// Internal keys: `user_key | seq << 8 | kind`, and their order.
pub mod key {
    pub use crate::key::{compare_internal, internal_key, ParsedKey, TRAILER_LEN};
}
