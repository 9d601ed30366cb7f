//! [`LogReader`]: reads framed records back, telling a torn tail from mid-log corruption,
//! and opening the sealed records of an encrypted file.
//!
//! Framing decides first: a torn tail is a torn tail whatever it held. An intact frame is
//! then interpreted by its transform: a segment header (only at offset 0) sets up the file's
//! cipher from the reader's keys, and every later record must be sealed and authenticate
//! under the next counter; a plaintext record in an encrypted file, or anywhere when the
//! reader requires encryption, is corruption. A sealed record that fails its tag is
//! corruption in every recovery mode: a crash cannot produce a well-framed record with a
//! wrong tag.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::format::{
    decode_header, HEADER_LEN, RECORD_AAD, TRANSFORM_NONE, TRANSFORM_SEALED, TRANSFORM_SEGMENT_HEADER,
};
use crate::crypt::{record_nonce, CipherSource, FileCipher, FileRole, SegmentHeader};
use crate::filename::{parse_file_name, FileKind};
use crate::util::checksum::crc32;
use crate::{Error, Result};

/// One intact record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Byte offset of the record's header within the file.
    pub offset: u64,
    /// The record's payload.
    pub payload: Bytes,
}

/// How a log ended, known once [`LogReader::next_record`] has returned `Ok(None)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailState {
    /// The file ended exactly after an intact record.
    Clean,
    /// The bytes from `offset` to the end hold no intact record: a write torn by a crash.
    Torn {
        /// Where the damaged bytes start.
        offset: u64,
        /// What was wrong with the first damaged record.
        reason: String,
    },
}

/// A damaged region at the end of a log or manifest that recovery dropped (a torn tail):
/// reported through [`crate::DbStats`], the event listener and `kho verify`, never silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTail {
    /// The log or manifest.
    pub file: PathBuf,
    /// Where the dropped bytes start.
    pub offset: u64,
    /// How many bytes were dropped (to the end of the file).
    pub bytes: u64,
    /// Records in the dropped region, counting each intact header as one record and any
    /// trailing garbage as one more (at least 1).
    pub records: u64,
    /// What was wrong with the first dropped record.
    pub reason: String,
}

/// Reads records from the bytes of one log file.
#[derive(Debug)]
pub struct LogReader {
    data: Bytes,
    path: PathBuf,
    pos: usize,
    tail: Option<TailState>,
    /// Where the last `next_record` failed, for [`LogReader::resync`].
    error_at: Option<usize>,
    /// Where data keys come from; `None`: an encrypted file is [`Error::KeyNeeded`].
    keys: Option<Arc<dyn CipherSource>>,
    /// The file's segment header and cipher, once read.
    header: Option<SegmentHeader>,
    cipher: Option<FileCipher>,
    /// The counter of the last sealed record opened (the header is record 0).
    counter: u64,
    /// A plaintext record is corruption (a database whose files must all be encrypted).
    require_encrypted: bool,
    /// Return every intact frame as it is stored, without interpreting transforms.
    opaque: bool,
}

impl LogReader {
    /// A reader over `data`, the whole content of the log at `path` (used in errors, and
    /// for an encrypted file to tell its number).
    pub fn new(data: Bytes, path: impl Into<PathBuf>) -> Self {
        LogReader {
            data,
            path: path.into(),
            pos: 0,
            tail: None,
            error_at: None,
            keys: None,
            header: None,
            cipher: None,
            counter: 0,
            require_encrypted: false,
            opaque: false,
        }
    }

    /// Opens an encrypted file's records with `keys`; with `None` an encrypted file is
    /// [`Error::KeyNeeded`].
    pub(crate) fn with_cipher_source(mut self, keys: Option<Arc<dyn CipherSource>>) -> Self {
        self.keys = keys;
        self
    }

    /// Makes a plaintext record corruption: the file must be encrypted.
    pub(crate) fn require_encrypted(mut self, yes: bool) -> Self {
        self.require_encrypted = yes;
        self
    }

