//! Reshaping, and flattening as its special case.

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;

/// y = x under a new shape. dx = dy under the old shape.
struct Reshape {
    x_shape: Shape,
}

impl<T: Float> Backward<T> for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(grad.into_reshape(self.x_shape.clone())?)])
    }
}

impl<T: Float> Var<T> {
    /// The same elements under a shape with the same element count.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Var<T>> {
        let shape = shape.into();
        if &shape == self.shape() {
            // nothing to do, nothing to record: the same value (and its gradient path)
            return Ok(self.clone());
        }
        let value = self.value().reshape(shape)?;
        Var::record("reshape", &[self], value, |_| Reshape {
            x_shape: self.shape().clone(),
        })
    }

    /// Keeps the first axis and flattens the rest, as Gluon's `Flatten`.
    ///
    /// # Shapes
    /// (N, d1, d2, …) → (N, d1·d2·…).
    pub fn flatten(&self) -> Result<Var<T>> {
        let Some((&n, rest)) = self.dims().split_first() else {
            return Err(AutogradError::invalid("flatten", "cannot flatten a scalar"));
        };
        self.reshape([n, rest.iter().product()])
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_reshape_and_flatten() {
        let a = leaf(&[2, 3, 2, 2], 1);
        assert_grads(&[&a], |t| t.leaf(&a).reshape([4, 6])?.sigmoid());
        assert_grads(&[&a], |t| t.leaf(&a).flatten()?.tanh());
    }
}
