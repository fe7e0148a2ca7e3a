//! Average pooling.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::pool2d::{avg_pool2d, avg_pool2d_backward};
use kiln_tensor::{Float, Pool2dParams, Shape, Tensor};
use smallvec::smallvec;

/// y = Σ window / divisor. d y / d x = 1 / divisor for every in-bounds element of the
/// window (the divisor as the forward counted it).
struct AvgPool2d {
    x_shape: Shape,
    params: Pool2dParams,
}

impl<T: Float> Backward<T> for AvgPool2d {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        Ok(smallvec![Some(avg_pool2d_backward(
            &grad,
            &self.x_shape,
            &self.params
        )?)])
    }
}

impl<T: Float> Var<T> {
    /// Average pooling, as [`kiln_tensor::pool2d::avg_pool2d`].
    ///
    /// # Shapes
    /// (N, C, H, W) → (N, C, H_out, W_out).
    pub fn avg_pool2d(&self, params: &Pool2dParams) -> Result<Var<T>> {
        let y = avg_pool2d(self.value(), params)?;
        Var::record("avg_pool2d", &[self], y, |_| AvgPool2d {
            x_shape: self.shape().clone(),
            params: *params,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use kiln_tensor::Pool2dParams;

    fn check(shape: &[usize], p: Pool2dParams) {
        let x = leaf(shape, 9);
        assert_grads(&[&x], |t| t.leaf(&x).avg_pool2d(&p));
    }

    #[test]
    fn gradcheck_avg_pool2d_window2() {
        check(&[2, 2, 4, 6], Pool2dParams::new(2));
    }

    #[test]
    fn gradcheck_avg_pool2d_padding_count_include_pad() {
        check(&[1, 2, 5, 5], Pool2dParams::new(3).stride(2).padding(1));
    }

    #[test]
    fn gradcheck_avg_pool2d_count_include_pad_false() {
        check(
            &[1, 2, 5, 5],
            Pool2dParams::new(3)
                .stride(2)
                .padding(1)
                .count_include_pad(false),
        );
    }

    #[test]
    fn gradcheck_avg_pool2d_ceil_mode() {
        check(
            &[2, 1, 5, 7],
            Pool2dParams::new((3, 2)).stride(2).ceil_mode(true),
        );
        check(
            &[1, 1, 6, 5],
            Pool2dParams::new(2)
                .padding(1)
                .ceil_mode(true)
                .count_include_pad(false),
        );
    }
}
