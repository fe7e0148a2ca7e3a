//! The f32 kernels, each family written once over [`crate::simd::Simd`] and run at the
//! level [`crate::simd::level`] chooses: element-wise functions, the two small GEMMs, the
//! stride-1 lowerings, direct convolution, 2×2 max pooling and a byte-table lookup. Every
//! caller keeps a portable path (the level `scalar`, and every f64 call), and the tests
//! run both against the reference loops. Entry points take the level and panic on
//! `scalar`: choosing the portable path is the caller's selector's job.

pub(crate) mod conv;
pub(crate) mod conv_weight;
pub(crate) mod elementwise;
pub mod exp;
pub(crate) mod gather;
pub(crate) mod gemm;
pub(crate) mod gemm_nt;
pub(crate) mod lowering;
pub(crate) mod pool;

use crate::float::Float;
use crate::simd::{self, Level};
use std::any::TypeId;

/// True when the vector kernels run on this thread (the level is not `scalar`). The name
/// is older than the levels: it meant AVX-512 when that was the only vector level.
pub fn avx512() -> bool {
    simd::level().is_vector()
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

/// `dst[i] = table[src[i]]`: how image bytes become values (a table holds the
/// transform of each of the 256 byte values). For f32 at a vector level the lookups are
/// gathers where the instruction set has them (`kernels::gather`).
///
/// # Panics
/// If `dst` and `src` differ in length.
pub fn map_bytes<T: Float>(table: &[T; 256], src: &[u8], dst: &mut [T]) {
    assert_eq!(src.len(), dst.len(), "map_bytes: lengths differ");
    let level = simd::level();
    if let (true, Some(table_f), Some(dst_f)) = (level.is_vector(), as_f32(table), as_f32_mut(dst))
    {
        let table_f: &[f32; 256] = table_f.try_into().expect("256 entries");
        // SAFETY: an initialized slice seen as maybe-uninitialized; the kernel only
        // stores valid values into it.
        let dst_f = unsafe { &mut *(dst_f as *mut [f32] as *mut [std::mem::MaybeUninit<f32>]) };
        gather::lookup_bytes(level, table_f, src, dst_f);
        return;
    }
    for (d, &b) in dst.iter_mut().zip(src) {
        *d = table[usize::from(b)];
    }
}

/// Asks the CPU to bring `bytes` into cache (a hint; nothing happens on other CPUs):
/// for data read next from an unpredictable place, such as the next image of a shuffled
/// epoch, whose cache misses the hardware prefetcher cannot foresee.
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is a hint that never faults; the address is inside `bytes`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    let _ = bytes;
}

/// `Σ x` for an f32 slice at `level` (vectorised unless it is `scalar`), or `None` for
/// another type.
pub fn sum_f32<T: Float>(level: Level, x: &[T]) -> Option<f32> {
    let x = as_f32(x)?;
    if level.is_vector() {
        return Some(elementwise::sum(level, x));
    }
    Some(x.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_become_their_table_values_at_every_length_and_level() {
        for level in Level::supported() {
            simd::with_level(level, bytes_become_their_table_values).unwrap();
        }
    }

    fn bytes_become_their_table_values() {
        let table: [f32; 256] = std::array::from_fn(|b| (b as f32 - 7.5) / 3.25);
        let table64: [f64; 256] = std::array::from_fn(|b| (b as f64 - 7.5) / 3.25);
        let src: Vec<u8> = (0..300u32).map(|i| (i * 97 % 256) as u8).collect();
        for len in [0, 1, 15, 16, 17, 255, 256, 300] {
            let mut out = vec![0.0f32; len];
            map_bytes(&table, &src[..len], &mut out);
            let expect: Vec<f32> = src[..len].iter().map(|&b| table[usize::from(b)]).collect();
            assert_eq!(out, expect, "f32, {len} bytes");
            let mut out64 = vec![0.0f64; len];
            map_bytes(&table64, &src[..len], &mut out64);
            assert!(out64
                .iter()
                .zip(&src)
                .all(|(&v, &b)| v == table64[usize::from(b)]));
        }
    }
}
