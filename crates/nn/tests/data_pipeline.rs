//! The data pipeline end to end: any dataset through transforms into the `DataLoader`,
//! bit-identical on 1, 2 and 3 threads with random augmentation; Gluon's `last_batch`
//! policies over a generic dataset; and every mistake an error naming the dataset or the
//! transform and the value.

use kiln_nn::data::transforms::{
    CenterCrop, Compose, Normalize, RandomBrightness, RandomContrast, RandomFlipLeftRight,
    RandomFlipTopBottom, RandomResizedCrop, Resize, ToTensor,
};
use kiln_nn::data::{
    load_data_fashion_mnist, locate_fashion_mnist, ArrayDataset, DataLoader, Dataset, FashionMnist,
    Image, ImageDataset, Label, LastBatch, Sample, SimpleDataset,
};
use kiln_nn::Labels;
use kiln_tensor::parallel::with_threads;
use kiln_tensor::Tensor;

/// `n` random-looking images of `c × 28 × 28` bytes with labels `i % 10`.
fn images(n: usize, c: usize) -> ImageDataset {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes = (0..n * c * 28 * 28)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    ImageDataset::new(bytes, labels, [c, 28, 28], 10).unwrap()
}

fn augment() -> Compose {
    Compose::new()
        .add(RandomResizedCrop::new(32).unwrap())
        .add(RandomFlipLeftRight)
        .add(RandomFlipTopBottom)
        .add(RandomBrightness::new(0.4).unwrap())
        .add(RandomContrast::new(0.4).unwrap())
}

