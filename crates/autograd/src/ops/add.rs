//! Broadcasting addition, and subtraction as its composition with negation.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;

/// y = a + b (broadcast). d y / d a = 1, d y / d b = 1, each summed over the axes that
/// input was broadcast along.
struct Add {
    a: Shape,
    b: Shape,
}

impl<T: Float> Backward<T> for Add {
    fn name(&self) -> &'static str {
        "add"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let ga = if needs[0] {
            Some(grad.sum_to_shape(&self.a)?)
        } else {
            None
        };
        let gb = if needs[1] {
            Some(grad.sum_to_shape(&self.b)?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
}

impl<T: Float> Var<T> {
    /// `self + rhs` with NumPy broadcasting.
    ///
    /// # Shapes
    /// Any two shapes that broadcast together → their broadcast shape.
    pub fn add(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let value = self.value().add(rhs.value())?;
        Var::record("add", &[self, rhs], value, |_| Add {
            a: self.shape().clone(),
            b: rhs.shape().clone(),
        })
    }

    /// `self − rhs` with broadcasting: `self + (−rhs)`.
    pub fn sub(&self, rhs: &Var<T>) -> Result<Var<T>> {
        self.add(&rhs.neg()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_add_broadcast_both_directions() {
        let (a, b) = (leaf(&[2, 1, 4], 1), leaf(&[3, 1], 2));
        assert_grads(&[&a, &b], |t| t.leaf(&a).add(&t.leaf(&b)));
    }

    #[test]
    fn gradcheck_sub_same_shape() {
        let (a, b) = (leaf(&[3, 4], 3), leaf(&[3, 4], 4));
        assert_grads(&[&a, &b], |t| t.leaf(&a).sub(&t.leaf(&b)));
    }

    #[test]
    fn gradcheck_add_value_used_twice() {
        // y = a + a: dy/da = 2
        let a = leaf(&[5], 5);
        assert_grads(&[&a], |t| t.leaf(&a).add(&t.leaf(&a)));
    }
}
