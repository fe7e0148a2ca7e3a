//! Clipping to an interval (MXNet's `clip(a_min, a_max)`), bounds included in the
//! gradient as MXNet's kernel has it.

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = hi where x > hi, lo where x < lo, else x. d y / d x = 0 outside [lo, hi] and 1
/// inside it, the bounds themselves included (MXNet's `clip_grad` in
/// `src/operator/tensor/matrix_op-inl.h` writes 0 only where x > hi or x < lo, so a NaN x
/// passes its gradient too).
struct Clip<T: Float> {
    x: Rc<Tensor<T>>,
    lo: T,
    hi: T,
}

impl<T: Float> Backward<T> for Clip<T> {
    fn name(&self) -> &'static str {
        "clip"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let (lo, hi) = (self.lo, self.hi);
        let dx = grad.zip_map(
            &self.x,
            "clip",
            |g, x| {
                if x > hi || x < lo {
                    T::ZERO
                } else {
                    g
                }
            },
        )?;
        Ok(smallvec![Some(dx)])
    }
}

impl<T: Float> Var<T> {
    /// Each element limited to `[lo, hi]` (MXNet's `clip(x, a_min=lo, a_max=hi)`): hi where
    /// x > hi, lo where x < lo, else x (NaN stays NaN).
    ///
    /// Gradient, as MXNet's `clip_grad`: dy where lo ≤ x ≤ hi (a value exactly on a bound
    /// passes its gradient; so does NaN), 0 where x < lo or x > hi.
    ///
    /// `lo > hi`, or a NaN bound, is an error naming both (MXNet accepts it and clips to
    /// something meaningless).
    ///
    /// # Shapes
    /// Unchanged.
    pub fn clip(&self, lo: T, hi: T) -> Result<Var<T>> {
        if lo > hi || lo.is_nan() || hi.is_nan() {
            return Err(AutogradError::invalid(
                "clip",
                format!("the bounds must satisfy lo ≤ hi, got lo = {lo}, hi = {hi}"),
            ));
        }
        let value = self.value().map(|x| {
            if x > hi {
                hi
            } else if x < lo {
                lo
            } else {
                x
            }
        });
        Var::record("clip", &[self], value, |_| Clip {
            x: Rc::clone(self.value_rc()),
            lo,
            hi,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_clip_away_from_the_bounds() {
        // uniform(−1, 1) values, none within 1e-6 of ±0.5
        let a = leaf(&[4, 5], 1);
        assert!(a
            .value()
            .data()
            .iter()
            .all(|v| (v.abs() - 0.5).abs() > 1e-4));
        assert_grads(&[&a], |t| t.leaf(&a).clip(-0.5, 0.5));
        // a value used twice: clip(x) · x
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.clip(-0.5, 0.5)?.mul(&x)
        });
    }

    #[test]
    fn the_bounds_pass_the_gradient_by_hand() {
        // x = [−2, −1, 0, 1, 2, NaN] clipped to [−1, 1]: y = [−1, −1, 0, 1, 1, NaN];
        // dy = [1, 2, 3, 4, 5, 6] → dx = [0, 2, 3, 4, 0, 6] (bounds and NaN pass)
        let x =
            Leaf::new(Tensor::<f32>::from_f64s(&[-2., -1., 0., 1., 2., f64::NAN], [6]).unwrap());
        let tape = Tape::new();
        let y = tape.leaf(&x).clip(-1.0, 1.0).unwrap();
        assert_eq!(&y.value().data()[..5], &[-1., -1., 0., 1., 1.]);
        assert!(y.value().data()[5].is_nan());
        let head = Tensor::from_f64s(&[1., 2., 3., 4., 5., 6.], [6]).unwrap();
        y.backward_with(Some(&head), false).unwrap();
        assert_eq!(x.grad().unwrap().data(), &[0., 2., 3., 4., 0., 6.]);
        // lo = hi is allowed: every value becomes it, and only exact hits pass
        let z = Var::constant(Tensor::<f32>::from_f64s(&[-3., 7.], [2]).unwrap());
        assert_eq!(z.clip(2.0, 2.0).unwrap().value().data(), &[2., 2.]);
    }

    #[test]
    fn bounds_out_of_order_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2]));
        assert_eq!(
            x.clip(1.0, -1.0).unwrap_err().to_string(),
            "clip: the bounds must satisfy lo ≤ hi, got lo = 1, hi = -1"
        );
        assert!(x.clip(f32::NAN, 1.0).is_err());
        assert!(x.clip(0.0, f32::NAN).is_err());
    }
}
