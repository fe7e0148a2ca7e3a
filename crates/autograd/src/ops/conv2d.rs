//! 2-d convolution (cross-correlation) with optional bias, and the true convolution as
//! its composition with a kernel flip.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::conv2d::{
    conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
};
use kiln_tensor::{Conv2dParams, Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = conv2d(x, W) + b. dx = conv2d_backward_input(dy, W) (GEMM + col2im);
/// dW = conv2d_backward_weight(dy, x) (im2col + GEMM); db = Σ_{n,h,w} dy.
struct Conv2d<T: Float> {
    x: Rc<Tensor<T>>,
    w: Rc<Tensor<T>>,
    params: Conv2dParams,
}

impl<T: Float> Backward<T> for Conv2d<T> {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let p = &self.params;
        let gx = if needs[0] {
            Some(conv2d_backward_input(&grad, &self.w, self.x.shape(), p)?)
        } else {
            None
        };
        let gw = if needs[1] {
            Some(conv2d_backward_weight(&grad, &self.x, self.w.shape(), p)?)
        } else {
            None
        };
        let mut grads: Grads<T> = smallvec![gx, gw];
        if needs.len() == 3 {
            grads.push(if needs[2] {
                Some(conv2d_backward_bias(&grad)?)
            } else {
                None
            });
        }
        Ok(grads)
    }
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
        let y = conv2d(self.value(), weight.value(), bias.map(Var::value), params)?;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Var::record("conv2d", &inputs, y, |_| Conv2d {
            x: Rc::clone(self.value_rc()),
            w: Rc::clone(weight.value_rc()),
            params: *params,
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
    use kiln_tensor::Conv2dParams;

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
