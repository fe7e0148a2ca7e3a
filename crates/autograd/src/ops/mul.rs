//! Broadcasting element-wise multiplication.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = a · b (broadcast). d y / d a = b, d y / d b = a, each summed back to its input's
/// shape.
struct Mul<T: Float> {
    a: Rc<Tensor<T>>,
    b: Rc<Tensor<T>>,
}

impl<T: Float> Backward<T> for Mul<T> {
    fn name(&self) -> &'static str {
        "mul"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let ga = if needs[0] {
            Some(grad.mul(&self.b)?.sum_to_shape(self.a.shape())?)
        } else {
            None
        };
        let gb = if needs[1] {
            Some(grad.mul(&self.a)?.sum_to_shape(self.b.shape())?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
}

impl<T: Float> Var<T> {
    /// `self · rhs` element-wise with NumPy broadcasting.
    ///
    /// # Shapes
    /// Any two shapes that broadcast together → their broadcast shape.
    pub fn mul(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let value = self.value().mul(rhs.value())?;
        Var::record("mul", &[self, rhs], value, |_| Mul {
            a: Rc::clone(self.value_rc()),
            b: Rc::clone(rhs.value_rc()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_mul_broadcast() {
        let (a, b) = (leaf(&[4, 1], 1), leaf(&[1, 3], 2));
        assert_grads(&[&a, &b], |t| t.leaf(&a).mul(&t.leaf(&b)));
    }

    #[test]
    fn gradcheck_mul_value_used_twice() {
        // y = a · a: dy/da = 2a, the sum of both paths
        let a = leaf(&[2, 3], 3);
        assert_grads(&[&a], |t| t.leaf(&a).mul(&t.leaf(&a)));
    }
}
