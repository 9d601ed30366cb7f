//! The compaction picker: a pure function from a [`Version`] (and options) to the next
//! [`CompactionTask`], so the policy can be unit-tested without I/O.
//!
//! Policy (leveled, as LevelDB and RocksDB):
//! - score(L0) = number of L0 files / `level0_compaction_trigger`;
//!   score(Ln) = bytes(Ln) / target(n), target(n) = `level_base_bytes * multiplier^(n-1)`.
//!   The last level has no target. The level with the highest score >= 1 is compacted.
//! - L0: every L0 file (they overlap one another) plus the L1 files overlapping their range.
//! - Ln, n >= 1: the first file after the level's compaction cursor (round robin over the
//!   key space, so every key is eventually rewritten) plus the overlapping files of Ln+1.
//! - A task with a single input file and nothing overlapping in the output level is a
//!   *trivial move*: the file is re-linked to the next level without rewriting it, unless it
//!   would overlap too much of the level below the output (grandparents).

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use crate::key::{compare_internal, user_key};
use crate::options::Options;
use crate::version::{TableFile, Version};

/// One compaction to run.
#[derive(Debug, Clone)]
pub(crate) struct CompactionTask {
    /// The level whose files are being pushed down.
    pub level: usize,
    /// Input files at `level`.
    pub inputs: Vec<Arc<TableFile>>,
    /// Input files at `level + 1` that overlap `inputs`.
    pub next_inputs: Vec<Arc<TableFile>>,
    /// Files at `level + 2` overlapping the range, used to cut outputs so that no output
    /// file overlaps too much of the next level.
    pub grandparents: Vec<Arc<TableFile>>,
    /// True when no level below the output holds keys in the task's range, so tombstones
    /// whose deletion every snapshot sees can be dropped.
    pub bottommost: bool,
    /// When not `bottommost`: the user-key ranges of the deeper levels' files overlapping the
    /// task. A tombstone whose key none of them contains hides nothing below and is dropped
    /// (LevelDB's `IsBaseLevelForKey`), so a purge leaves no tombstone naming an erased key.
    pub deeper_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// Re-link the single input to the next level instead of rewriting it.
    pub trivial_move: bool,
    /// Rewrite `inputs` into their own level (no `next_inputs`): the deepest level's files
    /// of a range, whose old versions nothing lower would ever merge away (a purge).
    pub in_place: bool,
}

impl CompactionTask {
    /// The level written to.
    pub(crate) fn output_level(&self) -> usize {
        if self.in_place {
            self.level
        } else {
            self.level + 1
        }
    }

    /// Every input file with its level.
    pub(crate) fn all_inputs(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.inputs.iter().map(|f| (self.level, f)).chain(self.next_inputs.iter().map(|f| (self.level + 1, f)))
    }

    /// Bytes read by the task.
    pub(crate) fn input_bytes(&self) -> u64 {
        self.all_inputs().map(|(_, f)| f.meta.size).sum()
    }
}

/// The compaction score of every level but the last (index = level).
pub(crate) fn level_scores(v: &Version, opts: &Options) -> Vec<f64> {
    let last = v.levels.len().saturating_sub(1);
    (0..last)
        .map(|level| {
            if level == 0 {
                v.levels[0].len() as f64 / opts.level0_compaction_trigger as f64
            } else {
                level_bytes(v, level) as f64 / opts.level_target_bytes(level) as f64
            }
        })
        .collect()
}

/// Total bytes of the files at `level`.
pub(crate) fn level_bytes(v: &Version, level: usize) -> u64 {
    v.levels.get(level).map_or(0, |l| l.iter().map(|f| f.meta.size).sum())
}

/// Estimated compaction debt: bytes above each level's target (RocksDB's "pending
/// compaction bytes"), counting all of L0 once it reaches its trigger.
pub(crate) fn pending_compaction_bytes(v: &Version, opts: &Options) -> u64 {
    let mut debt = 0;
    if v.levels.first().is_some_and(|l0| l0.len() >= opts.level0_compaction_trigger) {
        debt += level_bytes(v, 0);
    }
    for level in 1..v.levels.len().saturating_sub(1) {
        debt += level_bytes(v, level).saturating_sub(opts.level_target_bytes(level));
    }
    debt
}

/// Picks the next compaction, or `None` when every score is below 1. `cursors[level]` is
/// the largest internal key compacted last time at that level (round-robin position).
pub(crate) fn pick(v: &Version, opts: &Options, cursors: &[Vec<u8>]) -> Option<CompactionTask> {
    let scores = level_scores(v, opts);
    let (level, _) = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| **s >= 1.0)
        .max_by(|a, b| a.1.partial_cmp(b.1).unwrap_or(Ordering::Equal))?;
    let inputs = if level == 0 {
        level0_component(&v.levels[0])
    } else {
        let files = &v.levels[level];
        let cursor = cursors.get(level).map(Vec::as_slice).unwrap_or_default();
        let next = files
            .iter()
            .find(|f| cursor.is_empty() || compare_internal(&f.meta.largest, cursor) == Ordering::Greater)
            .or_else(|| files.first())?;
        vec![next.clone()]
    };
    Some(build_task(v, opts, level, inputs))
}

