//! [`NnError`]: the layers below carried up unchanged, wrapped with the name of the block
//! that raised them (`conv0: conv2d: input has 3 channels, …`), plus the nn layer's own:
//! initialization, training, checkpoint and data-file errors.

use kiln_autograd::AutogradError;
use kiln_tensor::TensorError;
use std::fmt;
use std::path::PathBuf;

/// The result type of the nn layer.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

/// Why a block, a trainer, a checkpoint or a data file refused.
#[derive(Debug)]
pub enum NnError {
    /// An op refused its input (the autograd or tensor layer's message, unchanged).
    Autograd(AutogradError),
    /// An error raised inside a named block.
    Layer {
        /// The block's name, e.g. `conv0`.
        layer: String,
        /// What went wrong there.
        source: Box<NnError>,
    },
    /// A refused argument or state, with the thing that refused it (`Trainer.step`,
    /// `Xavier`, `conv0_weight`, …).
    Invalid {
        /// Who refused.
        context: String,
        /// What was wrong, with the values involved.
        message: String,
    },
    /// Reading or writing a file failed.
    Io {
        /// What was being done: `reading`, `writing`, `renaming onto`, ….
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A checkpoint file is not one this network can load.
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A data file (IDX) is malformed, truncated, or disagrees with its partner.
    Data {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A layer was given a NaN or ±∞ (its input must be finite).
    NonFinite {
        /// The op that refused it.
        op: &'static str,
        /// Where the first one is.
        index: Vec<usize>,
        /// Its value.
        value: f64,
        /// The input's shape.
        shape: kiln_tensor::Shape,
    },
    /// Training produced a NaN or infinite value: the loss, or an activation on the way.
    Diverged {
        /// The 1-based step (batch) of the epoch at which it happened.
        step: usize,
        /// What was seen, e.g. "the loss is NaN".
        what: String,
    },
}

impl NnError {
    /// An [`NnError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        NnError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }

    /// An [`NnError::Io`]: `op` (`reading`, `writing`, …) on `path` failed with `source`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NnError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Wraps `self` as raised inside the block named `layer`.
    pub fn in_layer(self, layer: impl Into<String>) -> Self {
        NnError::Layer {
            layer: layer.into(),
            source: Box::new(self),
        }
    }

    /// The innermost error, below every layer wrapper.
    pub fn root(&self) -> &NnError {
        match self {
            NnError::Layer { source, .. } => source.root(),
            other => other,
        }
    }
}

impl From<AutogradError> for NnError {
    fn from(e: AutogradError) -> Self {
        NnError::Autograd(e)
    }
}

impl From<TensorError> for NnError {
    fn from(e: TensorError) -> Self {
        NnError::Autograd(AutogradError::Tensor(e))
    }
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NnError::Autograd(e) => write!(f, "{e}"),
            NnError::Layer { layer, source } => write!(f, "{layer}: {source}"),
            NnError::Invalid { context, message } => write!(f, "{context}: {message}"),
            NnError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            NnError::Checkpoint { path, message } | NnError::Data { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
            NnError::NonFinite { op, index, value, shape } => write!(
                f,
                "{op}: the input holds {value} at {index:?} (input shape {shape}); only finite values can be used"
            ),
            NnError::Diverged { step, what } => write!(
                f,
                "training diverged at step {step}: {what}; no weight was updated from it, try a lower learning rate"
            ),
        }
    }
}

impl std::error::Error for NnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NnError::Autograd(e) => Some(e),
            NnError::Layer { source, .. } => Some(source.as_ref()),
            NnError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
