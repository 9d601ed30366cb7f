//! Bytes never panic: every decoder `kho dump` and `kho verify` use — log records and write
//! batches, manifest edits (and the version builder's checks of them), whole SSTables,
//! `CURRENT` — and every decoder of the record layer
//! — national IDs, record/index/catalog/meta keys, record values and payloads, and a whole
//! store whose keys and values are garbage — is fed arbitrary bytes and damaged copies of
//! valid data. Each must return (`Ok` or an error), never panic, never loop. The `fuzz/`
//! targets explore the same entry points with coverage guidance (nightly only). The record
//! layer's private decoders also have proptests beside them (`src/record/keys.rs`,
//! `value.rs`, `national_id.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kho::inspect::batch::DecodedBatch;
use kho::inspect::filename::decode_current;
use kho::inspect::key::{internal_key, ParsedKey};
use kho::inspect::sst::{SstOptions, SstReader, SstWriter};
use kho::inspect::version::{read_manifest, VersionBuilder, VersionEdit, MAX_LEVELS};
use kho::inspect::wal::LogReader;
use kho::record::{
    decode_payload, decode_record_value, CollectionId, IdQuery, IdRules, NationalId, Store, StoreKey, StoreOptions,
};
use kho::vfs::{FaultFs, FileSystem, RandomAccessFile};
use kho::{Db, Options, RecoveryMode, ValueKind, WriteBatch};
use proptest::prelude::*;

/// A read-only file held in memory.
#[derive(Debug)]
struct MemFile(Bytes);

impl RandomAccessFile for MemFile {
    fn read_at(&self, offset: u64, len: usize) -> kho::Result<Bytes> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= self.0.len() => Ok(self.0.slice(start..end)),
            _ => Err(kho::Error::InvalidArgument(format!("read {offset}+{len} past {}", self.0.len()))),
        }
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

/// Frames payloads as log records (docs/wal-format.md).
fn frame(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in payloads {
        let mut h = Vec::new();
        h.extend_from_slice(&(p.len() as u32).to_le_bytes());
        h.push(0);
        h.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        let hcrc = crc32fast::hash(&h);
        h.extend_from_slice(&hcrc.to_le_bytes());
        v.extend_from_slice(&h);
        v.extend_from_slice(p);
    }
    v
}

/// Reads every record of a log as `kho dump wal` does (resynchronising after damage) and
/// decodes every batch. Returns the number of intact records.
fn walk_wal(data: Vec<u8>) -> usize {
    let len = data.len();
    let mut r = LogReader::new(Bytes::from(data), "fuzz.log");
    let mut n = 0;
    for _ in 0..=len + 1 {
        match r.next_record() {
            Ok(Some(rec)) => {
                n += 1;
                if let Ok(b) = DecodedBatch::parse(&rec.payload) {
                    for op in b.ops().take(1 << 16) {
                        if op.is_err() {
                            break;
                        }
                    }
                }
            }
            Ok(None) => return n,
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(r.resync().is_some(), "an error is always followed by a resync point");
            }
        }
    }
    panic!("the reader did not finish a {len}-byte log");
}

/// A valid encoded batch.
fn batch(seq: u64, ops: &[(bool, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut b = WriteBatch::new();
    for (put, k, v) in ops {
        if *put {
            b.put(k, v);
        } else {
            b.delete(k);
        }
    }
    // The encoding is header (seq, count) + ops; WriteBatch keeps seq 0 until committed.
    let mut enc = seq.to_le_bytes().to_vec();
    enc.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    let mut body = Vec::new();
    for (put, k, v) in ops {
        body.push(u8::from(*put));
        varint(&mut body, k.len() as u64);
        body.extend_from_slice(k);
        if *put {
            varint(&mut body, v.len() as u64);
            body.extend_from_slice(v);
        }
    }
    enc.extend_from_slice(&body);
    assert_eq!(enc.len(), b.encoded_size());
    enc
}

fn varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push(v as u8 | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

fn op() -> impl Strategy<Value = (bool, Vec<u8>, Vec<u8>)> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..12), prop::collection::vec(any::<u8>(), 0..20))
}

