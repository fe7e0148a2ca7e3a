//! A per-thread buffer for intermediate results that a pass writes, reads and drops, such
//! as the convolution output a fused pooling reduces: kept from call to call instead of
//! allocated and freed each time (a 14 KB allocation took glibc through its slow path
//! and a fastbin consolidation on every LeNet forward).

use crate::float::Float;
use std::cell::RefCell;
use std::mem::MaybeUninit;

thread_local! {
    /// 8-byte units, the alignment of every [`Float`].
    static BUFFER: RefCell<Vec<MaybeUninit<u64>>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with `len` uninitialized values: this thread's buffer, or a fresh one if the
/// buffer is in use (a nested call, or a task stolen while waiting inside `f`).
pub(crate) fn with_scratch<T: Float, R>(
    len: usize,
    f: impl FnOnce(&mut [MaybeUninit<T>]) -> R,
) -> R {
    const { assert!(std::mem::align_of::<T>() <= 8 && 8 % std::mem::size_of::<T>() == 0) };
    let units = (len * std::mem::size_of::<T>()).div_ceil(8);
    let view = |buf: &mut Vec<MaybeUninit<u64>>| {
        if buf.len() < units {
            buf.resize(units, MaybeUninit::uninit());
        }
        // SAFETY: the buffer holds at least len·size_of::<T>() bytes, aligned to 8 ≥
        // align_of::<T>(); MaybeUninit<T> may hold any bytes.
        unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<MaybeUninit<T>>(), len) }
    };
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(view(&mut buf)),
        Err(_) => f(view(&mut Vec::new())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_calls_get_separate_buffers() {
        with_scratch::<f32, _>(5, |outer| {
            outer.iter_mut().for_each(|v| *v = MaybeUninit::new(1.0));
            with_scratch::<f64, _>(3, |inner| {
                assert_eq!(inner.len(), 3);
                inner.iter_mut().for_each(|v| *v = MaybeUninit::new(2.0));
            });
            // SAFETY: written above.
            assert!(outer.iter().all(|v| unsafe { v.assume_init() } == 1.0));
        });
        // the buffer is kept and grows as needed
        with_scratch::<f64, _>(1000, |b| assert_eq!(b.len(), 1000));
    }
}
