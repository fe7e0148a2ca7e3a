//! Joining values along an axis (MXNet's `concat`); its inverse, cutting one into pieces,
//! is in `slice.rs`.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::SmallVec;

/// y = [x₀, x₁, …] joined along `axis`. Each xᵢ is a block of y, so d y / d xᵢ selects
/// that block: dxᵢ is the slice of dy along `axis` where xᵢ lies.
struct Concat {
    axis: usize,
    /// Each input's length along `axis`, in order.
    lengths: SmallVec<[usize; 4]>,
}

impl<T: Float> Backward<T> for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let mut start = 0;
        let mut grads = Grads::new();
        for (&len, &need) in self.lengths.iter().zip(needs) {
            grads.push(if need {
                Some(grad.slice_axis(self.axis, start, start + len)?)
            } else {
                None
            });
            start += len;
        }
        Ok(grads)
    }
}

impl<T: Float> Var<T> {
    /// Joins `vars` along `axis` (MXNet's `concat(*data, dim=axis)`); every other
    /// dimension must agree. An error names every shape and the axis.
    ///
    /// # Shapes
    /// (d₀, …, aᵢ, …, d_r) for each input i → (d₀, …, Σ aᵢ, …, d_r).
    pub fn concat(vars: &[&Var<T>], axis: usize) -> Result<Var<T>> {
        let tensors: Vec<&Tensor<T>> = vars.iter().map(|v| v.value()).collect();
        let value = Tensor::concat(&tensors, axis)?;
        Var::record("concat", vars, value, |_| Concat {
            axis,
            lengths: vars.iter().map(|v| v.dims()[axis]).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{AutogradError, Leaf, Tape, Var};
    use kiln_tensor::{Tensor, TensorError};

    #[test]
    fn gradcheck_concat_three_inputs_middle_axis() {
        let (a, b, c) = (
            leaf(&[2, 1, 3], 1),
            leaf(&[2, 3, 3], 2),
            leaf(&[2, 2, 3], 3),
        );
        assert_grads(&[&a, &b, &c], |t| {
            Var::concat(&[&t.leaf(&a), &t.leaf(&b), &t.leaf(&c)], 1)?.tanh()
        });
    }

    #[test]
    fn gradcheck_concat_value_used_twice_and_a_constant() {
        // y = [a, 2a, k] along axis 0: da = dy₀ + 2 dy₁; the constant gets nothing
        let a = leaf(&[2, 3], 4);
        let k = (*leaf(&[1, 3], 5).value()).clone();
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            Var::concat(&[&x, &x.mul_scalar(2.0)?, &t.constant(k.clone())], 0)
        });
    }

    #[test]
    fn concat_backward_hands_each_input_its_block() {
        let a = Leaf::new(Tensor::<f64>::zeros([1, 2]));
        let b = Leaf::new(Tensor::<f64>::zeros([2, 2]));
        let tape = Tape::new();
        let y = Var::concat(&[&tape.leaf(&a), &tape.leaf(&b)], 0).unwrap();
        assert_eq!(y.dims(), &[3, 2]);
        let head = Tensor::from_f64s(&[1., 2., 3., 4., 5., 6.], [3, 2]).unwrap();
        y.backward_with(Some(&head), false).unwrap();
        assert_eq!(a.grad().unwrap().data(), &[1., 2.]);
        assert_eq!(b.grad().unwrap().data(), &[3., 4., 5., 6.]);
    }

    #[test]
    fn concat_refuses_mismatched_shapes_and_axes() {
        let tape = Tape::<f32>::new();
        let (a, b) = (
            tape.constant(Tensor::zeros([2, 3])),
            tape.constant(Tensor::zeros([3, 4])),
        );
        let err = Var::concat(&[&a, &b, &a], 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "concat: shapes [2, 3], [3, 4], [2, 3] must agree outside axis 1"
        );
        let err = Var::concat(&[&a, &a], 2).unwrap_err();
        assert!(matches!(
            err,
            AutogradError::Tensor(TensorError::Axis {
                op: "concat",
                axis: 2,
                ..
            })
        ));
        assert!(Var::<f32>::concat(&[], 0).is_err());
    }
}
