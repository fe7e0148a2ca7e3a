//! Element-wise functions of one tensor: neg, exp, log, sqrt, powf, square, abs and the
//! activations (sigmoid, relu, tanh, softrelu, and MXNet's `LeakyReLU` family: leaky,
//! elu, selu, gelu; softsign, swish). Each activation is written once as a scalar function
//! so that the autograd layer, the layers and the fused kernels share the same formula.

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

/// SELU's α, as MXNet writes it (`SELU_ALPHA` in `src/operator/mshadow_op.h`, 1.x). MXNet
/// declares it `const float`, so its f64 kernels use this value rounded to f32; kiln's
/// f64 uses the nearest f64, its f32 the same f32 as MXNet.
#[allow(clippy::excessive_precision)] // the digits as MXNet's source gives them
pub const SELU_ALPHA: f64 = 1.6732632423543772848170429916717;

/// SELU's λ (`SELU_LAMBDA` in MXNet's `mshadow_op.h`), with the same note as [`SELU_ALPHA`].
#[allow(clippy::excessive_precision)] // the digits as MXNet's source gives them
pub const SELU_LAMBDA: f64 = 1.0507009873554804934193349852946;

/// Leaky ReLU: x if x > 0, else α·x (MXNet's `xelu`, `LeakyReLU(act_type='leaky')`).
#[inline(always)]
pub fn leaky_relu<T: Float>(x: T, alpha: T) -> T {
    if x > T::ZERO {
        x
    } else {
        alpha * x
    }
}

/// ELU: x if x > 0, else α·(e^x − 1), with e^x − 1 by `exp_m1` as MXNet's `elu` (`expm1`).
#[inline(always)]
pub fn elu<T: Float>(x: T, alpha: T) -> T {
    if x > T::ZERO {
        x
    } else {
        alpha * x.exp_m1()
    }
}

/// SELU: λ·x if x > 0, else λ·α·(e^x − 1), evaluated as MXNet's `selu`:
/// `λ · (x > 0 ? x : α · expm1(x))`, with [`SELU_ALPHA`] and [`SELU_LAMBDA`].
#[inline(always)]
pub fn selu<T: Float>(x: T) -> T {
    let inner = if x > T::ZERO {
        x
    } else {
        T::from_f64(SELU_ALPHA) * x.exp_m1()
    };
    T::from_f64(SELU_LAMBDA) * inner
}

/// GELU in its erf form, as MXNet 1.x's `gelu` (`LeakyReLU(act_type='gelu')`) evaluates
/// it: `0.5 · x · (1 + erf(x / √2))`.
#[inline(always)]
pub fn gelu<T: Float>(x: T) -> T {
    let half = T::from_f64(0.5);
    half * x * (T::ONE + (x / T::from_f64(std::f64::consts::SQRT_2)).erf())
}

/// Softsign: x / (1 + |x|) (MXNet's `softsign`).
#[inline(always)]
pub fn softsign<T: Float>(x: T) -> T {
    x / (T::ONE + x.abs())
}