/// Every batch of epochs 0 and 1 as bits and labels, on `threads` threads.
fn epochs<D: Dataset + Send>(
    loader: &mut DataLoader<D>,
    threads: usize,
) -> Vec<(Vec<u32>, Labels<f32>)> {
    with_threads(threads, || {
        (0..2)
            .flat_map(|e| {
                loader
                    .try_epoch::<f32>(e)
                    .map(|b| {
                        let b = b.unwrap();
                        (
                            b.images.data().iter().map(|v| v.to_bits()).collect(),
                            b.labels,
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    })
    .unwrap()
}

#[test]
fn random_augmentation_is_bit_identical_on_any_number_of_threads() {
    for channels in [1, 3] {
        let data = images(200, channels).transform_first(
            augment()
                .add(ToTensor)
                .add(Normalize::new(&[0.3], &[0.35]).unwrap()),
        );
        // batches of 64 images of 32×32: enough work for the kernels' threads to share
        let mut loader = DataLoader::new(&data, 64).unwrap().shuffle(3);
        let one = epochs(&mut loader, 1);
        assert_eq!(one.len(), 8);
        assert_eq!(
            one,
            epochs(&mut loader, 2),
            "{channels} channels, 2 threads"
        );
        assert_eq!(
            one,
            epochs(&mut loader, 3),
            "{channels} channels, 3 threads"
        );
        // the same sample is augmented differently in another epoch or with another seed
        let plain = |seed: u64, epoch: u64| {
            let mut l = DataLoader::new(&data, 200).unwrap().seed(seed);
            l.epoch::<f32>(epoch).next().unwrap().images
        };
        assert_eq!(plain(1, 0), plain(1, 0));
        assert_ne!(plain(1, 0), plain(1, 1));
        assert_ne!(plain(1, 0), plain(2, 0));
    }
}

#[test]
fn bytes_converted_by_the_loader_equal_to_tensor() {
    // the loader's byte table computes v / 255 in f32 exactly as ToTensor does
    for channels in [1, 3] {
        let data = images(40, channels);
        let explicit = (&data).transform_first(ToTensor);
        let a = DataLoader::new(&data, 40)
            .unwrap()
            .epoch::<f32>(0)
            .next()
            .unwrap();
        let b = DataLoader::new(&explicit, 40)
            .unwrap()
            .epoch::<f32>(0)
            .next()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.images.dims(), [40, channels, 28, 28]);
        // channels first: image 0's pixel (0, 1), channel c, is byte 1·c_count + c
        let (sample, _) = data.get(0).unwrap();
        let Sample::Image(image) = sample else {
            panic!()
        };
        for c in 0..channels {
            let v = a.images.get(&[0, c, 0, 1]).unwrap();
            assert_eq!(v, image.pixels()[channels + c] as f32 / 255.0);
        }
    }
}

/// Ten samples whose regression target is their own index.
fn numbered() -> ArrayDataset {
    let x = Tensor::<f32>::arange(20).reshape([10, 2]).unwrap();
    let y = Tensor::<f32>::arange(10);
    ArrayDataset::new(x, y).unwrap()
}

/// The sample indices of each batch of an epoch, read from the targets.
fn indices(loader: &mut DataLoader<ArrayDataset>, epoch: u64) -> Vec<Vec<usize>> {
    loader
        .epoch::<f32>(epoch)
        .map(|b| match b.labels {
            Labels::Targets(t) => {
                assert_eq!(t.dims(), [b.images.dims()[0]]);
                t.data().iter().map(|&v| v as usize).collect()
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn last_batch_policies_over_a_generic_dataset() {
    let mut keep = DataLoader::new(numbered(), 4).unwrap();
    assert_eq!(
        indices(&mut keep, 0),
        [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
    );
    let mut discard = DataLoader::new(numbered(), 4)
        .unwrap()
        .last_batch(LastBatch::Discard);
    assert_eq!(
        indices(&mut discard, 0),
        [vec![0, 1, 2, 3], vec![4, 5, 6, 7]]
    );
    assert_eq!(discard.num_batches(), 2);
    // rollover: 8 and 9 open epoch 1, whose 12 samples make 3 batches
    let mut roll = DataLoader::new(numbered(), 4)
        .unwrap()
        .last_batch(LastBatch::Rollover);
    assert_eq!(indices(&mut roll, 0), [vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    assert_eq!(roll.num_batches(), 3);
    assert_eq!(
        indices(&mut roll, 1),
        [vec![8, 9, 0, 1], vec![2, 3, 4, 5], vec![6, 7, 8, 9]]
    );
    // shuffled: every sample once per epoch, in an order fixed by (seed, epoch)
    let mut shuffled = DataLoader::new(numbered(), 3).unwrap().shuffle(11);
    let e0 = indices(&mut shuffled, 0);
    assert_eq!(e0.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
    let mut all: Vec<usize> = e0.concat();
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_ne!(e0.concat(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        e0,
        indices(&mut DataLoader::new(numbered(), 3).unwrap().shuffle(11), 0)
    );
    // the images are the rows
    let b = DataLoader::new(numbered(), 10)
        .unwrap()
        .epoch::<f64>(0)
        .next()
        .unwrap();
    assert_eq!(
        b.images,
        Tensor::<f64>::arange(20).reshape([10, 2]).unwrap()
    );
}

#[test]
fn classes_of_any_number_and_f64_samples() {
    let x = Tensor::<f64>::from_f64s(&[0.25, -1.5, 3.0], [3, 1]).unwrap();
    let data = ArrayDataset::new(x.clone(), vec![0, 999, 70_000]).unwrap();
    let b = DataLoader::new(&data, 3)
        .unwrap()
        .epoch::<f64>(0)
        .next()
        .unwrap();
    assert_eq!(b.images, x);
    assert_eq!(b.labels, Labels::Classes(vec![0, 999, 70_000]));
    // an f32 loader over f64 samples rounds them
    let b = DataLoader::new(&data, 3)
        .unwrap()
        .epoch::<f32>(0)
        .next()
        .unwrap();
    assert_eq!(b.images.data(), &[0.25f32, -1.5, 3.0]);
}

#[test]
fn a_batch_that_cannot_be_made_is_an_error_naming_the_sample() {
    // SimpleDataset with one image of another size
    let image = |h: usize| Sample::Image(Image::new(vec![0u8; h * 4], [h, 4, 1]).unwrap());
    let data = SimpleDataset::new(vec![
        (image(4), Label::Class(0)),
        (image(4), Label::Class(1)),
        (image(5), Label::Class(2)),
    ]);
    let mut loader = DataLoader::new(&data, 3).unwrap();
    let e = loader
        .try_epoch::<f32>(0)
        .next()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("SimpleDataset")
            && e.contains("sample 2 is a image 5×4×1")
            && e.contains("(index 0) has shape [1, 4, 4]"),
        "{e}"
    );
    // the batch iterator the training loops take ends the epoch and keeps the error
    assert_eq!(loader.epoch::<f32>(0).count(), 0);
    assert!(loader.take_error().is_some());
    assert!(loader.take_error().is_none());
    // with a Resize, the same samples make a batch
    let resized = (&data).transform_first(Resize::new(4).unwrap());
    let b = DataLoader::new(resized, 3)
        .unwrap()
        .epoch::<f32>(0)
        .next()
        .unwrap();
    assert_eq!(b.images.dims(), [3, 1, 4, 4]);
    // a class label among targets
    let data = SimpleDataset::new(vec![
        (
            Tensor::<f32>::zeros([2]).into(),
            Tensor::<f32>::zeros([3]).into(),
        ),
        (Tensor::<f32>::zeros([2]).into(), Label::Class(1)),
    ]);
    let e = DataLoader::new(&data, 2)
        .unwrap()
        .try_epoch::<f32>(0)
        .next()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "SimpleDataset: sample 1 has class 1, but the batch's first sample (index 0) has a \
         target of shape [3]"
    );
}

#[test]
fn mistakes_are_errors_naming_the_transform_and_the_value() {
    let grey = images(4, 1);
    // Normalize for 3 channels on grey images: found when the loader is made
    let data = (&grey).transform_first(
        Compose::new()
            .add(ToTensor)
            .add(Normalize::new(&[0.5, 0.5, 0.5], &[0.2, 0.2, 0.2]).unwrap()),
    );
    let e = DataLoader::new(&data, 2)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "ImageDataset sample 0: Normalize: mean has 3 values but the image has 1 channels \
         (tensor [1, 28, 28]); give one value or one per channel"
    );
    let e = Resize::new(0).unwrap_err().to_string();
    assert_eq!(e, "Resize: the size must be at least 1×1, got 0×0 (W×H)");
    assert!(CenterCrop::to(0, 5)
        .unwrap_err()
        .to_string()
        .starts_with("CenterCrop"));
    let e = grey.get(4).unwrap_err().to_string();
    assert_eq!(e, "ImageDataset: index 4 is out of range (4 samples)");
    let e = data.get(7).unwrap_err().to_string();
    assert_eq!(e, "ImageDataset: index 7 is out of range (4 samples)");
    // labels of the wrong shape
    let e = ArrayDataset::new(Tensor::<f32>::zeros([5, 3]), Tensor::<f32>::zeros([4, 1]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "ArrayDataset: 4 labels for 5 samples (data [5, 3], labels [4, 1])"
    );
    // a transform of bytes after ToTensor
    let late = (&grey).transform_first(
        Compose::new()
            .add(ToTensor)
            .add(RandomContrast::new(0.2).unwrap()),
    );
    let e = late.get(0).unwrap_err().to_string();
    assert!(
        e.starts_with("RandomContrast: needs a non-empty image of bytes"),
        "{e}"
    );
    assert!(RandomBrightness::new(f64::NAN).is_err());
    let e = ImageDataset::new(vec![], vec![], [1, 28, 28], 0)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "ImageDataset: 0 classes: a dataset needs at least one");
}

#[test]
fn d2l_load_data_fashion_mnist_with_resize() {
    // D2L 7.x: train_iter, test_iter = load_data_fashion_mnist(batch_size, resize=96)
    let (mut train_iter, mut test_iter) = load_data_fashion_mnist(16, Some(96)).unwrap();
    assert_eq!(
        (train_iter.num_batches(), test_iter.num_batches()),
        (3750, 625)
    );
    let b = test_iter.epoch::<f32>(0).next().unwrap();
    assert_eq!(b.images.dims(), [16, 1, 96, 96]);
    assert!(b.images.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
    // the test set is in order: its first label is the file's first (9, an ankle boot)
    assert_eq!(b.labels.classes().unwrap()[0], 9);
    let b = train_iter.epoch::<f32>(0).next().unwrap();
    assert_eq!(b.images.dims(), [16, 1, 96, 96]);
    // --limit: the first n images, then the transform
    let dir = locate_fashion_mnist(None).unwrap();
    let small = FashionMnist::new(&dir, false)
        .unwrap()
        .take(100)
        .transform_first(Resize::new(64).unwrap());
    assert_eq!(small.len(), 100);
    assert_eq!(DataLoader::new(small, 32).unwrap().num_batches(), 4);
}
