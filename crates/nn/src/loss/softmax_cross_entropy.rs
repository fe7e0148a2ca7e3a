//! Gluon's `SoftmaxCrossEntropyLoss` (alias `SoftmaxCELoss`): on class indices or on
//! one-hot/probability labels, from logits or log-probabilities, along any axis.

use super::{
    apply_weighting, batch_mean, check_labels, check_pred, resolve_axis, targets_like,
    weight_and_batch_axis, Loss,
};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::{Float, Shape};
use std::borrow::Cow;

const WHO: &str = "SoftmaxCrossEntropyLoss";

/// Cross-entropy between softmax(pred) along `axis` and the labels, per sample (Gluon's
/// `SoftmaxCrossEntropyLoss`), as MXNet 1.9's `hybrid_forward` computes it:
///
/// ```text
/// logp = pred                      if from_logits (pred holds log-probabilities)
///        log_softmax(pred, axis)   otherwise: (x − max) − ln Σ e^(x − max)
/// ℓ    = −pick(logp, label, axis, keepdims)      sparse_label: label holds class indices
///        −Σ_axis (logp · label)  (keepdims)      otherwise: one-hot or probability rows
/// ℓ    = ℓ · weight                              when a weight is given
/// out  = mean(ℓ, every axis but batch_axis)      Kahan sum / count, as MXNet's mean
/// ```
///
/// Defaults as Gluon's: `axis(-1)`, `sparse_label(true)`, `from_logits(false)`, no weight,
/// `batch_axis(0)`. On (N, C) logits with class indices the fused
/// [`Var::softmax_cross_entropy`] computes ℓ_n = ln Σ e^(x − max) − (x_label − max),
/// the same value bit for bit (−(a − b) = b − a in floating point).
///
/// Labels out of range are errors (MXNet's `pick` would clip them to the last class).
///
/// # Shapes
/// pred (N, …) with the classes along `axis` → (N). With `sparse_label`, the labels are
/// one class index per lane of pred along `axis`: a slice or vector of them in row-major
/// order (N for (N, C) logits), or a tensor of integers whose shape is pred's without
/// `axis` (or with it as length 1). Otherwise a tensor with as many elements as pred
/// (reshaped to pred's shape) of values in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxCrossEntropyLoss {
    axis: isize,
    sparse_label: bool,
    from_logits: bool,
    weight: Option<f64>,
    batch_axis: isize,
}

/// [`SoftmaxCrossEntropyLoss`](struct@SoftmaxCrossEntropyLoss) in its default configuration, as a value (it was a unit
/// struct): `SoftmaxCrossEntropyLoss.forward(&logits, &labels)`.
#[allow(non_upper_case_globals)]
pub const SoftmaxCrossEntropyLoss: SoftmaxCrossEntropyLoss = SoftmaxCrossEntropyLoss::new();

/// Gluon's alias of [`SoftmaxCrossEntropyLoss`](struct@SoftmaxCrossEntropyLoss).
pub type SoftmaxCELoss = SoftmaxCrossEntropyLoss;

weight_and_batch_axis!(SoftmaxCrossEntropyLoss);

impl SoftmaxCrossEntropyLoss {
    /// The loss with Gluon's defaults.
    pub const fn new() -> Self {
        SoftmaxCrossEntropyLoss {
            axis: -1,
            sparse_label: true,
            from_logits: false,
            weight: None,
            batch_axis: 0,
        }
    }

    /// The axis of the classes (default −1, the last; negative counts from the end).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Whether the labels are class indices (default) or, when false, one-hot or
    /// probability rows of pred's shape.
    pub fn sparse_label(mut self, sparse: bool) -> Self {
        self.sparse_label = sparse;
        self
    }