    /// The file's segment header, once the reader has passed it (encrypted files only).
    pub fn segment_header(&self) -> Option<&SegmentHeader> {
        self.header.as_ref()
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next intact record, `Ok(None)` at the end (see [`Self::tail`]), or
    /// [`Error::Corruption`] for a damaged record that intact records follow.
    pub fn next_record(&mut self) -> Result<Option<LogRecord>> {
        let r = self.read_next();
        self.error_at = r.is_err().then_some(self.pos);
        r
    }

    fn read_next(&mut self) -> Result<Option<LogRecord>> {
        loop {
            if self.tail.is_some() {
                return Ok(None);
            }
            let at = self.pos;
            if at == self.data.len() {
                self.tail = Some(TailState::Clean);
                return Ok(None);
            }
            let (len, transform) = match check_record(&self.data, at) {
                Ok(r) => r,
                Err(reason) => {
                    if let Some(next) = (at + 1..self.data.len()).find(|&p| check_record(&self.data, p).is_ok()) {
                        return Err(Error::corruption(
                            &self.path,
                            at as u64,
                            format!("{reason}; an intact record follows at offset {next}"),
                        ));
                    }
                    self.tail = Some(TailState::Torn { offset: at as u64, reason: reason.to_owned() });
                    return Ok(None);
                }
            };
            let start = at + HEADER_LEN;
            let payload = self.data.slice(start..start + len);
            let bad = |what: &str| Error::corruption(&self.path, at as u64, what);
            let record = match transform {
                _ if self.opaque => payload,
                TRANSFORM_NONE if self.cipher.is_some() => return Err(bad("plaintext record in an encrypted file")),
                TRANSFORM_NONE if self.require_encrypted => {
                    return Err(bad("plaintext record in a file this database requires to be encrypted"))
                }
                TRANSFORM_NONE => payload,
                TRANSFORM_SEGMENT_HEADER => {
                    self.read_segment_header(at, &payload)?;
                    self.pos = start + len;
                    continue;
                }
                TRANSFORM_SEALED => {
                    let cipher =
                        self.cipher.as_ref().ok_or_else(|| bad("sealed record in a file without a segment header"))?;
                    let plain = cipher.open(&record_nonce(self.counter + 1), RECORD_AAD, &payload).ok_or_else(|| {
                        bad("sealed record does not authenticate (altered, moved, dropped or reordered, or the wrong key)")
                    })?;
                    self.counter += 1;
                    Bytes::from(plain)
                }
                t => return Err(bad(&format!("record uses unknown transform {t}"))),
            };
            self.pos = start + len;
            return Ok(Some(LogRecord { offset: at as u64, payload: record }));
        }
    }

    /// Reads the segment header at `at` and sets up the file's cipher.
    fn read_segment_header(&mut self, at: usize, payload: &[u8]) -> Result<()> {
        let bad = |what: String| Error::corruption(&self.path, at as u64, what);
        if at != 0 || self.header.is_some() {
            return Err(bad("segment header not at the start of the file".into()));
        }
        let header = SegmentHeader::decode(payload).map_err(bad)?;
        let keys = self.keys.as_ref().ok_or_else(|| Error::KeyNeeded { path: self.path.clone() })?;
        let (role, number) = match self.path.file_name().and_then(|n| n.to_str()).and_then(parse_file_name) {
            Some(FileKind::Log(n) | FileKind::Manifest(n)) => (FileRole::Log, n),
            Some(FileKind::Keys(n)) => (FileRole::Registry, n),
            _ => return Err(bad("an encrypted file must keep its name: its number is part of its key".into())),
        };
        self.cipher = Some(keys.cipher_for(&header, role, number, &self.path)?);
        self.header = Some(header);
        Ok(())
    }

    /// How the log ended; `None` until the end was reached.
    pub fn tail(&self) -> Option<&TailState> {
        self.tail.as_ref()
    }

    /// The torn tail this log ended in, as a [`DroppedTail`]; `None` while the end is not
    /// reached or when the log ended clean.
    pub fn dropped_tail(&self) -> Option<DroppedTail> {
        let TailState::Torn { offset, reason } = self.tail.as_ref()? else {
            return None;
        };
        let start = usize::try_from(*offset).unwrap_or(self.data.len()).min(self.data.len());
        let (mut pos, mut records) = (start, 0u64);
        while pos < self.data.len() {
            records += 1;
            match decode_header(&self.data[pos..]) {
                Some(h) => pos = pos.saturating_add(HEADER_LEN + h.len as usize),
                None => break,
            }
        }
        Some(DroppedTail {
            file: self.path.clone(),
            offset: *offset,
            bytes: (self.data.len() - start) as u64,
            records: records.max(1),
            reason: reason.clone(),
        })
    }

    /// After [`Self::next_record`] returned [`Error::Corruption`], moves past the damaged
    /// bytes (or the intact record it could not use) to the next intact record and returns
    /// the skipped range `start..end`; `None`, without moving, unless the last call to
    /// `next_record` returned an error.
    ///
    /// For inspection tools that report every damaged region of a log (`kho dump wal`,
    /// `kho verify`). Recovery never calls it: kho does not skip damage silently.
    pub fn resync(&mut self) -> Option<std::ops::Range<u64>> {
        let at = self.error_at.take()?;
        let next = match check_record(&self.data, at) {
            // Intact but unusable (an unknown transform, a failed tag): skip exactly that
            // record, and its place in the counter.
            Ok((len, t)) => {
                self.counter += u64::from(t == TRANSFORM_SEALED);
                at + HEADER_LEN + len
            }
            Err(_) => (at + 1..self.data.len()).find(|&p| check_record(&self.data, p).is_ok())?,
        };
        self.pos = next;
        Some(at as u64..next as u64)
    }
}

/// The segment header an encrypted log, manifest or key registry starts with, read without
/// a key (the header is plaintext): `None` when `data` does not start with an intact
/// segment-header record that decodes — a plaintext or empty file, or damage at offset 0
/// (a [`LogReader`] reports which). For inspection tools, which show how a file is encrypted
/// even when they cannot open it.
pub fn peek_segment_header(data: &[u8]) -> Option<SegmentHeader> {
    let (len, transform) = check_record(data, 0).ok()?;
    if transform != TRANSFORM_SEGMENT_HEADER {
        return None;
    }
    SegmentHeader::decode(data.get(HEADER_LEN..HEADER_LEN + len)?).ok()
}

/// How often a log whose tail reads as damaged is read again before the damage is believed.
const TAIL_READS: usize = 3;

/// Reads the log (or manifest) at `path`, and if it ends in a damaged region, reads it
/// again: recovery drops a damaged tail for good, so a transient read error — a bit flipped
/// on the way from the disk — must not pass for one. The damage is believed once two reads
/// agree (or after [`TAIL_READS`] reads).
pub(crate) fn read_settled(fs: &dyn crate::vfs::FileSystem, path: &Path) -> Result<Bytes> {
    let mut data = fs.read_all(path)?;
    for _ in 1..TAIL_READS {
        let mut probe = LogReader::new(data.clone(), path);
        probe.opaque = true; // only the framing decides what a torn tail is
                             // Mid-log damage (an `Err`) ends the probe: the caller's own read reports it.
        while let Ok(Some(_)) = probe.next_record() {}
        if probe.dropped_tail().is_none() {
            break;
        }
        let again = fs.read_all(path)?;
        if again == data {
            break;
        }
        data = again;
    }
    Ok(data)
}

/// Checks the record at `at`; returns its payload length and transform.
fn check_record(data: &[u8], at: usize) -> std::result::Result<(usize, u8), &'static str> {
    let rest = data.get(at..).unwrap_or_default();
    if rest.len() < HEADER_LEN {
        return Err("incomplete record header");
    }
    let h = decode_header(rest).ok_or("record header checksum mismatch")?;
    let len = h.len as usize;
    let payload = rest.get(HEADER_LEN..HEADER_LEN + len).ok_or("record payload extends past end of file")?;
    if crc32(payload) != h.payload_crc {
        return Err("record payload checksum mismatch");
    }
    Ok((len, h.transform))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::format::encode_header;

