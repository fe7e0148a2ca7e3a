//! Random draws that do not depend on threads, shards or resumes: a counter-based
//! generator. Each draw is a hash of where it is used, (seed, step, op, sample,
//! element), so the same network on the same batch draws the same numbers whichever
//! thread computes which part of the batch, and a resumed run draws what the
//! uninterrupted one would have.
//!
//! A [`Tape`](crate::Tape) carries a [`RandomKey`]: the run's seed, the training step and
//! the global index of the batch's first sample. Each random op on the tape (a dropout
//! layer) takes the next [`RandomStream`] from it, so two dropout layers draw differently.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The process-wide seed (Gluon's `mx.random.seed`), read by tapes that are not given a
/// key of their own.
static SEED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Steps handed out to tapes made without a key on this thread.
    static NEXT_STEP: Cell<u64> = const { Cell::new(0) };
}

/// Sets the seed that tapes made with [`Tape::new`](crate::Tape::new) draw from, and
/// restarts this thread's step count (Gluon's `mx.random.seed`).
pub fn seed(seed: u64) {
    SEED.store(seed, Ordering::Relaxed);
    NEXT_STEP.with(|s| s.set(0));
}

/// The seed set by [`seed`] (0 if never set).
pub fn current_seed() -> u64 {
    SEED.load(Ordering::Relaxed)
}

/// SplitMix64's output function: a bijection of `u64` whose output passes BigCrush when
/// fed a counter.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64's increment (2⁶⁴ / φ).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Where a tape's random draws come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RandomKey {
    /// The run's seed.
    pub seed: u64,
    /// The training step (the trainer's update count), so each step draws afresh.
    pub step: u64,
    /// The index, in the whole batch, of the first sample this tape computes: a shard
    /// that starts at sample 64 of its batch sets 64, so that sample 64 draws the same
    /// numbers whichever shard holds it.
    pub first_sample: u64,
}

impl RandomKey {
    /// The key of step `step` under the process-wide seed, from the batch's first sample.
    pub fn for_step(step: u64) -> Self {
        RandomKey {
            seed: current_seed(),
            step,
            first_sample: 0,
        }
    }

    /// The next key of this thread under the process-wide seed: what a tape made with
    /// [`Tape::new`](crate::Tape::new) draws from. Deterministic for a program that makes
    /// its tapes in a fixed order after [`seed`].
    pub fn next() -> Self {
        let step = NEXT_STEP.with(|s| {
            let step = s.get();
            s.set(step.wrapping_add(1));
            step
        });
        RandomKey::for_step(step)
    }

    /// The same key for a part of the batch that starts `offset` samples further on.
    pub fn offset(self, offset: u64) -> Self {
        RandomKey {
            first_sample: self.first_sample.wrapping_add(offset),
            ..self
        }
    }

    /// The stream of the `op`-th random op of a tape with this key.
    pub fn stream(&self, op: u64) -> RandomStream {
        let key = mix(mix(mix(self.seed ^ GOLDEN) ^ self.step) ^ op.wrapping_mul(GOLDEN));
        RandomStream {
            key,
            first_sample: self.first_sample,
        }
    }
}

/// The draws of one random op: [`SampleStream::uniform`] of each (sample, element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomStream {
    key: u64,
    first_sample: u64,
}

impl RandomStream {
    /// The draws of sample `sample` of the tape's batch (its global index is the key's
    /// `first_sample + sample`).
    pub fn sample(&self, sample: usize) -> SampleStream {
        self.global_sample(self.first_sample.wrapping_add(sample as u64))
    }

    /// The draws of the sample whose index in the whole batch is `global`, wherever this
    /// tape's part of the batch starts (for draws shared by every sample: `global` 0).
    pub fn global_sample(&self, global: u64) -> SampleStream {
        SampleStream {
            key: mix(self.key ^ mix(global.wrapping_add(GOLDEN))),
        }
    }
}

/// The draws of one sample: a uniform number per element index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleStream {
    key: u64,
}

impl SampleStream {
    /// A uniform number in [0, 1) for element `element` of the sample: the top 53 bits of
    /// `mix(key + (element + 1)·φ)`, as SplitMix64 draws its `element`-th number.
    #[inline]
    pub fn uniform(&self, element: usize) -> f64 {
        let bits = mix(self
            .key
            .wrapping_add((element as u64).wrapping_add(1).wrapping_mul(GOLDEN)));
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_splitmix64() {
        // SplitMix64 seeded with 0 yields 0xe220a8397b1dcdaf first: mix(0 + φ)
        assert_eq!(mix(GOLDEN), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn draws_depend_on_every_part_of_the_key_and_nothing_else() {
        let key = RandomKey {
            seed: 7,
            step: 3,
            first_sample: 0,
        };
        let u = |k: RandomKey, op, sample, e| k.stream(op).sample(sample).uniform(e);
        let base = u(key, 0, 5, 9);
        assert_eq!(base, u(key, 0, 5, 9), "same place, same draw");
        assert_ne!(base, u(RandomKey { seed: 8, ..key }, 0, 5, 9));
        assert_ne!(base, u(RandomKey { step: 4, ..key }, 0, 5, 9));
        assert_ne!(base, u(key, 1, 5, 9));
        assert_ne!(base, u(key, 0, 6, 9));
        assert_ne!(base, u(key, 0, 5, 10));
        // a shard that starts at sample 4 draws sample 5's numbers for its sample 1
        assert_eq!(base, u(key.offset(4), 0, 1, 9));
    }

    #[test]
    fn uniform_draws_look_uniform() {
        let s = RandomKey::for_step(0).stream(0).sample(0);
        let n = 100_000;
        let draws: Vec<f64> = (0..n).map(|e| s.uniform(e)).collect();
        assert!(draws.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = draws.iter().sum::<f64>() / n as f64;
        // the mean of n uniforms has standard deviation 1/√(12 n) ≈ 0.0009
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        let below = draws.iter().filter(|&&u| u < 0.1).count() as f64 / n as f64;
        assert!((below - 0.1).abs() < 0.005, "fraction below 0.1: {below}");
    }
}
