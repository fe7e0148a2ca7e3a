//! Matrix product, 2-d or batched 3-d.

use crate::tape::{Backward, Grads};
use crate::{Result, Var};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// C = A · B. d C / d A: dA = dC · Bᵀ; d C / d B: dB = Aᵀ · dC (per batch). The
/// transposes are strides, not copies.
struct Matmul<T: Float> {
    a: Rc<Tensor<T>>,
    b: Rc<Tensor<T>>,
}

impl<T: Float> Backward<T> for Matmul<T> {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let ga = if needs[0] {
            Some(grad.matmul_t(false, &self.b, true)?)
        } else {
            None
        };
        let gb = if needs[1] {
            Some(self.a.matmul_t(true, &grad, false)?)
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
}

impl<T: Float> Var<T> {
    /// Matrix product.
    ///
    /// # Shapes
    /// (m, k) · (k, n) → (m, n), or batched (b, m, k) · (b, k, n) → (b, m, n).
    pub fn matmul(&self, rhs: &Var<T>) -> Result<Var<T>> {
        let value = self.value().matmul(rhs.value())?;
        Var::record("matmul", &[self, rhs], value, |_| Matmul {
            a: Rc::clone(self.value_rc()),
            b: Rc::clone(rhs.value_rc()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};

    #[test]
    fn gradcheck_matmul_2d() {
        let (a, b) = (leaf(&[3, 4], 1), leaf(&[4, 2], 2));
        assert_grads(&[&a, &b], |t| t.leaf(&a).matmul(&t.leaf(&b)));
    }

    #[test]
    fn gradcheck_matmul_batched() {
        let (a, b) = (leaf(&[2, 3, 4], 3), leaf(&[2, 4, 5], 4));
        assert_grads(&[&a, &b], |t| t.leaf(&a).matmul(&t.leaf(&b)));
    }

    #[test]
    fn gradcheck_matmul_value_used_twice() {
        // y = A · A for square A
        let a = leaf(&[3, 3], 5);
        assert_grads(&[&a], |t| t.leaf(&a).matmul(&t.leaf(&a)));
    }
}
