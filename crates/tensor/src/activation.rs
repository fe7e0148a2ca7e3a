//! [`Activation`]: the element-wise non-linearities a layer can apply to its output, each
//! with its derivative written in terms of the output, so a fused layer needs to keep only
//! what it returns.

use crate::float::Float;
use crate::kernels::{as_f32, as_f32_mut, elementwise, exp};
use crate::tensor::Tensor;
use crate::unary::{relu, sigmoid, softrelu, softsign};

/// An activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^−x), the book's LeNet activation.
    Sigmoid,
    /// tanh x.
    Tanh,
    /// ln(1 + e^x) (softplus).
    SoftRelu,
    /// x / (1 + |x|) (MXNet's `softsign`).
    Softsign,
}

impl Activation {
    /// MXNet's name: `relu`, `sigmoid`, `tanh`, `softrelu`, `softsign`.
    pub fn as_str(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::SoftRelu => "softrelu",
            Activation::Softsign => "softsign",
        }
    }

    /// Parses MXNet's name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::SoftRelu,
            Activation::Softsign,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// Applies the function to every element, in place (vectorised for f32 sigmoid).
    pub fn apply_in_place<T: Float>(self, data: &mut [T]) {
        self.apply_in_place_at(crate::simd::level(), data)
    }

    /// [`Activation::apply_in_place`] at `level`: what a kernel's task calls, with the
    /// level its caller read (a task on another thread would read that thread's).
    pub(crate) fn apply_in_place_at<T: Float>(self, level: crate::simd::Level, data: &mut [T]) {
        match self {
            Activation::Sigmoid => match (level.is_vector(), as_f32_mut(data)) {
                (true, Some(f)) => elementwise::sigmoid_in_place(level, f),
                (false, Some(f)) => f.iter_mut().for_each(|v| *v = exp::sigmoid_f32(*v)),
                (_, None) => data.iter_mut().for_each(|v| *v = sigmoid(*v)),
            },
            Activation::Relu => data.iter_mut().for_each(|v| *v = relu(*v)),
            Activation::Tanh => data.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::SoftRelu => data.iter_mut().for_each(|v| *v = softrelu(*v)),
            Activation::Softsign => data.iter_mut().for_each(|v| *v = softsign(*v)),
        }
    }

    /// The function applied to a tensor.
    pub fn apply<T: Float>(self, x: &Tensor<T>) -> Tensor<T> {
        let mut y = x.clone();
        self.apply_in_place(y.data_mut());
        y
    }

    /// f′ at the input that gave output `y`: relu 1 where y > 0; sigmoid y (1 − y);
    /// tanh 1 − y²; softrelu 1 − e^−y (= sigmoid of the input); softsign (1 − |y|)².
    ///
    /// Softsign: y = x / (1 + |x|) gives 1 − |y| = 1 / (1 + |x|), so
    /// f′ = 1 / (1 + |x|)² = (1 − |y|)². MXNet's `softsign_grad` computes 1 / (1 + |x|)²
    /// from the input; the two agree up to rounding.
    #[inline]
    pub fn derivative_from_output<T: Float>(self, y: T) -> T {
        match self {
            Activation::Relu => {
                if y > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::Sigmoid => y * (T::ONE - y),
            Activation::Tanh => T::ONE - y * y,
            Activation::SoftRelu => -(-y).exp_m1(),
            Activation::Softsign => {
                let r = T::ONE - y.abs();
                r * r
            }
        }
    }

    /// `grad ← grad · f′`, with f′ taken from the outputs `y`: the backward step of the
    /// activation inside a fused layer.
    ///
    /// # Panics
    /// If `grad` and `y` differ in length (a bug in the caller).
    pub fn backward_in_place<T: Float>(self, grad: &mut [T], y: &[T]) {
        assert_eq!(
            grad.len(),
            y.len(),
            "Activation::backward_in_place: lengths differ"
        );
        // the level is read here, on the calling thread, for every chunk
        let level = crate::simd::level();
        let step = |g: &mut [T], y: &[T]| {
            if let (true, Some(gf), Some(yf)) = (level.is_vector(), as_f32_mut(g), as_f32(y)) {
                match self {
                    Activation::Sigmoid => return elementwise::sigmoid_backward(level, gf, yf),
                    Activation::Relu => return elementwise::relu_backward(level, gf, yf),
                    _ => {}
                }
            }
            for (g, &y) in g.iter_mut().zip(y) {
                *g *= self.derivative_from_output(y);
            }
        };
        const CHUNK: usize = 1 << 14;
        if crate::parallel::worth_splitting(grad.len()) {
            use rayon::prelude::*;
            grad.par_chunks_mut(CHUNK)
                .zip(y.par_chunks(CHUNK))
                .for_each(|(g, y)| step(g, y));
        } else {
            step(grad, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_from_outputs_match_the_functions() {
        for act in [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::SoftRelu,
            Activation::Softsign,
        ] {
            for x in [-3.0f64, -0.5, 0.25, 2.0] {
                let f = |x: f64| act.apply(&Tensor::scalar(x)).item().unwrap();
                let numeric = (f(x + 1e-6) - f(x - 1e-6)) / 2e-6;
                let analytic = act.derivative_from_output(f(x));
                assert!(
                    (numeric - analytic).abs() < 1e-8,
                    "{act:?} at {x}: {numeric} vs {analytic}"
                );
            }
            assert_eq!(Activation::from_name(act.as_str()), Some(act));
        }
        // the vectorised f32 steps agree with the formula, tails and parallel chunks
        // included, at every level
        for (level, len) in crate::simd::Level::supported()
            .into_iter()
            .flat_map(|l| [(l, 1), (l, 17), (l, 40_000)])
        {
            let y: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.3)
                .collect();
            let g: Vec<f32> = (0..len)
                .map(|i| ((i * 104_729) % 997) as f32 / 997.0 - 0.5)
                .collect();
            for act in [Activation::Sigmoid, Activation::Relu] {
                let mut fast = g.clone();
                crate::simd::with_level(level, || act.backward_in_place(&mut fast, &y)).unwrap();
                for i in 0..len {
                    let expect = g[i] * act.derivative_from_output(y[i]);
                    assert!(
                        (fast[i] - expect).abs() <= 1e-7,
                        "{act:?} at {level} [{i}]: {} vs {expect}",
                        fast[i]
                    );
                }
            }
        }
        // softsign, by hand: f(3) = 3/4 and f′(3) = 1/(1 + 3)² = 1/16; f(−1) = −1/2, f′ = 1/4
        let y = Activation::Softsign.apply(&Tensor::<f32>::from_f64s(&[3.0, -1.0], [2]).unwrap());
        assert_eq!(y.data(), &[0.75, -0.5]);
        assert_eq!(Activation::Softsign.derivative_from_output(0.75f32), 0.0625);
        assert_eq!(Activation::Softsign.derivative_from_output(-0.5f32), 0.25);
        assert_eq!(
            Activation::from_name("softsign"),
            Some(Activation::Softsign)
        );
        // softrelu's derivative stays accurate where the output is tiny
        let y = 1e-20f64;
        assert!((Activation::SoftRelu.derivative_from_output(y) - y).abs() < 1e-30);
    }
}
