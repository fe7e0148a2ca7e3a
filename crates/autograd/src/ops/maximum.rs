//! Element-wise maximum and minimum of two values, with broadcasting, and MXNet's rule
//! for where the gradient goes when the two are equal.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;
use std::borrow::Cow;
use std::rc::Rc;

/// y = max(a, b) or min(a, b) (broadcast). Where y takes a, d y / d a = 1 and
/// d y / d b = 0, and the other way round; MXNet decides by two masks (its
/// `_backward_maximum`/`_backward_broadcast_maximum` are `BackwardUseIn<ge, lt>`, the
/// minimum's `<le, gt>`): da = dy ⊙ [a ≥ b], db = dy ⊙ [a < b] for the maximum,
/// da = dy ⊙ [a ≤ b], db = dy ⊙ [a > b] for the minimum, each summed back to its input's
/// shape. So a tie sends the whole gradient to a, and where either is NaN neither mask is
/// set and neither input gets any.
struct Extremum<T: Float> {
    name: &'static str,
    a: Rc<Tensor<T>>,
    b: Rc<Tensor<T>>,
    out: Shape,
    to_a: fn(T, T) -> bool,
    to_b: fn(T, T) -> bool,
}

/// `t` read as a tensor of the broadcast shape `out`: itself when it already has it.
fn widened<'a, T: Float>(t: &'a Tensor<T>, out: &Shape) -> Result<Cow<'a, Tensor<T>>> {
    Ok(if t.shape() == out {
        Cow::Borrowed(t)
    } else {
        Cow::Owned(t.broadcast_to(out.clone())?)
    })
}

