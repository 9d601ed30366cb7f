//! WAL record reading and write-batch decoding, as `kho dump wal` does them: every record,
//! resynchronising after damage, every batch decoded operation by operation.
#![no_main]

use bytes::Bytes;
use kho::inspect::batch::DecodedBatch;
use kho::inspect::wal::LogReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len();
    let mut r = LogReader::new(Bytes::copy_from_slice(data), "fuzz.log");
    for _ in 0..=len + 1 {
        match r.next_record() {
            Ok(Some(rec)) => {
                if let Ok(b) = DecodedBatch::parse(&rec.payload) {
                    for op in b.ops() {
                        if op.is_err() {
                            break;
                        }
                    }
                }
            }
            Ok(None) => return,
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(r.resync().is_some(), "an error is always followed by a resync point");
            }
        }
    }
    panic!("the log reader did not finish a {len}-byte log");
});
