//! Softmax and log-softmax along one axis.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// y = softmax(x). d y_i / d x_j = y_i (δ_ij − y_j), so dx = y ⊙ (dy − Σ_axis dy ⊙ y).
struct Softmax<T: Float> {
    y: Rc<Tensor<T>>,
    axis: usize,
}

impl<T: Float> Backward<T> for Softmax<T> {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let dot = grad.mul(&self.y)?.sum(&[self.axis], true)?;
        Ok(smallvec![Some(grad.sub(&dot)?.mul(&self.y)?)])
    }
}

/// y = log_softmax(x) = x − log Σ e^x. d y_i / d x_j = δ_ij − softmax_j, so
/// dx = dy − e^y ⊙ Σ_axis dy.
struct LogSoftmax<T: Float> {
    y: Rc<Tensor<T>>,
    axis: usize,
}

impl<T: Float> Backward<T> for LogSoftmax<T> {
    fn name(&self) -> &'static str {
        "log_softmax"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let total = grad.sum(&[self.axis], true)?;
        Ok(smallvec![Some(grad.sub(&self.y.exp().mul(&total)?)?)])
    }
}

impl<T: Float> Var<T> {
    /// Softmax along `axis` (stable: the maximum is subtracted first).
    pub fn softmax(&self, axis: usize) -> Result<Var<T>> {
        let value = self.value().softmax(axis)?;
        Var::record("softmax", &[self], value, |y| Softmax {
            y: Rc::clone(y),
            axis,
        })
    }

    /// Log-softmax along `axis` (stable).
    pub fn log_softmax(&self, axis: usize) -> Result<Var<T>> {
        let value = self.value().log_softmax(axis)?;
        Var::record("log_softmax", &[self], value, |y| LogSoftmax {
            y: Rc::clone(y),
            axis,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_softmax_both_axes() {
        let a = leaf(&[3, 4], 1);
        assert_grads(&[&a], |t| t.leaf(&a).softmax(1));
        assert_grads(&[&a], |t| t.leaf(&a).softmax(0));
    }

    #[test]
    fn gradcheck_log_softmax_both_axes() {
        let a = leaf(&[2, 3, 4], 2);
        assert_grads(&[&a], |t| t.leaf(&a).log_softmax(2));
        assert_grads(&[&a], |t| t.leaf(&a).log_softmax(1));
    }
}
