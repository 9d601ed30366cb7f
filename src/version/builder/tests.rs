//! One test per check of the builder, plus a model test of the overlap check.

use super::*;
use crate::key::{internal_key, ValueKind};
use proptest::prelude::*;

/// Table `number` holding user keys `lo..=hi` (sequence `number`).
fn meta(number: u64, lo: &str, hi: &str) -> FileMeta {
    FileMeta::test_table(number, lo, hi, 100)
}

fn counters(log: u64, next: u64, last: u64) -> VersionEdit {
    VersionEdit {
        log_number: Some(log),
        next_file_number: Some(next),
        last_sequence: Some(last),
        ..VersionEdit::default()
    }
}

fn adds(files: &[(u32, FileMeta)]) -> VersionEdit {
    VersionEdit { new_files: files.to_vec(), ..VersionEdit::default() }
}

/// A builder (4 levels) after a first edit at offset 0 holding counters (log 5, next 100,
/// last sequence 50) and `files`, which must be consistent.
fn base(files: &[(u32, FileMeta)]) -> VersionBuilder {
    let mut b = VersionBuilder::new(4);
    let edit = VersionEdit { new_files: files.to_vec(), ..counters(5, 100, 50) };
    assert_eq!(b.apply(&edit, Some(0)), vec![]);
    b
}

/// Applies `edit` at offset 77 and returns what is wrong, asserting every inconsistency
/// carries that offset.
fn bad(b: &mut VersionBuilder, edit: &VersionEdit) -> Vec<String> {
    let v = b.apply(edit, Some(77));
    assert!(v.iter().all(|i| i.offset == Some(77)), "{v:?}");
    v.into_iter().map(|i| i.what).collect()
}

fn one(b: &mut VersionBuilder, edit: &VersionEdit, expect: &str) {
    let v = bad(b, edit);
    assert!(v.len() == 1 && v[0].contains(expect), "expected one {expect:?}, got {v:?}");
}

#[test]
fn a_consistent_history_has_no_inconsistencies() {
    let mut b = base(&[(0, meta(7, "a", "z")), (1, meta(8, "a", "f")), (1, meta(9, "g", "m"))]);
    // A flush, a compaction L0+L1 -> L1, a trivial move L1 -> L2.
    assert_eq!(
        bad(&mut b, &VersionEdit { log_number: Some(6), ..adds(&[(0, meta(10, "b", "c"))]) }),
        Vec::<String>::new()
    );
    let compaction = VersionEdit {
        deleted_files: vec![(0, 7), (0, 10), (1, 8), (1, 9)],
        new_files: vec![(1, meta(11, "a", "h")), (1, meta(12, "i", "z"))],
        next_file_number: Some(101),
        ..VersionEdit::default()
    };
    assert_eq!(bad(&mut b, &compaction), Vec::<String>::new());
    let moved =
        VersionEdit { deleted_files: vec![(1, 12)], new_files: vec![(2, meta(12, "i", "z"))], ..Default::default() };
    assert_eq!(bad(&mut b, &moved), Vec::<String>::new());
    assert_eq!(b.finish(), vec![]);
    let files: Vec<(usize, u64)> = b.files().map(|(l, f)| (l, f.number)).collect();
    assert_eq!(files, vec![(1, 11), (2, 12)]);
    assert_eq!((b.log_number(), b.next_file_number(), b.last_sequence()), (Some(6), Some(101), Some(50)));
}

#[test]
fn a_level_out_of_range_is_inconsistent() {
    let mut b = base(&[(1, meta(7, "a", "b"))]);
    one(&mut b, &adds(&[(4, meta(8, "a", "b"))]), "edit adds table 8 at L4, beyond the 4 levels");
    assert!(b.find(8).is_none(), "not added");
    one(&mut b, &VersionEdit { deleted_files: vec![(9, 7)], ..Default::default() }, "deletes table 7 at L9, beyond");
    assert!(b.find(7).is_some());
}

#[test]
fn deleting_a_table_not_at_that_level_is_inconsistent() {
    let mut b = base(&[(1, meta(7, "a", "b"))]);
    one(
        &mut b,
        &VersionEdit { deleted_files: vec![(2, 7)], ..Default::default() },
        "deletes table 7 which is not at L2",
    );
    one(&mut b, &VersionEdit { deleted_files: vec![(1, 99)], ..Default::default() }, "table 99 which is not at L1");
    // Twice in one edit: the second finds it gone.
    one(
        &mut b,
        &VersionEdit { deleted_files: vec![(1, 7), (1, 7)], ..Default::default() },
        "table 7 which is not at L1",
    );
    assert!(b.find(7).is_none());
}

