//! [`TensorError`]: every way a tensor op can refuse its input. Each variant names the op
//! and carries the shapes or values involved, so the message alone says what went wrong.

use crate::shape::Shape;
use std::fmt;

/// The result type of every fallible function of the tensor layer.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// A refused input: the op that refused it and why, with the shapes involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorError {
    /// Two shapes that must broadcast together do not.
    Broadcast {
        /// The op, e.g. `"add"`.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Shape,
        /// Shape of the right operand.
        rhs: Shape,
    },
    /// A buffer or a new shape does not hold the number of elements the shape needs.
    ElementCount {
        /// The op, e.g. `"reshape"`.
        op: &'static str,
        /// Elements the shape needs.
        expected: usize,
        /// Elements given.
        got: usize,
        /// The shape asked for.
        shape: Shape,
    },
    /// An axis index is out of range for a tensor's rank.
    Axis {
        /// The op, e.g. `"sum"`.
        op: &'static str,
        /// The axis given.
        axis: usize,
        /// The shape it was applied to.
        shape: Shape,
    },
    /// A shape no tensor can have: the product of its nonzero dimensions exceeds
    /// [`crate::shape::MAX_NUMEL`] (where 64-bit arithmetic would have wrapped around).
    TooLarge {
        /// The op that would have made it, e.g. `"zeros"`.
        op: &'static str,
        /// The shape.
        shape: Shape,
    },
    /// The memory for a tensor of a possible shape could not be had (a fallible
    /// constructor such as [`crate::Tensor::try_zeros`]).
    Alloc {
        /// The op, e.g. `"zeros"`.
        op: &'static str,
        /// The shape.
        shape: Shape,
        /// The bytes asked for.
        bytes: usize,
    },
    /// Shapes that fit no rule of the op, or an option it cannot take (zero stride, a
    /// window larger than the padded input, mismatched channels, …); the message says which.
    Invalid {
        /// The op, e.g. `"conv2d"`.
        op: &'static str,
        /// What was wrong, with the shapes and values involved.
        message: String,
    },
}

impl TensorError {
    /// An [`TensorError::Invalid`] error for `op` with a message.
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        TensorError::Invalid {
            op,
            message: message.into(),
        }
    }

    /// The name of the op that refused its input.
    pub fn op(&self) -> &'static str {
        match self {
            TensorError::Broadcast { op, .. }
            | TensorError::ElementCount { op, .. }
            | TensorError::Axis { op, .. }
            | TensorError::TooLarge { op, .. }
            | TensorError::Alloc { op, .. }
            | TensorError::Invalid { op, .. } => op,
        }
    }
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::Broadcast { op, lhs, rhs } => {
                write!(f, "{op}: shapes {lhs} and {rhs} do not broadcast together")
            }
            TensorError::ElementCount {
                op,
                expected,
                got,
                shape,
            } => write!(
                f,
                "{op}: shape {shape} holds {expected} elements but {got} were given"
            ),
            TensorError::Axis { op, axis, shape } => write!(
                f,
                "{op}: axis {axis} is out of range for shape {shape} (rank {})",
                shape.rank()
            ),
            TensorError::TooLarge { op, shape } => {
                // in 128 bits, where a product of 64-bit dimensions of rank ≤ 2 always fits
                let product = shape
                    .iter()
                    .try_fold(1u128, |n, &d| n.checked_mul(d.max(1) as u128));
                let product = product.map_or("more than 2^128".to_string(), |n| n.to_string());
                write!(
                    f,
                    "{op}: shape {shape} has more elements than a tensor can hold (its nonzero \
                     dimensions multiply to {product}, the limit is {})",
                    crate::shape::MAX_NUMEL
                )
            }
            TensorError::Alloc { op, shape, bytes } => write!(
                f,
                "{op}: could not allocate {bytes} bytes for a tensor of shape {shape}"
            ),
            TensorError::Invalid { op, message } => write!(f, "{op}: {message}"),
        }
    }
}

impl std::error::Error for TensorError {}
