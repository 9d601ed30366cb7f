//! The stress run's random numbers: [`kho::util::SplitMix64`] (so a run is reproducible from
//! `--seed` without depending on a crate's stream staying the same across versions), with
//! the draws the workload needs and the derivation of independent sub-streams.

use kho::util::SplitMix64;

/// Derives an independent seed for a sub-stream (a thread, a cycle) from a parent seed.
pub fn derive(seed: u64, stream: &[u64]) -> u64 {
    let mix = SplitMix64::mix;
    stream.iter().fold(mix(seed), |h, &s| mix(h ^ mix(s.wrapping_add(0x5851_F42D_4C95_7F2D))))
}

/// The workload's generator: [`SplitMix64`] and a few draws on top.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform value in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// A uniform value in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `percent / 100`.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0.pick(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert!(a.iter().all(|&x| x == r.next_u64()));
        assert_ne!(derive(7, &[1]), derive(7, &[2]));
        assert_ne!(derive(7, &[1, 0]), derive(7, &[0, 1]));
    }

    #[test]
    fn below_and_between_stay_in_bounds() {
        let mut r = Rng::new(1);
        for n in [1u64, 2, 3, 10, 1000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
                let x = r.between(5, 5 + n);
                assert!((5..=5 + n).contains(&x));
            }
        }
        assert_eq!(r.below(0), 0);
    }
}
