//! Gluon's layers, one file each: `Conv2D`, `MaxPool2D`/`AvgPool2D`, `Dense`, `Flatten`,
//! `Activation`, and the `Sequential` container.

mod activation;
mod conv;
mod dense;
mod flatten;
mod fusion;
mod input;
mod pool;
mod sequential;
mod weights;

pub use activation::Activation;
pub use conv::Conv2D;
pub use dense::Dense;
pub use flatten::Flatten;
pub use pool::{AvgPool2D, MaxPool2D};
pub use sequential::Sequential;
