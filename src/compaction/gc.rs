//! [`VersionGc`]: decides, entry by entry in internal-key order, which versions a compaction
//! keeps.
//!
//! Rule: snapshots split the sequence space into *stripes*; the stripe of an entry is the
//! number of live snapshots older than it (those that cannot see it). Two versions of a key
//! in the same stripe are seen by exactly the same snapshots, so only the newer one can ever
//! be read: the older is dropped. A tombstone in stripe 0 (every snapshot and every future
//! reader sees it) at the bottommost level for its key hides nothing that remains, so it is
//! dropped too, together with everything older in its stripe.
//!
//! At the bottommost level a kept value in stripe 0 is the only version any reader can see,
//! so its sequence number carries no information: the job writes it as 0 (as RocksDB does),
//! which makes the key trailers of a settled table compress to almost nothing.

use crate::key::{ParsedKey, SeqNo, ValueKind};

/// Per-key version filter for one compaction.
pub(crate) struct VersionGc<'a> {
    snapshots: &'a [SeqNo],
    bottommost: bool,
    /// Deeper files' user-key ranges (when not `bottommost`).
    deeper: &'a [(Vec<u8>, Vec<u8>)],
    /// Whether some deeper file's range contains the current key.
    key_below: bool,
    key: Vec<u8>,
    have_key: bool,
    last_stripe: usize,
    /// Entries dropped so far.
    pub dropped: u64,
}

impl<'a> VersionGc<'a> {
    /// `snapshots` ascending; `bottommost` when no deeper level may hold older versions.
    #[cfg(test)]
    pub(crate) fn new(snapshots: &'a [SeqNo], bottommost: bool) -> Self {
        Self::with_deeper(snapshots, bottommost, &[])
    }

    /// [`Self::new`], with the user-key ranges of the deeper levels' files that overlap
    /// the compaction: a tombstone whose key none contains is dropped as at the bottom.
    pub(crate) fn with_deeper(snapshots: &'a [SeqNo], bottommost: bool, deeper: &'a [(Vec<u8>, Vec<u8>)]) -> Self {
        VersionGc {
            snapshots,
            bottommost,
            deeper,
            key_below: !bottommost,
            key: Vec::new(),
            have_key: false,
            last_stripe: 0,
            dropped: 0,
        }
    }

    /// True if the entry's sequence number may be written as 0: a kept value at the
    /// bottommost level that every live snapshot sees. Call after `keep` returned true.
    pub(crate) fn can_zero_seq(&self, p: &ParsedKey<'_>) -> bool {
        self.bottommost && self.last_stripe == 0 && p.kind == ValueKind::Put
    }

    /// True if the entry must be written to the output.
    pub(crate) fn keep(&mut self, p: &ParsedKey<'_>) -> bool {
        if !self.have_key || p.user_key != self.key.as_slice() {
            self.key.clear();
            self.key.extend_from_slice(p.user_key);
            self.have_key = true;
            self.last_stripe = usize::MAX;
            self.key_below = !self.bottommost
                && (self.deeper.is_empty()
                    || self.deeper.iter().any(|(lo, hi)| lo.as_slice() <= p.user_key && p.user_key <= hi.as_slice()));
        }
        let stripe = self.snapshots.partition_point(|&s| s < p.seq);
        let hidden = stripe == self.last_stripe;
        self.last_stripe = stripe;
        let obsolete_tombstone = p.kind == ValueKind::Delete && stripe == 0 && !self.key_below;
        let keep = !hidden && !obsolete_tombstone;
        if !keep {
            self.dropped += 1;
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(snapshots: &[SeqNo], bottommost: bool, entries: &[(&str, SeqNo, ValueKind)]) -> Vec<(String, SeqNo)> {
        let mut gc = VersionGc::new(snapshots, bottommost);
        entries
            .iter()
            .filter(|(k, s, kind)| gc.keep(&ParsedKey { user_key: k.as_bytes(), seq: *s, kind: *kind }))
            .map(|(k, s, _)| (k.to_string(), *s))
            .collect()
    }

    use ValueKind::{Delete as D, Put as P};

    #[test]
    fn only_settled_bottommost_values_lose_their_sequence() {
        let mut gc = VersionGc::new(&[6], true);
        let newer = ParsedKey { user_key: b"a", seq: 9, kind: P };
        assert!(gc.keep(&newer));
        assert!(!gc.can_zero_seq(&newer), "snapshot 6 cannot see a@9");
        let older = ParsedKey { user_key: b"a", seq: 5, kind: P };
        assert!(gc.keep(&older));
        assert!(gc.can_zero_seq(&older));
        let mut gc = VersionGc::new(&[], false);
        assert!(gc.keep(&older));
        assert!(!gc.can_zero_seq(&older), "not bottommost");
    }

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let kept = run(&[], false, &[("a", 9, P), ("a", 5, P), ("a", 1, D), ("b", 3, P)]);
        assert_eq!(kept, vec![("a".into(), 9), ("b".into(), 3)]);
    }

    #[test]
    fn snapshots_keep_what_they_can_see() {
        // Snapshot at 6 sees a@5; a@9 is newer than it. a@1 is hidden by a@5 for everyone.
        let kept = run(&[6], false, &[("a", 9, P), ("a", 5, P), ("a", 1, P)]);
        assert_eq!(kept, vec![("a".into(), 9), ("a".into(), 5)]);
    }

    #[test]
    fn tombstones_drop_only_at_the_bottom_and_only_when_every_snapshot_sees_them() {
        let entries = [("a", 9, D), ("a", 5, P), ("b", 4, D), ("b", 2, P)];
        assert_eq!(run(&[], true, &entries), Vec::<(String, SeqNo)>::new());
        assert_eq!(run(&[], false, &entries), vec![("a".into(), 9), ("b".into(), 4)]);
        // A snapshot at 7 cannot see a@9's deletion: keep it and the value the snapshot sees.
        assert_eq!(run(&[7], true, &entries), vec![("a".into(), 9), ("a".into(), 5)]);
    }

    #[test]
    fn a_tombstone_whose_key_no_deeper_file_holds_is_dropped() {
        let deeper = vec![(b"m".to_vec(), b"z".to_vec())];
        let mut gc = VersionGc::with_deeper(&[], false, &deeper);
        let gone = ParsedKey { user_key: b"a", seq: 5, kind: D };
        let covered = ParsedKey { user_key: b"n", seq: 5, kind: D };
        assert!(!gc.keep(&gone), "no deeper file holds a: its tombstone hides nothing");
        assert!(gc.keep(&covered), "a deeper file may hold an older n");
        // A snapshot older than the tombstone still needs it.
        let mut gc = VersionGc::with_deeper(&[3], false, &deeper);
        assert!(gc.keep(&gone));
    }
}
