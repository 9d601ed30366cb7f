//! National ID validation: a table of valid and invalid IDs with the exact error each gets,
//! and the store applying its own rules (extra province codes) to writes.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{db_dir, fault_fs, small_options};
use kho::record::Error;
use kho::record::{Gender, IdRules, InvalidIdReason, NationalId, Store, StoreOptions};
use kho::Db;

/// Rules pinned to 2025 so the table does not depend on the clock.
fn rules_2025() -> IdRules {
    IdRules { current_year: Some(2025), ..IdRules::default() }
}

fn reason(input: &str, rules: &IdRules) -> Option<InvalidIdReason> {
    match NationalId::parse_with(input, rules) {
        Ok(_) => None,
        Err(Error::InvalidNationalId { input: echoed, reason }) => {
            assert_eq!(echoed, kho::util::redact(input.as_bytes()), "the error names the input, redacted");
            Some(reason)
        }
        Err(e) => panic!("{input:?}: unexpected error kind {e}"),
    }
}

#[test]
fn valid_ids_and_their_parts() {
    // (id, province, gender, birth year, century)
    let table: &[(&str, u16, Gender, u16, u8)] = &[
        ("001190000001", 1, Gender::Female, 1990, 20),  // Ha Noi
        ("079203001234", 79, Gender::Male, 2003, 21),   // TP.HCM
        ("096185999999", 96, Gender::Female, 1985, 20), // Ca Mau
        ("001000000000", 1, Gender::Male, 1900, 20),    // earliest encodable year
        ("048199123456", 48, Gender::Female, 1999, 20), // Da Nang
        ("002325000000", 2, Gender::Female, 2025, 21),  // born this (pinned) year
    ];
    for &(s, province, gender, year, century) in table {
        let id = NationalId::parse_with(s, &rules_2025()).unwrap();
        assert_eq!(id.as_str(), s);
        assert_eq!(id.province_code(), province, "{s}");
        assert_eq!(id.gender(), gender, "{s}");
        assert_eq!(id.birth_year(), year, "{s}");
        assert_eq!(id.century(), century, "{s}");
        assert_eq!(id.to_string(), s);
        assert_eq!(NationalId::from_parts(province, gender, year, id.serial()), Some(id));
    }
}

#[test]
fn invalid_ids_name_the_reason() {
    use InvalidIdReason::*;
    let table: &[(&str, InvalidIdReason)] = &[
        ("", WrongLength { len: 0 }),
        ("07920300123", WrongLength { len: 11 }),
        ("0792030012345", WrongLength { len: 13 }),
        ("079 203 001 234", WrongLength { len: 15 }),
        ("０７９203001234", WrongLength { len: 18 }), // full-width digits are 3 bytes each
        ("07920300123a", NotADigit { position: 11 }),
        (" 79203001234", NotADigit { position: 0 }),
        ("079-03001234", NotADigit { position: 3 }),
        ("+84203001234", NotADigit { position: 0 }),
        ("000190000001", UnknownProvince { code: 0 }),
        ("003190000001", UnknownProvince { code: 3 }), // a gap in Appendix I
        ("050190000001", UnknownProvince { code: 50 }),
        ("097190000001", UnknownProvince { code: 97 }), // past Ca Mau (096)
        ("999190000001", UnknownProvince { code: 999 }),
        ("079226000001", FutureBirthYear { year: 2026, current_year: 2025 }),
        ("079399000001", FutureBirthYear { year: 2099, current_year: 2025 }),
        ("046299000000", FutureBirthYear { year: 2099, current_year: 2025 }), // G=2: 2000s
        ("079400000001", FutureBirthYear { year: 2100, current_year: 2025 }),
        ("079999999999", FutureBirthYear { year: 2399, current_year: 2025 }),
    ];
    for (input, expected) in table {
        assert_eq!(reason(input, &rules_2025()).as_ref(), Some(expected), "{input:?}");
    }
    // Errors print the reason.
    let msg = NationalId::parse_with("003190000001", &rules_2025()).unwrap_err().to_string();
    assert!(msg.contains("province code 003"), "{msg}");
    let msg = NationalId::parse("079400000001").unwrap_err().to_string();
    assert!(msg.contains("birth year 2100 is in the future"), "{msg}");
}

#[test]
fn default_rules_use_the_clock() {
    // Whatever today is, 1990 is past and 2399 is future.
    assert!(NationalId::parse("001190000001").is_ok());
    assert!(matches!(
        NationalId::parse("001999000001"),
        Err(Error::InvalidNationalId { reason: InvalidIdReason::FutureBirthYear { year: 2399, .. }, .. })
    ));
    assert_eq!("079203001234".parse::<NationalId>().unwrap().birth_year(), 2003);
}

#[test]
fn extra_province_codes_are_accepted_when_configured() {
    let abroad = IdRules { extra_province_codes: vec![97, 100], current_year: Some(2025) };
    let id = NationalId::parse_with("097190000001", &abroad).unwrap();
    assert_eq!(id.province_code(), 97);
    assert!(NationalId::parse_with("100190000001", &abroad).is_ok());
    assert_eq!(reason("098190000001", &abroad), Some(InvalidIdReason::UnknownProvince { code: 98 }));

    // A store without the extra code refuses the ID on write, whatever it was parsed with;
    // a store configured with it accepts it, and parses with its rules.
    let (_fs, shared) = fault_fs();
    let db = Db::open(db_dir(), small_options(shared.clone())).unwrap();
    let strict = Store::open(db.clone(), StoreOptions::default()).unwrap();
    match strict.insert("residence", "r1", &id, &"x") {
        Err(Error::InvalidNationalId { reason, .. }) => {
            assert_eq!(reason, InvalidIdReason::UnknownProvince { code: 97 })
        }
        other => panic!("{other:?}"),
    }
    assert!(strict.parse_id("097190000001").is_err());
    let lenient = Store::open(db, StoreOptions { id_rules: abroad, ..StoreOptions::default() }).unwrap();
    let parsed = lenient.parse_id("097190000001").unwrap();
    lenient.insert("residence", "r1", &parsed, &"x").unwrap();
    assert_eq!(lenient.person(&parsed).unwrap().len(), 1);
}