#[test]
fn adding_a_live_table_is_inconsistent_unless_it_moves() {
    let mut b = base(&[(1, meta(7, "a", "b"))]);
    one(&mut b, &adds(&[(2, meta(7, "a", "b"))]), "adds table 7 at L2 which is already live at L1");
    assert_eq!(b.find(7).map(|(l, _)| l), Some(1), "the live one stays");
    one(
        &mut b,
        &adds(&[(0, meta(8, "a", "b")), (0, meta(8, "a", "b"))]),
        "adds table 8 at L0 which is already live at L0",
    );
    // A move: deleted at one level and added at another by the same edit.
    let mv = VersionEdit { deleted_files: vec![(1, 7)], new_files: vec![(3, meta(7, "a", "b"))], ..Default::default() };
    assert_eq!(bad(&mut b, &mv), Vec::<String>::new());
    assert_eq!(b.find(7).map(|(l, _)| l), Some(3));
    // A move must keep the table's metadata.
    let mut changed = meta(7, "a", "b");
    changed.entries += 1;
    let mv = VersionEdit { deleted_files: vec![(3, 7)], new_files: vec![(2, changed)], ..Default::default() };
    one(&mut b, &mv, "moves table 7 from L3 to L2 but changes its metadata");
}

#[test]
fn a_table_number_not_below_the_next_file_number_is_inconsistent() {
    let mut b = base(&[]);
    one(&mut b, &adds(&[(0, meta(100, "a", "b"))]), "adds table 100 at L0, not below the next file number 100");
    // The edit's own next file number is the bound.
    assert_eq!(
        bad(&mut b, &VersionEdit { next_file_number: Some(200), ..adds(&[(0, meta(150, "a", "b"))]) }),
        Vec::<String>::new()
    );
    one(
        &mut b,
        &VersionEdit { next_file_number: Some(200), ..adds(&[(0, meta(250, "a", "b"))]) },
        "adds table 250 at L0, not below the next file number 200",
    );
    // Tables added before any next file number was recorded are checked when it is.
    let mut b = VersionBuilder::new(4);
    assert_eq!(b.apply(&adds(&[(0, meta(30, "a", "b"))]), Some(0)), vec![]);
    one(
        &mut b,
        &VersionEdit { next_file_number: Some(20), ..Default::default() },
        "sets the next file number to 20, not above table 30",
    );
}

#[test]
fn bad_table_metadata_is_inconsistent() {
    let mut b = base(&[]);
    one(&mut b, &adds(&[(0, meta(7, "z", "a"))]), "its smallest key \"*\" sorts after its largest key \"*\"");
    let mut short = meta(8, "a", "b");
    short.smallest = Bytes::from_static(b"abc");
    one(&mut b, &adds(&[(0, short)]), "its smallest key (3 bytes) is not an internal key");
    let mut bad_kind = meta(9, "a", "b");
    bad_kind.largest = Bytes::from(b"b\x07\0\0\0\0\0\0\0".to_vec());
    one(&mut b, &adds(&[(0, bad_kind)]), "its largest key (9 bytes) is not an internal key");
    let mut seqs = meta(10, "a", "b");
    seqs.smallest_seq = 11;
    one(&mut b, &adds(&[(0, seqs)]), "its smallest sequence 11 is above its largest 10");
    // One key, two versions: smallest (newer) sorts before largest (older) although the
    // user keys are equal.
    let mut same = meta(11, "k", "k");
    same.largest = Bytes::from(internal_key(b"k", 3, ValueKind::Put));
    assert_eq!(bad(&mut b, &adds(&[(0, same)])), Vec::<String>::new());
}

#[test]
fn overlapping_tables_in_a_sorted_level_are_inconsistent() {
    let mut b = base(&[(1, meta(7, "d", "f")), (1, meta(8, "m", "p"))]);
    // Overlaps the table after it, the table before it, shares a boundary user key.
    one(
        &mut b,
        &adds(&[(1, meta(9, "a", "d"))]),
        "adds table 9 at L1 overlapping table 7 (user keys \"*\"..\"*\" and \"*\"..\"*\")",
    );
    one(&mut b, &adds(&[(1, meta(10, "p", "q"))]), "adds table 10 at L1 overlapping table 8");
    one(&mut b, &adds(&[(2, meta(11, "a", "z")), (2, meta(12, "b", "c"))]), "adds table 11 at L2 overlapping table 12");
    // Spanning a whole table reports the one next to it.
    let v = bad(&mut b, &adds(&[(3, meta(13, "g", "h")), (3, meta(14, "a", "z"))]));
    assert!(v.len() == 1 && v[0].contains("table 13 at L3 overlapping table 14"), "{v:?}");
    // Level 0 may overlap; a sorted level may once the old table is gone.
    assert_eq!(bad(&mut b, &adds(&[(0, meta(15, "a", "z")), (0, meta(16, "b", "c"))])), Vec::<String>::new());
    let replace =
        VersionEdit { deleted_files: vec![(1, 8)], new_files: vec![(1, meta(17, "n", "o"))], ..Default::default() };
    assert_eq!(bad(&mut b, &replace), Vec::<String>::new());
}