/// Swish: x · sigmoid(β·x), as Gluon's `Swish` block computes it.
#[inline(always)]
pub fn swish<T: Float>(x: T, beta: T) -> T {
    x * sigmoid(beta * x)
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

    /// [`leaky_relu`]: x if x > 0, else α·x.
    pub fn leaky_relu(&self, alpha: T) -> Tensor<T> {
        self.map(|x| leaky_relu(x, alpha))
    }

    /// [`elu`]: x if x > 0, else α·(e^x − 1).
    pub fn elu(&self, alpha: T) -> Tensor<T> {
        self.map(|x| elu(x, alpha))
    }

    /// [`selu`]: λ·x if x > 0, else λ·α·(e^x − 1).
    pub fn selu(&self) -> Tensor<T> {
        self.map(selu)
    }

    /// [`gelu`]: 0.5 · x · (1 + erf(x / √2)).
    pub fn gelu(&self) -> Tensor<T> {
        self.map(gelu)
    }

    /// [`softsign`]: x / (1 + |x|).
    pub fn softsign(&self) -> Tensor<T> {
        self.map(softsign)
    }

    /// [`swish`]: x · sigmoid(β·x).
    pub fn swish(&self, beta: T) -> Tensor<T> {
        self.map(|x| swish(x, beta))
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

    /// The reference values below come from Python's math module (float64):
    /// ```text
    /// import math
    /// A, L = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    /// gelu  = lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))
    /// selu  = lambda x: L * (x if x > 0 else A * math.expm1(x))
    /// elu   = lambda x, a: x if x > 0 else a * math.expm1(x)
    /// swish = lambda x, b: x / (1 + math.exp(-b * x))
    /// for x in [-2.0, -1.0, 0.5, 1.0]: print(repr(gelu(x)))
    /// for x in [-1.0, -0.5, 2.0]: print(repr(selu(x)))
    /// print(repr(elu(-1.0, 1.0)), repr(elu(-2.0, 0.5)))
    /// print(repr(swish(1.0, 1.0)), repr(swish(-2.0, 0.5)), repr(swish(3.0, 2.0)))
    /// ```
    #[test]
    fn mxnet_leaky_relu_family_at_known_points() {
        let close = |got: f64, want: f64| {
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0),
                "{got} vs {want}"
            )
        };
        let x = Tensor::<f64>::from_f64s(&[-2.0, -1.0, 0.5, 1.0], [4]).unwrap();
        let want = [
            -0.04550026389635842,
            -0.15865525393145707,
            0.34573123063700656,
            0.8413447460685429,
        ];
        for (&g, &w) in x.gelu().data().iter().zip(&want) {
            close(g, w);
        }
        let x = Tensor::<f64>::from_f64s(&[-1.0, -0.5, 2.0, 0.0], [4]).unwrap();
        let want = [
            -1.1113307378125625,
            -0.6917581878028713,
            2.101401974710961,
            0.0,
        ];
        for (&g, &w) in x.selu().data().iter().zip(&want) {
            close(g, w);
        }
        close(elu(-1.0, 1.0), -0.6321205588285577);
        close(elu(-2.0, 0.5), -0.43233235838169365);
        assert_eq!(elu(0.7, 1.0), 0.7);
        close(swish(1.0, 1.0), 0.7310585786300049);
        close(swish(-2.0, 0.5), -0.5378828427399902);
        close(swish(3.0, 2.0), 2.992582130530096);
        // leaky: x > 0 passes, else α·x; 0 maps to α·0 = 0
        let x = Tensor::<f32>::from_f64s(&[-2.0, 0.0, 3.0], [3]).unwrap();
        assert_eq!(x.leaky_relu(0.1).data(), &[-0.2, 0.0, 3.0]);
        // softsign: 3 / 4, −1 / 2, 0
        let x = Tensor::<f32>::from_f64s(&[3.0, -1.0, 0.0], [3]).unwrap();
        assert_eq!(x.softsign().data(), &[0.75, -0.5, 0.0]);
        // f32 agrees with f64 to f32 rounding
        let x32 = Tensor::<f32>::from_f64s(&[-2.0, -1.0, 0.5, 1.0], [4]).unwrap();
        let x64 = x32.cast::<f64>();
        for (a, b) in x32.gelu().data().iter().zip(x64.gelu().data()) {
            assert!((*a as f64 - b).abs() <= 2e-7 * b.abs().max(1.0));
        }
        for (a, b) in x32.selu().data().iter().zip(x64.selu().data()) {
            assert!((*a as f64 - b).abs() <= 2e-7 * b.abs().max(1.0));
        }
    }

    #[test]
    fn new_activations_pass_nan_on() {
        let nan = f64::NAN;
        assert!(leaky_relu(nan, 0.1).is_nan());
        assert!(elu(nan, 1.0).is_nan());
        assert!(selu(nan).is_nan());
        assert!(gelu(nan).is_nan());
        assert!(softsign(nan).is_nan());
        assert!(swish(nan, 1.0).is_nan());
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