/// Damage: byte flips, then an optional truncation.
fn damage() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>)> {
    (prop::collection::vec((any::<usize>(), 1u8..=255), 0..4), prop::option::of(any::<usize>()))
}

fn apply(mut data: Vec<u8>, (flips, cut): &(Vec<(usize, u8)>, Option<usize>)) -> Vec<u8> {
    if !data.is_empty() {
        for &(at, x) in flips {
            let i = at % data.len();
            data[i] ^= x;
        }
    }
    if let Some(c) = cut {
        data.truncate(c % (data.len() + 1));
    }
    data
}

/// A valid table of a few hundred entries in small blocks, written once.
fn table() -> &'static Bytes {
    static TABLE: OnceLock<Bytes> = OnceLock::new();
    TABLE.get_or_init(|| {
        let fs = FaultFs::new();
        let path = PathBuf::from("/t/000001.sst");
        fs.create_dir_all(Path::new("/t")).unwrap();
        let opts = SstOptions { block_size: 256, ..SstOptions::default() };
        let mut w = SstWriter::new(fs.create(&path).unwrap(), path.clone(), &opts);
        for i in 0..300u64 {
            let kind = if i % 7 == 0 { ValueKind::Delete } else { ValueKind::Put };
            w.add(&internal_key(format!("key{i:05}").as_bytes(), 1000 - i, kind), format!("value {i}").as_bytes())
                .unwrap();
        }
        w.finish().unwrap();
        fs.read_all(&path).unwrap()
    })
}

/// Opens `bytes` as a table and runs every read path the tool uses.
fn exercise_sst(bytes: Vec<u8>) {
    let Ok(r) = SstReader::open(Arc::new(MemFile(Bytes::from(bytes))), PathBuf::from("fuzz.sst"), 1, None) else {
        return;
    };
    let r = Arc::new(r);
    let _ = r.verify();
    let _ = r.layout();
    let _ = (r.footer_info(), r.index_entries(), r.filter_info(), r.properties());
    let mut it = r.iter();
    let mut steps = 0;
    let mut res = it.seek_to_first();
    while res.is_ok() && it.valid() && steps < 10_000 {
        let _ = ParsedKey::parse(it.key());
        let _ = it.value();
        res = it.next();
        steps += 1;
    }
    let mut res = it.seek_to_last();
    while res.is_ok() && it.valid() && steps < 20_000 {
        res = it.prev();
        steps += 1;
    }
    for k in [&b"key00150"[..], b"", b"zzz"] {
        let target = internal_key(k, kho::MAX_SEQUENCE, ValueKind::Put);
        let _ = it.seek(&target);
        let _ = it.seek_for_prev(&target);
        let _ = r.get(&target);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn wal_reader_and_batch_decoder_take_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        walk_wal(data);
    }

    #[test]
    fn wal_reader_and_batch_decoder_take_damaged_logs(
        batches in prop::collection::vec((0u64..1000, prop::collection::vec(op(), 0..5)), 1..6),
        raw in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3),
        d in damage(),
    ) {
        let mut payloads: Vec<Vec<u8>> = batches.iter().map(|(seq, ops)| batch(*seq, ops)).collect();
        payloads.extend(raw); // intact records whose payloads are not batches
        let intact = frame(&payloads);
        prop_assert_eq!(walk_wal(intact.clone()), payloads.len());
        walk_wal(apply(intact, &d));
    }

    #[test]
    fn version_edit_decoder_takes_arbitrary_bytes(
        data in prop::collection::vec(prop_oneof![0u8..8, any::<u8>()], 0..200),
    ) {
        let _ = VersionEdit::decode(&data);
    }

    #[test]
    fn manifest_reader_takes_damaged_manifests(
        edits in prop::collection::vec(prop::collection::vec(prop_oneof![1u8..6, any::<u8>()], 0..60), 1..5),
        d in damage(),
    ) {
        let fs = FaultFs::new();
        let path = Path::new("/m/MANIFEST-000001");
        fs.create_dir_all(Path::new("/m")).unwrap();
        let mut f = fs.create(path).unwrap();
        f.append(&apply(frame(&edits), &d)).unwrap();
        f.sync().unwrap();
        drop(f);
        for mode in [RecoveryMode::TolerateCorruptedTail, RecoveryMode::AbsoluteConsistency] {
            // Whatever decodes also goes through the checks recovery applies.
            if let Ok(m) = read_manifest(&fs, path, mode, None) {
                let mut builder = VersionBuilder::new(MAX_LEVELS as usize);
                for (offset, edit) in &m.edits {
                    let _ = builder.apply(edit, Some(*offset));
                }
                let _ = builder.finish();
            }
        }
    }

    #[test]
    fn sst_reader_takes_damaged_tables(d in damage()) {
        exercise_sst(apply(table().to_vec(), &d));
    }

    #[test]
    fn sst_reader_takes_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise_sst(data);
    }

    #[test]
    fn current_decoder_takes_damaged_and_arbitrary_bytes(
        n in any::<u64>(), d in damage(), raw in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let line = format!("MANIFEST-{n:06}\n");
        let good = format!("{line}crc32 {:08x}\n", crc32fast::hash(line.as_bytes()));
        prop_assert_eq!(decode_current(Path::new("CURRENT"), good.as_bytes()).ok(), Some(n));
        let _ = decode_current(Path::new("CURRENT"), &apply(good.into_bytes(), &d));
        let _ = decode_current(Path::new("CURRENT"), &raw);
    }
}

