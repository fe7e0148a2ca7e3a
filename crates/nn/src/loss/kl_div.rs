//! Gluon's `KLDivLoss`: the Kullback–Leibler divergence of a predicted distribution from
//! the label's, summed over every axis but the batch axis (MXNet 1.9; 1.8 averaged).

use super::{
    apply_weighting, batch_sum, check_labels, check_pred, resolve_axis, weight_and_batch_axis, Loss,
};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::Float;

const WHO: &str = "KLDivLoss";

/// The KL divergence per sample (Gluon's `KLDivLoss`), as MXNet 1.9's `hybrid_forward`
/// computes it, with labels z (probabilities) and ε = 1e-12:
///
/// ```text
/// logq = pred                     if from_logits (the default: pred holds log-probabilities)
///        log_softmax(pred, axis)  otherwise
/// ℓ    = z · (ln(z + ε) − logq) · weight   (weight when given)
/// out  = Σ ℓ over every axis but batch_axis
/// ```
///
/// MXNet 1.9 **sums** over the non-batch axes (`F.sum(loss, axis=batch_axis,
/// exclude=True)`, since apache/mxnet#19356, a backport of #18423); MXNet 1.0–1.8 took
/// the mean, the 1.9 value divided by the number of non-batch elements, and so does
/// MXNet 2.0's numpy-array Gluon (`_batch_mean`). Defaults: `from_logits(true)`, `axis(-1)` (used only without
/// from_logits), no weight, `batch_axis(0)`.
///
/// # Shapes
/// pred (N, …) and a label of the same shape with values in [0, 1] → (N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KLDivLoss {
    from_logits: bool,
    axis: isize,
    weight: Option<f64>,
    batch_axis: isize,
}

/// [`KLDivLoss`](struct@KLDivLoss) in its default configuration (pred holds log-probabilities), as a value.
#[allow(non_upper_case_globals)]
pub const KLDivLoss: KLDivLoss = KLDivLoss::new();

weight_and_batch_axis!(KLDivLoss);

impl KLDivLoss {
    /// The loss with Gluon's defaults (from_logits, axis −1, no weight, batch axis 0).
    pub const fn new() -> Self {
        KLDivLoss {
            from_logits: true,
            axis: -1,
            weight: None,
            batch_axis: 0,
        }
    }

    /// Whether pred already holds log-probabilities (default true); when false a
    /// log-softmax along `axis` is taken first.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// The axis of the log-softmax when not `from_logits` (default −1).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Per-sample losses; `label` is a tensor of probabilities of pred's shape.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }
}

impl<T: Float> Loss<T> for KLDivLoss {
    fn name(&self) -> &'static str {
        WHO
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let batch_axis = check_pred(WHO, pred, self.batch_axis)?;
        let z = labels.expect_targets(WHO)?;
        // MXNet's element-wise ops take equal shapes only (no reshape_like here)
        if z.shape() != pred.shape() {
            return Err(NnError::invalid(
                WHO,
                format!(
                    "the label must have the prediction's shape {}, got {}",
                    pred.shape(),
                    z.shape()
                ),
            ));
        }
        check_labels(WHO, z.value(), "a probability in [0, 1]", |v| {
            (0.0..=1.0).contains(&v)
        })?;
        let log_q = if self.from_logits {
            pred.clone()
        } else {
            let axis = resolve_axis(WHO, "axis", self.axis, pred.dims().len())?;
            pred.log_softmax(axis)?
        };
        let log_z = Var::constant(z.value().add_scalar(T::from_f64(1e-12)).log());
        let loss = log_z.sub(&log_q)?.mul(&z)?;
        batch_sum(apply_weighting(loss, self.weight)?, batch_axis)
    }
}
