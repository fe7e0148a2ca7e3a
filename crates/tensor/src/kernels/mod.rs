//! Hand-written f32 kernels for x86-64 CPUs with AVX-512, chosen at run time. Every caller
//! keeps a portable path for other element types and CPUs, and the tests compare both.

#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod avx512_conv;
#[cfg(target_arch = "x86_64")]
pub mod avx512_pool;
pub mod exp;

use crate::float::Float;
use std::any::TypeId;

/// True when the AVX-512 kernels can run on this CPU (and `KILN_NO_SIMD` is not set, which
/// forces the portable paths, for testing them).
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| {
            std::env::var_os("KILN_NO_SIMD").is_none()
                && std::arch::is_x86_feature_detected!("avx512f")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The slice as `&[f32]` when `T` is `f32`.
pub fn as_f32<T: Float>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32, so the layouts are identical.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) })
}

/// The slice as `&mut [f32]` when `T` is `f32`.
pub fn as_f32_mut<T: Float>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: T is f32, so the layouts are identical; the borrow is carried over.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) })
}

/// An uninitialized slice as one of `f32` when `T` is `f32`.
pub fn as_f32_uninit<T: Float>(
    s: &mut [std::mem::MaybeUninit<T>],
) -> Option<&mut [std::mem::MaybeUninit<f32>]> {
    // SAFETY: T is f32, so MaybeUninit<T> and MaybeUninit<f32> have identical layouts.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) })
}

/// A `Vec<f32>` as a `Vec<T>` when `T` is `f32` (no copy).
pub fn vec_from_f32<T: Float>(v: Vec<f32>) -> Option<Vec<T>> {
    let any: Box<dyn std::any::Any> = Box::new(v);
    any.downcast::<Vec<T>>().ok().map(|b| *b)
}

/// `Σ x` for an f32 slice (vectorised when the CPU allows), or `None` for another type.
pub fn sum_f32<T: Float>(x: &[T]) -> Option<f32> {
    let x = as_f32(x)?;
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU has AVX-512F.
        return Some(unsafe { avx512_pool::sum(x) });
    }
    Some(x.iter().sum())
}
