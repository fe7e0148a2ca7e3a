//! Data (Gluon's `gluon.data`): the IDX reader, the Fashion-MNIST and MNIST datasets, and
//! the `DataLoader`.

pub mod idx;
pub mod loader;
pub mod resize;
pub mod sample;
pub mod vision;

pub use idx::{parse_idx, read_idx, IdxArray};
pub use loader::{Batch, Batches, DataLoader, LastBatch};
pub use resize::resize_linear;
pub use sample::{AnyTensor, Image, Label, Sample};
pub use vision::{locate_fashion_mnist, FashionMnist, ImageDataset, Mnist, FASHION_MNIST_ENV};