/// The level-0 files to compact together: the group of files whose user-key ranges overlap,
/// directly or through others, the oldest file's. Files of other groups share no key with
/// them, so compacting one group leaves no older version above a newer one; a group of one
/// file that overlaps nothing below moves down without being rewritten (a table of a range
/// written in key order, e.g. the change feed's, cut off by `Db::set_table_partitions`).
fn level0_component(files: &[Arc<TableFile>]) -> Vec<Arc<TableFile>> {
    let Some(oldest) = files.iter().min_by_key(|f| f.meta.number) else { return Vec::new() };
    let (mut lo, mut hi) = (user_key(&oldest.meta.smallest).to_vec(), user_key(&oldest.meta.largest).to_vec());
    let mut taken = vec![false; files.len()];
    loop {
        let mut grew = false;
        for (i, f) in files.iter().enumerate() {
            let (s, l) = (user_key(&f.meta.smallest), user_key(&f.meta.largest));
            if !taken[i] && s <= hi.as_slice() && l >= lo.as_slice() {
                taken[i] = true;
                grew = true;
                if s < lo.as_slice() {
                    lo = s.to_vec();
                }
                if l > hi.as_slice() {
                    hi = l.to_vec();
                }
            }
        }
        if !grew {
            break;
        }
    }
    files.iter().zip(taken).filter(|(_, t)| *t).map(|(f, _)| f.clone()).collect()
}

/// Completes a task for `inputs` at `level`: overlapping files below, grandparents,
/// bottommost and trivial-move flags.
pub(crate) fn build_task(v: &Version, opts: &Options, level: usize, inputs: Vec<Arc<TableFile>>) -> CompactionTask {
    let (lo, hi) = key_range(&inputs);
    let next_inputs = overlapping(v, level + 1, &lo, &hi);
    let all: Vec<_> = inputs.iter().chain(next_inputs.iter()).cloned().collect();
    let (lo, hi) = key_range(&all);
    let grandparents = overlapping(v, level + 2, &lo, &hi);
    let deeper_ranges = deeper_ranges(v, level + 2, &lo, &hi);
    let bottommost = deeper_ranges.is_empty();
    let grandparent_bytes: u64 = grandparents.iter().map(|f| f.meta.size).sum();
    let trivial_move =
        inputs.len() == 1 && next_inputs.is_empty() && grandparent_bytes <= max_grandparent_overlap(opts);
    CompactionTask {
        level,
        inputs,
        next_inputs,
        grandparents,
        bottommost,
        deeper_ranges,
        trivial_move,
        in_place: false,
    }
}

/// A task rewriting `inputs` (files of `level`) into `level` itself: no next-level inputs,
/// tombstones dropped if no deeper level holds the range.
pub(crate) fn in_place_task(v: &Version, level: usize, inputs: Vec<Arc<TableFile>>) -> CompactionTask {
    let (lo, hi) = key_range(&inputs);
    let grandparents = overlapping(v, level + 1, &lo, &hi);
    let deeper_ranges = deeper_ranges(v, level + 1, &lo, &hi);
    let bottommost = deeper_ranges.is_empty();
    CompactionTask {
        level,
        inputs,
        next_inputs: Vec::new(),
        grandparents,
        bottommost,
        deeper_ranges,
        trivial_move: false,
        in_place: true,
    }
}

/// The user-key ranges of the files at levels `from..` that overlap `[lo, hi]`.
fn deeper_ranges(v: &Version, from: usize, lo: &[u8], hi: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    (from..v.levels.len())
        .flat_map(|l| overlapping(v, l, lo, hi))
        .map(|f| (user_key(&f.meta.smallest).to_vec(), user_key(&f.meta.largest).to_vec()))
        .collect()
}

/// Largest overlap, in bytes, an output file may have with the grandparent level before it
/// is cut (LevelDB: 10 target files), bounding the cost of compacting it later.
pub(crate) fn max_grandparent_overlap(opts: &Options) -> u64 {
    opts.target_file_size.saturating_mul(10)
}

/// The smallest and largest user keys of `files`.
pub(crate) fn key_range(files: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
    let lo = files.iter().map(|f| user_key(&f.meta.smallest)).min().unwrap_or_default().to_vec();
    let hi = files.iter().map(|f| user_key(&f.meta.largest)).max().unwrap_or_default().to_vec();
    (lo, hi)
}

