//! Broadcasting element-wise division.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = a / b (broadcast). d y / d a = 1 / b, d y / d b = −a / b², each summed back to
/// its input's shape.
struct Div<T: Float> {
    a: Rc<Tensor<T>>,
    b: Rc<Tensor<T>>,
}

impl<T: Float> Backward<T> for Div<T> {
    fn name(&self) -> &'static str {
        "div"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let ga = if needs[0] {
            Some(grad.div(&self.b)?.sum_to_shape(self.a.shape())?)
        } else {
            None
        };
        let gb = if needs[1] {
            let minus_a_over_b2 = self.a.div(&self.b.square())?.neg();
            Some(grad.mul(&minus_a_over_b2)?.sum_to_shape(self.b.shape())?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
}

impl<T: Float> Var<T> {
    /// `self / rhs` element-wise with NumPy broadcasting.
    ///
    /// # Shapes
    /// Any two shapes that broadcast together → their broadcast shape.
    pub fn div(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let value = self.value().div(rhs.value())?;
        Var::record("div", &[self, rhs], value, |_| Div {
            a: Rc::clone(self.value_rc()),
            b: Rc::clone(rhs.value_rc()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Leaf;

    #[test]
    fn gradcheck_div_broadcast() {
        let a = leaf(&[3, 4], 1);
        // keep the divisor away from 0: values in [1, 2]
        let b = Leaf::new(
            leaf(&[4], 2)
                .value()
                .add_scalar(2.0)
                .div_scalar(2.0)
                .add_scalar(0.5),
        );
        assert_grads(&[&a, &b], |t| t.leaf(&a).div(&t.leaf(&b)));
        assert_grads(&[&a, &b], |t| {
            t.leaf(&b).div(&t.leaf(&a).square()?.add_scalar(1.0)?)
        });
    }
}
