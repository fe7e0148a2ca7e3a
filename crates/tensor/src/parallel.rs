//! Threads for the kernels. Work is split into fixed partitions that do not depend on the
//! number of threads, and partial results are combined in partition order, so results are
//! bit-identical whether one thread runs or many.

use crate::error::{Result, TensorError};
use crate::float::Float;
use std::mem::MaybeUninit;

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

/// Elements of work below which a job runs on the calling thread: splitting it would cost
/// more than it saves.
const MIN_PARALLEL_WORK: usize = 1 << 15;

thread_local! {
    /// Set while [`serial`] runs: the kernels stay on the calling thread.
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every kernel it calls on the calling thread, whatever the pool's size:
/// for callers that already keep each thread busy with work of its own (data parallelism
/// over replicas), where splitting each kernel again would only add wake-ups.
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SERIAL.with(|s| s.replace(true)));
    f()
}

/// True when a job of `work` elements should be split across threads.
pub fn worth_splitting(work: usize) -> bool {
    work >= MIN_PARALLEL_WORK && num_threads() > 1 && !SERIAL.with(|s| s.get())
}

/// Images per task when a batch is split: a fixed partition of the batch, so that results
/// are the same for any number of threads.
pub const IMAGES_PER_TASK: usize = 8;

fn tasks(n: usize) -> impl rayon::iter::IndexedParallelIterator<Item = std::ops::Range<usize>> {
    use rayon::prelude::*;
    (0..n.div_ceil(IMAGES_PER_TASK))
        .into_par_iter()
        .map(move |t| t * IMAGES_PER_TASK..((t + 1) * IMAGES_PER_TASK).min(n))
}

/// Calls `f(images, out)` for each task of [`IMAGES_PER_TASK`] consecutive images of a
/// batch of `n`, where `out` is the task's part of `out_all` (`per_image` elements per
/// image). Tasks run on the thread pool when `work` (elements touched) is large enough.
pub fn for_each_image_task<T: Send>(
    n: usize,
    out_all: &mut [T],
    per_image: usize,
    work: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync + Send,
) {
    use rayon::prelude::*;
    debug_assert_eq!(out_all.len(), n * per_image);
    if per_image == 0 {
        return;
    }
    let chunk = IMAGES_PER_TASK * per_image;
    if n > IMAGES_PER_TASK && worth_splitting(work) {
        tasks(n)
            .zip(out_all.par_chunks_mut(chunk))
            .for_each(|(images, out)| f(images, out));
    } else {
        for (t, out) in out_all.chunks_mut(chunk).enumerate() {
            f(t * IMAGES_PER_TASK..((t + 1) * IMAGES_PER_TASK).min(n), out);
        }
    }
}

/// A new buffer of `n · per_image` values, filled by [`for_each_image_task`]: each task
/// zeroes its own part just before `f` writes it, on its own thread and while that part
/// is in its cache, instead of one thread zeroing the whole buffer first.
pub fn collect_image_tasks<T: Float>(
    n: usize,
    per_image: usize,
    work: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync + Send,
) -> Vec<T> {
    let init_then = |images: std::ops::Range<usize>, part: &mut [MaybeUninit<T>]| {
        part.fill(MaybeUninit::new(T::ZERO));
        // SAFETY: every element of `part` was just initialized.
        let part = unsafe { &mut *(part as *mut [MaybeUninit<T>] as *mut [T]) };
        f(images, part);
    };
    // SAFETY: `init_then` initializes every element of each part before anything else.
    unsafe { fill_image_tasks(n, per_image, work, init_then) }
}

/// [`collect_image_tasks`] for a kernel that writes every element of its part, which it
/// receives uninitialized: nothing is zeroed.
///
/// # Safety
/// `f` must initialize every element of the part it is given.
pub unsafe fn fill_image_tasks<T: Float>(
    n: usize,
    per_image: usize,
    work: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [MaybeUninit<T>]) + Sync + Send,
) -> Vec<T> {
    let len = n * per_image;
    // a buffer the last step gave back, if one fits: no fresh pages to fault in
    let mut out: Vec<T> = crate::recycle::with_capacity(len);
    for_each_image_task(n, &mut out.spare_capacity_mut()[..len], per_image, work, f);
    // SAFETY: the tasks cover all `len` elements (chunks of IMAGES_PER_TASK·per_image
    // over n images), and the caller guarantees each initialized its chunk.
    unsafe { out.set_len(len) };
    out
}

/// `f(images)` for each task of [`IMAGES_PER_TASK`] consecutive images of a batch of `n`,
/// results in task order (for reductions that must not depend on the thread count).
pub fn map_image_tasks<R: Send>(
    n: usize,
    work: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync + Send,
) -> Vec<R> {
    use rayon::prelude::*;
    if n > IMAGES_PER_TASK && worth_splitting(work) {
        tasks(n).map(f).collect()
    } else {
        (0..n.div_ceil(IMAGES_PER_TASK))
            .map(|t| f(t * IMAGES_PER_TASK..((t + 1) * IMAGES_PER_TASK).min(n)))
            .collect()
    }
}

/// Runs `f` with the kernels on a pool of `n` threads of its own (the global setting is
/// untouched): how a test compares one thread with several in one process.
pub fn with_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build()
        .map_err(|e| {
            TensorError::invalid("with_threads", format!("could not start {n} threads: {e}"))
        })?;
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_keeps_kernels_on_the_calling_thread_and_restores() {
        with_threads(2, || {
            let big = MIN_PARALLEL_WORK * 4;
            assert!(worth_splitting(big));
            serial(|| {
                assert!(!worth_splitting(big));
                serial(|| assert!(!worth_splitting(big)));
                assert!(
                    !worth_splitting(big),
                    "an inner serial must not end the outer one"
                );
            });
            assert!(worth_splitting(big));
            // a panic inside serial restores the setting too
            let _ = std::panic::catch_unwind(|| serial(|| panic!("inside")));
            assert!(worth_splitting(big));
        })
        .unwrap();
    }
}