// ---- the record layer ----

/// The record value of `docs/record-model.md`'s worked example: format 1, the ID, then
/// `{name: "An", bracket: 3}` as named MessagePack.
const WORKED_VALUE: &[u8] = b"\x01079190001234\x82\xa4name\xa2An\xa7bracket\x03";

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Tax {
    name: String,
    bracket: u8,
}

/// A key of each kind, laid out as `src/record/keys.rs` says.
fn store_keys(cid: u32, id: &str, pk: &[u8]) -> Vec<Vec<u8>> {
    let mut record = b"R".to_vec();
    record.extend_from_slice(&cid.to_be_bytes());
    record.extend_from_slice(pk);
    let mut index = b"I".to_vec();
    index.extend_from_slice(id.as_bytes());
    index.extend_from_slice(&cid.to_be_bytes());
    index.extend_from_slice(pk);
    vec![record, index, b"Ctax".to_vec(), b"Mformat".to_vec()]
}

/// Runs every read of the record layer over `db`; none may panic (errors are fine).
fn exercise_store(db: &Db) {
    let Ok(store) = Store::open_read_only(db.clone(), StoreOptions::default()) else {
        return;
    };
    let _ = store.verify_index();
    for c in store.collections() {
        if let Ok(it) = store.scan(&c) {
            for r in it.take(1000).flatten() {
                let _ = r.decode::<Tax>();
                let _ = store.get_raw(&c, &r.pk);
            }
        }
    }
    for q in [IdQuery::All, IdQuery::Province(79), IdQuery::BirthYear { province: 1, year: 1990 }] {
        if let Ok(it) = store.query(&q) {
            for e in it.take(1000).flatten() {
                let _ = store.person(&e.id);
            }
        }
        if let Ok(it) = store.persons(&q) {
            for p in it.take(1000) {
                let _ = p;
            }
        }
    }
    let _ = store.person(&NationalId::parse("079190001234").unwrap());
}

