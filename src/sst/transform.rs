//! The block envelope: `payload | transform: u8 | crc32: u32 LE` around every block.
//!
//! Writing: [`BlockCompressor`] picks the transform for a raw block (zstd when it saves at
//! least `min_compression_saving`, raw otherwise) and [`block_trailer`] computes the trailer.
//! Reading: [`open_block`] checks the checksum, decodes the transform and returns the raw
//! block, zero-copy for raw blocks.
//!
//! In an encrypted table every block is sealed after compression (transforms `ZstdSealed`,
//! `RawSealed`): nonce = the block's offset and kind, so a block moved within or across
//! tables fails its tag. A sealed block in a plaintext table, or a plaintext block in an
//! encrypted one, is corruption.
//!
//! Invariants: the checksum covers `payload ++ transform`; a zstd payload is
//! `varint(raw_len) ++ one zstd frame` with `raw_len <= MAX_BLOCK_RAW_LEN`, and decompression
//! must produce exactly `raw_len` bytes.

use std::cell::RefCell;
use std::path::Path;

use bytes::Bytes;

use crate::crypt::{block_nonce, FileCipher, TAG_LEN};
use crate::sst::block_pool::BlockPool;
use crate::sst::footer::BlockHandle;
use crate::sst::format::{Transform, BLOCK_AAD, BLOCK_TRAILER_LEN, MAX_BLOCK_RAW_LEN};
use crate::sst::BlockKind;
use crate::util::checksum::crc32_of_parts;
use crate::util::coding::{get_varint, put_varint};
use crate::{Error, Result};

/// Computes the trailer for `payload` stored with transform `t`.
pub(crate) fn block_trailer(payload: &[u8], t: Transform) -> [u8; BLOCK_TRAILER_LEN] {
    let crc = crc32_of_parts(&[payload, &[t as u8]]).to_le_bytes();
    [t as u8, crc[0], crc[1], crc[2], crc[3]]
}

/// Chooses and applies the transform of each block a writer emits. Holds one zstd context
/// and two output buffers for the life of the writer, so compressing allocates nothing once
/// the buffers have grown to the block size.
pub(crate) struct BlockCompressor {
    level: i32,
    min_saving: f64,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    frame: Vec<u8>,
    payload: Vec<u8>,
}

impl BlockCompressor {
    /// `level == 0` stores every block raw.
    pub(crate) fn new(level: i32, min_saving: f64) -> Self {
        BlockCompressor { level, min_saving, zstd: None, frame: Vec::new(), payload: Vec::new() }
    }

    /// Returns the payload to store for `raw` and its transform: the zstd form when it is at
    /// least `min_saving` smaller, else `raw` itself.
    pub(crate) fn compress<'a>(&'a mut self, raw: &'a [u8], path: &Path) -> Result<(&'a [u8], Transform)> {
        if self.level == 0 || raw.is_empty() {
            return Ok((raw, Transform::Raw));
        }
        let ctx = match &mut self.zstd {
            Some(c) => c,
            None => {
                self.zstd.insert(zstd::bulk::Compressor::new(self.level).map_err(|e| Error::io("zstd init", path, e))?)
            }
        };
        // zstd writes from the start of the buffer's spare capacity, so compress into `frame`
        // and assemble `varint(raw_len) ++ frame` in `payload`.
        self.frame.clear();
        self.frame.reserve(zstd::compress_bound(raw.len()));
        let n = ctx.compress_to_buffer(raw, &mut self.frame).map_err(|e| Error::io("zstd compress", path, e))?;
        self.frame.truncate(n);
        self.payload.clear();
        put_varint(&mut self.payload, raw.len() as u64);
        self.payload.extend_from_slice(&self.frame);
        let limit = raw.len() as f64 * (1.0 - self.min_saving);
        if (self.payload.len() as f64) <= limit {
            Ok((&self.payload, Transform::Zstd))
        } else {
            Ok((raw, Transform::Raw))
        }
    }
}

thread_local! {
    /// One zstd decompression context per thread, reused across readers.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn decompress_into<C: zstd::zstd_safe::WriteBuf + ?Sized>(frame: &[u8], out: &mut C) -> std::io::Result<usize> {
    DECOMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let d = match &mut *slot {
                Some(d) => d,
                None => slot.insert(zstd::bulk::Decompressor::new()?),
            };
            d.decompress_to_buffer(frame, out)
        }
        // Re-entered on this thread (cannot happen today): use a one-off context.
        Err(_) => zstd::bulk::Decompressor::new()?.decompress_to_buffer(frame, out),
    })
}

