//! [`RangeMap`]: which Raft group holds a national ID — a range map over ID prefixes
//! (province code = the first 3 digits, then the century/gender digit and the 2 birth-year
//! digits), the unit of scale-out (docs/scale-out.md, "Partitioning").
//!
//! A map is a sorted list of disjoint ranges `[start, end)` of 6-digit keys
//! `PPP G YY` (the first 6 digits of the ID) covering every key from `000000` to `999999`,
//! each owned by one group. Keys sort exactly as the IDs (and the index keys `I|id|...`) do,
//! so a range is a contiguous slice of each store's index: moving a range is copying one
//! key range and flipping one entry of the map. Invariants (checked by [`RangeMap::new`]):
//! ranges are sorted, contiguous, non-empty and cover the whole key space.

use kho::record::NationalId;

use crate::error::{Error, Result};

/// A Raft group's id.
pub type GroupId = u64;

/// Number of prefix keys: `PPP G YY` as a 6-digit number.
pub const KEY_SPACE: u32 = 1_000_000;

/// The 6-digit prefix key (`PPP G YY`) of an ID.
pub fn prefix_key(id: &NationalId) -> u32 {
    id.as_str().bytes().take(6).fold(0u32, |k, d| k * 10 + u32::from(d.wrapping_sub(b'0') % 10))
}

/// The prefix key of a province, century/gender digit and two birth-year digits.
pub fn key_of(province: u16, century_gender: u8, year2: u8) -> Result<u32> {
    if province > 999 || century_gender > 9 || year2 > 99 {
        return Err(Error::Invalid("prefix parts out of range".into()));
    }
    Ok(u32::from(province) * 1000 + u32::from(century_gender) * 100 + u32::from(year2))
}

/// One range of prefix keys and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First key (inclusive).
    pub start: u32,
    /// End key (exclusive; [`KEY_SPACE`] for the last range).
    pub end: u32,
    /// The owning group.
    pub group: GroupId,
}

/// A complete map of prefix ranges to groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMap {
    ranges: Vec<Range>,
}

impl RangeMap {
    /// A map of `ranges`, which must be sorted, contiguous, non-empty and cover `0..KEY_SPACE`.
    pub fn new(ranges: Vec<Range>) -> Result<RangeMap> {
        let mut next = 0;
        for r in &ranges {
            if r.start != next || r.end <= r.start || r.end > KEY_SPACE {
                return Err(Error::Invalid(format!("range [{}, {}) does not continue at {next}", r.start, r.end)));
            }
            next = r.end;
        }
        if next != KEY_SPACE {
            return Err(Error::Invalid(format!("ranges end at {next}, not {KEY_SPACE}")));
        }
        Ok(RangeMap { ranges })
    }

    /// One group per province code (`PPP000..PPP+1 000`), groups numbered `0..`, provinces
    /// split into `groups` contiguous runs of about equal count.
    pub fn by_province(groups: u64) -> Result<RangeMap> {
        if groups == 0 || groups > 1000 {
            return Err(Error::Invalid("1 to 1000 groups".into()));
        }
        let per = 1000u64.div_ceil(groups);
        let mut ranges = Vec::new();
        let mut p = 0u64;
        let mut g = 0;
        while p < 1000 {
            let end = (p + per).min(1000);
            ranges.push(Range { start: (p * 1000) as u32, end: (end * 1000) as u32, group: g });
            p = end;
            g += 1;
        }
        RangeMap::new(ranges)
    }

    /// The ranges, in key order.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// The group holding prefix key `key`.
    pub fn group_of_key(&self, key: u32) -> Option<GroupId> {
        let i = self.ranges.partition_point(|r| r.end <= key);
        self.ranges.get(i).filter(|r| r.start <= key).map(|r| r.group)
    }

    /// The group holding `id`'s records.
    pub fn group_of(&self, id: &NationalId) -> Option<GroupId> {
        self.group_of_key(prefix_key(id))
    }