#[test]
fn counters_never_move_backwards() {
    let mut b = base(&[]);
    one(&mut b, &VersionEdit { log_number: Some(4), ..Default::default() }, "moves the log number back from 5 to 4");
    one(
        &mut b,
        &VersionEdit { next_file_number: Some(99), ..Default::default() },
        "moves the next file number back from 100 to 99",
    );
    one(
        &mut b,
        &VersionEdit { last_sequence: Some(49), ..Default::default() },
        "moves the last sequence back from 50 to 49",
    );
    assert_eq!(bad(&mut base(&[]), &counters(4, 99, 49)).len(), 3);
    // An inconsistent edit still sets the counters; equal is not backwards.
    assert_eq!(bad(&mut b, &counters(4, 99, 49)), Vec::<String>::new());
}

#[test]
fn every_counter_must_be_recorded_by_the_end() {
    let mut b = VersionBuilder::new(2);
    assert_eq!(b.finish().len(), 3);
    assert_eq!(b.apply(&VersionEdit { next_file_number: Some(3), ..Default::default() }, Some(0)), vec![]);
    let missing: Vec<_> = b.finish().into_iter().map(|i| (i.offset, i.what)).collect();
    assert_eq!(
        missing,
        vec![
            (None, "the manifest never records the log number".to_owned()),
            (None, "the manifest never records the last sequence".to_owned())
        ]
    );
    assert!(base(&[]).finish().is_empty());
}

#[test]
fn a_live_builder_starts_from_the_given_files_and_counters() {
    let f = meta(7, "a", "c");
    let c = Counters { log_number: Some(3), next_file_number: Some(8), last_sequence: Some(7) };
    let mut b = VersionBuilder::with_files(3, [(1, &f)], c);
    assert_eq!(
        b.apply(&adds(&[(1, meta(8, "b", "d"))]), None).into_iter().map(|i| i.what).collect::<Vec<_>>(),
        vec![
            "edit adds table 8 at L1, not below the next file number 8".to_owned(),
            "edit adds table 8 at L1 overlapping table 7 (user keys \"*\"..\"*\" and \"*\"..\"*\")".to_owned(),
        ]
    );
}

/// A key range over a tiny alphabet: user keys `lo..=hi`.
fn range() -> impl Strategy<Value = (u8, u8)> {
    (b'a'..b'k', 0u8..4).prop_map(|(lo, len)| (lo, lo + len))
}

proptest! {
    /// Adding tables one edit at a time (an inconsistent edit is undone), the builder
    /// reports an overlap exactly when the new table overlaps some live table of its level.
    #[test]
    fn the_overlap_check_matches_a_pairwise_check(
        steps in prop::collection::vec((range(), any::<bool>(), any::<prop::sample::Index>()), 1..40),
    ) {
        let mut b = VersionBuilder::new(2);
        let mut number = 1;
        for ((lo, hi), delete, pick) in steps {
            let live: Vec<u64> = b.level(1).map(|l| l.keys().copied().collect()).unwrap_or_default();
            if delete && !live.is_empty() {
                let n = live[pick.index(live.len())];
                let delete = VersionEdit { deleted_files: vec![(1, n)], ..Default::default() };
                prop_assert!(b.apply(&delete, Some(1)).is_empty());
                continue;
            }
            let (lo, hi) = ((lo as char).to_string(), (hi as char).to_string());
            let f = meta(number, &lo, &hi);
            number += 1;
            let expected = b.files().any(|(_, o)| user_key(&o.smallest) <= user_key(&f.largest) && user_key(&f.smallest) <= user_key(&o.largest));
            let before = b.clone();
            let v = b.apply(&adds(&[(1, f)]), Some(2));
            prop_assert_eq!(!v.is_empty(), expected, "{:?}", v);
            if expected {
                b = before;
            }
        }
    }
}