/// Splits `stored` (a block's payload plus trailer, read at `handle`) after checking the
/// checksum; returns the payload and its transform.
fn split_checked(path: &Path, handle: BlockHandle, stored: &Bytes) -> Result<(Bytes, Transform)> {
    let bad = |what: String| Error::corruption(path, handle.offset, what);
    let plen = stored
        .len()
        .checked_sub(BLOCK_TRAILER_LEN)
        .ok_or_else(|| bad(format!("block of {} bytes is shorter than its trailer", stored.len())))?;
    let (payload, trailer) = stored.split_at(plen);
    let [t, c0, c1, c2, c3] =
        <[u8; BLOCK_TRAILER_LEN]>::try_from(trailer).map_err(|_| bad("block trailer is not 5 bytes".into()))?;
    let stored_crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let crc = crc32_of_parts(&[payload, &[t]]);
    if crc != stored_crc {
        return Err(bad(format!("block checksum {stored_crc:#010x}, computed {crc:#010x} ({} payload bytes)", plen)));
    }
    let transform = Transform::from_u8(t).ok_or_else(|| bad(format!("unknown block transform {t}")))?;
    Ok((stored.slice(..plen), transform))
}

/// Seals `payload` (a block of kind `kind` to be written at `offset`) into `out`.
pub(crate) fn seal_block(
    cipher: &FileCipher,
    offset: u64,
    kind: BlockKind,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    cipher.seal_into(&block_nonce(offset, kind.code()), BLOCK_AAD, payload, out)
}

/// Checks and decodes a block: `stored` is its payload plus trailer as read at `handle`, a
/// block of kind `kind`; `cipher` is the table's cipher if it is encrypted. Returns the raw
/// block (a zero-copy slice of `stored` when it was stored raw) and the stored transform.
pub(crate) fn open_block(
    path: &Path,
    handle: BlockHandle,
    stored: Bytes,
    kind: BlockKind,
    cipher: Option<&FileCipher>,
) -> Result<(Bytes, Transform)> {
    open_block_with(path, handle, stored, kind, cipher, None).map(|o| (o.data, o.transform))
}

/// A block opened by [`open_block_into`].
pub(crate) struct OpenedBlock {
    /// The raw block.
    pub data: Bytes,
    /// The stored transform.
    pub transform: Transform,
    /// The bytes `data` occupies: its slot when it is in the pool, else its length.
    pub footprint: usize,
}

/// [`open_block`] for a block about to be cached: its raw bytes are written into a buffer of
/// `pool` (decompressed or opened straight into it; a raw block copied in, so the block
/// never references the file or a heap buffer), or onto the heap when the pool has no room
/// or the block is too large for it.
pub(crate) fn open_block_into(
    path: &Path,
    handle: BlockHandle,
    stored: Bytes,
    kind: BlockKind,
    cipher: Option<&FileCipher>,
    pool: &BlockPool,
) -> Result<OpenedBlock> {
    open_block_with(path, handle, stored, kind, cipher, Some(pool))
}