    /// The groups a query of every ID with prefix keys in `[start, end)` must ask, in key
    /// order, without repeats.
    pub fn groups_for(&self, start: u32, end: u32) -> Vec<GroupId> {
        let mut out: Vec<GroupId> = Vec::new();
        for r in self.ranges.iter().filter(|r| r.start < end && start < r.end) {
            if !out.contains(&r.group) {
                out.push(r.group);
            }
        }
        out
    }

    /// The map after splitting the range holding `at` into `[start, at)` (same group) and
    /// `[at, end)` (group `to`): the first step of a rebalance.
    pub fn split(&self, at: u32, to: GroupId) -> Result<RangeMap> {
        let i = self.ranges.partition_point(|r| r.end <= at);
        let r = *self.ranges.get(i).ok_or(Error::Invalid("split point out of range".into()))?;
        if r.start == at {
            return Err(Error::Invalid("split point is a range boundary already".into()));
        }
        let mut ranges = self.ranges.clone();
        ranges[i] = Range { start: r.start, end: at, group: r.group };
        ranges.insert(i + 1, Range { start: at, end: r.end, group: to });
        RangeMap::new(ranges)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(s: &str) -> NationalId {
        NationalId::parse(s).unwrap()
    }

    #[test]
    fn prefix_keys_sort_like_ids() {
        assert_eq!(prefix_key(&id("079203001234")), 79_203);
        assert_eq!(key_of(79, 2, 3).unwrap(), 79_203);
        assert!(prefix_key(&id("001190000001")) < prefix_key(&id("079203001234")));
        assert!(key_of(1000, 0, 0).is_err());
    }

    #[test]
    fn every_key_has_exactly_one_group() {
        let m = RangeMap::by_province(7).unwrap();
        assert_eq!(m.ranges().len(), 7);
        for k in (0..KEY_SPACE).step_by(997).chain([0, KEY_SPACE - 1]) {
            let g = m.group_of_key(k).unwrap();
            let owners = m.ranges().iter().filter(|r| r.start <= k && k < r.end).count();
            assert_eq!(owners, 1);
            assert_eq!(m.ranges().iter().find(|r| r.start <= k && k < r.end).unwrap().group, g);
        }
        assert_eq!(m.group_of_key(KEY_SPACE), None);
    }

    #[test]
    fn a_province_lives_in_one_group_and_queries_find_their_groups() {
        let m = RangeMap::by_province(10).unwrap();
        let hcm = [id("079203001234"), id("079190001234"), id("079305000001")];
        let g = m.group_of(&hcm[0]).unwrap();
        assert!(hcm.iter().all(|i| m.group_of(i) == Some(g)));
        assert_eq!(m.groups_for(key_of(79, 0, 0).unwrap(), key_of(80, 0, 0).unwrap()), vec![g]);
        assert_eq!(m.groups_for(0, KEY_SPACE).len(), 10);
    }

    #[test]
    fn maps_with_holes_overlaps_or_gaps_are_refused() {
        let r = |start, end, group| Range { start, end, group };
        assert!(RangeMap::new(vec![r(0, 10, 0), r(11, KEY_SPACE, 1)]).is_err());
        assert!(RangeMap::new(vec![r(0, 10, 0), r(5, KEY_SPACE, 1)]).is_err());
        assert!(RangeMap::new(vec![r(0, 10, 0)]).is_err());
        assert!(RangeMap::new(vec![r(0, 0, 0), r(0, KEY_SPACE, 1)]).is_err());
        assert!(RangeMap::new(vec![r(0, KEY_SPACE, 0)]).is_ok());
    }

    #[test]
    fn splitting_moves_the_upper_half_to_a_new_group() {
        let m = RangeMap::by_province(1).unwrap();
        let at = key_of(79, 2, 0).unwrap();
        let s = m.split(at, 9).unwrap();
        assert_eq!(s.group_of(&id("079190001234")), Some(0));
        assert_eq!(s.group_of(&id("079203001234")), Some(9));
        assert!(s.split(at, 3).is_err());
    }
}
