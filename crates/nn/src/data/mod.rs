//! Data (Gluon's `gluon.data`): the [`Dataset`] trait and its datasets (arrays, vectors,
//! Fashion-MNIST, MNIST, CIFAR-10), the vision [`transforms`], and the [`DataLoader`].

pub mod cifar;
pub mod dataset;
pub mod idx;
pub mod loader;
pub mod resize;
pub mod sample;
pub mod transforms;
pub mod vision;

pub use cifar::{parse_cifar_batch, read_cifar_batch, Cifar10, CifarBatch};
pub use dataset::{check_index, ArrayDataset, Dataset, EpochKey, SimpleDataset, TransformFirst};
pub use idx::{parse_idx, read_idx, IdxArray};
pub use loader::{Batch, Batches, DataLoader, IntoBatch, LastBatch, TryBatches};
pub use resize::resize_linear;
pub use sample::{AnyTensor, Image, Label, Sample};
pub use transforms::{Compose, Draws, Transform};
pub use vision::{
    load_data_fashion_mnist, locate_fashion_mnist, FashionMnist, FashionMnistLoader, ImageDataset,
    Mnist, FASHION_MNIST_ENV,
};
