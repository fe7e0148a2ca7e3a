//! Reordering axes: `permute` (NumPy's `transpose(axes)`) and `transpose` (swapping two).

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::{smallvec, SmallVec};

/// y = x with its axes reordered: y[i₀, …] = x at the index whose axis `axes[k]` is iₖ.
/// Moving the elements back is the inverse permutation: dx = permute(dy, inverse), with
/// inverse[axes[k]] = k.
struct Permute {
    name: &'static str,
    inverse: SmallVec<[usize; 4]>,
}

impl<T: Float> Backward<T> for Permute {
    fn name(&self) -> &'static str {
        self.name
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(grad.permute(&self.inverse)?)])
    }
}

impl<T: Float> Var<T> {
    /// Reorders the axes: output axis `k` is input axis `axes[k]` (as
    /// [`Tensor::permute`]; MXNet's `transpose(axes=…)`). `axes` must be a permutation
    /// of `0..rank`, else an error naming it and the shape.
    ///
    /// # Shapes
    /// (d₀, …, d_r) → (d_a₀, …, d_aᵣ) with aₖ = `axes[k]`.
    pub fn permute(&self, axes: &[usize]) -> Result<Var<T>> {
        let value = self.value().permute(axes)?;
        Var::record("permute", &[self], value, |_| {
            let mut inverse: SmallVec<[usize; 4]> = smallvec![0; axes.len()];
            for (k, &a) in axes.iter().enumerate() {
                inverse[a] = k;
            }
            Permute {
                name: "permute",
                inverse,
            }
        })
    }

    /// Swaps axes `a` and `b` (as [`Tensor::transpose`]; MXNet's `swapaxes`). A swap is
    /// its own inverse, so its gradient swaps the same two axes back.
    ///
    /// # Shapes
    /// (…, d_a, …, d_b, …) → (…, d_b, …, d_a, …).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Var<T>> {
        let value = self.value().transpose(a, b)?;
        Var::record("transpose", &[self], value, |_| {
            let mut axes: SmallVec<[usize; 4]> = (0..self.shape().rank()).collect();
            axes.swap(a, b);
            Permute {
                name: "transpose",
                inverse: axes,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_permute_cyclic_and_transpose() {
        let a = leaf(&[2, 3, 4], 1);
        assert_grads(&[&a], |t| t.leaf(&a).permute(&[2, 0, 1])?.sigmoid());
        assert_grads(&[&a], |t| t.leaf(&a).permute(&[1, 2, 0]));
        assert_grads(&[&a], |t| t.leaf(&a).transpose(0, 2)?.tanh());
    }

    #[test]
    fn gradcheck_value_used_twice_with_its_transpose() {
        // y = x ⊙ xᵀ for a square x: dx = dy ⊙ xᵀ + (dy ⊙ x)ᵀ
        let a = leaf(&[3, 3], 2);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.mul(&x.transpose(0, 1)?)
        });
    }

    #[test]
    fn permute_backward_undoes_a_cycle() {
        // x (1, 2, 3) permuted by [2, 0, 1] to (3, 1, 2): the head laid out as y's
        // elements must come back to x's positions: dx = permute(dy, [1, 2, 0])
        let x = Leaf::new(Tensor::<f64>::arange(6).reshape([1, 2, 3]).unwrap());
        let tape = Tape::new();
        let y = tape.leaf(&x).permute(&[2, 0, 1]).unwrap();
        assert_eq!(y.value().data(), &[0., 3., 1., 4., 2., 5.]);
        y.backward_with(Some(&y.value().clone()), false).unwrap();
        assert_eq!(x.grad().unwrap().data(), &[0., 1., 2., 3., 4., 5.]);
    }

    #[test]
    fn bad_axes_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2, 3]));
        assert_eq!(
            x.permute(&[0, 0]).unwrap_err().to_string(),
            "permute: [0, 0] is not a permutation of the axes of shape [2, 3]"
        );
        assert!(x.permute(&[0]).is_err());
        assert_eq!(
            x.transpose(0, 2).unwrap_err().to_string(),
            "transpose: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
    }
}
