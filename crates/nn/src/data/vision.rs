//! Image datasets (Gluon's `gluon.data.vision`): [`ImageDataset`] holds images as bytes and
//! their labels; [`FashionMnist`] and [`Mnist`] read the official IDX files,
//! [`locate_fashion_mnist`] finds them on this machine, and [`load_data_fashion_mnist`] is
//! D2L's one-line loader.

use super::dataset::{check_index, Dataset, EpochKey, TransformFirst};
use super::idx::read_idx;
use super::loader::DataLoader;
use super::sample::{checked_numel, Image, Label, Sample};
use super::transforms::{Compose, Resize};
use crate::error::{NnError, Result};
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Grey-level or colour images as bytes (N, C, H, W) with one class label each. As a
/// [`Dataset`] it yields each image as MXNet's vision datasets do, an [`Image`] of bytes
/// (H, W, C): lent without a copy when it has one channel, transposed otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    shape: [usize; 4],
    classes: usize,
}

impl ImageDataset {
    /// A dataset from images (N·C·H·W bytes) and N labels below `classes` (≥ 1). Empty
    /// images (a side of 0) are refused.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, chw: [usize; 3], classes: usize) -> Result<Self> {
        let n = labels.len();
        let [c, h, w] = chw;
        if classes == 0 {
            return Err(NnError::invalid(
                "ImageDataset",
                "0 classes: a dataset needs at least one",
            ));
        }
        if c == 0 || h == 0 || w == 0 {
            return Err(NnError::invalid(
                "ImageDataset",
                format!("images of {c}×{h}×{w} (C×H×W) are empty"),
            ));
        }
        if checked_numel(&[n, c, h, w]) != Some(images.len()) {
            return Err(NnError::invalid(
                "ImageDataset",
                format!(
                    "{} image bytes for {n} labels of {c}×{h}×{w} images",
                    images.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(NnError::invalid(
                "ImageDataset",
                format!("label {l} of sample {i} is not below {classes}"),
            ));
        }
        Ok(ImageDataset {
            images,
            labels,
            shape: [n, c, h, w],
            classes,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (C, H, W) of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.shape[1], self.shape[2], self.shape[3]]
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The bytes of image `i` (C·H·W).
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.shape[1] * self.shape[2] * self.shape[3];
        &self.images[i * size..(i + 1) * size]
    }

    /// The label of sample `i`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    /// The first `n` samples (or all, if fewer): a small real subset for quick runs
    /// (`--limit`).
    pub fn take(&self, n: usize) -> ImageDataset {
        let n = n.min(self.len());
        let size = self.shape[1] * self.shape[2] * self.shape[3];
        ImageDataset {
            images: self.images[..n * size].to_vec(),
            labels: self.labels[..n].to_vec(),
            shape: [n, self.shape[1], self.shape[2], self.shape[3]],
            classes: self.classes,
        }
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.shape[0]
    }

    fn name(&self) -> String {
        "ImageDataset".into()
    }

    #[inline]
    fn sample(&self, index: usize, _key: EpochKey) -> Result<(Sample<'_>, Label)> {
        check_index("ImageDataset", index, self.len())?;
        Ok(self.sample_at(index))
    }

    /// Asks for the image's bytes and its label in the cache.
    fn prefetch(&self, index: usize) {
        if index < self.len() {
            kiln_tensor::kernels::prefetch(self.image(index));
            kiln_tensor::kernels::prefetch(&self.labels[index..index + 1]);
        }
    }
}

impl ImageDataset {
    /// Sample `index < len` as [`Dataset::sample`] yields it.
    #[inline]
    pub(crate) fn sample_at(&self, index: usize) -> (Sample<'_>, Label) {
        let [_, c, h, w] = self.shape;
        let chw = self.image(index);
        let image = if c == 1 {
            Image::borrowed(chw, [h, w, 1])
        } else {
            let plane = h * w;
            let mut hwc = vec![0u8; chw.len()];
            for (p, px) in hwc.chunks_exact_mut(c).enumerate() {
                px.iter_mut()
                    .enumerate()
                    .for_each(|(k, v)| *v = chw[k * plane + p]);
            }
            Image::owned(hwc, [h, w, c])
        };
        (Sample::Image(image), Label::Class(self.label(index)))
    }
}

/// A dataset that is an [`ImageDataset`] under its own name.
macro_rules! named_image_dataset {
    ($t:ty, $name:literal) => {
        impl Dataset for $t {
            fn len(&self) -> usize {
                self.0.len()
            }
            fn name(&self) -> String {
                $name.into()
            }
            #[inline]
            fn sample(&self, index: usize, key: EpochKey) -> Result<(Sample<'_>, Label)> {
                let _ = key;
                check_index($name, index, self.0.len())?;
                Ok(self.0.sample_at(index))
            }
            fn prefetch(&self, index: usize) {
                self.0.prefetch(index)
            }
        }

        impl Deref for $t {
            type Target = ImageDataset;
            fn deref(&self) -> &ImageDataset {
                &self.0
            }
        }
    };
}
pub(crate) use named_image_dataset;

/// The four file stems of an MNIST-style dataset: (images, labels) for train and test.
fn stems(train: bool) -> (&'static str, &'static str) {
    if train {
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    } else {
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    }
}

/// The file for `stem` in `dir`: raw or `.gz`, with `-idx` or `.idx` (both spellings are
/// in circulation).
fn find_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let dotted = stem.replace("-idx", ".idx");
    let candidates = [
        stem.to_string(),
        format!("{stem}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ];
    candidates
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| NnError::Data {
            path: dir.join(format!("{stem}.gz")),
            message: format!("not found (also looked for {})", candidates.join(", ")),
        })
}

/// Reads an MNIST-layout split from `dir`, checking the two files agree.
fn read_split(dir: &Path, train: bool, classes: usize) -> Result<ImageDataset> {
    let (image_stem, label_stem) = stems(train);
    let (image_path, label_path) = (find_file(dir, image_stem)?, find_file(dir, label_stem)?);
    let images = read_idx(&image_path)?;
    let labels = read_idx(&label_path)?;
    let bad = |path: &Path, message: String| NnError::Data {
        path: path.to_path_buf(),
        message,
    };
    if images.dims.len() != 3 || images.dims[1] == 0 || images.dims[2] == 0 {
        return Err(bad(
            &image_path,
            format!(
                "expected images (N, H, W), got dimensions {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(bad(
            &label_path,
            format!("expected labels (N), got dimensions {:?}", labels.dims),
        ));
    }
    if labels.dims[0] != images.dims[0] {
        return Err(bad(
            &label_path,
            format!(
                "{} labels but {} images in {}",
                labels.dims[0],
                images.dims[0],
                image_path.display()
            ),
        ));
    }
    if let Some((i, &l)) = labels
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(bad(
            &label_path,
            format!("label {l} of sample {i} is not a class (0..{classes})"),
        ));
    }
    ImageDataset::new(
        images.data,
        labels.data,
        [1, images.dims[1], images.dims[2]],
        classes,
    )
}

/// Fashion-MNIST (Zalando, MIT licence): 28×28 grey images of clothing in 10 classes;
/// 60,000 for training, 10,000 for testing. Dereferences to its [`ImageDataset`]; give it a
/// transform with [`Dataset::transform_first`], as Gluon does:
///
/// ```no_run
/// use kiln_nn::data::transforms::{Compose, Resize, ToTensor};
/// use kiln_nn::data::{locate_fashion_mnist, DataLoader, Dataset, FashionMnist};
/// let dir = locate_fashion_mnist(None)?;
/// let train = FashionMnist::new(&dir, true)?
///     .take(6000) // an ImageDataset of the first 6,000
///     .transform_first(Compose::new().add(Resize::new(96)?).add(ToTensor));
/// let mut loader = DataLoader::new(train, 32)?.shuffle(0);
/// assert_eq!(loader.epoch::<f32>(0).next().unwrap().images.dims(), [32, 1, 96, 96]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
#[derive(Clone, Debug)]
pub struct FashionMnist(ImageDataset);

impl FashionMnist {
    /// The class names, by label.
    pub const CLASSES: [&'static str; 10] = [
        "t-shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ];

    /// Reads the training (`train = true`) or test split from the IDX files in `dir`.
    pub fn new(dir: impl AsRef<Path>, train: bool) -> Result<Self> {
        Ok(FashionMnist(read_split(dir.as_ref(), train, 10)?))
    }

    /// The dataset.
    pub fn into_inner(self) -> ImageDataset {
        self.0
    }
}

named_image_dataset!(FashionMnist, "FashionMnist");

/// MNIST digits (LeCun & Cortes, CC BY-SA 3.0), in the same layout as Fashion-MNIST.
#[derive(Clone, Debug)]
pub struct Mnist(ImageDataset);

impl Mnist {
    /// Reads the training or test split from the IDX files in `dir`.
    pub fn new(dir: impl AsRef<Path>, train: bool) -> Result<Self> {
        Ok(Mnist(read_split(dir.as_ref(), train, 10)?))
    }

    /// The dataset.
    pub fn into_inner(self) -> ImageDataset {
        self.0
    }
}

named_image_dataset!(Mnist, "Mnist");

/// The environment variable that points at a folder of Fashion-MNIST files.
pub const FASHION_MNIST_ENV: &str = "KILN_FASHION_MNIST";

/// Finds a folder holding the Fashion-MNIST files, trying in order: `explicit` (a
/// `--data-dir` flag), the folder in `$KILN_FASHION_MNIST`, `data/fashion-mnist` under
/// the current directory, the copy in kiln's own repository, and the Debian package
/// `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`). The error lists every
/// place tried.
pub fn locate_fashion_mnist(explicit: Option<&Path>) -> Result<PathBuf> {
    let mut tried: Vec<PathBuf> = Vec::new();
    if let Some(dir) = explicit {
        tried.push(dir.to_path_buf());
    } else {
        tried.extend(std::env::var_os(FASHION_MNIST_ENV).map(PathBuf::from));
        tried.push(PathBuf::from("data/fashion-mnist"));
        tried.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist"));
        tried.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
    }
    for dir in &tried {
        if find_file(dir, stems(true).0).is_ok() || find_file(dir, stems(false).0).is_ok() {
            return Ok(dir.clone());
        }
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(NnError::invalid(
        "Fashion-MNIST",
        format!(
            "no IDX files found in {}; pass --data-dir, set {FASHION_MNIST_ENV}, or install the Debian \
             package dataset-fashion-mnist",
            list.join(", ")
        ),
    ))
}

/// The loader [`load_data_fashion_mnist`] returns.
pub type FashionMnistLoader = DataLoader<TransformFirst<FashionMnist, Compose>>;

/// D2L's `load_data_fashion_mnist(batch_size, resize=None)` (3.5, 7.x): the training and
/// test loaders of Fashion-MNIST (found by [`locate_fashion_mnist`]), each image resized
/// to `resize × resize` first if given (Gluon's `Resize`, bit for bit as MXNet), the
/// training set shuffled every epoch from the process-wide seed
/// (`kiln_autograd::random::seed`; call [`DataLoader::shuffle`] for another). The book's
/// final `ToTensor` is the loader's own conversion of bytes to floats.
///
/// ```no_run
/// use kiln_nn::data::load_data_fashion_mnist;
/// let (mut train_iter, mut test_iter) = load_data_fashion_mnist(128, Some(96))?;
/// let batch = train_iter.epoch::<f32>(0).next().unwrap();
/// assert_eq!(batch.images.dims(), [128, 1, 96, 96]);
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub fn load_data_fashion_mnist(
    batch_size: usize,
    resize: Option<usize>,
) -> Result<(FashionMnistLoader, FashionMnistLoader)> {
    let dir = locate_fashion_mnist(None)?;
    let transform = || -> Result<Compose> {
        Ok(match resize {
            Some(size) => Compose::new().add(Resize::new(size)?),
            None => Compose::new(),
        })
    };
    let train = FashionMnist::new(&dir, true)?.transform_first(transform()?);
    let test = FashionMnist::new(&dir, false)?.transform_first(transform()?);
    Ok((
        DataLoader::new(train, batch_size)?.shuffle(kiln_autograd::random::current_seed()),
        DataLoader::new(test, batch_size)?,
    ))
}
