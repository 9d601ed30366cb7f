//! `CURRENT` parsing.
#![no_main]

use std::path::Path;

use kho::inspect::filename::{decode_current, parse_file_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_current(Path::new("CURRENT"), data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_file_name(s);
    }
});