impl<T: Float> Backward<T> for Extremum<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let (a, b) = (widened(&self.a, &self.out)?, widened(&self.b, &self.out)?);
        let masked = |to: fn(T, T) -> bool, shape: &Shape| -> Result<Tensor<T>> {
            let mask = a.zip_map(
                &b,
                self.name,
                |a, b| if to(a, b) { T::ONE } else { T::ZERO },
            )?;
            // dy · 1 or dy · 0, a product as MXNet's (so a NaN dy stays NaN)
            Ok(grad.mul(&mask)?.sum_to_shape(shape)?)
        };
        let ga = if needs[0] {
            Some(masked(self.to_a, self.a.shape())?)
        } else {
            None
        };
        let gb = if needs[1] {
            Some(masked(self.to_b, self.b.shape())?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
}

impl<T: Float> Var<T> {
    /// The larger of each pair, with NumPy broadcasting (MXNet's `broadcast_maximum`;
    /// NaN if either is NaN).
    ///
    /// Gradient, as MXNet's kernel: da = dy where a ≥ b, db = dy where a < b (a tie goes
    /// to `self`; where either is NaN, neither gets any).
    ///
    /// # Shapes
    /// Any two shapes that broadcast together → their broadcast shape.
    pub fn maximum(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let value = self.value().maximum(rhs.value())?;
        Var::record("maximum", &[self, rhs], value, |y| Extremum {
            name: "maximum",
            a: Rc::clone(self.value_rc()),
            b: Rc::clone(rhs.value_rc()),
            out: y.shape().clone(),
            to_a: |a, b| a >= b,
            to_b: |a, b| a < b,
        })
    }

    /// The smaller of each pair, with NumPy broadcasting (MXNet's `broadcast_minimum`;
    /// NaN if either is NaN).
    ///
    /// Gradient, as MXNet's kernel: da = dy where a ≤ b, db = dy where a > b (a tie goes
    /// to `self`; where either is NaN, neither gets any).
    ///
    /// # Shapes
    /// Any two shapes that broadcast together → their broadcast shape.
    pub fn minimum(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let value = self.value().minimum(rhs.value())?;
        Var::record("minimum", &[self, rhs], value, |y| Extremum {
            name: "minimum",
            a: Rc::clone(self.value_rc()),
            b: Rc::clone(rhs.value_rc()),
            out: y.shape().clone(),
            to_a: |a, b| a <= b,
            to_b: |a, b| a > b,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
        Tensor::from_f64s(values, shape).unwrap()
    }

    /// (da, db) of Σ op(a, b) · head.
    fn grads(
        a: Tensor<f64>,
        b: Tensor<f64>,
        head: &[f64],
        op: fn(&Var<f64>, &Var<f64>) -> crate::Result<Var<f64>>,
    ) -> (Vec<f64>, Vec<f64>) {
        let (la, lb) = (Leaf::new(a), Leaf::new(b));
        let tape = Tape::new();
        let y = op(&tape.leaf(&la), &tape.leaf(&lb)).unwrap();
        let head = Tensor::from_f64s(head, y.shape().clone()).unwrap();
        y.backward_with(Some(&head), false).unwrap();
        let da = la.grad().unwrap().data().to_vec();
        let db = lb.grad().unwrap().data().to_vec();
        (da, db)
    }

    #[test]
    fn gradcheck_maximum_minimum_broadcast() {
        let (a, b) = (leaf(&[2, 1, 4], 1), leaf(&[3, 1], 2));
        assert_grads(&[&a, &b], |t| t.leaf(&a).maximum(&t.leaf(&b)));
        assert_grads(&[&a, &b], |t| t.leaf(&a).minimum(&t.leaf(&b))?.sigmoid());
    }

    #[test]
    fn gradcheck_value_used_twice_ties_everywhere() {
        // max(x, x) = x: every element ties, the whole gradient goes to the first
        // operand, and the sum over both paths is 1 as it must be
        let a = leaf(&[5], 3);
        assert_grads(&[&a], |t| t.leaf(&a).maximum(&t.leaf(&a)));
        assert_grads(&[&a], |t| t.leaf(&a).minimum(&t.leaf(&a)));
        // max(x, −x) = |x|, away from 0
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.maximum(&x.neg()?)
        });
    }

    #[test]
    fn ties_go_to_the_first_operand_by_hand() {
        // a = [1, 2, 3], b = [1, 5, 0], dy = [10, 20, 30]
        // maximum: [a ≥ b] = [1, 0, 1] → da = [10, 0, 30]; [a < b] = [0, 1, 0] → db = [0, 20, 0]
        let (a, b) = (t(&[1., 2., 3.], &[3]), t(&[1., 5., 0.], &[3]));
        let head = [10., 20., 30.];
        let (da, db) = grads(a.clone(), b.clone(), &head, Var::maximum);
        assert_eq!((da, db), (vec![10., 0., 30.], vec![0., 20., 0.]));
        // minimum: [a ≤ b] = [1, 1, 0] → da = [10, 20, 0]; [a > b] = [0, 0, 1] → db = [0, 0, 30]
        let (da, db) = grads(a, b, &head, Var::minimum);
        assert_eq!((da, db), (vec![10., 20., 0.], vec![0., 0., 30.]));
    }

    #[test]
    fn ties_under_broadcasting_by_hand() {
        // a (2, 1) = [[2], [3]], b (3) = [1, 2, 3]; y = max = [[2, 2, 3], [3, 3, 3]]
        // [a ≥ b] = [[1, 1, 0], [1, 1, 1]], dy = 1 → da = row sums [2, 3]
        // [a < b] = [[0, 0, 1], [0, 0, 0]] → db = column sums [0, 0, 1]
        let (a, b) = (t(&[2., 3.], &[2, 1]), t(&[1., 2., 3.], &[3]));
        let (da, db) = grads(a.clone(), b.clone(), &[1.; 6], Var::maximum);
        assert_eq!((da, db), (vec![2., 3.], vec![0., 0., 1.]));
        // min = [[1, 2, 2], [1, 2, 3]]: [a ≤ b] = [[0, 1, 1], [0, 0, 1]] → da = [2, 1];
        // [a > b] = [[1, 0, 0], [1, 1, 0]] → db = [2, 1, 0]
        let (da, db) = grads(a, b, &[1.; 6], Var::minimum);
        assert_eq!((da, db), (vec![2., 1.], vec![2., 1., 0.]));
    }

    #[test]
    fn nan_takes_the_value_and_no_gradient() {
        let (a, b) = (t(&[f64::NAN, 1.], &[2]), t(&[1., f64::NAN], &[2]));
        let y = Var::constant(a.clone())
            .maximum(&Var::constant(b.clone()))
            .unwrap();
        assert!(y.value().data().iter().all(|v| v.is_nan()));
        let (da, db) = grads(a, b, &[1., 1.], Var::maximum);
        assert_eq!((da, db), (vec![0., 0.], vec![0., 0.]));
    }

    #[test]
    fn shapes_that_do_not_broadcast_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2, 3]));
        let y = Var::constant(Tensor::<f32>::zeros([4]));
        assert_eq!(
            x.maximum(&y).unwrap_err().to_string(),
            "maximum: shapes [2, 3] and [4] do not broadcast together"
        );
        assert!(x.minimum(&y).is_err());
    }
}
