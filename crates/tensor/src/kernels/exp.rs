//! e^x and the logistic function for f32 slices, vectorised: a degree-6 polynomial on
//! [−ln2/2, ln2/2] after range reduction (Cephes' `expf`, within 2 ulp of the true value).
//! The portable functions below are the twins of the vector kernels of
//! `kernels::elementwise`, which compute the same formula.

/// Cephes' coefficients of (e^r − 1 − r) / r² on [−ln2/2, ln2/2], highest degree first.
pub(crate) const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
/// ln 2 split in two so that n·LN2_HI is exact for the n that occur.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// Inputs are clamped here: beyond, e^x overflows f32 (or underflows to 0).
pub(crate) const EXP_MAX: f32 = 88.376_26;

/// e^x with the polynomial, one value at a time.
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-EXP_MAX, EXP_MAX);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = EXP_POLY.iter().fold(0.0, |acc, &c| acc * r + c);
    let y = p * r * r + r + 1.0;
    // 2^n for |n| ≤ 128: in two halves so neither overflows the exponent field
    let half = (n * 0.5).floor();
    y * f32::from_bits(((half as i32 + 127) as u32) << 23)
        * f32::from_bits((((n - half) as i32 + 127) as u32) << 23)
}

/// The logistic function 1 / (1 + e^−x) with [`exp_f32`].
#[inline]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `dst[i] = sigmoid(src[i])`, vectorised at the thread's level.
///
/// # Panics
/// If the slices differ in length.
pub fn sigmoid_slice(src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "sigmoid_slice: lengths differ");
    let level = crate::simd::level();
    if level.is_vector() {
        return super::elementwise::sigmoid(level, src, dst);
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = sigmoid_f32(s);
    }
}

/// `x[i] = sigmoid(x[i])`, vectorised at the thread's level.
pub fn sigmoid_in_place(x: &mut [f32]) {
    let level = crate::simd::level();
    if level.is_vector() {
        return super::elementwise::sigmoid_in_place(level, x);
    }
    x.iter_mut().for_each(|v| *v = sigmoid_f32(*v));
}

/// `dst[i] = e^src[i]`, vectorised at the thread's level.
///
/// # Panics
/// If the slices differ in length.
pub fn exp_slice(src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "exp_slice: lengths differ");
    let level = crate::simd::level();
    if level.is_vector() {
        return super::elementwise::exp(level, src, dst);
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = exp_f32(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    fn every_level(f: fn()) {
        for level in crate::simd::Level::supported() {
            crate::simd::with_level(level, f).unwrap();
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        every_level(exp_within_two_ulp);
    }

    #[test]
    fn sigmoid_is_within_three_ulp_of_the_exact_value() {
        every_level(sigmoid_within_three_ulp);
    }

    #[test]
    fn sigmoid_saturates_cleanly() {
        every_level(sigmoid_saturates);
    }

    fn exp_within_two_ulp() {
        let xs: Vec<f32> = (0..20001)
            .map(|i| -87.0 + 175.0 * i as f32 / 20000.0)
            .collect();
        let mut fast = vec![0.0; xs.len()];
        exp_slice(&xs, &mut fast);
        for (&x, &y) in xs.iter().zip(&fast) {
            let exact = (x as f64).exp() as f32;
            assert!(ulps(y, exact) <= 2, "exp({x}) = {y}, libm {exact}");
            assert!(
                ulps(exp_f32(x), exact) <= 2,
                "portable exp({x}) = {}, libm {exact}",
                exp_f32(x)
            );
        }
    }

    fn sigmoid_within_three_ulp() {
        // the vector kernel divides by a reciprocal estimate and a Newton step
        let xs: Vec<f32> = (0..40001)
            .map(|i| -87.0 + 174.0 * i as f32 / 40000.0)
            .collect();
        let mut fast = vec![0.0; xs.len()];
        sigmoid_slice(&xs, &mut fast);
        let mut worst = 0;
        for (&x, &y) in xs.iter().zip(&fast) {
            let exact = (1.0 / (1.0 + (-(x as f64)).exp())) as f32;
            worst = worst.max(ulps(y, exact));
            assert!(ulps(sigmoid_f32(x), exact) <= 3, "portable sigmoid({x})");
        }
        assert!(worst <= 3, "vector sigmoid is {worst} ulp off");
    }

    fn sigmoid_saturates() {
        let xs = [
            -1000.0,
            -90.0,
            -10.0,
            -1.0,
            0.0,
            1.0,
            10.0,
            90.0,
            1000.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut ys = [0.0; 11];
        sigmoid_slice(&xs, &mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                (y as f64 - exact).abs() <= 2e-7 * exact.max(1e-30) + 1e-38,
                "sigmoid({x}) = {y}, exact {exact}"
            );
            assert!((0.0..=1.0).contains(&y));
        }
        assert_eq!(ys[4], 0.5);
    }
}
