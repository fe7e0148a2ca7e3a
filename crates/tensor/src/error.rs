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
            TensorError::Invalid { op, message } => write!(f, "{op}: {message}"),
        }
    }
}

impl std::error::Error for TensorError {}
