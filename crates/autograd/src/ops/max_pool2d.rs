//! Max pooling.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::pool2d::{max_pool2d, max_pool2d_backward, max_pool2d_with_argmax};
use kiln_tensor::{Float, Pool2dParams, Shape, Tensor};
use smallvec::smallvec;

/// y = max over each window. d y / d x = 1 at the window's first maximum, 0 elsewhere:
/// each dy is routed to the position the forward recorded.
struct MaxPool2d {
    x_shape: Shape,
    argmax: Vec<u32>,
    params: Pool2dParams,
}

impl<T: Float> Backward<T> for MaxPool2d {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let dx = max_pool2d_backward(&grad, &self.argmax, &self.x_shape, &self.params)?;
        Ok(smallvec![Some(dx)])
    }
}

impl<T: Float> Var<T> {
    /// Max pooling, as [`kiln_tensor::pool2d::max_pool2d`].
    ///
    /// # Shapes
    /// (N, C, H, W) → (N, C, H_out, W_out).
    pub fn max_pool2d(&self, params: &Pool2dParams) -> Result<Var<T>> {
        // the argmax is for the backward pass only
        let (y, argmax) = if Var::will_record(&[self]) {
            max_pool2d_with_argmax(self.value(), params)?
        } else {
            (max_pool2d(self.value(), params)?, Vec::new())
        };
        Var::record("max_pool2d", &[self], y, move |_| MaxPool2d {
            x_shape: self.shape().clone(),
            argmax,
            params: *params,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::ops::testing::assert_grads;
    use crate::Leaf;
    use kiln_tensor::{Pool2dParams, Tensor};
    use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

    /// Distinct values 0.01 apart in random order: no window has ties, and a finite
    /// difference step cannot change which element is the maximum.
    pub fn tie_free(shape: &[usize], seed: u64) -> Leaf<f64> {
        let n: usize = shape.iter().product();
        let mut v: Vec<f64> = (0..n).map(|i| 0.01 * i as f64 - 0.005 * n as f64).collect();
        v.shuffle(&mut StdRng::seed_from_u64(seed));
        Leaf::new(Tensor::from_f64s(&v, shape).unwrap())
    }

    fn check(shape: &[usize], p: Pool2dParams) {
        let x = tie_free(shape, 7);
        assert_grads(&[&x], |t| t.leaf(&x).max_pool2d(&p));
    }

    #[test]
    fn gradcheck_max_pool2d_window2_stride2() {
        check(&[2, 3, 6, 6], Pool2dParams::new(2));
    }

    #[test]
    fn gradcheck_max_pool2d_padding_overlap() {
        check(&[1, 2, 5, 5], Pool2dParams::new(3).stride(2).padding(1));
    }

    #[test]
    fn gradcheck_max_pool2d_ceil_mode_non_square() {
        check(
            &[2, 1, 5, 7],
            Pool2dParams::new((2, 3)).stride((2, 2)).ceil_mode(true),
        );
    }
}
