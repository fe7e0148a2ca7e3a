//! [`DataLoader`] (Gluon's `DataLoader`): batches of any [`Dataset`] as tensors, shuffled
//! from a seed per epoch, with Gluon's `last_batch` policies. Samples are fetched,
//! transformed and converted in groups of images on the kernels' threads; each depends only
//! on (seed, epoch, index), so batches are bit-identical for any number of threads.

use super::dataset::{Dataset, EpochKey};
use super::sample::{Label, Sample};
use crate::error::{NnError, Result};
use crate::labels::Labels;
use kiln_tensor::rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use kiln_tensor::{Float, Tensor};
use std::ops::Range;
use std::sync::{Mutex, OnceLock};

/// What to do with the samples left over when the dataset does not divide into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastBatch {
    /// Yield a smaller last batch (Gluon's default).
    Keep,
    /// Drop the leftover samples.
    Discard,
    /// Carry them to the start of the next epoch.
    Rollover,
}

/// One batch: images (B, C, H, W) (or the samples' tensors stacked) and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T: Float> {
    /// Images, transformed to `T`.
    pub images: Tensor<T>,
    /// One class per image, or a tensor of targets.
    pub labels: Labels<T>,
}

/// Iterates over a dataset in batches.
///
/// Byte images are converted as Gluon's `ToTensor` converts them (H, W, C bytes to C, H, W
/// values `v / 255`, computed in `T`), then by [`DataLoader::normalize`] if set; tensors
/// are stacked as they are. Labels become [`Labels::Classes`] or, for targets, a stacked
/// [`Labels::Targets`].
///
/// ```no_run
/// use kiln_nn::data::{locate_fashion_mnist, DataLoader, FashionMnist};
/// let train = FashionMnist::new(locate_fashion_mnist(None)?, true)?;
/// let mut loader = DataLoader::new(&train, 256)?.shuffle(0);
/// for batch in loader.epoch::<f32>(0) {
///     assert_eq!(batch.images.dims()[1..], [1, 28, 28]); // values in [0, 1]
/// }
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub struct DataLoader<D> {
    data: D,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    seed: u64,
    last_batch: LastBatch,
    mean: f64,
    std: f64,
    carry: Vec<usize>,
    error: Option<NnError>,
}

impl<D: Dataset> DataLoader<D> {
    /// Batches of `batch_size` in dataset order, a smaller last batch kept. The dataset's
    /// first sample is made once here, so that a transform that refuses it (a `Normalize`
    /// for 3 channels on grey images) is an error now rather than during training. Random
    /// transforms draw from the process-wide seed (`kiln_autograd::random::seed`) until
    /// [`DataLoader::seed`] or [`DataLoader::shuffle`] sets one.
    pub fn new(data: D, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(NnError::invalid("DataLoader", "batch_size must be ≥ 1"));
        }
        let seed = kiln_autograd::random::current_seed();
        if !data.is_empty() {
            data.sample(0, EpochKey { seed, epoch: 0 })
                .map_err(|e| in_sample(&data, 0, e))?;
        }
        Ok(DataLoader {
            data,
            batch_size,
            shuffle_seed: None,
            seed,
            last_batch: LastBatch::Keep,
            mean: 0.0,
            std: 1.0,
            carry: Vec::new(),
            error: None,
        })
    }

    /// Shuffles every epoch; epoch `e`'s order depends only on `seed` and `e`, so a run
    /// resumed at epoch `e` sees the same batches. Also seeds the random transforms.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self.seed = seed;
        self
    }

    /// The seed random transforms draw from (with the epoch and each sample's index).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the policy for leftover samples.
    pub fn last_batch(mut self, policy: LastBatch) -> Self {
        self.last_batch = policy;
        self
    }

    /// After scaling byte images to [0, 1], maps each value v to (v − mean) / std, computed
    /// in `T` (Gluon's `transforms.Normalize` with one value for all channels). Tensors the
    /// dataset yields are not touched.
    pub fn normalize(mut self, mean: f64, std: f64) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.data
    }

    /// Batches in the next epoch (an estimate under rollover, which varies by epoch).
    pub fn num_batches(&self) -> usize {
        let n = self.data.len() + self.carry.len();
        match self.last_batch {
            LastBatch::Keep => n.div_ceil(self.batch_size),
            LastBatch::Discard | LastBatch::Rollover => n / self.batch_size,
        }
    }

    /// Why the last epoch ended early, if a batch could not be made (a sample whose shape
    /// differs from the others', a transform that refused a sample): taken, so it is
    /// reported once. [`DataLoader::try_epoch`] gives the error with the batch instead.
    pub fn take_error(&mut self) -> Option<NnError> {
        self.error.take()
    }

    /// The batches of epoch `epoch` (numbered from 0). A batch that cannot be made ends the
    /// epoch; [`DataLoader::take_error`] then says why.
    pub fn epoch<T: Float>(&mut self, epoch: u64) -> Batches<'_, D, T> {
        Batches {
            inner: self.try_epoch(epoch),
        }
    }

    /// The batches of epoch `epoch`, each a `Result`: an error names the dataset, the
    /// sample's index and what was wrong. The epoch ends after an error.
    pub fn try_epoch<T: Float>(&mut self, epoch: u64) -> TryBatches<'_, D, T> {
        self.error = None;
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        if let Some(seed) = self.shuffle_seed {
            let mut rng = StdRng::seed_from_u64(
                seed ^ epoch.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            order.shuffle(&mut rng);
        }
        let mut all = std::mem::take(&mut self.carry);
        all.extend(order);
        let full = all.len() / self.batch_size * self.batch_size;
        match self.last_batch {
            LastBatch::Keep => {}
            LastBatch::Discard => all.truncate(full),
            LastBatch::Rollover => self.carry = all.split_off(full),
        }
        let (mean, std) = (T::from_f64(self.mean), T::from_f64(self.std));
        let table =
            std::array::from_fn(|v| (T::from_f64(v as f64) / T::from_f64(255.0) - mean) / std);
        let key = EpochKey {
            seed: self.seed,
            epoch,
        };
        TryBatches {
            loader: self,
            order: all,
            next: 0,
            key,
            table,
        }
    }
}

