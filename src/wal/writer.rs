//! [`LogWriter`]: appends framed records to a log file, sealing them when the file is
//! encrypted.
//!
//! An encrypted log starts with one plaintext segment-header record (written by
//! [`LogWriter::encrypted`]); every later record is sealed with the file's cipher under
//! nonce = its counter (1, 2, ...: the header is record 0), so a dropped, repeated or
//! reordered record does not authenticate.

use super::format::{
    encode_header, MAX_PAYLOAD, RECORD_AAD, TRANSFORM_NONE, TRANSFORM_SEALED, TRANSFORM_SEGMENT_HEADER,
};
use crate::crypt::{record_nonce, FileCipher, SegmentHeader, TAG_LEN};
use crate::vfs::WritableFile;
use crate::{Error, Result};

/// Seals the records of an encrypted log.
struct RecordSealer {
    cipher: FileCipher,
    /// The counter of the last record written (the header is 0).
    counter: u64,
    sealed: Vec<u8>,
}

/// Appends records to one log file. Not thread-safe; the write path owns it.
pub(crate) struct LogWriter {
    file: Box<dyn WritableFile>,
    scratch: Vec<u8>,
    sealer: Option<RecordSealer>,
}

impl LogWriter {
    /// A plaintext log.
    pub(crate) fn new(file: Box<dyn WritableFile>) -> Self {
        LogWriter { file, scratch: Vec::new(), sealer: None }
    }

    /// An encrypted log: appends `header` (not yet durable) as its first record; every
    /// record after it is sealed with `cipher`.
    pub(crate) fn encrypted(file: Box<dyn WritableFile>, header: &SegmentHeader, cipher: FileCipher) -> Result<Self> {
        let mut w = LogWriter::new(file);
        let h = header.encode();
        w.scratch.extend_from_slice(&encode_header(&h, TRANSFORM_SEGMENT_HEADER));
        w.scratch.extend_from_slice(&h);
        w.file.append(&w.scratch)?;
        w.sealer = Some(RecordSealer { cipher, counter: 0, sealed: Vec::new() });
        Ok(w)
    }

    /// Frames every payload as its own record and hands them to the file in one append.
    /// The bytes are not durable until [`Self::sync`].
    pub(crate) fn add_records<'a>(&mut self, payloads: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
        self.scratch.clear();
        for p in payloads {
            if p.len() > MAX_PAYLOAD as usize - TAG_LEN {
                return Err(Error::InvalidArgument(format!("log record of {} bytes is too large", p.len())));
            }
            match &mut self.sealer {
                None => {
                    self.scratch.extend_from_slice(&encode_header(p, TRANSFORM_NONE));
                    self.scratch.extend_from_slice(p);
                }
                Some(s) => {
                    s.counter += 1;
                    s.sealed.clear();
                    s.cipher.seal_into(&record_nonce(s.counter), RECORD_AAD, p, &mut s.sealed)?;
                    self.scratch.extend_from_slice(&encode_header(&s.sealed, TRANSFORM_SEALED));
                    self.scratch.extend_from_slice(&s.sealed);
                }
            }
        }
        self.file.append(&self.scratch)?;
        self.file.flush()
    }

    /// Appends one record.
    pub(crate) fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        self.add_records(std::iter::once(payload))
    }

    /// Makes every appended record durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync()
    }
}
