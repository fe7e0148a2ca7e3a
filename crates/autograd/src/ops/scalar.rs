//! Ops with a scalar: `x + s`, `x · s`, `x^p`, and their compositions (`x − s`, `x / s`,
//! `s − x`).

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = x + s. d y / d x = 1.
struct AddScalar;

impl<T: Float> Backward<T> for AddScalar {
    fn name(&self) -> &'static str {
        "add_scalar"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(grad)])
    }
}

/// y = x · s. d y / d x = s.
struct MulScalar<T: Float> {
    s: T,
}

impl<T: Float> Backward<T> for MulScalar<T> {
    fn name(&self) -> &'static str {
        "mul_scalar"
    }

    fn backward(&self, mut grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        grad.data_mut().iter_mut().for_each(|g| *g *= self.s);
        Ok(smallvec![Some(grad)])
    }
}

/// y = x^p. d y / d x = p · x^(p−1).
struct Powf<T: Float> {
    x: Rc<Tensor<T>>,
    p: T,
}

impl<T: Float> Backward<T> for Powf<T> {
    fn name(&self) -> &'static str {
        "powf"
    }

    fn backward(&self, mut grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let p_minus_1 = self.p - T::ONE;
        for (g, &x) in grad.data_mut().iter_mut().zip(self.x.data()) {
            *g *= self.p * x.powf(p_minus_1);
        }
        Ok(smallvec![Some(grad)])
    }
}

impl<T: Float> Var<T> {
    /// `self + s`.
    pub fn add_scalar(&self, s: T) -> Result<Var<T>> {
        Var::record("add_scalar", &[self], self.value().add_scalar(s), |_| {
            AddScalar
        })
    }

    /// `self · s`.
    pub fn mul_scalar(&self, s: T) -> Result<Var<T>> {
        Var::record("mul_scalar", &[self], self.value().mul_scalar(s), |_| {
            MulScalar { s }
        })
    }

    /// `self^p` element-wise.
    pub fn powf(&self, p: T) -> Result<Var<T>> {
        Var::record("powf", &[self], self.value().powf(p), |_| Powf {
            x: Rc::clone(self.value_rc()),
            p,
        })
    }

    /// `self − s`.
    pub fn sub_scalar(&self, s: T) -> Result<Var<T>> {
        self.add_scalar(-s)
    }

    /// `self / s`.
    pub fn div_scalar(&self, s: T) -> Result<Var<T>> {
        self.mul_scalar(T::ONE / s)
    }

    /// `s − self`.
    pub fn rsub_scalar(&self, s: T) -> Result<Var<T>> {
        self.neg()?.add_scalar(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Leaf;

    #[test]
    fn gradcheck_scalar_ops() {
        let a = leaf(&[2, 3], 1);
        assert_grads(&[&a], |t| t.leaf(&a).add_scalar(3.0)?.mul_scalar(-1.5));
        assert_grads(&[&a], |t| t.leaf(&a).sub_scalar(0.5)?.div_scalar(4.0));
        assert_grads(&[&a], |t| t.leaf(&a).rsub_scalar(2.0));
    }

    #[test]
    fn gradcheck_powf() {
        let a = Leaf::new(leaf(&[6], 2).value().add_scalar(2.0));
        assert_grads(&[&a], |t| t.leaf(&a).powf(2.5));
        assert_grads(&[&a], |t| t.leaf(&a).powf(-1.0));
    }
}