/// `e`, raised by sample `index` of `data`, with the dataset's name and the index.
fn in_sample<D: Dataset + ?Sized>(data: &D, index: usize, e: NnError) -> NnError {
    e.in_layer(format!("{} sample {index}", data.name()))
}

/// The batches of one epoch, from [`DataLoader::epoch`]: what the training loops take.
pub struct Batches<'l, D: Dataset, T: Float> {
    inner: TryBatches<'l, D, T>,
}

impl<D: Dataset, T: Float> Batches<'_, D, T> {
    /// [`TryBatches::next_part`], ending the epoch at an error as `next` does (the error is
    /// kept for [`DataLoader::take_error`]).
    pub fn next_part(
        &mut self,
        part: impl FnOnce(usize) -> Range<usize>,
    ) -> Option<(usize, Batch<T>)> {
        match self.inner.next_part(part)? {
            (n, Ok(batch)) => Some((n, batch)),
            (_, Err(e)) => {
                self.inner.loader.error = Some(e);
                None
            }
        }
    }
}

impl<D: Dataset, T: Float> Iterator for Batches<'_, D, T> {
    type Item = Batch<T>;

    fn next(&mut self) -> Option<Batch<T>> {
        self.next_part(|n| 0..n).map(|(_, batch)| batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

/// What the training and evaluation loops take batch by batch: a [`Batch`], or a
/// `Result` of one (as [`DataLoader::try_epoch`] yields), whose error stops the loop.
pub trait IntoBatch<T: Float> {
    /// The batch, or the error that stops the loop.
    fn into_batch(self) -> Result<Batch<T>>;
}

impl<T: Float> IntoBatch<T> for Batch<T> {
    fn into_batch(self) -> Result<Batch<T>> {
        Ok(self)
    }
}

impl<T: Float> IntoBatch<T> for Result<Batch<T>> {
    fn into_batch(self) -> Result<Batch<T>> {
        self
    }
}

/// The batches of one epoch as `Result`s, from [`DataLoader::try_epoch`].
pub struct TryBatches<'l, D: Dataset, T: Float> {
    loader: &'l mut DataLoader<D>,
    order: Vec<usize>,
    next: usize,
    key: EpochKey,
    /// The conversion of every byte value, computed once per epoch (an array, so that
    /// indexing it with a byte needs no bounds check).
    table: [T; 256],
}

impl<D: Dataset, T: Float> TryBatches<'_, D, T> {
    /// The next batch with only the samples `part(n)` of it fetched, transformed and
    /// converted, where `n` is the size of the whole batch (a range past `n` is cut at
    /// `n`); returns `n` and that part. A process that computes only some shards of each
    /// batch reads only theirs (`kiln-dist`); `next` is `next_part(|n| 0..n)`. An empty
    /// part is a batch of no images (of the shape of the whole batch's first sample).
    /// The samples' random transforms are keyed by their index, so a part holds exactly
    /// the samples of the whole batch.
    pub fn next_part(
        &mut self,
        part: impl FnOnce(usize) -> Range<usize>,
    ) -> Option<(usize, Result<Batch<T>>)> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.loader.batch_size).min(self.order.len());
        let whole = &self.order[self.next..end];
        let range = part(whole.len());
        let to = range.end.min(whole.len());
        let from = range.start.min(to);
        let data = &self.loader.data;
        let batch = if from < to {
            make_batch(data, &whole[from..to], self.key, &self.table)
        } else {
            // the shape comes from a sample: the first one's, with none of it kept
            make_batch(data, &whole[..1], self.key, &self.table).and_then(|b| {
                Ok(Batch {
                    images: b.images.slice_axis(0, 0, 0)?,
                    labels: b.labels.as_ref().slice(0, 0)?,
                })
            })
        };
        // an error ends the epoch
        self.next = if batch.is_ok() { end } else { self.order.len() };
        Some((whole.len(), batch))
    }
}

