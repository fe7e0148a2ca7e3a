//! # kiln
//!
//! Build, train, check and ship convolutional networks in Rust, with MXNet Gluon's API.
//! This crate re-exports kiln's four layers, each depending only on the ones below:
//!
//! - [`tensor`]: n-d arrays, GEMM, im2col convolution and pooling kernels;
//! - [`autograd`]: a tape-based reverse-mode graph whose every op is gradient-checked;
//! - [`nn`]: Gluon's blocks, initializers, `Trainer`, losses, checkpoints and data;
//! - [`dist`]: data-parallel training across processes, bit-identical for any number of
//!   them (the MPI communicator with the cargo feature `mpi`).
//!
//! ```
//! use kiln::tensor::{conv2d::reference::corr2d, Tensor};
//! let x = Tensor::<f32>::arange(9).reshape([3, 3])?;
//! let k = Tensor::<f32>::arange(4).reshape([2, 2])?;
//! assert_eq!(corr2d(&x, &k)?.data(), &[19.0, 25.0, 37.0, 43.0]);
//! # Ok::<(), kiln::tensor::TensorError>(())
//! ```

pub use kiln_autograd as autograd;
pub use kiln_dist as dist;
pub use kiln_nn as nn;
pub use kiln_tensor as tensor;
