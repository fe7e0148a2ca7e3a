//! Repeating a value to a larger shape by NumPy broadcasting (MXNet's `broadcast_to`).

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;

/// y = x repeated along the axes where x has length 1 or is missing. Each element of x
/// appears once per repetition, so d y / d x = 1 for each copy and dx is dy summed over
/// the repeated axes back to x's shape.
struct BroadcastTo {
    x_shape: Shape,
}

impl<T: Float> Backward<T> for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(grad.sum_to_shape(&self.x_shape)?)])
    }
}

impl<T: Float> Var<T> {
    /// The value repeated to `shape` by NumPy broadcasting (as [`Tensor::broadcast_to`]);
    /// an error naming both shapes when it does not broadcast there.
    ///
    /// # Shapes
    /// Any shape that broadcasts to `shape` (trailing axes aligned, each of equal length
    /// or 1) → `shape`.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Var<T>> {
        let shape = shape.into();
        if &shape == self.shape() {
            // nothing to repeat, nothing to record
            return Ok(self.clone());
        }
        let value = self.value().broadcast_to(shape)?;
        Var::record("broadcast_to", &[self], value, |_| BroadcastTo {
            x_shape: self.shape().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_broadcast_to_leading_and_inner_axes() {
        let a = leaf(&[3, 1], 1);
        assert_grads(&[&a], |t| t.leaf(&a).broadcast_to([2, 3, 4])?.tanh());
        let b = leaf(&[4], 2);
        assert_grads(&[&b], |t| t.leaf(&b).broadcast_to([3, 4]));
    }

    #[test]
    fn gradcheck_broadcast_value_used_twice() {
        // y[i, j] = x[j] · x[i]: x (1, 3) broadcast down the rows times x as a column
        // broadcast along them, so every element of x reaches y along two paths
        let a = leaf(&[1, 3], 3);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.broadcast_to([3, 3])?
                .mul(&x.reshape([3, 1])?.broadcast_to([3, 3])?)
        });
    }

    #[test]
    fn broadcast_backward_sums_the_copies() {
        // x (2, 1) to (2, 3), dy all ones: each element of x has 3 copies
        let x = Leaf::new(Tensor::<f32>::from_f64s(&[1., 2.], [2, 1]).unwrap());
        let tape = Tape::new();
        tape.leaf(&x)
            .broadcast_to([2, 3])
            .unwrap()
            .sum()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(x.grad().unwrap().data(), &[3., 3.]);
    }

    #[test]
    fn shapes_that_do_not_broadcast_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2, 3]));
        assert_eq!(
            x.broadcast_to([3, 3]).unwrap_err().to_string(),
            "broadcast_to: shapes [2, 3] and [3, 3] do not broadcast together"
        );
    }
}
