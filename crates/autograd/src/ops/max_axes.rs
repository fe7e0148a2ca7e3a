//! The maximum over chosen axes, with its gradient routed to the first maximum of each
//! lane, as max pooling routes it.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::{smallvec, SmallVec};

/// y = max of x over `axes`. y equals one element of its lane, so d y / d x is 1 at that
/// element and 0 at the others; with ties the element is the first one (in row-major
/// order) holding the maximum, or the first NaN. dx is zeros with each dy at its lane's
/// first maximum.
///
/// The lanes are read from x permuted to (kept axes…, reduced axes…), each group in its
/// original order, so position j within a lane follows row-major order in x.
struct MaxAxes {
    /// The permutation that put the reduced axes last.
    perm: SmallVec<[usize; 4]>,
    /// The dimensions of x under `perm`.
    permuted: Shape,
    /// For each element of y, the position of its first maximum within its lane.
    argmax: Vec<usize>,
    /// The number of elements in a lane (the product of the reduced lengths).
    lane: usize,
}

impl<T: Float> Backward<T> for MaxAxes {
    fn name(&self) -> &'static str {
        "max_axes"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let mut dx = vec![T::ZERO; self.argmax.len() * self.lane];
        for (r, (&j, &g)) in self.argmax.iter().zip(grad.data()).enumerate() {
            dx[r * self.lane + j] = g;
        }
        let mut inverse: SmallVec<[usize; 4]> = smallvec![0; self.perm.len()];
        for (k, &a) in self.perm.iter().enumerate() {
            inverse[a] = k;
        }
        let dx = Tensor::from_vec(dx, self.permuted.clone())?.permute(&inverse)?;
        Ok(smallvec![Some(dx)])
    }
}

/// The position of the first maximum of each lane of `lane` elements (the first NaN if
/// the lane has one), with the rule of [`Tensor::argmax`].
fn first_maxima<T: Float>(data: &[T], lane: usize) -> Vec<usize> {
    data.chunks_exact(lane)
        .map(|l| {
            let mut best = 0;
            for (j, &v) in l.iter().enumerate().skip(1) {
                let b = l[best];
                if (v.is_nan() && !b.is_nan()) || v > b {
                    best = j;
                }
            }
            best
        })
        .collect()
}

impl<T: Float> Var<T> {
    /// The maximum over `axes`, keeping them as length 1 when `keepdims` (MXNet's
    /// `max(axis=axes, keepdims=…)`; NaN wins). Axes out of range, given twice or of
    /// length 0 are an error naming the shape.
    ///
    /// Gradient: the whole of each dy goes to the *first* element of its lane (in
    /// row-major order) that holds the maximum, or to its first NaN, as max pooling does.
    /// MXNet's `max` differs on ties: its `_backward_max`
    /// (`ReduceAxesBackwardUseInOut<mshadow_op::eq>`,
    /// `src/operator/tensor/broadcast_reduce_minmax_value.cc`) gives the full dy to *every*
    /// element equal to the maximum. Without ties the two agree.
    ///
    /// # Shapes
    /// (d₀, …, d_r) → the same without the axes in `axes` (with them as 1 if `keepdims`).
    pub fn max_axes(&self, axes: &[usize], keepdims: bool) -> Result<Var<T>> {
        let value = self.value().max(axes, keepdims)?;
        // the argmax is for the backward pass only
        let backward = if Var::will_record(&[self]) {
            let mut reduced: SmallVec<[usize; 4]> = axes.into();
            reduced.sort_unstable();
            let perm: SmallVec<[usize; 4]> = (0..self.shape().rank())
                .filter(|a| !reduced.contains(a))
                .chain(reduced.iter().copied())
                .collect();
            let lane: usize = reduced.iter().map(|&a| self.dims()[a]).product();
            let permuted = self.value().permute(&perm)?;
            MaxAxes {
                argmax: first_maxima(permuted.data(), lane),
                perm,
                permuted: permuted.shape().clone(),
                lane,
            }
        } else {
            MaxAxes {
                perm: SmallVec::new(),
                permuted: Shape::scalar(),
                argmax: Vec::new(),
                lane: 1,
            }
        };
        Var::record("max_axes", &[self], value, move |_| backward)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::max_pool2d::tests::tie_free;
    use crate::ops::testing::assert_grads;
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_max_axes_one_several_and_all() {
        let a = tie_free(&[3, 4, 5], 1);
        assert_grads(&[&a], |t| t.leaf(&a).max_axes(&[1], false));
        assert_grads(&[&a], |t| t.leaf(&a).max_axes(&[2, 0], true));
        assert_grads(&[&a], |t| t.leaf(&a).max_axes(&[0, 1, 2], false));
        assert_grads(&[&a], |t| t.leaf(&a).max_axes(&[], false));
    }

    #[test]
    fn gradcheck_value_used_twice_minus_its_maximum() {
        // y = x − max(x, axis 1) broadcast back (softmax's shift): the maximum's element
        // gets dy from both paths
        let a = tie_free(&[4, 6], 2);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.sub(&x.max_axes(&[1], true)?)?.exp()
        });
    }

    /// dx of Σ max_axes(x) · head.
    fn dx(x: Tensor<f64>, axes: &[usize], head: &[f64]) -> Vec<f64> {
        let leaf = Leaf::new(x);
        let tape = Tape::new();
        let y = tape.leaf(&leaf).max_axes(axes, false).unwrap();
        let head = Tensor::from_f64s(head, y.shape().clone()).unwrap();
        y.backward_with(Some(&head), false).unwrap();
        let g = leaf.grad().unwrap().data().to_vec();
        g
    }

    #[test]
    fn ties_go_to_the_first_maximum_by_hand() {
        // x = [[1, 3, 3], [2, 2, 0]] over axis 1: maxima 3 (first at column 1) and 2
        // (first at column 0); dy = [10, 20] → dx = [[0, 10, 0], [20, 0, 0]]
        let x = Tensor::from_f64s(&[1., 3., 3., 2., 2., 0.], [2, 3]).unwrap();
        assert_eq!(dx(x, &[1], &[10., 20.]), &[0., 10., 0., 20., 0., 0.]);
        // x (2, 2, 2) over axes 0 and 2, with 9 at [0, 0, 1] (flat 1) and [1, 0, 0] (flat 4):
        // row-major order meets flat 1 first, so it takes dy[0]; lane 1 ([:, 1, :]) is all 0
        // and its first element, flat 2, takes dy[1]
        let mut v = [0.; 8];
        v[1] = 9.;
        v[4] = 9.;
        let x = Tensor::from_f64s(&v, [2, 2, 2]).unwrap();
        assert_eq!(
            dx(x, &[2, 0], &[10., 20.]),
            &[0., 10., 20., 0., 0., 0., 0., 0.]
        );
        // a NaN wins the value and the gradient: the first NaN of the lane
        let x = Tensor::<f64>::from_f64s(&[1., f64::NAN, 5., f64::NAN], [4]).unwrap();
        let y = Var::constant(x.clone()).max_axes(&[0], false).unwrap();
        assert!(y.value().item().unwrap().is_nan());
        assert_eq!(dx(x, &[0], &[7.]), &[0., 7., 0., 0.]);
    }

    #[test]
    fn bad_axes_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2, 3]));
        assert_eq!(
            x.max_axes(&[2], false).unwrap_err().to_string(),
            "max: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
        assert!(x.max_axes(&[1, 1], false).is_err());
        let empty = Var::constant(Tensor::<f32>::zeros([2, 0]));
        assert!(empty.max_axes(&[1], false).is_err());
    }
}
