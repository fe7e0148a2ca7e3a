//! Gluon's `gluon.data.vision.transforms`: the [`Transform`] trait, [`Compose`], and the
//! transforms themselves, with MXNet's formulas. Random transforms draw from [`Draws`],
//! keyed by (seed, epoch, sample index), so an augmented epoch is the same on any number of
//! threads.

mod color;
mod geometry;
mod tensor;

pub use color::{adjust_brightness, adjust_contrast, RandomBrightness, RandomContrast};
pub use geometry::{
    CenterCrop, RandomFlipLeftRight, RandomFlipTopBottom, RandomResizedCrop, Resize,
};
pub use tensor::{Normalize, ToTensor};

use super::dataset::EpochKey;
use super::sample::Sample;
use crate::error::Result;
use kiln_autograd::RandomKey;

/// The random numbers one transform may draw for one sample: uniform numbers in [0, 1)
/// that depend only on the run's seed, the epoch, the sample's index in its dataset and the
/// transform's place in its [`Compose`], through kiln's counter-based generator
/// ([`RandomKey`], with the epoch as its step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draws {
    key: EpochKey,
    index: usize,
    stream: u64,
}

impl Draws {
    /// The draws of sample `index` in the epoch `key`.
    pub fn new(key: EpochKey, index: usize) -> Self {
        Draws {
            key,
            index,
            stream: 0,
        }
    }

    /// The `k`-th uniform number in [0, 1).
    pub fn uniform(&self, k: usize) -> f64 {
        RandomKey {
            seed: self.key.seed,
            step: self.key.epoch,
            first_sample: 0,
        }
        .stream(self.stream)
        .sample(self.index)
        .uniform(k)
    }

    /// Python's `random.randint(lo, hi)` (both ends included) from the `k`-th number.
    pub fn int_between(&self, k: usize, lo: usize, hi: usize) -> usize {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as f64 + 1.0;
        lo + ((self.uniform(k) * span) as usize).min(hi - lo)
    }

    /// The draws of part `n` of a composite transform, independent of this one's.
    pub fn part(&self, n: usize) -> Draws {
        Draws {
            stream: self
                .stream
                .wrapping_mul(0x0000_0100_0000_01b3)
                .wrapping_add(n as u64 + 1),
            ..*self
        }
    }
}

/// A transform of one sample (Gluon's transform blocks): a byte [`Image`](super::Image) or
/// a float tensor in, a sample out. Errors name the transform and the sample's shape.
pub trait Transform: Send + Sync {
    /// Transforms `sample`; a random transform draws from `draws`.
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>>;

    /// The transform's name, for messages.
    fn name(&self) -> String {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full).to_string()
    }
}

impl<F: Transform + ?Sized> Transform for Box<F> {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        (**self).apply(sample, draws)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

impl<F: Transform + ?Sized> Transform for &F {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        (**self).apply(sample, draws)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

impl<F: Transform + ?Sized> Transform for std::sync::Arc<F> {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        (**self).apply(sample, draws)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

/// Transforms applied in order (Gluon's `transforms.Compose`); the `n`-th draws from
/// [`Draws::part`]`(n)`. An empty `Compose` passes samples through untouched (borrowed
/// images stay borrowed).
///
/// ```
/// use kiln_nn::data::transforms::{Compose, Normalize, RandomFlipLeftRight, Resize, ToTensor};
/// let augment = Compose::new()
///     .add(Resize::new(96)?)
///     .add(RandomFlipLeftRight)
///     .add(ToTensor)
///     .add(Normalize::new(&[0.2860], &[0.3530])?);
/// assert_eq!(augment.len(), 4);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
#[derive(Default)]
pub struct Compose {
    steps: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// No transforms yet.
    pub fn new() -> Self {
        Compose::default()
    }

    /// Appends a transform.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Box::new(t));
        self
    }

    /// The number of transforms.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl From<Vec<Box<dyn Transform>>> for Compose {
    fn from(steps: Vec<Box<dyn Transform>>) -> Self {
        Compose { steps }
    }
}

impl std::fmt::Debug for Compose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.steps.iter().map(|t| t.name()).collect();
        write!(f, "Compose([{}])", names.join(", "))
    }
}

impl Transform for Compose {
    fn apply<'a>(&self, sample: Sample<'a>, draws: &Draws) -> Result<Sample<'a>> {
        self.steps
            .iter()
            .enumerate()
            .try_fold(sample, |s, (n, t)| t.apply(s, &draws.part(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_depend_on_seed_epoch_index_and_part_only() {
        let key = EpochKey { seed: 5, epoch: 2 };
        let d = Draws::new(key, 17);
        assert_eq!(d.uniform(0), Draws::new(key, 17).uniform(0));
        let others = [
            Draws::new(EpochKey { seed: 6, epoch: 2 }, 17),
            Draws::new(EpochKey { seed: 5, epoch: 3 }, 17),
            Draws::new(key, 18),
            d.part(0),
            d.part(1),
        ];
        for o in others {
            assert_ne!(o.uniform(0), d.uniform(0), "{o:?}");
        }
        assert_ne!(d.uniform(0), d.uniform(1));
        assert_ne!(d.part(0).part(1), d.part(1).part(0));
        for k in 0..200 {
            let v = d.int_between(k, 3, 5);
            assert!((3..=5).contains(&v));
        }
        assert_eq!(d.int_between(0, 4, 4), 4);
    }

    #[test]
    fn compose_names_its_steps() {
        let c = Compose::new().add(ToTensor).add(RandomFlipLeftRight);
        assert_eq!(format!("{c:?}"), "Compose([ToTensor, RandomFlipLeftRight])");
    }
}