fn open_block_with(
    path: &Path,
    handle: BlockHandle,
    stored: Bytes,
    kind: BlockKind,
    cipher: Option<&FileCipher>,
    pool: Option<&BlockPool>,
) -> Result<OpenedBlock> {
    let (mut payload, stored_transform) = split_checked(path, handle, &stored)?;
    // `payload` alone now shares the stored bytes (so `is_unique` below tells whether they
    // are a buffer of their own or part of the file's map).
    drop(stored);
    let bad = |what: String| Error::corruption(path, handle.offset, what);
    let transform = match (stored_transform, cipher) {
        (Transform::Raw | Transform::Zstd, None) => stored_transform,
        (Transform::Raw | Transform::Zstd, Some(_)) => return Err(bad("plaintext block in an encrypted table".into())),
        (Transform::RawSealed | Transform::ZstdSealed, None) => {
            return Err(bad("sealed block in a table without encryption".into()))
        }
        (Transform::RawSealed | Transform::ZstdSealed, Some(c)) => {
            let plain = c.open(&block_nonce(handle.offset, kind.code()), BLOCK_AAD, &payload).ok_or_else(|| {
                bad(format!(
                    "{kind:?} block does not authenticate (altered, moved from another place or table, or the wrong key)"
                ))
            })?;
            payload = Bytes::from(plain);
            if stored_transform == Transform::RawSealed {
                Transform::Raw
            } else {
                Transform::Zstd
            }
        }
    };
    let heap = |data: Bytes| {
        let footprint = data.len();
        OpenedBlock { data, transform: stored_transform, footprint }
    };
    match transform {
        Transform::Raw | Transform::RawSealed => match pool.and_then(|p| p.alloc(payload.len())) {
            Some(mut buf) => {
                buf.as_mut_slice().copy_from_slice(&payload);
                let footprint = BlockPool::slot_size(payload.len()).unwrap_or(payload.len());
                Ok(OpenedBlock { data: buf.freeze(), transform: stored_transform, footprint })
            }
            // No room: onto the heap, copied unless the payload is already its own buffer,
            // so a cached block never keeps the file's memory map alive.
            None if pool.is_some() && !payload.is_unique() => Ok(heap(Bytes::copy_from_slice(&payload))),
            None => Ok(heap(payload)),
        },
        Transform::Zstd | Transform::ZstdSealed => {
            let (raw_len, n) = get_varint(&payload).ok_or_else(|| bad("bad zstd raw length varint".into()))?;
            let raw_len = usize::try_from(raw_len)
                .ok()
                .filter(|&l| l <= MAX_BLOCK_RAW_LEN)
                .ok_or_else(|| bad(format!("zstd block claims {raw_len} raw bytes, limit {MAX_BLOCK_RAW_LEN}")))?;
            let frame = payload.get(n..).unwrap_or_default();
            let failed = |e: std::io::Error| bad(format!("zstd decompression failed: {e}"));
            let wrong = |got: usize| bad(format!("zstd block decompressed to {got} bytes, expected {raw_len}"));
            if let Some(mut buf) = pool.and_then(|p| p.alloc(raw_len)) {
                // Straight into the pool slot, which is exactly `raw_len` bytes: a frame
                // that decodes to more fails, one that decodes to fewer is caught below.
                let got = decompress_into(frame, buf.as_mut_slice()).map_err(failed)?;
                if got != raw_len {
                    return Err(wrong(got));
                }
                let footprint = BlockPool::slot_size(raw_len).unwrap_or(raw_len);
                return Ok(OpenedBlock { data: buf.freeze(), transform: stored_transform, footprint });
            }
            let mut out = Vec::with_capacity(raw_len);
            let got = decompress_into(frame, &mut out).map_err(failed)?;
            if got != raw_len || out.len() != raw_len {
                return Err(wrong(got));
            }
            Ok(heap(Bytes::from(out)))
        }
    }
}

