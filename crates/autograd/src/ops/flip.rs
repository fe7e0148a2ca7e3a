//! Reversing axes (used by the true convolution to flip its kernel).

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::{smallvec, SmallVec};

/// y = flip(x, axes). A flip is its own inverse: dx = flip(dy, axes).
struct Flip {
    axes: SmallVec<[usize; 4]>,
}

impl<T: Float> Backward<T> for Flip {
    fn name(&self) -> &'static str {
        "flip"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(grad.flip(&self.axes)?)])
    }
}

impl<T: Float> Var<T> {
    /// Reverses the order of elements along each of `axes`.
    ///
    /// # Shapes
    /// Unchanged.
    pub fn flip(&self, axes: &[usize]) -> Result<Var<T>> {
        let value = self.value().flip(axes)?;
        Var::record("flip", &[self], value, |_| Flip { axes: axes.into() })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_flip() {
        let a = leaf(&[2, 3, 4], 1);
        assert_grads(&[&a], |t| t.leaf(&a).flip(&[0, 2]));
    }
}
