//! [`LogWriter`]: appends framed records to a log file.

use super::format::{encode_header, MAX_PAYLOAD, TRANSFORM_NONE};
use crate::vfs::WritableFile;
use crate::{Error, Result};

/// Appends records to one log file. Not thread-safe; the write path owns it.
pub(crate) struct LogWriter {
    file: Box<dyn WritableFile>,
    scratch: Vec<u8>,
}

impl LogWriter {
    pub(crate) fn new(file: Box<dyn WritableFile>) -> Self {
        LogWriter { file, scratch: Vec::new() }
    }

    /// Frames every payload as its own record and hands them to the file in one append.
    /// The bytes are not durable until [`Self::sync`].
    pub(crate) fn add_records<'a>(&mut self, payloads: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
        self.scratch.clear();
        for p in payloads {
            if p.len() > MAX_PAYLOAD as usize {
                return Err(Error::InvalidArgument(format!("log record of {} bytes is too large", p.len())));
            }
            self.scratch.extend_from_slice(&encode_header(p, TRANSFORM_NONE));
            self.scratch.extend_from_slice(p);
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