/// The raw size announced by a payload's first bytes (`head`), without decompressing:
/// `payload_len` for raw blocks, the varint prefix for zstd blocks; for sealed blocks, whose
/// announcement is encrypted, the sealed payload's length without its tag.
pub(crate) fn announced_raw_len(head: &[u8], payload_len: u64, t: Transform) -> Option<u64> {
    match t {
        Transform::Raw => Some(payload_len),
        Transform::Zstd => get_varint(head).map(|(v, _)| v),
        Transform::RawSealed | Transform::ZstdSealed => payload_len.checked_sub(TAG_LEN as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: &[u8], t: Transform) -> Bytes {
        let mut v = payload.to_vec();
        v.extend_from_slice(&block_trailer(payload, t));
        Bytes::from(v)
    }

    /// Opens a plaintext block both onto the heap and into a pool, and checks that the two
    /// agree (same bytes, or both corruption).
    fn open_plain(path: &Path, handle: BlockHandle, stored: Bytes) -> Result<(Bytes, Transform)> {
        let pool = BlockPool::new(1 << 20);
        let heap = open_block(path, handle, stored.clone(), BlockKind::Data, None);
        let pooled = open_block_into(path, handle, stored, BlockKind::Data, None, &pool);
        match (&heap, pooled) {
            (Ok((data, t)), Ok(o)) => {
                assert_eq!((data, *t), (&o.data, o.transform));
                assert_eq!(o.footprint, BlockPool::slot_size(data.len()).unwrap_or(data.len()));
                assert_eq!(pool.mapped() > 0, !data.is_empty(), "non-empty blocks go into the pool");
            }
            (Err(a), Err(b)) => assert!(a.is_corruption() && b.is_corruption(), "{a} / {b}"),
            (a, b) => panic!("heap {a:?} and pool {:?} disagree", b.map(|o| o.data)),
        }
        heap
    }

    #[test]
    fn sealed_blocks_open_only_in_their_place_and_table() {
        use crate::crypt::{FileRole, SecretKey};
        let key = SecretKey::from_bytes([5; 32]);
        let c = FileCipher::new(&key, &[1; 16], FileRole::Table, 9).unwrap();
        let other = FileCipher::new(&key, &[1; 16], FileRole::Table, 10).unwrap();
        let raw: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
        let mut comp = BlockCompressor::new(3, 0.125);
        let (p, t) = comp.compress(&raw, Path::new("t")).unwrap();
        let mut sealed = Vec::new();
        seal_block(&c, 100, BlockKind::Data, p, &mut sealed).unwrap();
        let stored = envelope(&sealed, t.sealed());
        let at = BlockHandle { offset: 100, size: sealed.len() as u64 };
        let (back, st) = open_block(Path::new("t"), at, stored.clone(), BlockKind::Data, Some(&c)).unwrap();
        assert_eq!((&back[..], st), (&raw[..], Transform::ZstdSealed));
        let moved = BlockHandle { offset: 200, ..at };
        for (h, kind, cipher) in
            [(moved, BlockKind::Data, &c), (at, BlockKind::Index, &c), (at, BlockKind::Data, &other)]
        {
            let e = open_block(Path::new("t"), h, stored.clone(), kind, Some(cipher)).unwrap_err();
            assert!(e.to_string().contains("does not authenticate"), "{e}");
        }
        let e = open_block(Path::new("t"), at, stored.clone(), BlockKind::Data, None).unwrap_err();
        assert!(e.to_string().contains("sealed block in a table without encryption"), "{e}");
        let plain = envelope(p, t);
        let e = open_block(Path::new("t"), at, plain, BlockKind::Data, Some(&c)).unwrap_err();
        assert!(e.to_string().contains("plaintext block in an encrypted table"), "{e}");
    }

    fn h(size: usize) -> BlockHandle {
        BlockHandle { offset: 7, size: size as u64 }
    }

    #[test]
    fn compressible_block_roundtrips_through_zstd() {
        let raw: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
        let mut c = BlockCompressor::new(3, 0.125);
        let (p, t) = c.compress(&raw, Path::new("t")).unwrap();
        assert_eq!(t, Transform::Zstd);
        assert!(p.len() < raw.len() / 4);
        let p = p.to_vec();
        let (back, t2) = open_plain(Path::new("t"), h(p.len()), envelope(&p, t)).unwrap();
        assert_eq!((&back[..], t2), (&raw[..], Transform::Zstd));
        assert_eq!(announced_raw_len(&p, p.len() as u64, t), Some(4096));
    }

    #[test]
    fn incompressible_block_falls_back_to_raw() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let raw: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut c = BlockCompressor::new(3, 0.125);
        let (p, t) = c.compress(&raw, Path::new("t")).unwrap();
        assert_eq!((p, t), (&raw[..], Transform::Raw));
        // Level 0 never compresses.
        let zeros = vec![0u8; 4096];
        let mut c = BlockCompressor::new(0, 0.125);
        assert_eq!(c.compress(&zeros, Path::new("t")).unwrap().1, Transform::Raw);
        // A saving threshold of 100% can never be met.
        let mut c = BlockCompressor::new(3, 1.0);
        assert_eq!(c.compress(&zeros, Path::new("t")).unwrap().1, Transform::Raw);
    }

    #[test]
    fn damaged_envelopes_are_corruption() {
        let good = envelope(b"hello", Transform::Raw);
        for i in 0..good.len() {
            let mut b = good.to_vec();
            b[i] ^= 0x40;
            assert!(open_plain(Path::new("t"), h(5), Bytes::from(b)).unwrap_err().is_corruption());
        }
        assert!(open_plain(Path::new("t"), h(0), Bytes::from_static(b"abc")).unwrap_err().is_corruption());
        // Well-checksummed but unknown transform, oversized or lying raw length.
        assert!(open_plain(Path::new("t"), h(1), envelope(b"x", Transform::Raw).slice(..1))
            .unwrap_err()
            .is_corruption());
        let mut huge = Vec::new();
        put_varint(&mut huge, (MAX_BLOCK_RAW_LEN + 1) as u64);
        assert!(open_plain(Path::new("t"), h(huge.len()), envelope(&huge, Transform::Zstd))
            .unwrap_err()
            .is_corruption());
        let mut lying = Vec::new();
        put_varint(&mut lying, 10);
        lying.extend_from_slice(&zstd::bulk::compress(&[1u8; 20], 3).unwrap());
        assert!(open_plain(Path::new("t"), h(lying.len()), envelope(&lying, Transform::Zstd))
            .unwrap_err()
            .is_corruption());
        let mut unknown = b"x".to_vec();
        unknown.push(9);
        unknown.extend_from_slice(&crc32_of_parts(&[b"x", &[9]]).to_le_bytes());
        let e = open_plain(Path::new("t"), h(1), Bytes::from(unknown)).unwrap_err();
        assert!(e.to_string().contains("unknown block transform 9"), "{e}");
    }
}
