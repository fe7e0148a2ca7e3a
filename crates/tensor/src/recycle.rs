//! Large buffers kept from one training step to the next. A step frees its large
//! gradients at the end and allocates the same sizes again at the next step; glibc hands
//! such memory back to the system in between, so every step paid a page fault for each
//! 4 KB of them again (about 200 faults, 2-3% of a LeNet step at 32 images a shard).
//! Like the pooled storage of MXNet, but only for buffers that their last user gives
//! back by [`Tensor::recycle`](crate::Tensor::recycle): a kernel output takes one of
//! this thread's kept buffers when one fits.

use crate::float::{DType, Float};
use std::any::Any;
use std::cell::RefCell;
use std::thread::LocalKey;

thread_local! {
    static KEPT_F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static KEPT_F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// `f` on this thread's kept buffers of `T`, unless they are in use (a nested call).
fn with_kept<T: Float, R>(f: impl FnOnce(&mut Vec<Vec<T>>) -> R) -> Option<R> {
    fn run<U: 'static, T: 'static, R>(
        key: &'static LocalKey<RefCell<Vec<Vec<U>>>>,
        f: impl FnOnce(&mut Vec<Vec<T>>) -> R,
    ) -> Option<R> {
        key.with(|cell| {
            let mut kept = cell.try_borrow_mut().ok()?;
            let any: &mut dyn Any = &mut *kept;
            any.downcast_mut::<Vec<Vec<T>>>().map(f)
        })
    }
    match T::DTYPE {
        DType::F32 => run(&KEPT_F32, f),
        DType::F64 => run(&KEPT_F64, f),
    }
}

/// Buffers smaller than this are left to the allocator, which reuses them well.
const MIN_BYTES: usize = 64 * 1024;
/// Buffers kept per thread and element type (the largest ones).
const KEPT: usize = 8;
/// Bytes kept per thread and element type, at most.
const KEPT_BYTES: usize = 64 << 20;

/// An empty vector with room for `len` values: one of this thread's kept buffers whose
/// capacity is between `len` and `2·len` (the smallest such), else a new allocation.
pub(crate) fn with_capacity<T: Float>(len: usize) -> Vec<T> {
    if len * std::mem::size_of::<T>() >= MIN_BYTES {
        let kept = with_kept::<T, _>(|kept| {
            let (i, _) = kept
                .iter()
                .enumerate()
                .filter(|(_, b)| (len..=2 * len).contains(&b.capacity()))
                .min_by_key(|(_, b)| b.capacity())?;
            Some(kept.swap_remove(i))
        })
        .flatten();
        if let Some(mut buffer) = kept {
            buffer.clear();
            return buffer;
        }
    }
    Vec::with_capacity(len)
}

/// Keeps `buffer`'s memory for a later [`with_capacity`] on this thread, if it is large;
/// beyond [`KEPT`] buffers or [`KEPT_BYTES`] bytes the smallest are freed.
pub(crate) fn recycle<T: Float>(buffer: Vec<T>) {
    if buffer.capacity() * std::mem::size_of::<T>() < MIN_BYTES {
        return;
    }
    with_kept::<T, _>(|kept| {
        kept.push(buffer);
        let bytes = |kept: &Vec<Vec<T>>| -> usize {
            kept.iter().map(|b| b.capacity()).sum::<usize>() * std::mem::size_of::<T>()
        };
        while kept.len() > KEPT || bytes(kept) > KEPT_BYTES {
            let smallest = (0..kept.len()).min_by_key(|&i| kept[i].capacity());
            smallest.map(|i| kept.swap_remove(i));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_serves_the_next_request_of_a_similar_size() {
        let len = MIN_BYTES; // f32: 4× the threshold
        let buffer: Vec<f32> = vec![1.0; len];
        let address = buffer.as_ptr();
        recycle(buffer);
        // while the kept buffer lives no fresh allocation can share its address
        // too large a buffer for a small request, and a request larger than it: fresh
        let small = with_capacity::<f32>(len / 4);
        let large = with_capacity::<f32>(len + 1);
        assert!(small.as_ptr() != address && large.as_ptr() != address);
        // f64 buffers are kept apart
        let other = with_capacity::<f64>(len / 2);
        assert_ne!(other.as_ptr().cast(), address);
        let again = with_capacity::<f32>(len - 5);
        assert_eq!((again.as_ptr(), again.len()), (address, 0));
        // taken: not handed out twice
        let twice = with_capacity::<f32>(len - 5);
        assert_ne!(twice.as_ptr(), address);
    }

    #[test]
    fn small_buffers_are_not_kept_and_the_keep_is_bounded_in_count_and_bytes() {
        recycle(vec![0.0f32; 16]);
        with_kept::<f32, _>(|k| assert!(k.iter().all(|b| b.capacity() > 16))).unwrap();
        for i in 0..KEPT + 3 {
            recycle(vec![0.0f64; MIN_BYTES + i]);
        }
        with_kept::<f64, _>(|kept| {
            assert_eq!(kept.len(), KEPT);
            // the three smallest went
            assert!(kept.iter().all(|b| b.capacity() >= MIN_BYTES + 3));
        })
        .unwrap();
        // a large buffer makes room by freeing the smallest ones
        recycle(Vec::<f64>::with_capacity(KEPT_BYTES / 8 - MIN_BYTES));
        with_kept::<f64, _>(|kept| {
            let total: usize = kept.iter().map(|b| b.capacity() * 8).sum();
            assert!(total <= KEPT_BYTES, "{total} bytes kept");
            assert!(kept
                .iter()
                .any(|b| b.capacity() == KEPT_BYTES / 8 - MIN_BYTES));
        })
        .unwrap();
        // one beyond the whole budget is not kept
        recycle(Vec::<f64>::with_capacity(KEPT_BYTES / 8 + 1));
        with_kept::<f64, _>(|k| assert!(k.iter().all(|b| b.capacity() * 8 <= KEPT_BYTES))).unwrap();
    }
}
