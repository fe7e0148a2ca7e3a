//! Sums over all elements or chosen axes, and means as their composition with a scale.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;

/// y = Σ x over some axes. d y / d x = 1: dx is dy repeated along the summed axes.
struct Sum {
    x_shape: Shape,
    /// The shape of y with the summed axes kept as length 1.
    kept: Shape,
}

impl<T: Float> Backward<T> for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(
            grad.into_reshape(self.kept.clone())?
                .broadcast_to(self.x_shape.clone())?
        )])
    }
}

impl<T: Float> Var<T> {
    /// Sum of all elements, as a scalar (shape `[]`).
    pub fn sum(&self) -> Result<Var<T>> {
        let value = Tensor::scalar(self.value().sum_all());
        Var::record("sum", &[self], value, |_| Sum {
            x_shape: self.shape().clone(),
            kept: Shape::from(vec![1; self.shape().rank()]),
        })
    }

    /// Sum over `axes`, keeping them as length 1 when `keepdims`.
    pub fn sum_axes(&self, axes: &[usize], keepdims: bool) -> Result<Var<T>> {
        let value = self.value().sum(axes, keepdims)?;
        let mut kept: Vec<usize> = self.dims().to_vec();
        axes.iter().for_each(|&a| kept[a] = 1);
        Var::record("sum", &[self], value, |_| Sum {
            x_shape: self.shape().clone(),
            kept: kept.into(),
        })
    }

    /// Mean of all elements, as a scalar.
    pub fn mean(&self) -> Result<Var<T>> {
        self.sum()?.div_scalar(T::from_usize(self.value().numel()))
    }

    /// Mean over `axes`.
    pub fn mean_axes(&self, axes: &[usize], keepdims: bool) -> Result<Var<T>> {
        let count: usize = axes
            .iter()
            .map(|&a| self.dims().get(a).copied().unwrap_or(1))
            .product();
        self.sum_axes(axes, keepdims)?
            .div_scalar(T::from_usize(count))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_sum_all_and_axes() {
        let a = leaf(&[2, 3, 4], 1);
        assert_grads(&[&a], |t| t.leaf(&a).sum());
        assert_grads(&[&a], |t| t.leaf(&a).sum_axes(&[0, 2], false));
        assert_grads(&[&a], |t| t.leaf(&a).sum_axes(&[1], true));
    }

    #[test]
    fn gradcheck_mean_all_and_axes() {
        let a = leaf(&[3, 5], 2);
        assert_grads(&[&a], |t| t.leaf(&a).mean());
        assert_grads(&[&a], |t| t.leaf(&a).square()?.mean_axes(&[1], false));
    }
}
