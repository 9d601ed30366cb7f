//! The record layer's key and ID decoders: `StoreKey::decode` (record, index, catalog and
//! meta keys), `CollectionId::from_catalog_value`, and `NationalId::parse` / `parse_with` on
//! the bytes as text. Whatever decodes must be consistent with what it decoded from.
#![no_main]

use kho::record::{CollectionId, IdRules, NationalId, StoreKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match StoreKey::decode(data) {
        Some(StoreKey::Index { id, collection, pk }) => {
            assert_eq!(&data[1..13], id.as_bytes());
            assert_eq!(&data[13..17], collection.get().to_be_bytes());
            assert_eq!(&data[17..], pk);
            let _ = (id.province_code(), id.gender(), id.birth_year(), id.serial());
        }
        Some(StoreKey::Record { collection, pk }) => {
            assert_eq!(&data[1..5], collection.get().to_be_bytes());
            assert_eq!(&data[5..], pk);
        }
        _ => {}
    }
    let _ = CollectionId::from_catalog_value(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = NationalId::parse(s);
        let rules = IdRules { extra_province_codes: vec![0, 999], current_year: Some(2399) };
        if let Ok(id) = NationalId::parse_with(s, &rules) {
            assert_eq!(id.as_str(), s);
        }
    }
});
