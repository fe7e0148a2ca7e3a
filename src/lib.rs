//! kiln: build, train, check and ship convolutional networks in Rust, with MXNet Gluon's API.
pub use kiln_tensor as tensor;
