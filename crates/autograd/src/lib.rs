//! # kiln-autograd
//!
//! Reverse-mode automatic differentiation on a tape. While a [`Tape`] records, every op on
//! a value that depends on a [`Leaf`] appends one entry holding what its backward rule
//! needs; [`Var::backward`] walks the entries once in reverse, writes each leaf's
//! gradient, and releases the tape. Every op's gradient is checked against finite
//! differences by [`gradcheck()`], which is public.
//!
//! ```
//! use kiln_autograd::{Leaf, Tape};
//! use kiln_tensor::Tensor;
//! let w = Leaf::new(Tensor::<f64>::from_f64s(&[2.0, -1.0], [2])?);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_f64s(&[3.0, 4.0], [2])?);
//! let loss = tape.leaf(&w).mul(&x)?.sum()?.square()?; // (w · x)²
//! loss.backward()?;
//! // d/dw (w·x)² = 2 (w·x) x = 2 · 2 · [3, 4]
//! assert_eq!(w.grad().unwrap().data(), &[12.0, 16.0]);
//! # Ok::<(), kiln_autograd::AutogradError>(())
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod gradcheck;
pub mod leaf;
pub mod observe;
mod ops;
pub mod random;
pub mod tape;
pub mod var;

pub use error::{AutogradError, Result};
pub use gradcheck::{gradcheck, gradcheck_with, GradcheckOptions, GradcheckReport};
pub use leaf::{GradReq, Leaf};
pub use ops::BatchNormOptions;
pub use random::RandomKey;
pub use tape::{Backward, Grads, Tape};
pub use var::Var;
