//! [`NationalId`]: the 12-digit Vietnamese personal identification number (số định danh cá
//! nhân), its validation rules ([`IdRules`]) and its parts.
//!
//! Layout (Decree 137/2015/ND-CP Art. 13, Circular 07/2016/TT-BCA Art. 7): `PPP G YY RRRRRR`
//! - `PPP`: the code of the province where the birth was registered, one of the 63 codes of
//!   Circular 07/2016/TT-BCA Appendix I ([`PROVINCE_CODES`]);
//! - `G`: century and gender: `0`/`1` born 1900-1999 male/female, `2`/`3` 2000-2099,
//!   `4`/`5` 2100-2199, `6`/`7` 2200-2299, `8`/`9` 2300-2399;
//! - `YY`: the last two digits of the birth year, so `birth_year = 1900 + 100 * (G / 2) + YY`
//!   and the gender is `G mod 2`;
//! - `RRRRRR`: a random serial. There is no check digit.
//!
//! Invariants of a [`NationalId`] value: exactly 12 ASCII digits; its province code was
//! accepted by the [`IdRules`] it was parsed with; its birth year was not after the rules'
//! current year. Stored as those 12 bytes, so byte order sorts by province, then
//! century/gender, then birth year, then serial — which is what the index's prefix queries
//! rely on. Province names are deliberately absent: codes were re-assigned when provinces
//! merged in 2025, so a code->name table must not leak into keys.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{Error, Result};

/// Length of a national ID in bytes (ASCII digits).
pub const NATIONAL_ID_LEN: usize = 12;

/// The 63 province codes of Circular 07/2016/TT-BCA, Appendix I ("Danh mục mã tỉnh, thành
/// phố trực thuộc trung ương nơi công dân đăng ký khai sinh"), ascending: 001 Ha Noi, 002 Ha
/// Giang, 004 Cao Bang, ... 079 TP.HCM, ... 096 Ca Mau. Checked against the table reproduced
/// at news.thuvienphapluat.vn ("Tra cứu mã 63 tỉnh thành trên thẻ Căn cước công dân").
pub const PROVINCE_CODES: [u16; 63] = [
    1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35, 36, 37, 38, 40, 42, 44, 45,
    46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70, 72, 74, 75, 77, 79, 80, 82, 83, 84, 86, 87, 89, 91, 92,
    93, 94, 95, 96,
];

/// Why a string is not a valid national ID (carried by [`Error::InvalidNationalId`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidIdReason {
    /// Not exactly 12 bytes long.
    WrongLength {
        /// The length found, in bytes.
        len: usize,
    },
    /// A byte that is not an ASCII digit.
    NotADigit {
        /// Zero-based byte position of the first offending byte.
        position: usize,
    },
    /// The first three digits are not a province code the rules accept.
    UnknownProvince {
        /// The code found.
        code: u16,
    },
    /// The century/gender and year digits give a birth year after the current year.
    FutureBirthYear {
        /// The birth year the digits encode.
        year: u16,
        /// The current year the rules compare against.
        current_year: u16,
    },
}

impl fmt::Display for InvalidIdReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { len } => write!(f, "must be 12 digits, found {len} bytes"),
            Self::NotADigit { position } => {
                write!(f, "byte {position} is not an ASCII digit")
            }
            Self::UnknownProvince { code } => {
                write!(f, "province code {code:03} is not in Circular 07/2016 Appendix I nor configured")
            }
            Self::FutureBirthYear { year, current_year } => {
                write!(f, "birth year {year} is in the future (current year {current_year})")
            }
        }
    }
}

/// Gender, from the parity of the century/gender digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gender {
    /// Even century/gender digit.
    Male,
    /// Odd century/gender digit.
    Female,
}

/// What [`NationalId::parse_with`] accepts beyond the fixed format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdRules {
    /// Province codes accepted in addition to [`PROVINCE_CODES`] (e.g. for births registered
    /// abroad, or codes introduced after 2016). Each must be below 1000.
    pub extra_province_codes: Vec<u16>,
    /// The year birth years are compared against; `None` means the system clock's (UTC).
    pub current_year: Option<u16>,
}

impl IdRules {
    /// True if `code` is a province code these rules accept.
    pub fn accepts_province(&self, code: u16) -> bool {
        PROVINCE_CODES.binary_search(&code).is_ok() || self.extra_province_codes.contains(&code)
    }

