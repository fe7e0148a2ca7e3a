//! [`DistError`]: the nn layer's errors carried up unchanged, plus the dist layer's own: a
//! communicator that failed or timed out, another rank that failed, and ranks that do not
//! run the same configuration.

use kiln_nn::NnError;
use std::fmt;

/// The result type of the dist layer.
pub type Result<T, E = DistError> = std::result::Result<T, E>;

/// Why a distributed run refused or stopped.
#[derive(Debug)]
pub enum DistError {
    /// This rank's own training, data or checkpoint error (the nn layer's, unchanged).
    Nn(NnError),
    /// A collective operation failed on this rank: the MPI library reported an error, a
    /// rank left, or the other ranks did not answer in time.
    Comm {
        /// The operation (`all_to_all`, `broadcast`, …).
        op: &'static str,
        /// What happened, naming the rank concerned where it is known.
        message: String,
    },
    /// Another rank failed; every rank stops with this error, in step.
    Peer {
        /// The rank that failed.
        rank: usize,
        /// Its error, as it reported it.
        message: String,
    },
    /// The ranks were started with different configurations (networks, batch sizes,
    /// seeds, shard counts, …).
    Mismatch {
        /// The setting that differs.
        what: String,
        /// Its value on rank 0.
        expected: String,
        /// The first rank whose value differs.
        rank: usize,
        /// Its value there.
        found: String,
    },
    /// A refused argument, with who refused it.
    Invalid {
        /// Who refused (`DistDataParallel`, `all_to_all`, …).
        context: String,
        /// What was wrong, with the values involved.
        message: String,
    },
}

impl DistError {
    /// A [`DistError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        DistError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }

    /// A [`DistError::Comm`].
    pub fn comm(op: &'static str, message: impl Into<String>) -> Self {
        DistError::Comm {
            op,
            message: message.into(),
        }
    }
}

impl From<NnError> for DistError {
    fn from(e: NnError) -> Self {
        DistError::Nn(e)
    }
}

impl From<kiln_tensor::TensorError> for DistError {
    fn from(e: kiln_tensor::TensorError) -> Self {
        DistError::Nn(e.into())
    }
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistError::Nn(e) => write!(f, "{e}"),
            DistError::Comm { op, message } => write!(f, "{op}: {message}"),
            DistError::Peer { rank, message } => write!(f, "rank {rank} failed: {message}"),
            DistError::Mismatch {
                what,
                expected,
                rank,
                found,
            } => write!(
                f,
                "the ranks run different configurations: {what} is {expected} on rank 0 but \
                 {found} on rank {rank}; start every rank with the same settings"
            ),
            DistError::Invalid { context, message } => write!(f, "{context}: {message}"),
        }
    }
}

impl std::error::Error for DistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DistError::Nn(e) => Some(e),
            _ => None,
        }
    }
}
