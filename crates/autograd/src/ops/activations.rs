//! The activations Gluon's `nn.activations` has beside relu/sigmoid/tanh/softrelu:
//! MXNet's `LeakyReLU` family (leaky, elu, selu, gelu; PReLU is in `prelu.rs`), softsign
//! and swish. Each forward is the tensor layer's function; each derivative is one match
//! arm below, written in the saved input x and/or output y.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::unary::{sigmoid, SELU_ALPHA, SELU_LAMBDA};
use kiln_tensor::{Activation, Float, Tensor};
use smallvec::smallvec;
use std::f64::consts::{FRAC_2_SQRT_PI, SQRT_2};
use std::rc::Rc;

/// Which function, with its parameter.
#[derive(Clone, Copy)]
enum Kind<T> {
    LeakyRelu(T),
    Elu(T),
    Selu,
    Gelu,
    Softsign,
    Swish(T),
}

impl<T: Float> Kind<T> {
    fn name(self) -> &'static str {
        match self {
            Kind::LeakyRelu(_) => "leaky_relu",
            Kind::Elu(_) => "elu",
            Kind::Selu => "selu",
            Kind::Gelu => "gelu",
            Kind::Softsign => "softsign",
            Kind::Swish(_) => "swish",
        }
    }

    /// Which of (x, y) the derivative reads.
    fn reads(self) -> (bool, bool) {
        match self {
            Kind::LeakyRelu(_) | Kind::Gelu | Kind::Swish(_) => (true, false),
            Kind::Selu | Kind::Softsign => (false, true),
            Kind::Elu(_) => (true, true),
        }
    }

    /// f′ at input x with output y (an unsaved one is passed as 0 and not read).
    #[inline]
    fn derivative(self, x: T, y: T) -> T {
        match self {
            // d/dx x = 1; d/dx α·x = α. MXNet's xelu_grad reads y: y > 0 ? 1 : α, the same
            // for α ≥ 0 (y > 0 exactly where x > 0); at x = 0 both give α.
            Kind::LeakyRelu(alpha) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    alpha
                }
            }
            // d/dx α(e^x − 1) = α e^x = α + y. MXNet's elu_grad: y > 0 ? 1 : α + y, the same
            // for α ≥ 0; at x = 0, α + 0 = α.
            Kind::Elu(alpha) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    alpha + y
                }
            }
            // d/dx λx = λ; d/dx λα(e^x − 1) = λα e^x = y + λα (y > 0 exactly where x > 0).
            // At x = 0: λα. MXNet's selu_grad returns λ·(α + y) here instead, which is off
            // by (λ − 1)·y; see Var::selu.
            Kind::Selu => {
                if y > T::ZERO {
                    T::from_f64(SELU_LAMBDA)
                } else {
                    y + T::from_f64(SELU_LAMBDA * SELU_ALPHA)
                }
            }
            // d/dx ½x(1 + erf(x/√2)) = ½(1 + erf(x/√2)) + ½x · erf′(x/√2)/√2, with
            // erf′(z) = (2/√π) e^(−z²): MXNet's gelu_grad, in its order,
            // ½ · (1 + erf(z) + x · erf′(z) / √2), z = x/√2.
            Kind::Gelu => {
                let sqrt2 = T::from_f64(SQRT_2);
                let z = x / sqrt2;
                let erf_grad = T::from_f64(FRAC_2_SQRT_PI) * (-(z * z)).exp();
                T::from_f64(0.5) * (T::ONE + z.erf() + x * erf_grad / sqrt2)
            }
            // (1 − |y|)², the tensor layer's Activation::Softsign rule
            Kind::Softsign => Activation::Softsign.derivative_from_output(y),
            // y = x·s, s = σ(βx): d/dx = s + x·β·s(1 − s)
            Kind::Swish(beta) => {
                let s = sigmoid(beta * x);
                s + x * beta * s * (T::ONE - s)
            }
        }
    }
}

