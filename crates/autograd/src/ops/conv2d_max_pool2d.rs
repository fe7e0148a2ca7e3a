//! Convolution, activation and max pooling as one op (LeNet's layer pairs): the forward
//! never writes the full-size activation map, the backward applies the activation's
//! derivative to the pooled gradient only.

use super::conv2d::conv2d_grads;
use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::conv2d::pooled::{
    conv2d_max_pool2d, conv2d_max_pool2d_backward_z, conv2d_max_pool2d_with_argmax,
};
use kiln_tensor::{Activation, Conv2dParams, Float, Pool2dParams, Shape, Tensor};
use smallvec::{smallvec, SmallVec};
use std::rc::Rc;

/// y = max_pool(f(z)), z = conv2d(x, W) + b. dz = the window maxima's share of dy ⊙ f′(y)
/// (f′ from the saved y); then dx, dW, db as for a convolution.
struct Conv2dMaxPool2d<T: Float> {
    x: Rc<Tensor<T>>,
    w: Rc<Tensor<T>>,
    conv: Conv2dParams,
    pool: Pool2dParams,
    activation: Option<Activation>,
    y: Rc<Tensor<T>>,
    argmax: Vec<u32>,
    z_shape: Shape,
}

impl<T: Float> Backward<T> for Conv2dMaxPool2d<T> {
    fn name(&self) -> &'static str {
        "conv2d_max_pool2d"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let g = conv2d_max_pool2d_backward_z(
            grad,
            &self.y,
            &self.argmax,
            self.activation,
            &self.z_shape,
            &self.pool,
        )?;
        let grads = conv2d_grads(&g.dz, &g.pooled, &self.x, &self.w, &self.conv, needs);
        // the same sizes come back next step: keep their memory on this thread
        g.dz.recycle();
        g.pooled.recycle();
        grads
    }
}

