//! Gluon's `HingeLoss`: the SVM margin loss on labels of ±1.

use super::{
    apply_weighting, batch_mean, check_labels, check_pred, targets_like, weight_and_batch_axis,
    Loss,
};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::Float;

const WHO: &str = "HingeLoss";

/// The hinge loss per sample (Gluon's `HingeLoss`), as MXNet 1.9 computes it:
/// `ℓ = relu(margin − pred · label) · weight` (weight when given), averaged over every
/// axis but `batch_axis`. Labels are −1 or 1; `margin` defaults to 1.
///
/// # Shapes
/// pred (N, …), label with as many elements (reshaped like pred) → (N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HingeLoss {
    margin: f64,
    weight: Option<f64>,
    batch_axis: isize,
}

/// [`HingeLoss`](struct@HingeLoss) in its default configuration (margin 1), as a value.
#[allow(non_upper_case_globals)]
pub const HingeLoss: HingeLoss = HingeLoss::new();

weight_and_batch_axis!(HingeLoss);

impl HingeLoss {
    /// The loss with Gluon's defaults (margin 1, no weight, batch axis 0).
    pub const fn new() -> Self {
        HingeLoss {
            margin: 1.0,
            weight: None,
            batch_axis: 0,
        }
    }

    /// The margin (default 1), finite.
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Per-sample losses; `label` is a tensor of −1s and 1s.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        label: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, label.into())
    }
}

impl<T: Float> Loss<T> for HingeLoss {
    fn name(&self) -> &'static str {
        WHO
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        if !self.margin.is_finite() {
            return Err(NnError::invalid(
                WHO,
                format!("the margin must be finite, got {}", self.margin),
            ));
        }
        let batch_axis = check_pred(WHO, pred, self.batch_axis)?;
        let label = targets_like(WHO, pred, labels)?;
        check_labels(WHO, label.value(), "−1 or 1", |v| v == -1.0 || v == 1.0)?;
        // margin − pred·label, as MXNet's _rminus_scalar
        let loss = pred
            .mul(&label)?
            .rsub_scalar(T::from_f64(self.margin))?
            .relu()?;
        batch_mean(apply_weighting(loss, self.weight)?, batch_axis)
    }
}
