//! The fused, numerically stable softmax cross-entropy on integer labels (Gluon's
//! `SoftmaxCrossEntropyLoss` with `sparse_label=True`).

use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::softmax::max_and_log_sum_exp;
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;

/// ℓ_n = log Σ_c e^{x_nc} − x_{n,y_n}. d ℓ_n / d x_nc = softmax(x_n)_c − [c = y_n], so
/// dx_n = dℓ_n · (p_n − onehot(y_n)); p is saved by the forward pass.
struct SoftmaxCrossEntropy<T: Float> {
    probs: Tensor<T>,
    labels: Vec<usize>,
}

impl<T: Float> Backward<T> for SoftmaxCrossEntropy<T> {
    fn name(&self) -> &'static str {
        "softmax_cross_entropy"
    }

    fn backward(&self, grad: Tensor<T>, _needs: &[bool]) -> Result<Grads<T>> {
        let classes = self.probs.dims()[1];
        let mut dx = self.probs.clone();
        for ((row, &label), &g) in dx
            .data_mut()
            .chunks_mut(classes)
            .zip(&self.labels)
            .zip(grad.data())
        {
            row[label] -= T::ONE;
            row.iter_mut().for_each(|v| *v *= g);
        }
        Ok(smallvec![Some(dx)])
    }
}

impl<T: Float> Var<T> {
    /// Per-sample cross-entropy between `softmax(self)` and integer `labels`, computed
    /// from the log-sum-exp so no logit overflows.
    ///
    /// # Shapes
    /// logits (N, C), labels N values in 0..C → (N).
    pub fn softmax_cross_entropy(&self, labels: &[usize]) -> Result<Var<T>> {
        let op = "softmax_cross_entropy";
        let x = self.value();
        if x.rank() != 2 {
            return Err(AutogradError::invalid(
                op,
                format!("logits must be 2-d (N, C), got shape {}", x.shape()),
            ));
        }
        let (n, classes) = (x.dims()[0], x.dims()[1]);
        if n == 0 || classes == 0 {
            return Err(AutogradError::invalid(
                op,
                format!("empty batch or no classes (logits {})", x.shape()),
            ));
        }
        if labels.len() != n {
            return Err(AutogradError::invalid(
                op,
                format!(
                    "{} labels for {n} samples (logits {})",
                    labels.len(),
                    x.shape()
                ),
            ));
        }
        if let Some((i, &bad)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(AutogradError::invalid(
                op,
                format!("label {bad} of sample {i} is out of range for {classes} classes"),
            ));
        }
        let mut losses = Vec::with_capacity(n);
        let mut probs = Tensor::zeros(x.shape().clone());
        for ((row, p), &label) in x
            .data()
            .chunks(classes.max(1))
            .zip(probs.data_mut().chunks_mut(classes.max(1)))
            .zip(labels)
        {
            let (m, log_sum) = max_and_log_sum_exp(row);
            losses.push(log_sum - (row[label] - m));
            for (p, &v) in p.iter_mut().zip(row) {
                *p = (v - m - log_sum).exp();
            }
        }
        let value = Tensor::from_vec(losses, [n])?;
        Var::record(op, &[self], value, |_| SoftmaxCrossEntropy {
            probs,
            labels: labels.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Var;
    use kiln_tensor::Tensor;

    #[test]
    fn gradcheck_softmax_cross_entropy() {
        let a = leaf(&[4, 5], 1);
        assert_grads(&[&a], |t| {
            t.leaf(&a)
                .mul_scalar(3.0)?
                .softmax_cross_entropy(&[0, 4, 2, 2])
        });
    }

    #[test]
    fn matches_the_unfused_formula_and_survives_huge_logits() {
        let x = Tensor::<f64>::from_f64s(&[1.0, 2.0, 3.0, 1000.0, 0.0, -1000.0], [2, 3]).unwrap();
        let l = Var::constant(x.clone())
            .softmax_cross_entropy(&[2, 0])
            .unwrap();
        let expect0 = -x.log_softmax(1).unwrap().data()[2];
        assert!((l.value().data()[0] - expect0).abs() < 1e-12);
        assert_eq!(l.value().data()[1], 0.0);
        assert!(l.value().all_finite());
    }

    #[test]
    fn bad_labels_are_errors() {
        let x = Var::constant(Tensor::<f32>::zeros([2, 10]));
        let err = x.softmax_cross_entropy(&[3, 12]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "softmax_cross_entropy: label 12 of sample 1 is out of range for 10 classes"
        );
        assert!(x.softmax_cross_entropy(&[1]).is_err());
    }
}