/// y = f(x) element-wise. d y / d x = `kind.derivative(x, y)` (derived in its arms), so
/// dx = dy ⊙ f′.
struct Act<T: Float> {
    kind: Kind<T>,
    x: Option<Rc<Tensor<T>>>,
    y: Option<Rc<Tensor<T>>>,
}

impl<T: Float> Backward<T> for Act<T> {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn backward(&self, mut grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let xs = self.x.as_deref().map(Tensor::data);
        let ys = self.y.as_deref().map(Tensor::data);
        for (i, g) in grad.data_mut().iter_mut().enumerate() {
            let x = xs.map_or(T::ZERO, |d| d[i]);
            let y = ys.map_or(T::ZERO, |d| d[i]);
            *g *= self.kind.derivative(x, y);
        }
        Ok(smallvec![Some(grad)])
    }
}

fn activation<T: Float>(x: &Var<T>, kind: Kind<T>, y: Tensor<T>) -> Result<Var<T>> {
    let (reads_x, reads_y) = kind.reads();
    Var::record(kind.name(), &[x], y, |y| Act {
        kind,
        x: reads_x.then(|| Rc::clone(x.value_rc())),
        y: reads_y.then(|| Rc::clone(y)),
    })
}

impl<T: Float> Var<T> {
    /// Leaky ReLU (Gluon's `LeakyReLU(alpha)`, MXNet's `LeakyReLU(act_type='leaky')`):
    /// y = x if x > 0, else α·x.
    ///
    /// Gradient: 1 where x > 0, else α (so α at exactly 0, as MXNet's `xelu_grad`). Gluon's
    /// layer requires α ≥ 0; the op takes any α, and its gradient is the derivative for
    /// every α (MXNet's reads the sign of y, which differs for α < 0).
    ///
    /// # Shapes
    /// Unchanged.
    pub fn leaky_relu(&self, alpha: T) -> Result<Var<T>> {
        activation(self, Kind::LeakyRelu(alpha), self.value().leaky_relu(alpha))
    }

    /// ELU (Gluon's `ELU(alpha)`, default α = 1.0; MXNet's `LeakyReLU(act_type='elu')`):
    /// y = x if x > 0, else α·(e^x − 1).
    ///
    /// Gradient: 1 where x > 0, else α + y = α·e^x (so α at exactly 0, as MXNet's
    /// `elu_grad`, which agrees for every α ≥ 0).
    ///
    /// # Shapes
    /// Unchanged.
    pub fn elu(&self, alpha: T) -> Result<Var<T>> {
        activation(self, Kind::Elu(alpha), self.value().elu(alpha))
    }

    /// SELU (Gluon's `SELU()`, MXNet's `LeakyReLU(act_type='selu')`):
    /// y = λ·x if x > 0, else λ·α·(e^x − 1), with MXNet's α = 1.6732632423543772848170429916717
    /// and λ = 1.0507009873554804934193349852946 ([`kiln_tensor::unary::SELU_ALPHA`]).
    ///
    /// Gradient: λ where x > 0, else y + λα = λα·e^x (λα at exactly 0). **Not MXNet's:**
    /// MXNet 1.x's `selu_grad` (`src/operator/mshadow_op.h`) returns λ·(α + y) for y ≤ 0,
    /// which differs from the derivative by (λ − 1)·y, about 5 % of |y| (MXNet's
    /// `test_selu` writes the same formula as its reference, and its numeric check covers
    /// only |x| ≤ 0.1 at rtol 1e-2). kiln follows the derivative, so the f64 gradient
    /// check holds.
    ///
    /// # Shapes
    /// Unchanged.
    pub fn selu(&self) -> Result<Var<T>> {
        activation(self, Kind::Selu, self.value().selu())
    }

    /// GELU in its erf form (Gluon's `GELU()`, MXNet 1.x's `LeakyReLU(act_type='gelu')`,
    /// not the tanh approximation): y = ½·x·(1 + erf(x/√2)), erf from the `libm` crate.
    ///
    /// Gradient: ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π), evaluated as MXNet's `gelu_grad`.
    ///
    /// # Shapes
    /// Unchanged.
    pub fn gelu(&self) -> Result<Var<T>> {
        activation(self, Kind::Gelu, self.value().gelu())
    }

