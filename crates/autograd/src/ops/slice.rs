//! Taking a range along one axis (MXNet's `slice_axis`), and splitting a value into equal
//! sections (MXNet's `split`) as its composition.

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::{Float, Shape, Tensor, TensorError};
use smallvec::smallvec;

/// y = x[…, begin..end, …] along `axis`. Each element of y is one element of x, so
/// d y / d x is 1 there and 0 elsewhere: dx is zeros of x's shape with dy written into
/// the slice.
struct SliceAxis {
    x_shape: Shape,
    axis: usize,
    begin: usize,
}

impl<T: Float> Backward<T> for SliceAxis {
    fn name(&self) -> &'static str {
        "slice_axis"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        // in the (outer, len, inner) view, each outer row of dy (width · inner values)
        // lands at begin · inner within the same row of dx
        let (outer, len, inner) = self.x_shape.split_at_axis(self.axis);
        let row = grad.dims()[self.axis] * inner;
        let mut dx = Tensor::zeros(self.x_shape.clone());
        if row > 0 {
            for (o, dy) in grad.data().chunks_exact(row).enumerate() {
                let at = o * len * inner + self.begin * inner;
                dx.data_mut()[at..at + row].copy_from_slice(dy);
            }
        }
        debug_assert_eq!(grad.numel(), outer * row);
        Ok(smallvec![Some(dx)])
    }
}

impl<T: Float> Var<T> {
    /// Elements `begin..end` along `axis` (MXNet's `slice_axis(axis, begin, end)` with
    /// non-negative bounds). Bounds out of range, or `begin > end`, are an error naming
    /// the range, the axis and the shape.
    ///
    /// # Shapes
    /// (…, d_axis, …) → (…, end − begin, …).
    pub fn slice_axis(&self, axis: usize, begin: usize, end: usize) -> Result<Var<T>> {
        let value = self.value().slice_axis(axis, begin, end)?;
        Var::record("slice_axis", &[self], value, |_| SliceAxis {
            x_shape: self.shape().clone(),
            axis,
            begin,
        })
    }

    /// Cuts the value into `sections` equal pieces along `axis`, in order (MXNet's
    /// `split(num_outputs=sections, axis=axis)` without `squeeze_axis`). Each piece is a
    /// [`Var::slice_axis`], so gradients of all pieces add up in the input. An error when
    /// the axis is out of range or its length does not divide into `sections`.
    ///
    /// # Shapes
    /// (…, d_axis, …) → `sections` values of shape (…, d_axis / sections, …).
    pub fn split(&self, axis: usize, sections: usize) -> Result<Vec<Var<T>>> {
        let Some(&len) = self.dims().get(axis) else {
            return Err(TensorError::Axis {
                op: "split",
                axis,
                shape: self.shape().clone(),
            }
            .into());
        };
        if sections == 0 || len % sections != 0 {
            return Err(AutogradError::invalid(
                "split",
                format!(
                    "axis {axis} of shape {} has length {len}, which does not divide into \
                     {sections} equal sections",
                    self.shape()
                ),
            ));
        }
        let step = len / sections;
        (0..sections)
            .map(|i| self.slice_axis(axis, i * step, (i + 1) * step))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_slice_axis_inner_and_outer_axes() {
        let a = leaf(&[3, 5, 2], 1);
        assert_grads(&[&a], |t| t.leaf(&a).slice_axis(1, 1, 4)?.sigmoid());
        assert_grads(&[&a], |t| t.leaf(&a).slice_axis(0, 2, 3));
        assert_grads(&[&a], |t| t.leaf(&a).slice_axis(2, 0, 2));
    }

    #[test]
    fn gradcheck_two_overlapping_slices_of_one_value() {
        // y = x[0..3] · x[1..4] along axis 0: the overlap gets gradient from both
        let a = leaf(&[4, 3], 2);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.slice_axis(0, 0, 3)?.mul(&x.slice_axis(0, 1, 4)?)
        });
    }

    #[test]
    fn gradcheck_split_and_rejoin_in_another_order() {
        let a = leaf(&[2, 6], 3);
        assert_grads(&[&a], |t| {
            let parts = t.leaf(&a).split(1, 3)?;
            Var::concat(&[&parts[2], &parts[0].tanh()?, &parts[1]], 1)
        });
    }

    #[test]
    fn slice_backward_zero_fills_outside_the_slice() {
        // x (2, 3), y = x[:, 1..2]; dy = [10, 20] → dx = [[0, 10, 0], [0, 20, 0]]
        let a = Leaf::new(Tensor::<f32>::zeros([2, 3]));
        let tape = Tape::new();
        let y = tape.leaf(&a).slice_axis(1, 1, 2).unwrap();
        let head = Tensor::from_f64s(&[10., 20.], [2, 1]).unwrap();
        y.backward_with(Some(&head), false).unwrap();
        assert_eq!(a.grad().unwrap().data(), &[0., 10., 0., 0., 20., 0.]);
        // an empty slice is a value with no elements, and its gradient is all zeros
        let tape = Tape::new();
        let y = tape.leaf(&a).slice_axis(1, 2, 2).unwrap();
        assert_eq!(y.dims(), &[2, 0]);
        y.sum().unwrap().backward().unwrap();
        assert_eq!(a.grad().unwrap().data(), &[0.; 6]);
    }

    #[test]
    fn split_pieces_in_order() {
        let x = Var::constant(Tensor::<f64>::arange(12).reshape([2, 6]).unwrap());
        let parts = x.split(1, 3).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].value().data(), &[2., 3., 8., 9.]);
    }

    #[test]
    fn bad_slices_and_splits_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2, 5]));
        let err = x.slice_axis(1, 3, 6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slice_axis: range 3..6 is out of bounds for axis 1 of shape [2, 5]"
        );
        assert!(x.slice_axis(1, 4, 2).is_err());
        assert_eq!(
            x.slice_axis(2, 0, 1).unwrap_err().to_string(),
            "slice_axis: axis 2 is out of range for shape [2, 5] (rank 2)"
        );
        assert_eq!(
            x.split(1, 2).unwrap_err().to_string(),
            "split: axis 1 of shape [2, 5] has length 5, which does not divide into 2 equal \
             sections"
        );
        assert!(x.split(0, 0).is_err());
        assert_eq!(
            x.split(2, 1).unwrap_err().to_string(),
            "split: axis 2 is out of range for shape [2, 5] (rank 2)"
        );
    }
}
