//! # kiln
//!
//! Build, train, check and ship convolutional networks in Rust, with MXNet Gluon's API.
//! This crate re-exports kiln's four layers, each depending only on the ones below:
//!
//! - [`tensor`]: n-d arrays, GEMM, convolution and pooling kernels;
//! - [`autograd`]: a tape-based reverse-mode graph whose every op is gradient-checked;
//! - [`nn`]: Gluon's blocks, initializers, `Trainer`, losses, checkpoints and data;
//! - [`dist`]: data-parallel training across processes, bit-identical for any number of
//!   them (the MPI communicator with the cargo feature `mpi`).
//!
//! and [`prelude`], what the book's code needs in one import:
//!
//! ```
//! use kiln::prelude::*;
//! // D2L 6.6's LeNet
//! let net = Sequential::<f32>::new()
//!     .add(Conv2D::new(6, 5).activation(Activation::Sigmoid))
//!     .add(MaxPool2D::new(2).strides(2))
//!     .add(Conv2D::new(16, 5).activation(Activation::Sigmoid))
//!     .add(MaxPool2D::new(2).strides(2))
//!     .add(Dense::new(120).activation(Activation::Sigmoid))
//!     .add(Dense::new(84).activation(Activation::Sigmoid))
//!     .add(Dense::new(10));
//! net.initialize(&Init::xavier(), 0)?;
//! assert_eq!(net.summary([1, 1, 28, 28])?.total_params, 44_426);
//! // D2L 6.2.1: the cross-correlation of a 3×3 input with a 2×2 kernel
//! use kiln::tensor::conv2d::reference::corr2d;
//! let x = Tensor::<f32>::arange(9).reshape([3, 3])?;
//! let k = Tensor::<f32>::arange(4).reshape([2, 2])?;
//! assert_eq!(corr2d(&x, &k)?.data(), &[19.0, 25.0, 37.0, 43.0]);
//! # Ok::<(), NnError>(())
//! ```

pub mod prelude;

pub use kiln_autograd as autograd;
pub use kiln_dist as dist;
pub use kiln_nn as nn;
pub use kiln_tensor as tensor;