    /// Softsign (Gluon's `Activation('softsign')`): y = x / (1 + |x|).
    ///
    /// Gradient: (1 − |y|)² = 1 / (1 + |x|)² (MXNet computes the latter from x).
    ///
    /// # Shapes
    /// Unchanged.
    pub fn softsign(&self) -> Result<Var<T>> {
        activation(self, Kind::Softsign, self.value().softsign())
    }

    /// Swish (Gluon's `Swish(beta)`, default β = 1.0): y = x·sigmoid(β·x).
    ///
    /// Gradient: s + β·x·s·(1 − s) with s = sigmoid(β·x) (Gluon gets it by differentiating
    /// its composition `x * sigmoid(beta * x)`; the same up to rounding).
    ///
    /// # Shapes
    /// Unchanged.
    pub fn swish(&self, beta: T) -> Result<Var<T>> {
        activation(self, Kind::Swish(beta), self.value().swish(beta))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::{Float, Tensor};

    /// Uniform(−3, 3) values at least 0.05 from the kink at 0.
    fn off_the_kink(shape: &[usize], seed: u64) -> Leaf<f64> {
        Leaf::new(
            leaf(shape, seed)
                .value()
                .map(|x| 3.0 * x + if x >= 0.0 { 0.05 } else { -0.05 }),
        )
    }

    #[test]
    fn gradcheck_leaky_relu_elu_selu_away_from_the_kink() {
        let a = off_the_kink(&[3, 7], 1);
        assert_grads(&[&a], |t| t.leaf(&a).leaky_relu(0.1));
        assert_grads(&[&a], |t| t.leaf(&a).leaky_relu(-0.3));
        assert_grads(&[&a], |t| t.leaf(&a).elu(1.0));
        assert_grads(&[&a], |t| t.leaf(&a).elu(0.4));
        assert_grads(&[&a], |t| t.leaf(&a).selu());
    }

    #[test]
    fn gradcheck_gelu_softsign_swish() {
        let a = off_the_kink(&[2, 9], 2);
        assert_grads(&[&a], |t| t.leaf(&a).gelu());
        assert_grads(&[&a], |t| t.leaf(&a).softsign());
        assert_grads(&[&a], |t| t.leaf(&a).swish(1.0));
        assert_grads(&[&a], |t| t.leaf(&a).swish(0.5));
    }

    #[test]
    fn gradcheck_value_used_twice() {
        // y = gelu(x) · elu(x): both paths reach x
        let a = off_the_kink(&[6], 3);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.gelu()?.mul(&x.elu(1.0)?)
        });
    }

    /// (y, dy/dx) at each of `xs`, in f64.
    fn at(xs: &[f64], f: impl Fn(&Var<f64>) -> crate::Result<Var<f64>>) -> (Vec<f64>, Vec<f64>) {
        let x = Leaf::new(Tensor::from_f64s(xs, [xs.len()]).unwrap());
        let tape = Tape::new();
        let y = f(&tape.leaf(&x)).unwrap();
        let values = y.value().data().to_vec();
        y.sum().unwrap().backward().unwrap();
        let grads = x.grad().unwrap().data().to_vec();
        (values, grads)
    }

    fn close(got: &[f64], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 4.0 * f64::EPSILON * w.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
    }

    /// Values and derivatives from Python's math module (float64):
    /// ```text
    /// import math
    /// A, L = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    /// gelu  = lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2)))
    /// dgelu = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    /// selu  = lambda x: L * (x if x > 0 else A * math.expm1(x))
    /// dselu = lambda x: L if x > 0 else L * A * math.exp(x)
    /// sig   = lambda x: 1 / (1 + math.exp(-x))
    /// dswish = lambda x, b: sig(b * x) + b * x * sig(b * x) * (1 - sig(b * x))
    /// print([repr(gelu(x)) for x in (-1.0, 1.0)], [repr(dgelu(x)) for x in (-1.0, 1.0)])
    /// print([repr(selu(x)) for x in (-1.0, 2.0)], [repr(dselu(x)) for x in (-1.0, 0.0, 2.0)])
    /// print(repr(math.exp(-1)), repr(0.5 * math.exp(-2)), repr(dswish(1.0, 1.0)), repr(dswish(-2.0, 0.5)))
    /// ```
    #[test]
    fn values_and_derivatives_by_hand() {
        let (y, d) = at(&[-1.0, 1.0], Var::gelu);
        close(&y, &[-0.15865525393145707, 0.8413447460685429]);
        close(&d, &[-0.08331547058768629, 1.0833154705876864]);
        // selu: at 0 the negative branch holds: y = 0, f′ = λα = 1.7580993408473766
        let (y, d) = at(&[-1.0, 0.0, 2.0], Var::selu);
        close(&y, &[-1.1113307378125625, 0.0, 2.101401974710961]);
        close(
            &d,
            &[0.646768603034814, 1.7580993408473766, 1.0507009873554805],
        );
        // elu(α = 1): f′(−1) = e^−1; elu(α = 0.5): f′(−2) = 0.5 e^−2; f′(0) = α
        let (_, d) = at(&[-1.0, 0.0, 3.0], |x| x.elu(1.0));
        close(&d, &[0.36787944117144233, 1.0, 1.0]);
        let (_, d) = at(&[-2.0, 0.0], |x| x.elu(0.5));
        close(&d, &[0.06766764161830635, 0.5]);
        // leaky (α = 0.1): y = [−0.2, 0, 3], f′ = [0.1, 0.1 (at 0, as MXNet), 1]
        let (y, d) = at(&[-2.0, 0.0, 3.0], |x| x.leaky_relu(0.1));
        close(&y, &[-0.2, 0.0, 3.0]);
        assert_eq!(d, &[0.1, 0.1, 1.0]);
        // softsign: f(3) = 3/4, f′(3) = 1/16; f(−1) = −1/2, f′(−1) = 1/4; f′(0) = 1
        let (y, d) = at(&[3.0, -1.0, 0.0], Var::softsign);
        assert_eq!((y, d), (vec![0.75, -0.5, 0.0], vec![0.0625, 0.25, 1.0]));
        // swish: f′(1; β = 1) = 0.9276705118714867, f′(−2; β = 0.5) = 0.07232948812851325
        let (_, d) = at(&[1.0], |x| x.swish(1.0));
        close(&d, &[0.9276705118714867]);
        let (_, d) = at(&[-2.0], |x| x.swish(0.5));
        close(&d, &[0.07232948812851325]);
    }

    type Op<T> = fn(&Var<T>) -> crate::Result<Var<T>>;

    /// Every activation of this file, for either element type.
    fn every_op<T: Float>() -> [Op<T>; 6] {
        [
            |x| x.leaky_relu(T::from_f64(0.2)),
            |x| x.elu(T::ONE),
            Var::selu,
            Var::gelu,
            Var::softsign,
            |x| x.swish(T::ONE),
        ]
    }

    #[test]
    fn f32_gradients_agree_with_f64() {
        let xs = [-2.5, -0.7, 0.3, 1.9];
        let (ops, ops32) = (every_op::<f64>(), every_op::<f32>());
        for (op, op32) in ops.iter().zip(ops32) {
            let (_, d64) = at(&xs, op);
            let x = Leaf::new(Tensor::<f32>::from_f64s(&xs, [4]).unwrap());
            let tape = Tape::new();
            op32(&tape.leaf(&x))
                .unwrap()
                .sum()
                .unwrap()
                .backward()
                .unwrap();
            for (a, b) in x.grad().unwrap().data().iter().zip(&d64) {
                assert!(
                    (*a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{a} vs {b}"
                );
            }
        }
    }
}
