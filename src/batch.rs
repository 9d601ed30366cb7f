//! [`WriteBatch`]: an ordered group of puts and deletes applied atomically, and its encoding,
//! which is also the payload of one write-ahead-log record (see `docs/wal-format.md`).
//!
//! Encoding: `seq: u64 LE | count: u32 LE | op*` with
//! `op := kind: u8 | key_len: varint | key | (value_len: varint | value)?` — the value only
//! for puts. Operation `i` gets sequence number `seq + i`; a batch of `count` operations
//! therefore consumes `count` sequence numbers.
//!
//! Stamped keys: [`WriteBatch::put_stamped`] adds a put whose key ends with 8 bytes the
//! commit fills in with a sequence number of the batch's own operations (big-endian), so a
//! key can name the commit's position in the log (the record layer's change feed). The
//! stamp is written into the encoding by [`WriteBatch::encode_with_seq`], before the batch
//! is logged, so the log, the memtable and every replay see the same, final key.
//!
//! Sealed values: [`WriteBatch::put_sealed`] adds a stamped put whose value a [`CommitSeal`]
//! completes at commit, in commit order (the leader calls it under the log's lock, one
//! batch after another), so a value can depend on every sealed value committed before it:
//! the record layer's audit log links each entry to the hash of the previous one this way.
//! A seal runs only for a batch that is about to be logged; if logging then fails, the
//! database fails (`Error::Failed`) and the seal's in-memory state is rebuilt from the log
//! at the next open.
//!
//! Reading an encoded batch back (log replay, `kho dump wal`): [`DecodedBatch::parse`] checks
//! the header and [`DecodedBatch::ops`] decodes the operations lazily; a malformed batch is a
//! [`BatchError`] naming the byte offset within the batch, never a panic.

use crate::key::{SeqNo, ValueKind};
use crate::options::Options;
use crate::util::coding::{put_len_prefixed, varint_len, Reader};
use crate::{Error, Result};

/// Bytes of the batch header (`seq` and `count`).
pub(crate) const BATCH_HEADER: usize = 12;

/// An atomic group of writes. Later operations on the same key win.
#[derive(Clone)]
pub struct WriteBatch {
    rep: Vec<u8>,
    count: u32,
    /// Keys to stamp at commit: the offset in `rep` of a key's last 8 bytes and the index
    /// of the operation whose sequence number goes there.
    stamps: Vec<Stamp>,
    /// Values to seal at commit, after stamping.
    seals: Vec<Seal>,
}

impl PartialEq for WriteBatch {
    fn eq(&self, other: &Self) -> bool {
        self.rep == other.rep && self.count == other.count && self.stamps == other.stamps && self.seals == other.seals
    }
}

impl Eq for WriteBatch {}

/// Completes a value at commit, in commit order (see [`WriteBatch::put_sealed`]).
pub(crate) trait CommitSeal: Send + Sync {
    /// Fills in `value` (the bytes given to `put_sealed`, to be modified in place) of the
    /// put that gets sequence number `seq`. Called once per commit of the batch, by the
    /// commit leader, in commit order across batches; must not block on a write.
    fn seal(&self, seq: SeqNo, value: &mut [u8]);
}

/// See [`WriteBatch::put_sealed`].
#[derive(Clone)]
struct Seal {
    /// Where the value starts in `rep`, and its length.
    at: usize,
    len: usize,
    /// The put's index in the batch.
    op: u32,
    sealer: std::sync::Arc<dyn CommitSeal>,
}

impl PartialEq for Seal {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.len, self.op) == (other.at, other.len, other.op)
            && std::sync::Arc::ptr_eq(&self.sealer, &other.sealer)
    }
}

/// See [`WriteBatch::put_stamped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    at: usize,
    op: u32,
}

/// Bytes of a sequence-number stamp at the end of a key.
pub(crate) const STAMP_LEN: usize = 8;