impl<D: Dataset, T: Float> Iterator for TryBatches<'_, D, T> {
    type Item = Result<Batch<T>>;

    fn next(&mut self) -> Option<Result<Batch<T>>> {
        self.next_part(|n| 0..n).map(|(_, batch)| batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.next).div_ceil(self.loader.batch_size);
        (n, Some(n))
    }
}

/// One sample's result while a batch is made.
type Item<'d> = Result<(Sample<'d>, Label)>;

/// The samples `indices` of `data` as one batch: fetched, transformed and converted in
/// groups of images on the kernels' threads, straight into the batch.
fn make_batch<D: Dataset, T: Float>(
    data: &D,
    indices: &[usize],
    key: EpochKey,
    table: &[T; 256],
) -> Result<Batch<T>> {
    let n = indices.len();
    let fetch = |k: usize| -> Item<'_> {
        data.sample(indices[k], key)
            .map_err(|e| in_sample(data, indices[k], e))
    };
    // the first sample fixes the batch's shape; it is kept for its task
    let first = fetch(0)?;
    let dims = first.0.batch_dims();
    let size = super::sample::checked_numel(&dims)
        .and_then(|s| s.checked_mul(n).map(|_| s))
        .ok_or_else(|| {
            NnError::invalid(
                "DataLoader",
                format!("a batch of {n} samples of shape {dims:?} is too large"),
            )
        })?;
    let first: Mutex<Option<Item<'_>>> = Mutex::new(Some(Ok(first)));
    // each task's labels, in its samples' order
    let per_task = kiln_tensor::parallel::IMAGES_PER_TASK;
    let labels: Vec<OnceLock<Result<TaskLabels>>> =
        (0..n.div_ceil(per_task)).map(|_| OnceLock::new()).collect();
    let convert = |k: usize, item: Item<'_>, dst: &mut [T]| -> Result<Label> {
        let (sample, label) = item?;
        if !sample.has_batch_dims(&dims) {
            return Err(NnError::invalid(
                data.name(),
                format!(
                    "sample {} is a {}, but the batch's first sample (index {}) has shape {dims:?}",
                    indices[k],
                    sample.describe(),
                    indices[0]
                ),
            ));
        }
        write_sample(&sample, table, dst);
        Ok(label)
    };
    let take = |k: usize| -> Item<'_> {
        match (k == 0).then(|| first.lock().expect("no task panics").take()) {
            Some(Some(item)) => item,
            _ => fetch(k),
        }
    };
    // one task: samples `images`, converted into `out` (their part of the batch)
    let task = |images: std::ops::Range<usize>, out: &mut [T]| {
        debug_assert_eq!(
            images.start % per_task,
            0,
            "tasks start at multiples of IMAGES_PER_TASK"
        );
        let mut mine = TaskLabels::Classes(Vec::with_capacity(images.len()));
        let made = images.clone().try_for_each(|k| {
            // the samples are in shuffled order: ask for the next one's bytes while this
            // one is made (their cache misses were a third of the batch time)
            if k + 1 < images.end {
                data.prefetch(indices[k + 1]);
            }
            let j = k - images.start;
            mine.push(convert(k, take(k), &mut out[j * size..(j + 1) * size])?);
            Ok(())
        });
        let _ = labels[images.start / per_task].set(made.map(|()| mine));
    };
    let pixels = if size == 0 {
        (0..n)
            .step_by(per_task)
            .for_each(|t| task(t..(t + per_task).min(n), &mut []));
        Vec::new()
    } else {
        kiln_tensor::parallel::collect_image_tasks(n, size, n * size, task)
    };
    // the first error in sample order, or every task's labels
    let labels = labels
        .into_iter()
        .map(|l| l.into_inner().expect("every task of the batch ran"))
        .collect::<Result<Vec<TaskLabels>>>()?;
    let mut shape = vec![n];
    shape.extend_from_slice(&dims);
    Ok(Batch {
        images: Tensor::from_vec(pixels, shape)?,
        labels: collate_labels(data, indices, labels)?,
    })
}