/// Files at `level` whose user-key range intersects `[lo, hi]`.
pub(crate) fn overlapping(v: &Version, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<TableFile>> {
    files_in_range(v, level, Bound::Included(lo), Bound::Included(hi))
}

/// Files at `level` whose user-key range intersects the range from `lo` to `hi`.
pub(crate) fn files_in_range(v: &Version, level: usize, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<Arc<TableFile>> {
    let Some(files) = v.levels.get(level) else { return Vec::new() };
    files
        .iter()
        .filter(|f| {
            let (small, large) = (user_key(&f.meta.smallest), user_key(&f.meta.largest));
            let above_lo = match lo {
                Bound::Unbounded => true,
                Bound::Included(k) => large >= k,
                Bound::Excluded(k) => large > k,
            };
            let below_hi = match hi {
                Bound::Unbounded => true,
                Bound::Included(k) => small <= k,
                Bound::Excluded(k) => small < k,
            };
            above_lo && below_hi
        })
        .cloned()
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::version::{FileMeta, TableContext, VersionEdit};

    /// A table `number` holding user keys `lo..=hi` in `size` bytes (no file behind it).
    pub(crate) fn meta(number: u64, lo: &str, hi: &str, size: u64) -> FileMeta {
        FileMeta::test_table(number, lo, hi, size)
    }

    /// A version holding `files` (level, meta).
    pub(crate) fn version(files: &[(u32, FileMeta)]) -> Version {
        let ctx = TableContext::new(crate::vfs::StdFs::shared(), "/nonexistent".into(), None, None);
        let edit = VersionEdit { new_files: files.to_vec(), ..VersionEdit::default() };
        Version::empty(4).apply(&edit, crate::version::Counters::default(), &ctx).unwrap()
    }

    fn opts() -> Options {
        Options {
            level0_compaction_trigger: 2,
            level_base_bytes: 1000,
            target_file_size: 100,
            num_levels: 4,
            ..Options::default()
        }
    }

    #[test]
    fn nothing_to_do_below_the_triggers() {
        let v = version(&[(0, meta(1, "a", "c", 10)), (1, meta(2, "a", "z", 999))]);
        assert!(pick(&v, &opts(), &[]).is_none());
    }

    #[test]
    fn level0_takes_all_files_and_the_overlapping_level1_files() {
        let v = version(&[
            (0, meta(5, "c", "f", 10)),
            (0, meta(6, "a", "d", 10)),
            (1, meta(2, "a", "b", 10)),
            (1, meta(3, "e", "g", 10)),
            (1, meta(4, "h", "k", 10)),
        ]);
        let t = pick(&v, &opts(), &[]).unwrap();
        assert_eq!(t.level, 0);
        assert_eq!(t.inputs.len(), 2);
        let next: Vec<u64> = t.next_inputs.iter().map(|f| f.meta.number).collect();
        assert_eq!(next, vec![2, 3]);
        assert!(!t.trivial_move);
        assert!(t.bottommost);
    }

    #[test]
    fn oversized_level_picks_round_robin_and_moves_trivially() {
        let v = version(&[(1, meta(2, "a", "b", 600)), (1, meta(3, "c", "d", 600)), (2, meta(4, "c", "c", 10))]);
        let t = pick(&v, &opts(), &[]).unwrap();
        assert_eq!((t.level, t.inputs[0].meta.number), (1, 2));
        assert!(t.trivial_move, "nothing overlaps a..b at level 2");
        let cursors = vec![Vec::new(), t.inputs[0].meta.largest.to_vec()];
        let t = pick(&v, &opts(), &cursors).unwrap();
        assert_eq!(t.inputs[0].meta.number, 3);
        assert_eq!(t.next_inputs.len(), 1);
        assert!(!t.trivial_move);
        assert!(t.bottommost);
    }

    #[test]
    fn bottommost_is_false_when_deeper_levels_overlap() {
        let v = version(&[(1, meta(2, "a", "m", 2000)), (3, meta(9, "k", "z", 10))]);
        let t = pick(&v, &opts(), &[]).unwrap();
        assert!(!t.bottommost);
    }

    #[test]
    fn scores_and_debt() {
        let v = version(&[(0, meta(1, "a", "b", 50)), (0, meta(2, "a", "b", 50)), (1, meta(3, "a", "b", 1500))]);
        let s = level_scores(&v, &opts());
        assert_eq!(s.len(), 3);
        assert!((s[0] - 1.0).abs() < 1e-9);
        assert!((s[1] - 1.5).abs() < 1e-9);
        assert_eq!(pending_compaction_bytes(&v, &opts()), 100 + 500);
        assert_eq!(opts().level_target_bytes(3), 1000 * 100);
    }
}