impl Default for WriteBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch").field("count", &self.count).field("bytes", &self.rep.len()).finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch { rep: vec![0; BATCH_HEADER], count: 0, stamps: Vec::new(), seals: Vec::new() }
    }

    /// An empty batch with room for `bytes` of encoded operations.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut rep = Vec::with_capacity(BATCH_HEADER + bytes);
        rep.resize(BATCH_HEADER, 0);
        WriteBatch { rep, count: 0, stamps: Vec::new(), seals: Vec::new() }
    }

    /// Adds a put of `value` at `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.rep.reserve(1 + varint_len(key.len() as u64) + key.len() + varint_len(value.len() as u64) + value.len());
        self.rep.push(ValueKind::Put as u8);
        put_len_prefixed(&mut self.rep, key);
        put_len_prefixed(&mut self.rep, value);
        self.count += 1;
    }

    /// Adds a put of `value` at `prefix | seq`, where `seq` (8 bytes, big-endian) is the
    /// sequence number the commit gives operation `of` of this batch (its index, counting
    /// from 0; [`Self::len`] before this call names this put itself). Returns this put's
    /// index. Keys stamped with the sequence numbers of committed operations are unique and
    /// ordered by commit, also across crashes: a sequence number is never handed out twice
    /// to operations that both reach the log.
    ///
    /// `of` must name an operation of this batch (this one or an earlier one); a later index
    /// is accepted as long as the batch holds that many operations when it is committed.
    pub(crate) fn put_stamped(&mut self, prefix: &[u8], of: u32, value: &[u8]) -> u32 {
        self.put_stamped_with(prefix, of, value.len(), |rep| rep.extend_from_slice(value))
    }

    /// [`Self::put_stamped`] with a value of `value_len` bytes that `write_value` appends to
    /// the batch's encoding itself (no intermediate buffer). `write_value` must append
    /// exactly `value_len` bytes (checked in debug builds).
    pub(crate) fn put_stamped_with(
        &mut self,
        prefix: &[u8],
        of: u32,
        value_len: usize,
        write_value: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        let me = self.count;
        let key_len = prefix.len() + STAMP_LEN;
        self.rep.reserve(1 + varint_len(key_len as u64) + key_len + varint_len(value_len as u64) + value_len);
        self.rep.push(ValueKind::Put as u8);
        crate::util::coding::put_varint(&mut self.rep, key_len as u64);
        self.rep.extend_from_slice(prefix);
        self.stamps.push(Stamp { at: self.rep.len(), op: of });
        self.rep.extend_from_slice(&[0; STAMP_LEN]);
        crate::util::coding::put_varint(&mut self.rep, value_len as u64);
        let start = self.rep.len();
        write_value(&mut self.rep);
        debug_assert_eq!(self.rep.len() - start, value_len, "put_stamped_with: value length");
        self.count += 1;
        me
    }

    /// Adds a put at `prefix | seq` (stamped with its own sequence number, as
    /// [`Self::put_stamped`]) whose `value` `sealer` completes at commit, in commit order.
    /// Returns this put's index.
    pub(crate) fn put_sealed(&mut self, prefix: &[u8], value: &[u8], sealer: std::sync::Arc<dyn CommitSeal>) -> u32 {
        let me = self.put_stamped(prefix, self.count, value);
        self.seals.push(Seal { at: self.rep.len() - value.len(), len: value.len(), op: me, sealer });
        me
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.rep.push(ValueKind::Delete as u8);
        put_len_prefixed(&mut self.rep, key.as_ref());
        self.count += 1;
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.rep.truncate(BATCH_HEADER);
        self.count = 0;
        self.stamps.clear();
        self.seals.clear();
    }

    /// Size of the encoded batch in bytes (what it costs in the log).
    pub fn encoded_size(&self) -> usize {
        self.rep.len()
    }

    /// Checks every operation against the size limits in `opts`.
    pub(crate) fn validate(&self, opts: &Options) -> Result<()> {
        if self.rep.len() > opts.max_batch_size {
            return Err(Error::InvalidArgument(format!(
                "write batch of {} bytes exceeds max_batch_size {}",
                self.rep.len(),
                opts.max_batch_size
            )));
        }
        if let Some(s) = self.stamps.iter().find(|s| s.op >= self.count) {
            return Err(Error::InvalidArgument(format!(
                "a stamped key names operation {} of a batch of {}",
                s.op, self.count
            )));
        }
        for op in self.ops() {
            let (_, key, value) = op.map_err(|e| Error::InvalidArgument(e.to_string()))?;
            check_entry_size(opts, key.len(), value.len())?;
        }
        Ok(())
    }

    /// Stamps the batch with its first sequence number and returns the encoding.
    /// Stamped keys get the sequence numbers of the operations they name; sealed values are
    /// then sealed, in the order they were added. The commit leader calls this once per
    /// batch, in commit order.
    pub(crate) fn encode_with_seq(&mut self, seq: SeqNo) -> &[u8] {
        self.rep[..8].copy_from_slice(&seq.to_le_bytes());
        self.rep[8..12].copy_from_slice(&self.count.to_le_bytes());
        for s in &self.stamps {
            let stamp = (seq + u64::from(s.op)).to_be_bytes();
            self.rep[s.at..s.at + STAMP_LEN].copy_from_slice(&stamp);
        }
        for s in &self.seals {
            s.sealer.seal(seq + u64::from(s.op), &mut self.rep[s.at..s.at + s.len]);
        }
        &self.rep
    }

    /// The encoding as last stamped by [`Self::encode_with_seq`].
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.rep
    }

    /// The operations in order, decoded from the in-memory encoding.
    pub(crate) fn ops(&self) -> BatchOps<'_> {
        BatchOps { r: Reader::new(&self.rep[BATCH_HEADER..]), left: self.count, base: BATCH_HEADER, done: false }
    }
}

