//! [`DataLoader`]: batches of an [`ImageDataset`] as tensors (Gluon's `DataLoader` with the
//! `ToTensor` transform): shuffled from a seed, with Gluon's `last_batch` policies.

use super::vision::ImageDataset;
use crate::error::{NnError, Result};
use crate::labels::Labels;
use kiln_tensor::rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use kiln_tensor::{Float, Tensor};

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

/// One batch: images (B, C, H, W) and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T: Float> {
    /// Images, transformed to `T`.
    pub images: Tensor<T>,
    /// One class per image, or a tensor of targets.
    pub labels: Labels<T>,
}

/// Iterates over a dataset in batches.
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
pub struct DataLoader<'a> {
    data: &'a ImageDataset,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    last_batch: LastBatch,
    mean: f64,
    std: f64,
    carry: Vec<usize>,
}

impl<'a> DataLoader<'a> {
    /// Batches of `batch_size` in dataset order, a smaller last batch kept, pixels scaled
    /// to [0, 1] (Gluon's `ToTensor`).
    pub fn new(data: &'a ImageDataset, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(NnError::invalid("DataLoader", "batch_size must be ≥ 1"));
        }
        Ok(DataLoader {
            data,
            batch_size,
            shuffle_seed: None,
            last_batch: LastBatch::Keep,
            mean: 0.0,
            std: 1.0,
            carry: Vec::new(),
        })
    }

    /// Shuffles every epoch; epoch `e`'s order depends only on `seed` and `e`, so a run
    /// resumed at epoch `e` sees the same batches.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }

    /// Sets the policy for leftover samples.
    pub fn last_batch(mut self, policy: LastBatch) -> Self {
        self.last_batch = policy;
        self
    }

    /// After scaling to [0, 1], maps each value v to (v − mean) / std (Gluon's
    /// `transforms.Normalize`).
    pub fn normalize(mut self, mean: f64, std: f64) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches in the next epoch (an estimate under rollover, which varies by epoch).
    pub fn num_batches(&self) -> usize {
        let n = self.data.len() + self.carry.len();
        match self.last_batch {
            LastBatch::Keep => n.div_ceil(self.batch_size),
            LastBatch::Discard | LastBatch::Rollover => n / self.batch_size,
        }
    }

    /// The batches of epoch `epoch` (numbered from 0).
    pub fn epoch<T: Float>(&mut self, epoch: u64) -> Batches<'_, 'a, T> {
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
        let table = std::array::from_fn(|v| T::from_f64((v as f64 / 255.0 - self.mean) / self.std));
        Batches {
            loader: self,
            order: all,
            next: 0,
            table,
        }
    }
}

/// The batches of one epoch, from [`DataLoader::epoch`].
pub struct Batches<'l, 'a, T: Float> {
    loader: &'l DataLoader<'a>,
    order: Vec<usize>,
    next: usize,
    /// The transform of every byte value, computed once per epoch (an array, so that
    /// indexing it with a byte needs no bounds check).
    table: [T; 256],
}

impl<T: Float> Batches<'_, '_, T> {
    /// The next batch with only the samples `part(n)` of it read and converted, where `n`
    /// is the size of the whole batch (a range past `n` is cut at `n`); returns `n` and
    /// that part. A process that computes only some shards of each batch reads only
    /// theirs (`kiln-dist`); `next` is `next_part(|n| 0..n)`.
    pub fn next_part(
        &mut self,
        part: impl FnOnce(usize) -> std::ops::Range<usize>,
    ) -> Option<(usize, Batch<T>)> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.loader.batch_size).min(self.order.len());
        let batch = &self.order[self.next..end];
        self.next = end;
        let range = part(batch.len());
        let to = range.end.min(batch.len());
        let indices = &batch[range.start.min(to)..to];
        let data = self.loader.data;
        let [c, h, w] = data.image_shape();
        // groups of images converted on the kernels' threads, if there are several
        let size = c * h * w;
        let pixels = kiln_tensor::parallel::collect_image_tasks(
            indices.len(),
            size,
            indices.len() * size,
            |images, out: &mut [T]| {
                let mine = &indices[images];
                for (k, (dst, &i)) in out.chunks_exact_mut(size.max(1)).zip(mine).enumerate() {
                    // the images are in shuffled order: fetch the next one's bytes while
                    // this one converts (a third of the batch time was their misses)
                    if let Some(&next) = mine.get(k + 1) {
                        kiln_tensor::kernels::prefetch(data.image(next));
                    }
                    kiln_tensor::kernels::map_bytes(&self.table, data.image(i), dst);
                }
            },
        );
        let images =
            Tensor::from_vec(pixels, [indices.len(), c, h, w]).expect("sizes computed above");
        let labels = Labels::Classes(indices.iter().map(|&i| data.label(i)).collect());
        Some((batch.len(), Batch { images, labels }))
    }
}

impl<T: Float> Iterator for Batches<'_, '_, T> {
    type Item = Batch<T>;

    fn next(&mut self) -> Option<Batch<T>> {
        self.next_part(|n| 0..n).map(|(_, batch)| batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.next).div_ceil(self.loader.batch_size);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(n: usize) -> ImageDataset {
        let images: Vec<u8> = (0..n * 4).map(|i| (i * 17 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        ImageDataset::new(images, labels, [1, 2, 2], 3).unwrap()
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
}
