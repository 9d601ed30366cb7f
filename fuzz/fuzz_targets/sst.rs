//! SSTable open + verify + iterate on an in-memory file, as `kho dump sst` / `kho verify` do.
//!
//! Raw bytes rarely get past the footer checksum, so the input drives damage to a valid table
//! instead: first byte even -> the rest is the whole file; odd -> the rest is a list of
//! `(position: u16 LE, xor: u8)` flips applied to a valid table, the last two bytes of an odd
//! length giving a truncation point.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kho::inspect::key::{internal_key, ParsedKey};
use kho::inspect::sst::{SstOptions, SstReader, SstWriter};
use kho::vfs::{FaultFs, FileSystem, RandomAccessFile};
use kho::ValueKind;
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct MemFile(Bytes);

impl RandomAccessFile for MemFile {
    fn read_at(&self, offset: u64, len: usize) -> kho::Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.0.len() => Ok(self.0.slice(start..end)),
            _ => Err(kho::Error::InvalidArgument("read past the end".into())),
        }
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

fn table() -> &'static Bytes {
    static TABLE: OnceLock<Bytes> = OnceLock::new();
    TABLE.get_or_init(|| {
        let fs = FaultFs::new();
        fs.create_dir_all(Path::new("/t")).unwrap();
        let path = PathBuf::from("/t/000001.sst");
        let opts = SstOptions { block_size: 256, ..SstOptions::default() };
        let mut w = SstWriter::new(fs.create(&path).unwrap(), path.clone(), &opts);
        for i in 0..200u64 {
            let kind = if i % 7 == 0 { ValueKind::Delete } else { ValueKind::Put };
            w.add(&internal_key(format!("key{i:05}").as_bytes(), 1000 - i, kind), format!("value {i}").as_bytes())
                .unwrap();
        }
        w.finish().unwrap();
        fs.read_all(&path).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut t = table().to_vec();
        let mut chunks = rest.chunks_exact(3);
        for c in &mut chunks {
            let at = usize::from(u16::from_le_bytes([c[0], c[1]])) % t.len();
            t[at] ^= c[2];
        }
        if let [a, b] = chunks.remainder() {
            t.truncate(usize::from(u16::from_le_bytes([*a, *b])) % (t.len() + 1));
        }
        t
    };
    let Ok(r) = SstReader::open(Arc::new(MemFile(Bytes::from(bytes))), PathBuf::from("fuzz.sst"), 1, None) else {
        return;
    };
    let r = Arc::new(r);
    let _ = r.verify();
    let _ = r.layout();
    let _ = (r.footer_info(), r.index_entries(), r.filter_info());
    let mut it = r.iter();
    let mut res = it.seek_to_first();
    while res.is_ok() && it.valid() {
        let _ = ParsedKey::parse(it.key());
        res = it.next();
    }
    let mut res = it.seek_to_last();
    while res.is_ok() && it.valid() {
        res = it.prev();
    }
    for k in [&b"key00100"[..], b"", b"zzz"] {
        let target = internal_key(k, kho::MAX_SEQUENCE, ValueKind::Put);
        let _ = it.seek(&target);
        let _ = it.seek_for_prev(&target);
        let _ = r.get(&target);
    }
});
