//! [`SplitMix64`]: the one small seedable random number generator of kho and its tools (the
//! synthetic population, `FaultFs`'s seeded faults and crash tears, `kho stress`, `kho bench`).
//!
//! SplitMix64 (Steele, Lea and Flood, 2014): one `u64` of state, full period, passes
//! BigCrush; statistically fine for choosing operations and synthetic data, not for anything
//! secret. No dependency, so the streams cannot change with a crate's version.
//!
//! Invariant: the stream for a seed never changes — a population, a fault schedule or a
//! stress run is reproduced from its seed alone (the test below pins the first outputs).

/// The SplitMix64 increment, `2^64 / golden ratio`.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A seedable generator; see the module docs.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A well-mixed 64-bit value from any `x`: the first output of `SplitMix64::new(x)`, for
    /// hashing a seed and an index into a value without keeping a generator.
    pub const fn mix(x: u64) -> u64 {
        finalize(x.wrapping_add(GAMMA))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        finalize(self.0)
    }

    /// A value in `0..n` (0 if `n == 0`), by multiply-shift: bias below `n / 2^64`, negligible
    /// for the sizes kho draws.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniformly chosen element of `items`.
    ///
    /// # Panics
    ///
    /// If `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The SplitMix64 output function (a variant of MurmurHash3's 64-bit finalizer).
const fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_of_a_seed_never_changes() {
        let mut r = SplitMix64::new(0);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F]
        );
        assert_eq!(SplitMix64::mix(7), SplitMix64::new(7).next_u64());
    }

    #[test]
    fn below_and_pick_stay_in_bounds() {
        let mut r = SplitMix64::new(1);
        for n in [1u64, 2, 3, 10, 1000] {
            assert!((0..1000).all(|_| r.below(n) < n));
        }
        assert_eq!(r.below(0), 0);
        assert!((0..100).all(|_| [1, 2, 3].contains(r.pick(&[1, 2, 3]))));
    }
}