/// Writes one sample, converted to `T`, into its place in the batch: a byte image through
/// `table` (and from H, W, C to C, H, W), a tensor as it is.
fn write_sample<T: Float>(sample: &Sample<'_>, table: &[T; 256], dst: &mut [T]) {
    match sample {
        Sample::Image(image) if image.channels() == 1 => {
            kiln_tensor::kernels::map_bytes(table, image.pixels(), dst)
        }
        Sample::Image(image) => {
            let (c, plane) = (image.channels(), image.height() * image.width());
            for (p, px) in image.pixels().chunks_exact(c).enumerate() {
                for (k, &v) in px.iter().enumerate() {
                    dst[k * plane + p] = table[usize::from(v)];
                }
            }
        }
        Sample::Tensor(t) => t.write_to(dst),
    }
}

/// The labels of one task's samples: class indices while they are all classes (the common
/// case, kept small), any labels once one is not.
enum TaskLabels {
    Classes(Vec<usize>),
    Any(Vec<Label>),
}

impl TaskLabels {
    fn push(&mut self, label: Label) {
        match (self, label) {
            (TaskLabels::Classes(c), Label::Class(k)) => c.push(k),
            (TaskLabels::Any(all), label) => all.push(label),
            (this @ TaskLabels::Classes(_), label) => {
                let TaskLabels::Classes(c) = std::mem::replace(this, TaskLabels::Any(Vec::new()))
                else {
                    unreachable!("matched as classes")
                };
                let mut all: Vec<Label> = c.into_iter().map(Label::Class).collect();
                all.push(label);
                *this = TaskLabels::Any(all);
            }
        }
    }
}

/// The labels of a batch: all classes, or targets of one shape stacked along a new first
/// axis; anything else is an error naming the first sample that differs.
fn collate_labels<D: Dataset, T: Float>(
    data: &D,
    indices: &[usize],
    tasks: Vec<TaskLabels>,
) -> Result<Labels<T>> {
    if tasks.iter().all(|t| matches!(t, TaskLabels::Classes(_))) {
        let mut classes = Vec::with_capacity(indices.len());
        for t in tasks {
            if let TaskLabels::Classes(c) = t {
                classes.extend(c);
            }
        }
        return Ok(Labels::Classes(classes));
    }
    let labels: Vec<Label> = tasks
        .into_iter()
        .flat_map(|t| match t {
            TaskLabels::Classes(c) => c.into_iter().map(Label::Class).collect(),
            TaskLabels::Any(all) => all,
        })
        .collect();
    stack_labels(data, indices, &labels)
}

