//! [`Dataset`] (Gluon's `gluon.data.Dataset`): a length and a sample with its label per
//! index; [`ArrayDataset`] over tensors, [`SimpleDataset`] over a `Vec`, and
//! [`TransformFirst`], what [`Dataset::transform_first`] makes.

use super::sample::{AnyTensor, Label, Sample};
use super::transforms::{Draws, Transform};
use crate::error::{NnError, Result};
use crate::labels::Labels;
use kiln_tensor::{Float, Tensor};

/// The run's seed and the epoch: with a sample's index, what its random transforms draw from
/// (so that an augmented run is the same on any number of threads, and a resumed run draws
/// what the uninterrupted one would have).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EpochKey {
    /// The seed of the run's random transforms.
    pub seed: u64,
    /// The epoch, numbered from 0.
    pub epoch: u64,
}

impl EpochKey {
    /// The key that a dataset wrapped inside another one gets, so that random transforms at
    /// two levels (`d.transform_first(a).transform_first(b)`) draw different numbers.
    pub fn nested(self) -> EpochKey {
        EpochKey {
            seed: self.seed.rotate_left(23) ^ 0x6a09_e667_f3bc_c909,
            epoch: self.epoch,
        }
    }
}

/// An indexed collection of samples with their labels (Gluon's `Dataset`).
///
/// ```
/// use kiln_nn::data::{ArrayDataset, Dataset, Label, Sample};
/// use kiln_tensor::Tensor;
/// let x = Tensor::<f32>::from_f64s(&[1.0, 2.0, 3.0, 4.0], [2, 2])?;
/// let data = ArrayDataset::new(x, vec![0, 7])?;
/// let (sample, label) = data.get(1)?;
/// assert_eq!(sample, Sample::from(Tensor::<f32>::from_f64s(&[3.0, 4.0], [2])?));
/// assert_eq!(label, Label::Class(7));
/// assert!(data.get(2).is_err()); // "ArrayDataset: index 2 is out of range (2 samples)"
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub trait Dataset: Sync {
    /// The number of samples.
    fn len(&self) -> usize;

    /// The name errors use (`FashionMnist`, `ArrayDataset`, …).
    fn name(&self) -> String;

    /// Sample `index` and its label as drawn in the epoch `key` (only random transforms look
    /// at the key). An index out of range is an error naming the dataset, the index and the
    /// length ([`check_index`]).
    fn sample(&self, index: usize, key: EpochKey) -> Result<(Sample<'_>, Label)>;

    /// A hint that sample `index` is wanted soon: a dataset in memory can ask the CPU to
    /// bring its bytes into the cache (the loader calls it for the samples of a task
    /// before making them, since shuffled samples are read from unpredictable places).
    /// Does nothing unless a dataset implements it.
    fn prefetch(&self, index: usize) {
        let _ = index;
    }

    /// True when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index` and its label (as epoch 0 with seed 0 draws them).
    fn get(&self, index: usize) -> Result<(Sample<'_>, Label)> {
        self.sample(index, EpochKey::default())
    }

    /// The same samples with `transform` applied to each sample, the labels unchanged
    /// (Gluon's `transform_first`, always lazy: a random transform draws afresh each epoch).
    fn transform_first<F: Transform>(self, transform: F) -> TransformFirst<Self, F>
    where
        Self: Sized,
    {
        TransformFirst {
            data: self,
            transform,
        }
    }
}

/// The error of an index out of range, or `Ok` when `index < len`.
pub fn check_index(name: &str, index: usize, len: usize) -> Result<()> {
    if index < len {
        return Ok(());
    }
    Err(NnError::invalid(
        name,
        format!("index {index} is out of range ({len} samples)"),
    ))
}

impl<D: Dataset + ?Sized> Dataset for &D {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn sample(&self, index: usize, key: EpochKey) -> Result<(Sample<'_>, Label)> {
        (**self).sample(index, key)
    }
    fn prefetch(&self, index: usize) {
        (**self).prefetch(index)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn sample(&self, index: usize, key: EpochKey) -> Result<(Sample<'_>, Label)> {
        (**self).sample(index, key)
    }
    fn prefetch(&self, index: usize) {
        (**self).prefetch(index)
    }
}

impl<D: Dataset + ?Sized + Send> Dataset for std::sync::Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn sample(&self, index: usize, key: EpochKey) -> Result<(Sample<'_>, Label)> {
        (**self).sample(index, key)
    }
    fn prefetch(&self, index: usize) {
        (**self).prefetch(index)
    }
}

/// A dataset with a transform applied to each sample ([`Dataset::transform_first`]).
/// Its transform draws from (`key`, index); the wrapped dataset gets `key.nested()`.
#[derive(Clone, Debug)]
pub struct TransformFirst<D, F> {
    data: D,
    transform: F,
}

impl<D, F> TransformFirst<D, F> {
    /// The wrapped dataset.
    pub fn inner(&self) -> &D {
        &self.data
    }

    /// The transform.
    pub fn transform(&self) -> &F {
        &self.transform
    }
}

impl<D: Dataset, F: Transform> Dataset for TransformFirst<D, F> {
    fn len(&self) -> usize {
        self.data.len()
    }
    fn name(&self) -> String {
        self.data.name()
    }
    fn sample(&self, index: usize, key: EpochKey) -> Result<(Sample<'_>, Label)> {
        let (sample, label) = self.data.sample(index, key.nested())?;
        let sample = self.transform.apply(sample, &Draws::new(key, index))?;
        Ok((sample, label))
    }
    fn prefetch(&self, index: usize) {
        self.data.prefetch(index)
    }
}

/// Samples that are rows of a tensor, with a class or a target each (Gluon's
/// `ArrayDataset` of a data array and a label array).
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayDataset {
    data: AnyTensor,
    labels: ArrayLabels,
}

#[derive(Clone, Debug, PartialEq)]
enum ArrayLabels {
    Classes(Vec<usize>),
    Targets(AnyTensor),
}

impl ArrayDataset {
    /// Sample `i` is `data[i]` (a tensor of `data`'s dimensions after the first) and its label
    /// is `labels[i]`: a class index (any number of classes), or a row of a target tensor
    /// whose first axis has one entry per sample (a `[n]` tensor of regression targets gives
    /// each sample a `[]` target). An error when the counts differ.
    pub fn new<T: Float>(data: Tensor<T>, labels: impl Into<Labels<T>>) -> Result<Self> {
        let labels = labels.into();
        let Some(&n) = data.dims().first() else {
            return Err(NnError::invalid(
                "ArrayDataset",
                "the data must have a first axis of samples, got a rank-0 tensor",
            ));
        };
        let (count, labels) = match labels {
            Labels::Classes(c) => (c.len(), ArrayLabels::Classes(c)),
            Labels::Targets(t) => match t.dims().first() {
                Some(&m) => (m, ArrayLabels::Targets(AnyTensor::new(t))),
                None => {
                    return Err(NnError::invalid(
                        "ArrayDataset",
                        "the targets must have a first axis of samples, got a rank-0 tensor",
                    ))
                }
            },
        };
        if count != n {
            return Err(NnError::invalid(
                "ArrayDataset",
                format!(
                    "{count} labels for {n} samples (data {:?}, labels {})",
                    data.dims(),
                    match &labels {
                        ArrayLabels::Classes(c) => format!("[{}]", c.len()),
                        ArrayLabels::Targets(t) => format!("{:?}", t.dims()),
                    }
                ),
            ));
        }
        Ok(ArrayDataset {
            data: AnyTensor::new(data),
            labels,
        })
    }
}

/// Row `i` of `t` (its dimensions after the first).
fn row(t: &AnyTensor, i: usize) -> AnyTensor {
    fn take<T: Float>(t: &Tensor<T>, i: usize) -> Tensor<T> {
        let size = t.dims()[1..].iter().product::<usize>();
        let data = t.data()[i * size..(i + 1) * size].to_vec();
        Tensor::from_vec(data, &t.dims()[1..]).expect("a row has the row's size")
    }
    match t {
        AnyTensor::F32(t) => AnyTensor::F32(take(t, i)),
        AnyTensor::F64(t) => AnyTensor::F64(take(t, i)),
    }
}

impl Dataset for ArrayDataset {
    fn len(&self) -> usize {
        self.data.dims()[0]
    }
    fn name(&self) -> String {
        "ArrayDataset".into()
    }
    fn sample(&self, index: usize, _key: EpochKey) -> Result<(Sample<'_>, Label)> {
        check_index("ArrayDataset", index, self.len())?;
        let label = match &self.labels {
            ArrayLabels::Classes(c) => Label::Class(c[index]),
            ArrayLabels::Targets(t) => Label::Target(row(t, index)),
        };
        Ok((Sample::Tensor(row(&self.data, index)), label))
    }
}

/// Samples held in a `Vec` (Gluon's `SimpleDataset`); images are lent out without a copy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimpleDataset {
    items: Vec<(Sample<'static>, Label)>,
}

impl SimpleDataset {
    /// A dataset of these samples and labels.
    pub fn new(items: Vec<(Sample<'static>, Label)>) -> Self {
        SimpleDataset { items }
    }
}

impl FromIterator<(Sample<'static>, Label)> for SimpleDataset {
    fn from_iter<I: IntoIterator<Item = (Sample<'static>, Label)>>(iter: I) -> Self {
        SimpleDataset::new(iter.into_iter().collect())
    }
}

impl Dataset for SimpleDataset {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn name(&self) -> String {
        "SimpleDataset".into()
    }
    fn sample(&self, index: usize, _key: EpochKey) -> Result<(Sample<'_>, Label)> {
        check_index("SimpleDataset", index, self.len())?;
        let (sample, label) = &self.items[index];
        Ok((sample.view(), label.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::Image;

    #[test]
    fn array_dataset_rows_classes_and_targets() {
        let x = Tensor::<f64>::arange(12).reshape([3, 2, 2]).unwrap();
        let d = ArrayDataset::new(x, vec![4, 0, 9]).unwrap();
        assert_eq!(d.len(), 3);
        let (s, l) = d.get(2).unwrap();
        assert_eq!(
            s,
            Sample::from(Tensor::<f64>::from_f64s(&[8.0, 9.0, 10.0, 11.0], [2, 2]).unwrap())
        );
        assert_eq!(l, Label::Class(9));
        // regression targets: a [3] tensor gives each sample a [] target
        let y = Tensor::<f32>::from_f64s(&[0.5, -1.0, 2.0], [3]).unwrap();
        let x = Tensor::<f32>::zeros([3, 4]);
        let d = ArrayDataset::new(x, y).unwrap();
        assert_eq!(
            d.get(1).unwrap().1,
            Label::from(Tensor::<f32>::scalar(-1.0))
        );
    }

    #[test]
    fn bad_shapes_and_indices_are_errors_naming_them() {
        let e = ArrayDataset::new(Tensor::<f32>::zeros([4, 2]), vec![0, 1, 2])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ArrayDataset: 3 labels for 4 samples (data [4, 2], labels [3])"
        );
        let e = ArrayDataset::new(Tensor::<f32>::zeros([4, 2]), Tensor::<f32>::zeros([2, 3]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 labels for 4 samples") && e.contains("[2, 3]"),
            "{e}"
        );
        assert!(ArrayDataset::new(Tensor::<f32>::scalar(1.0), vec![0]).is_err());
        let d = SimpleDataset::new(vec![(Tensor::<f32>::zeros([1]).into(), 3.into())]);
        let e = d.get(1).unwrap_err().to_string();
        assert_eq!(e, "SimpleDataset: index 1 is out of range (1 samples)");
    }

    #[test]
    fn simple_dataset_lends_its_images() {
        let image = Image::new(vec![1u8, 2, 3, 4], [2, 2, 1]).unwrap();
        let d: SimpleDataset = [(Sample::Image(image), Label::Class(1))]
            .into_iter()
            .collect();
        match d.get(0).unwrap().0 {
            Sample::Image(i) => assert!(i.is_borrowed()),
            other => panic!("expected an image, got {other:?}"),
        }
    }

    #[test]
    fn nested_keys_differ() {
        let k = EpochKey { seed: 3, epoch: 1 };
        assert_ne!(k.nested(), k);
        assert_eq!(k.nested().epoch, 1);
    }
}
