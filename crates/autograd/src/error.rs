//! [`AutogradError`]: the tensor layer's errors carried up unchanged, plus the ways a
//! graph can be misused (backward twice, backward on a value of no tape or an unrecorded
//! one, two tapes mixed).

use kiln_tensor::{Shape, TensorError};
use std::fmt;

/// The result type of the autograd layer.
pub type Result<T, E = AutogradError> = std::result::Result<T, E>;

/// Why an op or a backward pass was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum AutogradError {
    /// A tensor op refused its input; the message is the tensor layer's, unchanged.
    Tensor(TensorError),
    /// `backward` on a value that belongs to no tape: it was computed from
    /// [`Var::constant`](crate::Var::constant) values, in predict mode, so nothing was
    /// recorded.
    NoTape,
    /// `backward` on a value of a tape that recorded nothing for it: it depends on no
    /// leaf the tape recorded (the tape was paused, its leaves are frozen, or its inputs
    /// are all constants).
    NotRecorded,
    /// `backward` after the tape was released by an earlier backward (without
    /// `retain_graph`), or an op on a value from a released graph.
    Released {
        /// What was attempted.
        op: &'static str,
    },
    /// An op was given values recorded on two different tapes.
    MixedTapes {
        /// The op.
        op: &'static str,
    },
    /// `backward` without a head gradient on a value with more than one element, or with
    /// a head gradient of the wrong shape.
    HeadGradient {
        /// Shape of the value backward was called on.
        value: Shape,
        /// Shape of the head gradient given, if one was.
        head: Option<Shape>,
    },
    /// An input the op cannot take that is not a shape problem (e.g. a label out of range).
    Invalid {
        /// The op.
        op: &'static str,
        /// What was wrong, with the values involved.
        message: String,
    },
}

impl AutogradError {
    /// An [`AutogradError::Invalid`] for `op`.
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        AutogradError::Invalid {
            op,
            message: message.into(),
        }
    }
}

impl From<TensorError> for AutogradError {
    fn from(e: TensorError) -> Self {
        AutogradError::Tensor(e)
    }
}

impl fmt::Display for AutogradError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutogradError::Tensor(e) => write!(f, "{e}"),
            AutogradError::NoTape => write!(
                f,
                "backward: this value is on no tape, so nothing was recorded for it: it was \
                 computed from `Var::constant` values, in predict mode; to train, record on a \
                 tape: `let tape = Tape::new(); let y = net.forward(&tape.constant(x))?;`"
            ),
            AutogradError::NotRecorded => write!(
                f,
                "backward: this value depends on nothing its tape recorded (was the tape \
                 paused, are its leaves frozen with grad_req null, or are its inputs all \
                 `tape.constant(..)`?); compute it from `tape.leaf(..)` values, or from a \
                 network's parameters, while the tape is recording"
            ),
            AutogradError::Released { op } => write!(
                f,
                "{op}: the graph was already released by an earlier backward; record the \
                 computation again, or pass retain_graph = true to walk it twice"
            ),
            AutogradError::MixedTapes { op } => {
                write!(f, "{op}: inputs were recorded on two different tapes")
            }
            AutogradError::HeadGradient { value, head: None } => write!(
                f,
                "backward: the value has shape {value}, not one element; pass a head gradient \
                 of that shape (Gluon's head_grads)"
            ),
            AutogradError::HeadGradient {
                value,
                head: Some(head),
            } => write!(
                f,
                "backward: head gradient has shape {head} but the value has shape {value}"
            ),
            AutogradError::Invalid { op, message } => write!(f, "{op}: {message}"),
        }
    }
}

impl std::error::Error for AutogradError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AutogradError::Tensor(e) => Some(e),
            _ => None,
        }
    }
}
