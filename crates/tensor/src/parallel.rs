//! Threads for the kernels. Work is split into fixed partitions that do not depend on the
//! number of threads, and partial results are combined in partition order, so results are
//! bit-identical whether one thread runs or many.

use crate::error::{Result, TensorError};

/// Sets the number of threads the kernels use, for the whole process. Call it once, before
/// the first kernel runs; an error if the thread pool already started.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(TensorError::invalid(
            "set_num_threads",
            "the number of threads must be ≥ 1",
        ));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| {
            TensorError::invalid(
                "set_num_threads",
                format!("the thread pool already started: {e}"),
            )
        })
}

/// The number of threads the kernels use.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}
