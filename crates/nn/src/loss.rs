//! Gluon's losses behind one trait, [`Loss`]: [`SoftmaxCrossEntropyLoss`] on integer labels
//! and [`L2Loss`]. Each returns one loss per sample; sum or average them as the training
//! loop needs.

use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::Float;

/// A loss (Gluon's `gluon.loss.Loss`): one value per sample from the network's output
/// and the labels. Training loops take any loss; the book's is
/// [`SoftmaxCrossEntropyLoss`]. A loss is plain configuration, shared with the threads
/// of [`crate::DataParallel`], hence `Send + Sync`.
pub trait Loss<T: Float>: Send + Sync {
    /// Gluon's class name, for error messages (`SoftmaxCrossEntropyLoss`).
    fn name(&self) -> &'static str;

    /// Per-sample losses: `pred` (N, …) and N labels → (N).
    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>>;
}

/// Cross-entropy of `softmax(pred)` against integer labels, per sample, computed stably
/// from the logits (Gluon's `SoftmaxCrossEntropyLoss` with `sparse_label=True`).
///
/// # Shapes
/// pred (N, C), labels N values in 0..C → (N).
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxCrossEntropyLoss;

impl SoftmaxCrossEntropyLoss {
    /// The loss.
    pub fn new() -> Self {
        SoftmaxCrossEntropyLoss
    }

    /// Per-sample losses; `labels` are class indices (a slice, a vector or [`LabelsRef`]).
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        labels: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, labels.into())
    }
}

impl<T: Float> Loss<T> for SoftmaxCrossEntropyLoss {
    fn name(&self) -> &'static str {
        "SoftmaxCrossEntropyLoss"
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let classes = labels.classes().ok_or_else(|| {
            NnError::invalid(
                "SoftmaxCrossEntropyLoss",
                "needs one class index per sample, got a tensor of targets",
            )
        })?;
        Ok(pred.softmax_cross_entropy(classes)?)
    }
}

/// Half the squared error, averaged over all axes but the first (Gluon's `L2Loss`):
/// `ℓ_n = mean_i ½ (pred_ni − label_ni)²`.
///
/// # Shapes
/// pred (N, …), label with as many elements (reshaped like pred) → (N).
#[derive(Clone, Copy, Debug, Default)]
pub struct L2Loss;

impl L2Loss {
    /// The loss.
    pub fn new() -> Self {
        L2Loss
    }

    /// Per-sample losses; `label` is a tensor or value of targets.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }
}

impl<T: Float> Loss<T> for L2Loss {
    fn name(&self) -> &'static str {
        "L2Loss"
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let label = labels.expect_targets("L2Loss")?;
        if pred.value().numel() != label.value().numel() || pred.dims().is_empty() {
            return Err(NnError::invalid(
                "L2Loss",
                format!(
                    "prediction {} and label {} do not match",
                    pred.shape(),
                    label.shape()
                ),
            ));
        }
        let label = label.reshape(pred.shape().clone())?;
        let half_sq = pred.sub(&label)?.square()?.mul_scalar(T::from_f64(0.5))?;
        let axes: Vec<usize> = (1..pred.dims().len()).collect();
        Ok(half_sq.mean_axes(&axes, false)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_autograd::gradcheck;
    use kiln_autograd::{Leaf, Tape};
    use kiln_tensor::Tensor;

    #[test]
    fn l2_loss_is_half_mean_square_per_sample() {
        let pred = Var::constant(Tensor::<f64>::from_f64s(&[1., 2., 3., 4.], [2, 2]).unwrap());
        let label = Var::constant(Tensor::<f64>::from_f64s(&[1., 0., 0., 0.], [4]).unwrap());
        let l = L2Loss::new().forward(&pred, &label).unwrap();
        // sample 0: ½(0 + 4)/2 = 1; sample 1: ½(9 + 16)/2 = 6.25
        assert_eq!(l.value().data(), &[1.0, 6.25]);
        assert!(L2Loss::new()
            .forward(&pred, &Var::constant(Tensor::zeros([3])))
            .is_err());
    }

    #[test]
    fn gradcheck_l2_loss() {
        let p = Leaf::new(Tensor::from_f64s(&[0.3, -0.2, 0.9, 1.5, -1.0, 0.1], [3, 2]).unwrap());
        let y = Tensor::from_f64s(&[0.0, 1.0, 0.5, 0.5, -1.0, 2.0], [3, 2]).unwrap();
        let r = gradcheck(std::slice::from_ref(&p), |t: &Tape<f64>| {
            L2Loss.forward(&t.leaf(&p), &t.constant(y.clone()))
        })
        .unwrap();
        assert!(r.passed(1e-6), "{r}");
    }
}
