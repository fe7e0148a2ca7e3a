//! 2-d convolution (cross-correlation) with optional bias, and the true convolution as
//! its composition with a kernel flip.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::conv2d::{
    conv2d_activation, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
};
use kiln_tensor::{Activation, Conv2dParams, Float, Tensor};
use smallvec::{smallvec, SmallVec};
use std::rc::Rc;

/// y = f(z), z = conv2d(x, W) + b, f an optional activation. dz = dy ⊙ f′ (written in
/// terms of y, which is saved); dx = conv2d_backward_input(dz, W);
/// dW = conv2d_backward_weight(dz, x); db = Σ_{n,h,w} dz.
struct Conv2d<T: Float> {
    x: Rc<Tensor<T>>,
    w: Rc<Tensor<T>>,
    params: Conv2dParams,
    /// The activation and the output it produced.
    activation: Option<(Activation, Rc<Tensor<T>>)>,
}

impl<T: Float> Backward<T> for Conv2d<T> {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn backward(&self, mut grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        if let Some((act, y)) = &self.activation {
            act.backward_in_place(grad.data_mut(), y.data());
        }
        conv2d_grads(&grad, &grad, &self.x, &self.w, &self.params, needs)
    }
}

/// The gradients of x, W and (if it is an input) b of a convolution, from the gradient of
/// its output before any activation; `bias_source` is any tensor whose sums per channel
/// equal `grad`'s (`grad` itself, or a smaller one that holds all its non-zeros).
pub(super) fn conv2d_grads<T: Float>(
    grad: &Tensor<T>,
    bias_source: &Tensor<T>,
    x: &Tensor<T>,
    w: &Tensor<T>,
    p: &Conv2dParams,
    needs: &[bool],
) -> Result<Grads<T>> {
    let gx = if needs[0] {
        Some(conv2d_backward_input(grad, w, x.shape(), p)?)
    } else {
        None
    };
    let gw = if needs[1] {
        Some(conv2d_backward_weight(grad, x, w.shape(), p)?)
    } else {
        None
    };
    let mut grads: Grads<T> = smallvec![gx, gw];
    if needs.len() == 3 {
        grads.push(if needs[2] {
            Some(conv2d_backward_bias(bias_source)?)
        } else {
            None
        });
    }
    Ok(grads)
}

impl<T: Float> Var<T> {
    /// 2-d cross-correlation, as [`kiln_tensor::conv2d::conv2d`].
    ///
    /// # Shapes
    /// x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out) →
    /// (N, C_out, H_out, W_out).
    pub fn conv2d(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        params: &Conv2dParams,
    ) -> Result<Var<T>> {
        self.conv2d_activation(weight, bias, params, None)
    }

    /// [`Var::conv2d`] followed by an activation, as one op: the forward applies it to
    /// each output tile in cache, the backward multiplies by its derivative in place.
    ///
    /// # Shapes
    /// As [`Var::conv2d`].
    pub fn conv2d_activation(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        params: &Conv2dParams,
        activation: Option<Activation>,
    ) -> Result<Var<T>> {
        let y = conv2d_activation(
            self.value(),
            weight.value(),
            bias.map(Var::value),
            params,
            activation,
        )?;
        let mut inputs: SmallVec<[&Var<T>; 3]> = smallvec![self, weight];
        inputs.extend(bias);
        Var::record("conv2d", &inputs, y, |y| Conv2d {
            x: Rc::clone(self.value_rc()),
            w: Rc::clone(weight.value_rc()),
            params: *params,
            activation: activation.map(|a| (a, Rc::clone(y))),
        })
    }

    /// True convolution: the kernel flipped up-down and left-right, then
    /// cross-correlated (D2L 6.2.5). Gradients flow through the flip.
    ///
    /// # Shapes
    /// As [`Var::conv2d`].
    pub fn convolve2d(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        params: &Conv2dParams,
    ) -> Result<Var<T>> {
        self.conv2d(&weight.flip(&[2, 3])?, bias, params)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use kiln_tensor::{Activation, Conv2dParams};

    fn check(x: &[usize], w: &[usize], bias: bool, p: Conv2dParams) {
        let (x, w, b) = (leaf(x, 1), leaf(w, 2), leaf(&[w[0]], 3));
        if bias {
            let all = [&x, &w, &b];
            assert_grads(&all, |t| {
                t.leaf(&x).conv2d(&t.leaf(&w), Some(&t.leaf(&b)), &p)
            });
        } else {
            assert_grads(&[&x, &w], |t| t.leaf(&x).conv2d(&t.leaf(&w), None, &p));
        }
    }

    #[test]
    fn gradcheck_conv2d_plain_with_bias() {
        check(&[2, 3, 6, 5], &[4, 3, 3, 3], true, Conv2dParams::default());
    }

    #[test]
    fn gradcheck_conv2d_stride2_padding() {
        check(
            &[2, 2, 7, 7],
            &[3, 2, 3, 3],
            true,
            Conv2dParams::default().stride(2).padding(1),
        );
    }

    #[test]
    fn gradcheck_conv2d_dilation2_non_square() {
        check(
            &[1, 2, 8, 9],
            &[2, 2, 2, 3],
            false,
            Conv2dParams::default().dilation(2).padding((1, 0)),
        );
    }

    #[test]
    fn gradcheck_conv2d_groups() {
        check(
            &[2, 4, 5, 5],
            &[6, 2, 3, 2],
            true,
            Conv2dParams::default().groups(2).stride((1, 2)),
        );
    }

    #[test]
    fn gradcheck_conv2d_one_by_one() {
        check(&[2, 3, 4, 4], &[5, 3, 1, 1], true, Conv2dParams::default());
    }

    #[test]
    fn gradcheck_conv2d_fused_activations() {
        let (x, w, b) = (
            leaf(&[2, 2, 5, 5], 7),
            leaf(&[3, 2, 3, 3], 8),
            leaf(&[3], 9),
        );
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::SoftRelu] {
            let p = Conv2dParams::default().padding(1);
            assert_grads(&[&x, &w, &b], |t| {
                t.leaf(&x)
                    .conv2d_activation(&t.leaf(&w), Some(&t.leaf(&b)), &p, Some(act))
            });
        }
    }

    #[test]
    fn gradcheck_convolve2d_true_convolution() {
        let (x, w) = (leaf(&[1, 2, 5, 5], 4), leaf(&[3, 2, 2, 3], 5));
        let p = Conv2dParams::default().padding(1);
        assert_grads(&[&x, &w], |t| t.leaf(&x).convolve2d(&t.leaf(&w), None, &p));
    }

    #[test]
    fn gradcheck_conv2d_value_used_twice() {
        // the same leaf as input and (reshaped) kernel: y = conv2d(a, reshape(a))
        let a = leaf(&[1, 1, 3, 3], 6);
        assert_grads(&[&a], |t| {
            let x = t.leaf(&a);
            x.conv2d(&x, None, &Conv2dParams::default().padding(1))
        });
    }
}