    fn log_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in payloads {
            v.extend_from_slice(&encode_header(p, TRANSFORM_NONE));
            v.extend_from_slice(p);
        }
        v
    }

    fn read_all(data: Vec<u8>) -> Result<(Vec<Vec<u8>>, TailState)> {
        let mut r = LogReader::new(Bytes::from(data), "test.log");
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec.payload.to_vec());
        }
        Ok((out, r.tail().cloned().unwrap_or(TailState::Clean)))
    }

    #[test]
    fn roundtrip_clean() {
        let (recs, tail) = read_all(log_of(&[b"one", b"", b"three"])).unwrap();
        assert_eq!(recs, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(tail, TailState::Clean);
    }

    #[test]
    fn every_truncation_is_a_torn_tail_keeping_whole_records() {
        let full = log_of(&[b"alpha", b"beta", b"gamma"]);
        for cut in 0..full.len() {
            let (recs, tail) = read_all(full[..cut].to_vec()).unwrap();
            let whole = [18usize, 35, 53].iter().filter(|&&end| end <= cut).count();
            assert_eq!(recs.len(), whole, "cut at {cut}");
            if ![0, 18, 35, 53].contains(&cut) {
                assert!(matches!(tail, TailState::Torn { .. }), "cut at {cut}");
            }
        }
    }

    #[test]
    fn damage_before_intact_records_is_corruption() {
        let full = log_of(&[b"alpha", b"beta", b"gamma"]);
        for i in 0..35 {
            let mut bad = full.clone();
            bad[i] ^= 0x40;
            match read_all(bad) {
                Err(Error::Corruption { offset, .. }) => assert!(offset.is_some_and(|o| o <= i as u64)),
                other => panic!("flip at {i}: expected corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn damage_in_last_record_is_a_torn_tail() {
        let full = log_of(&[b"alpha", b"beta", b"gamma"]);
        for i in 35..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x01;
            let (recs, tail) = read_all(bad).unwrap();
            assert_eq!(recs.len(), 2);
            assert_eq!(tail, TailState::Torn { offset: 35, reason: tail_reason(&tail) });
        }
    }

    #[test]
    fn resync_skips_exactly_the_damaged_record() {
        let full = log_of(&[b"alpha", b"beta", b"gamma"]);
        let mut bad = full.clone();
        bad[20] ^= 0x40; // inside the second record (18..35)
        let mut r = LogReader::new(Bytes::from(bad), "test.log");
        assert_eq!(r.resync(), None, "nothing to skip before an error");
        assert_eq!(r.next_record().unwrap().unwrap().payload, &b"alpha"[..]);
        assert!(r.next_record().is_err());
        assert_eq!(r.resync(), Some(18..35));
        assert_eq!(r.next_record().unwrap().unwrap().offset, 35);
        assert_eq!(r.next_record().unwrap(), None);
        assert_eq!(r.tail(), Some(&TailState::Clean));
        assert_eq!(r.resync(), None);

        // An intact record with an unknown transform is skipped whole.
        let mut data = encode_header(b"sealed", 9).to_vec();
        data.extend_from_slice(b"sealed");
        data.extend_from_slice(&log_of(&[b"after"]));
        let mut r = LogReader::new(Bytes::from(data), "test.log");
        assert!(r.next_record().is_err());
        assert_eq!(r.resync(), Some(0..19));
        assert_eq!(r.next_record().unwrap().unwrap().payload, &b"after"[..]);
    }

    fn tail_reason(t: &TailState) -> String {
        match t {
            TailState::Torn { reason, .. } => reason.clone(),
            TailState::Clean => String::new(),
        }
    }

    #[test]
    fn dropped_tail_counts_records_and_bytes() {
        let full = log_of(&[b"alpha", b"beta", b"gamma"]);
        let mut bad = full.clone();
        bad[32] ^= 0x01; // payload of "beta": a complete record with a stale sector
        bad.truncate(full.len() - 2); // and "gamma" torn short
        let mut r = LogReader::new(Bytes::from(bad), "test.log");
        assert!(r.next_record().unwrap().is_some());
        assert!(r.dropped_tail().is_none(), "not at the end yet");
        assert!(r.next_record().unwrap().is_none());
        let d = r.dropped_tail().unwrap();
        assert_eq!((d.offset, d.bytes, d.records), (18, full.len() as u64 - 2 - 18, 2));
        let mut clean = LogReader::new(Bytes::from(full), "test.log");
        while clean.next_record().unwrap().is_some() {}
        assert!(clean.dropped_tail().is_none());
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut data = log_of(&[b"alpha"]);
        data.extend_from_slice(&[0u8; 100]);
        let (recs, tail) = read_all(data).unwrap();
        assert_eq!(recs.len(), 1);
        assert!(matches!(tail, TailState::Torn { offset: 18, .. }));
    }
}