/// Labels that are not all classes: targets of one shape stacked along a new first axis,
/// or an error naming the first sample that differs from the first.
fn stack_labels<D: Dataset, T: Float>(
    data: &D,
    indices: &[usize],
    labels: &[Label],
) -> Result<Labels<T>> {
    let (n, first) = (labels.len(), &labels[0]);
    let mismatch = |k: usize, label: &Label| {
        NnError::invalid(
            data.name(),
            format!(
                "sample {} has {}, but the batch's first sample (index {}) has {}",
                indices[k],
                label.describe(),
                indices[0],
                first.describe()
            ),
        )
    };
    let Label::Target(t) = first else {
        let (k, other) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| !matches!(l, Label::Class(_)))
            .expect("not all classes");
        return Err(mismatch(k, other));
    };
    let dims = t.dims().to_vec();
    let size: usize = dims.iter().product();
    let mut values = vec![T::ZERO; size * n];
    for (k, label) in labels.iter().enumerate() {
        match label {
            Label::Target(t) if t.dims() == dims => {
                t.write_to(&mut values[k * size..(k + 1) * size])
            }
            other => return Err(mismatch(k, other)),
        }
    }
    let mut shape = vec![n];
    shape.extend_from_slice(&dims);
    Ok(Labels::Targets(Tensor::from_vec(values, shape)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::AnyTensor;
    use crate::data::vision::ImageDataset;

    fn target(values: &[f64], dims: &[usize]) -> Label {
        Label::Target(AnyTensor::F64(Tensor::from_f64s(values, dims).unwrap()))
    }

    fn tiny(n: usize) -> ImageDataset {
        let images: Vec<u8> = (0..n * 4).map(|i| (i * 17 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        ImageDataset::new(images, labels, [1, 2, 2], 3).unwrap()
    }

    #[test]
    fn a_part_of_a_batch_is_those_samples_of_the_whole_batch() {
        let d = tiny(10);
        let mut l = DataLoader::new(&d, 4).unwrap().shuffle(3);
        let whole: Vec<Batch<f32>> = l.epoch(1).collect();
        let mut parts = l.epoch::<f32>(1);
        for batch in &whole {
            // samples 1..3 of batches of 4, 4 and 2 (the last is cut at 2)
            let (n, part) = parts.next_part(|n| 1..3.min(n + 5)).unwrap();
            assert_eq!(n, batch.labels.len());
            let to = 3.min(n);
            assert_eq!(part.images, batch.images.slice_axis(0, 1, to).unwrap());
            let classes = batch.labels.classes().unwrap();
            assert_eq!(part.labels, Labels::Classes(classes[1..to].to_vec()));
        }
        assert!(parts.next_part(|n| 0..n).is_none());
        // an empty part is a batch of no images
        let (n, empty) = l.epoch::<f32>(0).next_part(|_| 2..2).unwrap();
        assert_eq!((n, empty.images.dims()), (4, &[0, 1, 2, 2][..]));
    }

    #[test]
    fn keep_discard_rollover() {
        let d = tiny(10);
        let sizes = |policy| {
            let mut l = DataLoader::new(&d, 4).unwrap().last_batch(policy);
            let a: Vec<usize> = l.epoch::<f32>(0).map(|b| b.labels.len()).collect();
            let b: Vec<usize> = l.epoch::<f32>(1).map(|b| b.labels.len()).collect();
            (a, b)
        };
        assert_eq!(sizes(LastBatch::Keep), (vec![4, 4, 2], vec![4, 4, 2]));
        assert_eq!(sizes(LastBatch::Discard), (vec![4, 4], vec![4, 4]));
        // 2 left over after epoch 0 start epoch 1: 12 samples, 3 batches, none left
        assert_eq!(sizes(LastBatch::Rollover), (vec![4, 4], vec![4, 4, 4]));
    }

    #[test]
    fn to_tensor_scales_to_unit_interval_in_nchw() {
        let d = tiny(3);
        let mut l = DataLoader::new(&d, 2).unwrap();
        let b = l.epoch::<f32>(0).next().unwrap();
        assert_eq!(b.images.dims(), &[2, 1, 2, 2]);
        assert_eq!(b.images.data()[1], 17.0 / 255.0);
        assert_eq!(b.labels, Labels::Classes(vec![0, 1]));
        assert!(DataLoader::new(&d, 0).is_err());
    }

    #[test]
    fn shuffling_is_seeded_per_epoch() {
        let d = tiny(50);
        let order = |seed, epoch| {
            let mut l = DataLoader::new(&d, 50).unwrap().shuffle(seed);
            l.epoch::<f64>(epoch).next().unwrap().images.data().to_vec()
        };
        assert_eq!(order(1, 0), order(1, 0));
        assert_ne!(order(1, 0), order(1, 1));
        assert_ne!(order(1, 0), order(2, 0));
    }

    #[test]
    fn targets_stack_and_mismatches_are_errors() {
        let ok = vec![target(&[1.0, 2.0], &[2]), target(&[3.0, 4.0], &[2])];
        let labels = stack_labels::<_, f32>(&tiny(2), &[5, 6], &ok).unwrap();
        assert_eq!(
            labels,
            Labels::Targets(Tensor::from_f64s(&[1.0, 2.0, 3.0, 4.0], [2, 2]).unwrap())
        );
        let scalars = vec![target(&[0.5], &[]), target(&[-1.0], &[])];
        let labels = stack_labels::<_, f64>(&tiny(2), &[0, 1], &scalars).unwrap();
        assert_eq!(
            labels,
            Labels::Targets(Tensor::from_f64s(&[0.5, -1.0], [2]).unwrap())
        );
        let bad = vec![target(&[1.0, 2.0], &[2]), target(&[3.0], &[1])];
        let e = stack_labels::<_, f32>(&tiny(2), &[5, 6], &bad)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ImageDataset: sample 6 has a target of shape [1], but the batch's first sample \
             (index 5) has a target of shape [2]"
        );
        let mixed = vec![Label::Class(1), target(&[3.0], &[1])];
        assert!(stack_labels::<_, f32>(&tiny(2), &[0, 1], &mixed).is_err());
    }
}
