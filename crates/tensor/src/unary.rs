//! Element-wise functions of one tensor: neg, exp, log, sqrt, powf, square, abs and the
//! activations (sigmoid, relu, tanh, softrelu). Each activation is written once as a scalar
//! function so that the autograd layer and the fused kernels share the same formula.

use crate::float::Float;
use crate::kernels::{as_f32, as_f32_mut, exp};
use crate::tensor::Tensor;

/// The logistic function 1 / (1 + e^−x), evaluated without overflow for large |x|.
#[inline(always)]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// max(x, 0); NaN stays NaN (a diverged value must not turn into a plausible 0).
#[inline(always)]
pub fn relu<T: Float>(x: T) -> T {
    if x <= T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// softrelu(x) = ln(1 + e^x) (MXNet's name for softplus), stable for large |x|.
#[inline(always)]
pub fn softrelu<T: Float>(x: T) -> T {
    // ln(1 + e^x) = max(x, 0) + ln(1 + e^−|x|)
    relu(x) + (-x.abs()).exp().ln_1p()
}

impl<T: Float> Tensor<T> {
    /// `f(x)` for every element, through the vectorised f32 kernel `fast` when `T` is f32.
    fn map_fast(&self, fast: fn(&[f32], &mut [f32]), slow: impl Fn(T) -> T) -> Tensor<T> {
        let mut out = Tensor::zeros(self.shape().clone());
        match (as_f32(self.data()), as_f32_mut(out.data_mut())) {
            (Some(src), Some(dst)) => fast(src, dst),
            _ => out
                .data_mut()
                .iter_mut()
                .zip(self.data())
                .for_each(|(o, &x)| *o = slow(x)),
        }
        out
    }

    /// −x.
    pub fn neg(&self) -> Tensor<T> {
        self.map(|x| -x)
    }

    /// e^x (vectorised for f32, within 2 ulp).
    pub fn exp(&self) -> Tensor<T> {
        self.map_fast(exp::exp_slice, T::exp)
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor<T> {
        self.map(T::ln)
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor<T> {
        self.map(T::sqrt)
    }

    /// x^p.
    pub fn powf(&self, p: T) -> Tensor<T> {
        self.map(|x| x.powf(p))
    }

    /// x².
    pub fn square(&self) -> Tensor<T> {
        self.map(|x| x * x)
    }

    /// |x|.
    pub fn abs(&self) -> Tensor<T> {
        self.map(T::abs)
    }

    /// 1 / (1 + e^−x) (vectorised for f32).
    pub fn sigmoid(&self) -> Tensor<T> {
        self.map_fast(exp::sigmoid_slice, sigmoid)
    }

    /// max(x, 0).
    pub fn relu(&self) -> Tensor<T> {
        self.map(relu)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor<T> {
        self.map(T::tanh)
    }

    /// ln(1 + e^x).
    pub fn softrelu(&self) -> Tensor<T> {
        self.map(softrelu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_at_known_points() {
        let x = Tensor::<f64>::from_f64s(&[-1000.0, -1.0, 0.0, 2.0, 1000.0], [5]).unwrap();
        let s = x.sigmoid();
        assert_eq!(s.data()[0], 0.0);
        assert!((s.data()[1] - 0.2689414213699951).abs() < 1e-15);
        assert_eq!(s.data()[2], 0.5);
        assert_eq!(s.data()[4], 1.0);
        assert_eq!(x.relu().data(), &[0.0, 0.0, 0.0, 2.0, 1000.0]);
        let sr = x.softrelu();
        assert_eq!(sr.data()[0], 0.0);
        assert!((sr.data()[2] - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(sr.data()[4], 1000.0);
        assert!((x.tanh().data()[3] - 2f64.tanh()).abs() < 1e-15);
    }

    #[test]
    fn powers_and_logs() {
        let x = Tensor::<f32>::from_f64s(&[1.0, 4.0, 9.0], [3]).unwrap();
        assert_eq!(x.sqrt().data(), &[1.0, 2.0, 3.0]);
        assert_eq!(x.powf(0.5).data(), &[1.0, 2.0, 3.0]);
        assert_eq!(x.square().data(), &[1.0, 16.0, 81.0]);
        assert_eq!(x.log().exp().data()[0], 1.0);
        assert_eq!(x.neg().abs(), x);
    }
}