    /// The year against which birth years are checked.
    pub fn current_year(&self) -> u16 {
        self.current_year.unwrap_or_else(system_year)
    }

    /// Checks an already well-formed ID against these rules (province and birth year).
    pub fn check(&self, id: &NationalId) -> Result<()> {
        let reason = if !self.accepts_province(id.province_code()) {
            Some(InvalidIdReason::UnknownProvince { code: id.province_code() })
        } else {
            let current_year = self.current_year();
            (id.birth_year() > current_year)
                .then_some(InvalidIdReason::FutureBirthYear { year: id.birth_year(), current_year })
        };
        match reason {
            Some(reason) => Err(invalid(id.as_str(), reason)),
            None => Ok(()),
        }
    }
}

/// A validated 12-digit national ID. Ordering is byte order, i.e. by province, then
/// century/gender, then birth year, then serial.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NationalId([u8; NATIONAL_ID_LEN]);

impl NationalId {
    /// Parses and validates `s` with the default rules (the 63 codes, the system clock's year).
    pub fn parse(s: &str) -> Result<NationalId> {
        Self::parse_with(s, &IdRules::default())
    }

    /// Parses and validates `s` with `rules`.
    pub fn parse_with(s: &str, rules: &IdRules) -> Result<NationalId> {
        let id = Self::from_digits(s.as_bytes()).map_err(|reason| invalid(s, reason))?;
        rules.check(&id)?;
        Ok(id)
    }

    /// Checks only the format (12 ASCII digits), not the province or the year: for IDs read
    /// back from storage, which were validated when written.
    pub(crate) fn from_digits(b: &[u8]) -> std::result::Result<NationalId, InvalidIdReason> {
        let bytes: [u8; NATIONAL_ID_LEN] = b.try_into().map_err(|_| InvalidIdReason::WrongLength { len: b.len() })?;
        if let Some(position) = bytes.iter().position(|c| !c.is_ascii_digit()) {
            return Err(InvalidIdReason::NotADigit { position });
        }
        Ok(NationalId(bytes))
    }

    fn digits(&self, from: usize, to: usize) -> u16 {
        self.0[from..to].iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'))
    }

    /// The 12 ASCII digits.
    pub fn as_bytes(&self) -> &[u8; NATIONAL_ID_LEN] {
        &self.0
    }

    /// The ID redacted for logs and errors: `"0792******34"`.
    pub fn redacted(&self) -> String {
        crate::util::redact(&self.0)
    }

    /// The ID as a string slice.
    pub fn as_str(&self) -> &str {
        // Always ASCII digits (a type invariant), so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The province-of-birth-registration code (`PPP`), e.g. 79 for TP.HCM.
    pub fn province_code(&self) -> u16 {
        self.digits(0, 3)
    }

    /// The century/gender digit `G` (0-9).
    pub fn century_gender_digit(&self) -> u8 {
        self.0[3] - b'0'
    }

    /// The century of birth as counted in the circular: 20 for 1900-1999, 21 for 2000-2099...
    pub fn century(&self) -> u8 {
        20 + self.century_gender_digit() / 2
    }

    /// The gender (`G mod 2`).
    pub fn gender(&self) -> Gender {
        if self.century_gender_digit().is_multiple_of(2) {
            Gender::Male
        } else {
            Gender::Female
        }
    }

    /// The birth year: `1900 + 100 * (G / 2) + YY`.
    pub fn birth_year(&self) -> u16 {
        1900 + 100 * u16::from(self.century_gender_digit() / 2) + self.digits(4, 6)
    }

    /// The six random serial digits as a number.
    pub fn serial(&self) -> u32 {
        self.0[6..].iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
    }

    /// Builds an ID from its parts (for generators and tests); `None` if a part is out of
    /// range (province >= 1000, year outside 1900-2399, serial >= 1,000,000). The province and
    /// the year are not checked against any [`IdRules`].
    pub fn from_parts(province: u16, gender: Gender, birth_year: u16, serial: u32) -> Option<Self> {
        if province >= 1000 || !(1900..2400).contains(&birth_year) || serial >= 1_000_000 {
            return None;
        }
        Some(Self::from_parts_clamped(province, gender, birth_year, serial))
    }

    /// Like [`from_parts`](Self::from_parts) with every part clamped into range.
    pub(crate) fn from_parts_clamped(province: u16, gender: Gender, birth_year: u16, serial: u32) -> Self {
        let province = u32::from(province.min(999));
        let since_1900 = u32::from(birth_year.clamp(1900, 2399) - 1900);
        let g = since_1900 / 100 * 2 + u32::from(gender == Gender::Female);
        let serial = serial.min(999_999);
        let mut b = [b'0'; NATIONAL_ID_LEN];
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 3, province);
        put(3, 1, g);
        put(4, 2, since_1900 % 100);
        put(6, 6, serial);
        NationalId(b)
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Redacted: `NationalId("0792******34")`. `Display` (and [`NationalId::as_str`]) give the
/// whole ID, for output the user asked for.
impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({})", self.redacted())
    }
}

