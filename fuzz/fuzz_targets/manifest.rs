//! Manifest edit decoding: the input is one edit payload (`VersionEdit::decode`), and also a
//! whole manifest file read through the log framing (`read_manifest`, on an in-memory fs)
//! whose edits then go through the version builder's checks.
#![no_main]

use std::path::Path;

use kho::inspect::version::{read_manifest, VersionBuilder, VersionEdit, MAX_LEVELS};
use kho::vfs::{FaultFs, FileSystem};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = VersionEdit::decode(data);

    // The same bytes framed as one manifest record, and as a raw manifest file.
    let mut framed = Vec::new();
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.push(0);
    framed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    let hcrc = crc32fast::hash(&framed);
    framed.extend_from_slice(&hcrc.to_le_bytes());
    framed.extend_from_slice(data);
    let fs = FaultFs::new();
    let _ = fs.create_dir_all(Path::new("/db"));
    for (name, bytes) in [("/db/MANIFEST-000001", &framed[..]), ("/db/MANIFEST-000002", data)] {
        let path = Path::new(name);
        if let Ok(mut f) = fs.create(path) {
            let _ = f.append(bytes);
            drop(f);
            if let Ok(m) = read_manifest(&fs, path, kho::RecoveryMode::TolerateCorruptedTail, None) {
                let mut builder = VersionBuilder::new(MAX_LEVELS as usize);
                for (offset, edit) in &m.edits {
                    let _ = builder.apply(edit, Some(*offset));
                }
                let _ = builder.finish();
            }
        }
    }
});