impl<T: Float> Var<T> {
    /// `max_pool2d(f(conv2d(x, W) + b))` in one pass; equal to the three ops in a row
    /// (every activation is non-decreasing, so pooling may come before it).
    ///
    /// # Shapes
    /// x (N, C, H, W), weight (C_out, C/groups, KH, KW), bias (C_out) → (N, C_out, H_p, W_p).
    pub fn conv2d_max_pool2d(
        &self,
        weight: &Var<T>,
        bias: Option<&Var<T>>,
        conv: &Conv2dParams,
        activation: Option<Activation>,
        pool: &Pool2dParams,
    ) -> Result<Var<T>> {
        let mut inputs: SmallVec<[&Var<T>; 3]> = smallvec![self, weight];
        inputs.extend(bias);
        let (x, w, b) = (self.value(), weight.value(), bias.map(Var::value));
        // the argmax is for the backward pass only (recording it was a third of pooling's
        // time at batch 1)
        let (y, argmax) = if Var::will_record(&inputs) {
            conv2d_max_pool2d_with_argmax(x, w, b, conv, activation, pool)?
        } else {
            (
                conv2d_max_pool2d(x, w, b, conv, activation, pool)?,
                Vec::new(),
            )
        };
        let g = conv.geometry("conv2d", self.shape(), weight.shape())?;
        Var::record("conv2d_max_pool2d", &inputs, y, move |y| Conv2dMaxPool2d {
            x: Rc::clone(self.value_rc()),
            w: Rc::clone(weight.value_rc()),
            conv: *conv,
            pool: *pool,
            activation,
            y: Rc::clone(y),
            argmax,
            z_shape: g.out_shape(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Tape;
    use kiln_tensor::{Activation, Conv2dParams, Pool2dParams};

    #[test]
    fn gradcheck_conv2d_max_pool2d() {
        let (x, w, b) = (
            leaf(&[2, 2, 8, 9], 11),
            leaf(&[3, 2, 3, 3], 12),
            leaf(&[3], 13),
        );
        let conv = Conv2dParams::default().padding(1);
        for (act, pool) in [
            (Some(Activation::Sigmoid), Pool2dParams::new(2)),
            (
                Some(Activation::Tanh),
                Pool2dParams::new(3).stride(2).ceil_mode(true),
            ),
            (None, Pool2dParams::new((2, 3)).padding(1)),
        ] {
            assert_grads(&[&x, &w, &b], |t| {
                t.leaf(&x)
                    .conv2d_max_pool2d(&t.leaf(&w), Some(&t.leaf(&b)), &conv, act, &pool)
            });
        }
    }

    #[test]
    fn equals_the_three_ops_and_their_gradients() {
        let (x, w, b) = (
            leaf(&[3, 1, 12, 12], 14),
            leaf(&[4, 1, 5, 5], 15),
            leaf(&[4], 16),
        );
        let (conv, pool, act) = (
            Conv2dParams::default(),
            Pool2dParams::new(2),
            Some(Activation::Sigmoid),
        );
        let grads = |fused: bool| {
            let t = Tape::new();
            let (xv, wv, bv) = (t.leaf(&x), t.leaf(&w), t.leaf(&b));
            let y = if fused {
                xv.conv2d_max_pool2d(&wv, Some(&bv), &conv, act, &pool)
                    .unwrap()
            } else {
                xv.conv2d_activation(&wv, Some(&bv), &conv, act)
                    .unwrap()
                    .max_pool2d(&pool)
                    .unwrap()
            };
            let out = y.value().clone();
            y.square().unwrap().sum().unwrap().backward().unwrap();
            let g = [&x, &w, &b].map(|l| l.grad().unwrap().clone());
            (out, g)
        };
        let (fused, unfused) = (grads(true), grads(false));
        assert_eq!(fused.0, unfused.0);
        for (a, b) in fused.1.iter().zip(&unfused.1) {
            for (p, q) in a.data().iter().zip(b.data()) {
                assert!((p - q).abs() < 1e-12, "{p} vs {q}");
            }
        }
    }

    /// Outside recording no argmax is kept, and the values are the same to the bit (f32,
    /// where inference pools by a chain of vmaxps).
    #[test]
    fn inference_gives_the_recorded_values() {
        use crate::{Leaf, Var};
        let f32_leaf = |l: Leaf<f64>| Leaf::new(l.value().cast::<f32>());
        let (x, w, b) = (
            f32_leaf(leaf(&[2, 1, 12, 12], 17)),
            f32_leaf(leaf(&[4, 1, 5, 5], 18)),
            f32_leaf(leaf(&[4], 19)),
        );
        let (conv, pool) = (Conv2dParams::default(), Pool2dParams::new(2));
        let act = Some(Activation::Relu);
        let t = Tape::new();
        let (xv, wv, bv) = (t.leaf(&x), t.leaf(&w), t.leaf(&b));
        assert!(Var::will_record(&[&xv, &wv]));
        let recorded = xv
            .conv2d_max_pool2d(&wv, Some(&bv), &conv, act, &pool)
            .unwrap();
        assert!(recorded.requires_grad());
        let (xc, wc, bc) = [&x, &w, &b]
            .map(|l| Var::constant((*l.value()).clone()))
            .into();
        assert!(!Var::will_record(&[&xc, &wc, &bc]));
        let inferred = xc
            .conv2d_max_pool2d(&wc, Some(&bc), &conv, act, &pool)
            .unwrap();
        assert!(!inferred.requires_grad());
        let paused = {
            let _pause = t.pause();
            assert!(!Var::will_record(&[&xv, &wv]));
            xv.conv2d_max_pool2d(&wv, Some(&bv), &conv, act, &pool)
                .unwrap()
        };
        let bits = |v: &Var<f32>| {
            v.value()
                .data()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&inferred), bits(&recorded));
        assert_eq!(bits(&paused), bits(&recorded));
    }
}
