//! How MXNet's metrics add up a batch, in the batch's own precision: NumPy's pairwise sum
//! (for `update`s that work on `asnumpy()` arrays) and the NDArray's Kahan-compensated sum
//! (for those that stay in NDArrays).

use kiln_tensor::Float;

/// NumPy's `add.reduce` over a contiguous array (`pairwise_sum` in
/// numpy/core/src/umath/loops_utils.h.src): fewer than 8 elements are added in order;
/// up to 128 go to eight interleaved accumulators, combined as
/// ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), with the remainder added in order;
/// longer arrays are split at n/2 rounded down to a multiple of 8 and each half summed
/// so. (NumPy feeds its inner loop in buffers of 8192 elements only when it must cast;
/// a batch of one dtype is summed whole.)
pub(crate) fn numpy_sum<T: Float>(a: &[T]) -> T {
    let n = a.len();
    if n < 8 {
        a.iter().fold(T::ZERO, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [T::ZERO; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[whole..].iter().fold(res, |s, &v| s + v)
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&a[..half]) + numpy_sum(&a[half..])
    }
}

/// NumPy's `mean` of a float array: its pairwise sum divided by the count, rounded to the
/// array's precision (in f64 and then rounded, which for one division is the correctly
/// rounded f32 quotient).
pub(crate) fn numpy_mean<T: Float>(a: &[T]) -> T {
    T::from_f64(numpy_sum(a).to_f64() / a.len() as f64)
}

/// MXNet's `ndarray.sum` of every element: `mshadow::red::sum`'s Kahan form from 0, in
/// order (src/operator/mshadow_op.h).
pub(crate) fn mxnet_sum<T: Float>(a: &[T]) -> T {
    let (mut sum, mut residual) = (T::ZERO, T::ZERO);
    for &v in a {
        let y = v - residual;
        let t = sum + y;
        residual = (t - sum) - y;
        sum = t;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_follows_numpys_blocks() {
        // f32, 1e8 then fifteen 4s (the ulp at 1e8 is 8, and 1e8 + 4 ties to the even
        // 1e8): in order the sum never moves from 1e8. NumPy's accumulators hold
        // r0 = 1e8 + 4 = 1e8 and r1..r7 = 4 + 4 = 8, combined
        // ((1e8 + 8) + 16) + (16 + 16) = 1e8 + 56 (true sum 1e8 + 60).
        let mut a = vec![4.0f32; 16];
        a[0] = 1e8;
        assert_eq!(a.iter().fold(0.0f32, |s, &v| s + v), 1e8);
        assert_eq!(numpy_sum(&a), 1e8 + 56.0);
        // short arrays in order; long ones split at a multiple of 8: 0 + 1 + … + 299
        assert_eq!(numpy_sum(&[1.0f64, 2.0, 3.0]), 6.0);
        let long: Vec<f64> = (0..300).map(f64::from).collect();
        assert_eq!(numpy_sum(&long), 299.0 * 300.0 / 2.0);
        assert_eq!(numpy_mean(&[1.0f32, 2.0]), 1.5);
    }

    #[test]
    fn kahan_sum_keeps_the_small_parts() {
        // 1 then ten 1e-8 (f32): a plain sum stays 1, MXNet's ends at 1.00000012
        let mut a = vec![1e-8f32; 11];
        a[0] = 1.0;
        assert_eq!(a.iter().fold(0.0f32, |s, &v| s + v), 1.0);
        assert_eq!(mxnet_sum(&a), 1.000_000_1);
    }
}
