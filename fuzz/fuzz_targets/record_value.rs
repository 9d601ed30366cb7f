//! The record layer's value decoders: `decode_record_value` (format byte, national ID,
//! payload) and `decode_payload` of the payload as a few `serde` shapes, and of the raw bytes.
#![no_main]

use kho::record::{decode_payload, decode_record_value};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code, reason = "only decoded")]
struct Tax {
    name: String,
    bracket: u8,
    #[serde(default)]
    phone: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    if let Ok((id, payload)) = decode_record_value(data) {
        assert_eq!(&data[1..13], id.as_bytes());
        let _ = decode_payload::<Tax>(payload);
        let _ = decode_payload::<(u32, u32)>(payload);
        let _ = decode_payload::<Vec<String>>(payload);
    }
    let _ = decode_payload::<Tax>(data);
});
