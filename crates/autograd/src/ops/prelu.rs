//! PReLU: leaky ReLU whose slope is learned per channel (Gluon's `PReLU`, MXNet's
//! `LeakyReLU(act_type='prelu')`), with gradients for the input and the slope.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::elementwise::prelu_alpha_shape;
use kiln_tensor::{Float, Shape, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = x where x > 0, else α_c·x, with α broadcast along the channel axis (its shape
/// against x is `expanded`, (1, C, 1, …)).
/// d y / d x = 1 where x > 0, else α_c (MXNet's `xelu_grad(x, α)`: α_c at x = 0);
/// d y / d α_c = 0 where x > 0, else x (MXNet's `prelu_grad(x, α)`), so dα_c is the sum
/// of dy ⊙ [x ≤ 0]·x over every position of channel c (over everything when α is (1)).
struct Prelu<T: Float> {
    x: Rc<Tensor<T>>,
    alpha: Rc<Tensor<T>>,
    expanded: Shape,
}

impl<T: Float> Backward<T> for Prelu<T> {
    fn name(&self) -> &'static str {
        "prelu"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let dx = if needs[0] {
            let alpha = self
                .alpha
                .reshape(self.expanded.clone())?
                .broadcast_to(self.x.shape().clone())?;
            let slope =
                self.x
                    .zip_map(&alpha, "prelu", |x, a| if x > T::ZERO { T::ONE } else { a })?;
            Some(grad.mul(&slope)?)
        } else {
            None
        };
        let dalpha = if needs[1] {
            let per_element = grad.zip_map(&self.x, "prelu", |g, x| {
                g * if x > T::ZERO { T::ZERO } else { x }
            })?;
            Some(
                per_element
                    .sum_to_shape(&self.expanded)?
                    .into_reshape(self.alpha.shape().clone())?,
            )
        } else {
            None
        };
        Ok(smallvec![dx, dalpha])
    }
}

impl<T: Float> Var<T> {
    /// PReLU with slope `alpha`: y = x where x > 0, else α_c·x. `alpha` has shape (C), one
    /// slope per channel of axis 1 (axis 0 of a 1-d input), or (1), one slope for all
    /// (Gluon's `PReLU(in_channels=1)` default, initialised to 0.25 by the layer). Any
    /// other shape is an error naming both.
    ///
    /// Gradients, as MXNet's kernels: dx = dy where x > 0, else α_c·dy (α_c at x = 0);
    /// dα_c = Σ dy·x over the positions of channel c where x ≤ 0.
    ///
    /// # Shapes
    /// x (N, C, …), alpha (C) or (1) → (N, C, …).
    pub fn prelu(&self, alpha: &Var<T>) -> Result<Var<T>> {
        let value = self.value().prelu(alpha.value())?;
        let expanded = prelu_alpha_shape(self.shape(), alpha.shape())?;
        Var::record("prelu", &[self, alpha], value, |_| Prelu {
            x: Rc::clone(self.value_rc()),
            alpha: Rc::clone(alpha.value_rc()),
            expanded,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::{Leaf, Tape, Var};
    use kiln_tensor::Tensor;

    /// Uniform(−1, 1) values at least 0.05 from 0.
    fn off_the_kink(shape: &[usize], seed: u64) -> Leaf<f64> {
        Leaf::new(
            leaf(shape, seed)
                .value()
                .map(|x| x + if x >= 0.0 { 0.05 } else { -0.05 }),
        )
    }

    #[test]
    fn gradcheck_prelu_per_channel_and_shared() {
        let x = off_the_kink(&[2, 3, 2, 2], 1);
        let (per_channel, shared) = (leaf(&[3], 2), leaf(&[1], 3));
        assert_grads(&[&x, &per_channel], |t| {
            t.leaf(&x).prelu(&t.leaf(&per_channel))
        });
        assert_grads(&[&x, &shared], |t| t.leaf(&x).prelu(&t.leaf(&shared)));
        // a 2-d (N, C) input
        let x2 = off_the_kink(&[4, 3], 4);
        assert_grads(&[&x2, &per_channel], |t| {
            t.leaf(&x2).prelu(&t.leaf(&per_channel))
        });
    }

    #[test]
    fn gradcheck_value_used_twice() {
        // y = prelu(x, α) · x
        let (x, a) = (off_the_kink(&[2, 2, 3], 5), leaf(&[2], 6));
        assert_grads(&[&x, &a], |t| {
            let v = t.leaf(&x);
            v.prelu(&t.leaf(&a))?.mul(&v)
        });
    }

    #[test]
    fn gradients_by_hand() {
        // x (1, 2, 2): channel 0 = [−2, 0], channel 1 = [4, −1]; α = [0.5, 0.25]; dy = 1
        // y = [−1, 0, 4, −0.25]; dx = [0.5, 0.5 (x = 0 takes α), 1, 0.25]
        // dα = [−2 + 0, −1] (x where x ≤ 0, per channel)
        let x = Leaf::new(Tensor::<f32>::from_f64s(&[-2., 0., 4., -1.], [1, 2, 2]).unwrap());
        let a = Leaf::new(Tensor::<f32>::from_f64s(&[0.5, 0.25], [2]).unwrap());
        let tape = Tape::new();
        let y = tape.leaf(&x).prelu(&tape.leaf(&a)).unwrap();
        assert_eq!(y.value().data(), &[-1., 0., 4., -0.25]);
        y.sum().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().data(), &[0.5, 0.5, 1., 0.25]);
        assert_eq!(a.grad().unwrap().data(), &[-2., -1.]);
        // one α for both channels: dα = −2 + 0 − 1 = −3
        let shared = Leaf::new(Tensor::<f32>::from_f64s(&[0.25], [1]).unwrap());
        let tape = Tape::new();
        let y = tape.leaf(&x).prelu(&tape.leaf(&shared)).unwrap();
        y.sum().unwrap().backward().unwrap();
        assert_eq!(shared.grad().unwrap().data(), &[-3.]);
    }

    #[test]
    fn alpha_of_the_wrong_shape_is_an_error() {
        let x = Var::constant(Tensor::<f32>::zeros([1, 2, 2]));
        let a = Var::constant(Tensor::<f32>::zeros([3]));
        assert_eq!(
            x.prelu(&a).unwrap_err().to_string(),
            "prelu: alpha has shape [3] but the input [1, 2, 2] has 2 channels on axis 1; \
             alpha must have shape [2] or [1]"
        );
        assert!(x.prelu(&Var::constant(Tensor::zeros([1, 2]))).is_err());
    }
}