    /// Whether pred already holds log-probabilities (e.g. from `log_softmax`), so no
    /// log-softmax is taken (default false).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Per-sample losses; `labels` are class indices (a slice, a vector, a tensor) or,
    /// with `sparse_label(false)`, a tensor of one-hot or probability rows.
    pub fn forward<'a, T: Float>(
        &self,
        pred: &Var<T>,
        labels: impl Into<LabelsRef<'a, T>>,
    ) -> Result<Var<T>> {
        self.loss(pred, labels.into())
    }

    /// The class index of every lane of `pred` along `axis`, checked against its length.
    fn class_indices<'a, T: Float>(
        pred: &Var<T>,
        axis: usize,
        labels: LabelsRef<'a, T>,
    ) -> Result<Cow<'a, [usize]>> {
        let classes = pred.dims()[axis];
        let lanes = pred.value().numel() / classes;
        match labels {
            LabelsRef::Classes(c) => {
                if c.len() != lanes {
                    return Err(NnError::invalid(
                        WHO,
                        format!(
                            "{} labels for the {lanes} lanes of pred {} along axis {axis}",
                            c.len(),
                            pred.shape()
                        ),
                    ));
                }
                if let Some((i, &l)) = c.iter().enumerate().find(|(_, &l)| l >= classes) {
                    return Err(NnError::invalid(
                        WHO,
                        format!("label {l} of sample {i} is out of range for {classes} classes"),
                    ));
                }
                Ok(Cow::Borrowed(c))
            }
            LabelsRef::Targets(t) => {
                let mut kept = pred.dims().to_vec();
                kept[axis] = 1;
                let mut without = pred.dims().to_vec();
                without.remove(axis);
                if t.dims() != without && t.dims() != kept {
                    let hint = if t.shape() == pred.shape() {
                        "; for one-hot or probability labels use sparse_label(false)"
                    } else {
                        ""
                    };
                    return Err(NnError::invalid(
                        WHO,
                        format!(
                            "class-index labels must have shape {} (pred {} without axis {axis}), got {}{hint}",
                            Shape::from(without),
                            pred.shape(),
                            t.shape()
                        ),
                    ));
                }
                let expected = format!("a class index in 0..{classes}");
                check_labels(WHO, t, &expected, |v| {
                    v >= 0.0 && v < classes as f64 && v.fract() == 0.0
                })?;
                Ok(Cow::Owned(
                    t.data().iter().map(|v| v.to_f64() as usize).collect(),
                ))
            }
        }
    }
}

impl<T: Float> Loss<T> for SoftmaxCrossEntropyLoss {
    fn name(&self) -> &'static str {
        WHO
    }

    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>> {
        let batch_axis = check_pred(WHO, pred, self.batch_axis)?;
        let rank = pred.dims().len();
        let axis = resolve_axis(WHO, "axis", self.axis, rank)?;
        let mut kept = pred.dims().to_vec();
        kept[axis] = 1;
        let log_probs = || -> Result<Var<T>> {
            if self.from_logits {
                Ok(pred.clone())
            } else {
                Ok(pred.log_softmax(axis)?)
            }
        };
        let fused = rank == 2 && axis == 1 && !self.from_logits;
        let loss = if self.sparse_label {
            let in_loss = |e: kiln_autograd::AutogradError| NnError::from(e).in_layer(WHO);
            match labels {
                // the fused op checks the labels itself
                LabelsRef::Classes(c) if fused => pred
                    .softmax_cross_entropy(c)
                    .map_err(in_loss)?
                    .reshape(kept)?,
                _ => {
                    let index = Self::class_indices(pred, axis, labels)?;
                    if fused {
                        pred.softmax_cross_entropy(&index)
                            .map_err(in_loss)?
                            .reshape(kept)?
                    } else {
                        log_probs()?.pick(axis, &index, true)?.neg()?
                    }
                }
            }
        } else {
            if labels.classes().is_some() {
                return Err(NnError::invalid(
                    WHO,
                    format!(
                        "sparse_label(false) takes one-hot or probability labels of pred's shape {}, got class indices (the default sparse_label(true) takes those)",
                        pred.shape()
                    ),
                ));
            }
            let label = targets_like(WHO, pred, labels)?;
            check_labels(WHO, label.value(), "in [0, 1]", |v| {
                (0.0..=1.0).contains(&v)
            })?;
            log_probs()?
                .mul(&label)?
                .sum_compensated(&[axis], true)?
                .neg()?
        };
        batch_mean(apply_weighting(loss, self.weight)?, batch_axis)
    }
}