impl std::str::FromStr for NationalId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// A refused input is echoed redacted (an ID with one wrong digit is still personal data).
fn invalid(input: &str, reason: InvalidIdReason) -> Error {
    Error::InvalidNationalId { input: crate::util::redact(input.as_bytes()), reason }
}

/// The current calendar year (UTC) from the system clock.
fn system_year() -> u16 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    year_of_unix_day((secs / 86_400) as i64)
}

/// The proleptic Gregorian year of a day number counted from 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn year_of_unix_day(days: i64) -> u16 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month_is_jan_or_feb = mp >= 10;
    let year = yoe + era * 400 + i64::from(month_is_jan_or_feb);
    u16::try_from(year).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The stored-ID decoder and the parser take any bytes; whatever they accept is 12
        /// digits whose parts are all in range and which re-encode to the same ID.
        #[test]
        fn id_decoders_take_arbitrary_bytes(
            bytes in proptest::collection::vec(prop_oneof![3 => b'0'..=b'9', 1 => any::<u8>()], 0..16),
            year in prop::option::of(0u16..3000),
        ) {
            let rules = IdRules { extra_province_codes: vec![0, 999], current_year: year };
            if let Ok(id) = NationalId::from_digits(&bytes) {
                prop_assert_eq!(&id.as_bytes()[..], &bytes[..]);
                prop_assert!(id.century_gender_digit() <= 9 && id.serial() < 1_000_000);
                let again = NationalId::from_parts(id.province_code(), id.gender(), id.birth_year(), id.serial());
                prop_assert_eq!(again, Some(id));
                let _ = (id.century(), id.as_str(), rules.check(&id));
            }
            let s = String::from_utf8_lossy(&bytes);
            if let Ok(id) = NationalId::parse_with(&s, &rules) {
                prop_assert!(rules.accepts_province(id.province_code()));
                prop_assert!(id.birth_year() <= rules.current_year());
            }
            let _ = s.parse::<NationalId>();
        }
    }

    #[test]
    fn province_list_is_the_63_codes_sorted() {
        assert_eq!(PROVINCE_CODES.len(), 63);
        assert!(PROVINCE_CODES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(PROVINCE_CODES[0], 1);
        assert!(PROVINCE_CODES.contains(&79));
        assert_eq!(PROVINCE_CODES[62], 96);
    }

    #[test]
    fn parts_round_trip() {
        let id = NationalId::parse("079203001234").unwrap();
        assert_eq!(id.province_code(), 79);
        assert_eq!(id.gender(), Gender::Male);
        assert_eq!(id.birth_year(), 2003);
        assert_eq!(id.century(), 21);
        assert_eq!(id.serial(), 1234);
        let back = NationalId::from_parts(79, Gender::Male, 2003, 1234).unwrap();
        assert_eq!(back, id);
        let f = NationalId::from_parts(1, Gender::Female, 1985, 999_999).unwrap();
        assert_eq!(f.as_str(), "001185999999");
        assert_eq!(f.gender(), Gender::Female);
    }

    #[test]
    fn year_from_days() {
        assert_eq!(year_of_unix_day(0), 1970);
        assert_eq!(year_of_unix_day(-1), 1969);
        assert_eq!(year_of_unix_day(10_957), 2000); // 2000-01-01
        assert_eq!(year_of_unix_day(11_322), 2000); // 2000-12-31
        assert_eq!(year_of_unix_day(11_323), 2001);
        assert_eq!(year_of_unix_day(20_454), 2026); // 2026-01-01
    }

    #[test]
    fn long_input_is_cut_in_errors() {
        let long = "9".repeat(1000);
        match NationalId::parse(&long) {
            Err(Error::InvalidNationalId { input, reason }) => {
                assert!(input.len() < 50);
                assert_eq!(reason, InvalidIdReason::WrongLength { len: 1000 });
            }
            other => panic!("{other:?}"),
        }
    }
}
