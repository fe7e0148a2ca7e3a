//! The element types kiln computes in: `f32` for training, `f64` for gradient checks.
//! [`Float`] is the one trait that kernels are generic over.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// The element type of a tensor, as a value (for checkpoints and error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// The name NumPy and MXNet use: `float32` or `float64`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

impl Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A floating-point element type: implemented for `f32` and `f64` only.
pub trait Float:
    Copy
    + Default
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// +∞.
    const INFINITY: Self;
    /// −∞ (the padding value of max pooling).
    const NEG_INFINITY: Self;
    /// This type as a [`DType`] value.
    const DTYPE: DType;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Converts a count, exactly for counts below 2^24 (f32) or 2^53 (f64).
    fn from_usize(n: usize) -> Self;
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + self), accurate near 0.
    fn ln_1p(self) -> Self;
    /// e^self − 1, accurate near 0.
    fn exp_m1(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// self^p.
    fn powf(self, p: Self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The error function erf(self) = 2/√π ∫₀^self e^(−t²) dt (GELU's), from the `libm`
    /// crate (musl's `erf`/`erff`, within about 1 ulp).
    fn erf(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// True unless NaN or ±∞.
    fn is_finite(self) -> bool;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// Appends the little-endian bytes of `self` (checkpoints).
    fn write_le(self, out: &mut Vec<u8>);
    /// Reads one value from exactly `DTYPE.size()` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
    /// General matrix multiply `C ← α·A·B + β·C` through `matrixmultiply`, with
    /// A `m × k`, B `k × n`, C `m × n`, each given by a pointer and its row and column
    /// strides in elements (a transposed operand is the same memory with strides swapped).
    ///
    /// # Safety
    /// Every element the strides address must lie inside its allocation, and C must not
    /// overlap A or B. [`crate::matmul::gemm`] is the safe, checked entry point.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_float {
    ($t:ident, $dtype:ident, $gemm:ident, $erf:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const DTYPE: DType = DType::$dtype;

            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                $t::exp_m1(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                libm::$erf(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                $t::from_le_bytes(b)
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded from the caller's contract.
                unsafe {
                    matrixmultiply::$gemm(
                        m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                    )
                }
            }
        }
    };
}

impl_float!(f32, F32, sgemm, erff);
impl_float!(f64, F64, dgemm, erf);

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn erf_matches_python() {
        // python3 -c "import math; print(repr(math.erf(0.5)), repr(math.erf(-1.5)), repr(math.erf(3.0)))"
        for (x, want) in [
            (0.5, 0.5204998778130465),
            (-1.5, -0.9661051464753108),
            (3.0, 0.9999779095030014),
        ] {
            assert!(
                (Float::erf(x) - want).abs() <= 2.0 * f64::EPSILON,
                "erf({x})"
            );
            let single = Float::erf(x as f32);
            assert!(
                (single - want as f32).abs() <= 2.0 * f32::EPSILON,
                "erff({x})"
            );
        }
        assert_eq!(Float::erf(0.0f64), 0.0);
        assert!(Float::erf(f32::NAN).is_nan());
    }
}