/// A small store (two collections, a few records) in memory, with `extra` raw key/value
/// pairs written over it afterwards.
fn store_with(extra: &[(Vec<u8>, Vec<u8>)]) -> Db {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(Path::new("/s"), Options { fs, ..Options::default() }).unwrap();
    let store = Store::open(db.clone(), StoreOptions::default()).unwrap();
    for (i, id) in ["079190001234", "001200000001", "096099999999"].into_iter().enumerate() {
        let id = NationalId::parse(id).unwrap();
        store.upsert("tax", format!("pk{i}"), &id, &("An", i as u8)).unwrap();
        store.upsert("health", format!("h{i}"), &id, &[i as u8; 3]).unwrap();
    }
    drop(store);
    for (k, v) in extra {
        db.put(k, v).unwrap();
    }
    db
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn national_id_parsers_take_arbitrary_strings(
        s in prop_oneof!["[0-9]{0,14}", "[0-9a-z ]{12}", ".{0,50}"],
        year in prop::option::of(any::<u16>()),
        extra in prop::collection::vec(any::<u16>(), 0..3),
    ) {
        let rules = IdRules { extra_province_codes: extra, current_year: year };
        if let Ok(id) = NationalId::parse_with(&s, &rules) {
            prop_assert_eq!(id.as_str(), s.as_str());
            let _ = (id.province_code(), id.gender(), id.birth_year(), id.century(), id.serial());
            prop_assert!(rules.check(&id).is_ok());
        }
        let _ = NationalId::parse(&s);
        let _ = s.parse::<NationalId>();
    }

    #[test]
    fn store_key_decoder_takes_damaged_and_arbitrary_keys(
        cid in any::<u32>(),
        id in "[0-9]{12}",
        pk in prop::collection::vec(any::<u8>(), 0..12),
        d in damage(),
        raw in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        for (i, k) in store_keys(cid, &id, &pk).into_iter().enumerate() {
            let decoded = StoreKey::decode(&k);
            prop_assert!(decoded.is_some(), "key {i} is well formed: {k:?}");
            if let Some(StoreKey::Index { id: got, collection, pk: got_pk }) = decoded {
                prop_assert_eq!(got.as_str(), id.as_str());
                prop_assert_eq!((collection.get(), got_pk), (cid, &pk[..]));
            }
            let _ = StoreKey::decode(&apply(k, &d));
        }
        let _ = StoreKey::decode(&raw);
        let _ = CollectionId::from_catalog_value(&raw);
        prop_assert_eq!(CollectionId::from_catalog_value(&cid.to_be_bytes()).map(CollectionId::get), Some(cid));
    }

    #[test]
    fn record_value_and_payload_decoders_take_damaged_and_arbitrary_bytes(
        d in damage(),
        raw in prop::collection::vec(any::<u8>(), 0..60),
    ) {
        for bytes in [apply(WORKED_VALUE.to_vec(), &d), raw] {
            if let Ok((_, payload)) = decode_record_value(&bytes) {
                let _ = decode_payload::<Tax>(payload);
                let _ = decode_payload::<(String, u8)>(payload);
                let _ = decode_payload::<Vec<u8>>(payload);
            }
            let _ = decode_payload::<Tax>(&bytes);
        }
    }
}

proptest! {
    // Each case builds a small database: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Garbage under the store's own tags (records, index entries, catalog entries, the
    /// format marker) must come back as errors or be skipped by every read, never panic.
    #[test]
    fn a_store_holding_garbage_keys_and_values_never_panics(
        extra in prop::collection::vec(
            (
                prop_oneof![Just(b'R'), Just(b'I'), Just(b'C'), Just(b'M')],
                prop::collection::vec(prop_oneof![b'0'..=b'9', 0u8..4, any::<u8>()], 0..24),
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..30),
                    damage().prop_map(|d| apply(WORKED_VALUE.to_vec(), &d)),
                ],
            ),
            1..6,
        ),
    ) {
        let extra: Vec<(Vec<u8>, Vec<u8>)> = extra
            .into_iter()
            .map(|(tag, mut rest, v)| {
                rest.insert(0, tag);
                (rest, v)
            })
            .collect();
        exercise_store(&store_with(&extra));
    }
}

#[test]
fn the_worked_example_value_decodes_and_a_clean_store_reads_whole() {
    let (id, payload) = decode_record_value(WORKED_VALUE).unwrap();
    assert_eq!(id.as_str(), "079190001234");
    assert_eq!(decode_payload::<Tax>(payload).unwrap(), Tax { name: "An".into(), bracket: 3 });
    let db = store_with(&[]);
    let store = Store::open_read_only(db.clone(), StoreOptions::default()).unwrap();
    assert!(store.verify_index().unwrap().is_clean());
    assert_eq!(store.collections().len(), 2);
    exercise_store(&db);
}

#[test]
fn the_valid_table_is_read_whole() {
    let r = SstReader::open(Arc::new(MemFile(table().clone())), PathBuf::from("t.sst"), 1, None).unwrap();
    assert_eq!(r.verify().unwrap().entries, 300);
    exercise_sst(table().to_vec());
}