/// An encoded batch read back from a log record (the payload of one WAL record).
#[derive(Debug, Clone, Copy)]
pub struct DecodedBatch<'a> {
    /// Sequence number of the first operation; operation `i` has `seq + i`.
    pub seq: SeqNo,
    /// Number of operations the header announces.
    pub count: u32,
    rep: &'a [u8],
}

impl<'a> DecodedBatch<'a> {
    /// Parses the 12-byte header of an encoded batch; the error says what was wrong (the only
    /// possible fault is a payload shorter than the header, at offset 0). Operations are
    /// decoded lazily by [`Self::ops`].
    pub fn parse(rep: &'a [u8]) -> std::result::Result<Self, String> {
        let mut r = Reader::new(rep);
        let seq = r.u64().ok_or("batch shorter than its 12-byte header")?;
        let count = r.u32().ok_or("batch shorter than its 12-byte header")?;
        Ok(DecodedBatch { seq, count, rep })
    }

    /// The operations in order as `(kind, key, value)` (the value is empty for deletes).
    /// After the first error the iterator ends; bytes after the last announced operation
    /// are an error too.
    pub fn ops(&self) -> BatchOps<'a> {
        BatchOps { r: Reader::new(&self.rep[BATCH_HEADER..]), left: self.count, base: BATCH_HEADER, done: false }
    }
}

/// Iterator over `(kind, key, value)` of an encoded batch; the error names the byte offset
/// within the batch and what was wrong.
#[derive(Debug)]
pub struct BatchOps<'a> {
    r: Reader<'a>,
    left: u32,
    base: usize,
    done: bool,
}

/// A malformed batch: offset within the batch and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// Byte offset within the encoded batch of the operation at fault.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl std::error::Error for BatchError {}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed write batch at byte {}: {}", self.offset, self.what)
    }
}

impl<'a> Iterator for BatchOps<'a> {
    type Item = std::result::Result<(ValueKind, &'a [u8], &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            return (!self.r.is_empty()).then(|| {
                Err(BatchError { offset: self.base + self.r.position(), what: "bytes after the last operation" })
            });
        }
        self.left -= 1;
        let at = self.base + self.r.position();
        let mut err = |what| {
            self.done = true;
            Some(Err(BatchError { offset: at, what }))
        };
        let Some(kind) = self.r.u8() else {
            return err("missing operation");
        };
        let Some(kind) = ValueKind::from_u8(kind) else {
            return err("unknown operation kind");
        };
        let Some(key) = self.r.len_prefixed() else {
            return err("truncated key");
        };
        let value: &[u8] = match kind {
            ValueKind::Put => match self.r.len_prefixed() {
                Some(v) => v,
                None => return err("truncated value"),
            },
            ValueKind::Delete => &[],
        };
        Some(Ok((kind, key, value)))
    }
}

