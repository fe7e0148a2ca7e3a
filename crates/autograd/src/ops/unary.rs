//! Element-wise functions of one value. Each op is one row of the same pattern: the
//! forward function, which value its derivative is written in (the input x or the output
//! y), and the derivative itself.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::unary::sigmoid;
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// Which value an op's derivative is a function of.
#[derive(Clone, Copy)]
enum Saved {
    Input,
    Output,
}

/// y = f(x) element-wise. d y / d x = `derivative(saved)`, with `saved` x or y.
struct Unary<T: Float> {
    name: &'static str,
    saved: Rc<Tensor<T>>,
    derivative: fn(T) -> T,
}

impl<T: Float> Backward<T> for Unary<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn backward(&self, mut grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        for (g, &s) in grad.data_mut().iter_mut().zip(self.saved.data()) {
            *g *= (self.derivative)(s);
        }
        Ok(smallvec![Some(grad)])
    }
}

fn unary<T: Float>(
    x: &Var<T>,
    name: &'static str,
    f: fn(&Tensor<T>) -> Tensor<T>,
    saved: Saved,
    derivative: fn(T) -> T,
) -> Result<Var<T>> {
    let value = f(x.value());
    Var::record(name, &[x], value, |y| Unary {
        name,
        saved: match saved {
            Saved::Input => Rc::clone(x.value_rc()),
            Saved::Output => Rc::clone(y),
        },
        derivative,
    })
}

impl<T: Float> Var<T> {
    /// −x. d/dx = −1.
    pub fn neg(&self) -> Result<Var<T>> {
        unary(self, "neg", Tensor::neg, Saved::Input, |_| -T::ONE)
    }

    /// e^x. d/dx = e^x = y.
    pub fn exp(&self) -> Result<Var<T>> {
        unary(self, "exp", Tensor::exp, Saved::Output, |y| y)
    }

    /// ln x. d/dx = 1/x.
    pub fn log(&self) -> Result<Var<T>> {
        unary(self, "log", Tensor::log, Saved::Input, |x| T::ONE / x)
    }

    /// √x. d/dx = 1 / (2√x) = 1 / (2y).
    pub fn sqrt(&self) -> Result<Var<T>> {
        unary(self, "sqrt", Tensor::sqrt, Saved::Output, |y| {
            T::ONE / (y + y)
        })
    }

    /// x². d/dx = 2x.
    pub fn square(&self) -> Result<Var<T>> {
        unary(self, "square", Tensor::square, Saved::Input, |x| x + x)
    }

    /// 1 / (1 + e^−x). d/dx = y (1 − y).
    pub fn sigmoid(&self) -> Result<Var<T>> {
        unary(self, "sigmoid", Tensor::sigmoid, Saved::Output, |y| {
            y * (T::ONE - y)
        })
    }

    /// max(x, 0). d/dx = 1 where y > 0 (that is, x > 0), else 0.
    pub fn relu(&self) -> Result<Var<T>> {
        unary(self, "relu", Tensor::relu, Saved::Output, |y| {
            if y > T::ZERO {
                T::ONE
            } else {
                T::ZERO
            }
        })
    }

    /// tanh x. d/dx = 1 − y².
    pub fn tanh(&self) -> Result<Var<T>> {
        unary(self, "tanh", Tensor::tanh, Saved::Output, |y| {
            T::ONE - y * y
        })
    }

    /// ln(1 + e^x) (MXNet's softrelu). d/dx = sigmoid(x).
    pub fn softrelu(&self) -> Result<Var<T>> {
        unary(self, "softrelu", Tensor::softrelu, Saved::Input, sigmoid)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Leaf;

    #[test]
    fn gradcheck_neg_exp_square_tanh() {
        let a = leaf(&[3, 4], 1);
        assert_grads(&[&a], |t| t.leaf(&a).neg());
        assert_grads(&[&a], |t| t.leaf(&a).exp());
        assert_grads(&[&a], |t| t.leaf(&a).square());
        assert_grads(&[&a], |t| t.leaf(&a).tanh());
    }

    #[test]
    fn gradcheck_log_sqrt_on_positive_inputs() {
        let a = Leaf::new(leaf(&[10], 2).value().add_scalar(1.5));
        assert_grads(&[&a], |t| t.leaf(&a).log());
        assert_grads(&[&a], |t| t.leaf(&a).sqrt());
    }

    #[test]
    fn gradcheck_sigmoid_softrelu() {
        let a = Leaf::new(leaf(&[2, 5], 3).value().mul_scalar(4.0));
        assert_grads(&[&a], |t| t.leaf(&a).sigmoid());
        assert_grads(&[&a], |t| t.leaf(&a).softrelu());
    }

    #[test]
    fn gradcheck_relu_away_from_the_kink() {
        // |x| ≥ 0.1 everywhere, so ±eps never crosses 0
        let a = Leaf::new(
            leaf(&[12], 4)
                .value()
                .map(|x| if x >= 0.0 { x + 0.1 } else { x - 0.1 }),
        );
        assert_grads(&[&a], |t| t.leaf(&a).relu());
    }

    #[test]
    fn gradcheck_value_used_twice_through_two_functions() {
        // y = sigmoid(a) · tanh(a)
        let a = leaf(&[7], 5);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.sigmoid()?.mul(&x.tanh()?)
        });
    }
}
