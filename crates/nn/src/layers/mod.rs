//! Gluon's layers, one file each: `Conv2D`, `Dense`, the pooling layers, `BatchNorm`,
//! `Dropout`, `Flatten`, `Identity`, `Activation` and the other activation layers, and the
//! containers `Sequential` (blocks one after another) and `Concatenate` (blocks side by
//! side).

mod activation;
mod activations;
mod batch_norm;
mod concatenate;
mod conv;
mod dense;
mod dropout;
mod flatten;
mod fusion;
mod identity;
mod input;
mod pool;
mod sequential;
mod weights;

pub(crate) use activation::activation_name;
pub use activation::Activation;
pub use activations::{LeakyReLU, PReLU, Swish, ELU, GELU, SELU};
pub use batch_norm::BatchNorm;
pub use concatenate::Concatenate;
pub use conv::Conv2D;
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use identity::Identity;
pub use pool::{AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D};
pub use sequential::Sequential;