/// Checks one entry's key and value lengths against `Options::max_key_size` and
/// `max_value_size` (every write path: batches and table ingestion).
pub(crate) fn check_entry_size(opts: &Options, key_len: usize, value_len: usize) -> Result<()> {
    if key_len > opts.max_key_size {
        return Err(Error::InvalidArgument(format!(
            "key of {key_len} bytes exceeds max_key_size {}",
            opts.max_key_size
        )));
    }
    if value_len > opts.max_value_size {
        return Err(Error::InvalidArgument(format!(
            "value of {value_len} bytes exceeds max_value_size {}",
            opts.max_value_size
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        b.delete(b"b");
        b.put(b"", b"");
        assert_eq!(b.len(), 3);
        let enc = b.encode_with_seq(77).to_vec();
        let d = DecodedBatch::parse(&enc).unwrap();
        assert_eq!((d.seq, d.count), (77, 3));
        let ops: Vec<_> = d.ops().map(|o| o.unwrap()).collect();
        assert_eq!(
            ops,
            vec![
                (ValueKind::Put, &b"a"[..], &b"1"[..]),
                (ValueKind::Delete, &b"b"[..], &b""[..]),
                (ValueKind::Put, &b""[..], &b""[..])
            ]
        );
    }

    #[test]
    fn malformed_batches_are_errors_not_panics() {
        let mut b = WriteBatch::new();
        b.put(b"key", b"value");
        let enc = b.encode_with_seq(1).to_vec();
        for cut in 0..enc.len() {
            if let Ok(d) = DecodedBatch::parse(&enc[..cut]) {
                assert!(d.ops().any(|o| o.is_err()));
            }
        }
        let mut extra = enc.clone();
        extra.push(9);
        let d = DecodedBatch::parse(&extra).unwrap();
        assert!(d.ops().any(|o| o.is_err()));
    }

    #[test]
    fn stamped_keys_get_the_sequence_numbers_they_name() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        let own = b.put_stamped(b"F", 1, b"change");
        assert_eq!(own, 1);
        b.put_stamped(b"G|id|", own, b"");
        assert_eq!(b.len(), 3);
        b.validate(&Options::default()).unwrap();
        let enc = b.encode_with_seq(0x0102_0304_0506).to_vec();
        let ops: Vec<_> = DecodedBatch::parse(&enc).unwrap().ops().map(|o| o.unwrap()).collect();
        let stamp = 0x0102_0304_0507u64.to_be_bytes();
        assert_eq!(ops[1].1, [&b"F"[..], &stamp].concat());
        assert_eq!(ops[1].2, b"change");
        assert_eq!(ops[2].1, [&b"G|id|"[..], &stamp].concat());
        // Stamping again (a batch is stamped once per commit) overwrites, never shifts.
        let again = b.encode_with_seq(7).to_vec();
        assert_eq!(again.len(), enc.len());
        let ops: Vec<_> = DecodedBatch::parse(&again).unwrap().ops().map(|o| o.unwrap()).collect();
        assert_eq!(ops[1].1, [&b"F"[..], &8u64.to_be_bytes()].concat());
    }

    #[test]
    fn sealed_values_are_completed_in_commit_order() {
        use std::sync::Arc;
        /// Writes a running counter and the sequence number into each value.
        struct Counter(parking_lot::Mutex<u8>);
        impl CommitSeal for Counter {
            fn seal(&self, seq: SeqNo, value: &mut [u8]) {
                let mut n = self.0.lock();
                *n += 1;
                value[0] = *n;
                value[1] = seq as u8;
            }
        }
        let counter = Arc::new(Counter(parking_lot::Mutex::new(0)));
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        assert_eq!(b.put_sealed(b"A", &[0, 0, 9], counter.clone()), 1);
        b.put_sealed(b"A", &[0, 0, 8], counter.clone());
        let enc = b.encode_with_seq(40).to_vec();
        let ops: Vec<_> = DecodedBatch::parse(&enc).unwrap().ops().map(|o| o.unwrap()).collect();
        assert_eq!(ops[1].1, [&b"A"[..], &41u64.to_be_bytes()].concat());
        assert_eq!(ops[1].2, [1, 41, 9]);
        assert_eq!(ops[2].1, [&b"A"[..], &42u64.to_be_bytes()].concat());
        assert_eq!(ops[2].2, [2, 42, 8]);
        b.clear();
        b.encode_with_seq(1);
        assert_eq!(*counter.0.lock(), 2, "a cleared batch seals nothing");
    }

    #[test]
    fn a_stamp_naming_a_missing_operation_is_refused() {
        let mut b = WriteBatch::new();
        b.put_stamped(b"F", 5, b"");
        assert!(matches!(b.validate(&Options::default()), Err(Error::InvalidArgument(_))));
        b.clear();
        assert!(b.is_empty());
        b.validate(&Options::default()).unwrap();
    }

    #[test]
    fn validate_enforces_limits() {
        let opts = Options { max_key_size: 4, max_value_size: 4, ..Options::default() };
        let mut b = WriteBatch::new();
        b.put(b"1234", b"1234");
        b.validate(&opts).unwrap();
        b.put(b"12345", b"");
        assert!(matches!(b.validate(&opts), Err(Error::InvalidArgument(_))));
        let mut b = WriteBatch::new();
        b.put(b"k", b"12345");
        assert!(matches!(b.validate(&opts), Err(Error::InvalidArgument(_))));
    }
}
