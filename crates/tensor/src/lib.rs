//! # kiln-tensor
//!
//! The bottom layer of kiln: n-d arrays of `f32` and `f64` ([`Tensor`]) with NumPy
//! broadcasting, reductions, softmax, matrix products through `matrixmultiply`, 2-d
//! convolution lowered to im2col + GEMM, and pooling. Every fallible function returns
//! [`Result`] with a [`TensorError`] that names the op and the shapes. The f32 kernels
//! run at the instruction-set level of [`simd`] (AVX-512, AVX2, NEON or portable),
//! chosen once per process and forceable per thread.
//!
//! ```
//! use kiln_tensor::{conv2d::reference::corr2d, Tensor};
//! // D2L 6.2.1: the cross-correlation of a 3×3 input with a 2×2 kernel.
//! let x = Tensor::<f32>::arange(9).reshape([3, 3])?;
//! let k = Tensor::<f32>::arange(4).reshape([2, 2])?;
//! assert_eq!(corr2d(&x, &k)?.data(), &[19.0, 25.0, 37.0, 43.0]);
//! # Ok::<(), kiln_tensor::TensorError>(())
//! ```

#![warn(missing_docs)]

pub mod activation;
pub mod batch_norm;
pub mod conv2d;
pub mod elementwise;
pub mod error;
pub mod float;
pub mod kernels;
pub mod layout;
pub mod matmul;
pub mod parallel;
pub mod pool2d;
mod recycle;
pub mod reduce;
mod scratch;
pub mod shape;
pub mod simd;
pub mod softmax;
pub mod tensor;
pub mod unary;
pub mod window;

pub use activation::Activation;
pub use conv2d::{Conv2dParams, ConvGeometry};
pub use error::{Result, TensorError};
pub use float::{DType, Float};
pub use pool2d::{Pool2dParams, PoolGeometry};
pub use shape::{Hw, Shape};
pub use tensor::Tensor;

/// The `rand` crate this layer draws random tensors with, so callers name the same
/// `Rng` and `SeedableRng` traits (`kiln_tensor::rand::rngs::StdRng`).
pub use rand;
