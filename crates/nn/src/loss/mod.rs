//! Gluon's losses behind one trait, [`Loss`], one file per family, each computing what
//! MXNet 1.9's `python/mxnet/gluon/loss.py` computes: per-sample values, Gluon's scalar
//! `weight` applied before the final average, and `batch_axis`.
//!
//! Every loss ends as Gluon's do: `_apply_weighting` multiplies the element-wise loss by
//! `weight` (a scalar rounded to the element type, as MXNet's `_mul_scalar` does), then
//! `mean(loss, axis=batch_axis, exclude=True)` averages every axis but the batch axis
//! with MXNet's Kahan-compensated sum divided by the count
//! ([`Var::mean_compensated`]); [`KLDivLoss`](struct@KLDivLoss) sums instead. The output has one value per
//! sample: shape `(pred.dims()[batch_axis],)`.
//!
//! Each loss type is also a value of its default configuration, as the unit structs of
//! earlier versions were: `L2Loss.forward(&pred, &label)` is Gluon's `L2Loss()(pred,
//! label)`, and `L2Loss::new().weight(2.0)` configures one.

mod hinge;
mod kl_div;
mod regression;
mod sigmoid_bce;
mod softmax_cross_entropy;

pub use hinge::HingeLoss;
pub use kl_div::KLDivLoss;
pub use regression::{HuberLoss, L1Loss, L2Loss};
pub use sigmoid_bce::{SigmoidBCELoss, SigmoidBinaryCrossEntropyLoss};
pub use softmax_cross_entropy::{SoftmaxCELoss, SoftmaxCrossEntropyLoss};

use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_autograd::Var;
use kiln_tensor::{Float, Shape, Tensor};

/// A loss (Gluon's `gluon.loss.Loss`): one value per sample from the network's output
/// and the labels. Training loops take any loss; the book's is
/// [`SoftmaxCrossEntropyLoss`](struct@SoftmaxCrossEntropyLoss). A loss is plain configuration, shared with the threads
/// of [`crate::DataParallel`], hence `Send + Sync`.
pub trait Loss<T: Float>: Send + Sync {
    /// Gluon's class name, for error messages (`SoftmaxCrossEntropyLoss`).
    fn name(&self) -> &'static str;

    /// Per-sample losses: `pred` (N, …) and N labels → (N).
    fn loss(&self, pred: &Var<T>, labels: LabelsRef<'_, T>) -> Result<Var<T>>;
}

/// The builder methods every loss shares: Gluon's `weight` and `batch_axis`.
macro_rules! weight_and_batch_axis {
    ($loss:ident) => {
        impl $loss {
            /// Gluon's `weight`: a scalar the element-wise loss is multiplied by (rounded
            /// to the element type) before it is averaged.
            pub fn weight(mut self, weight: f64) -> Self {
                self.weight = weight.into();
                self
            }

            /// Gluon's `batch_axis` (default 0; negative counts from the end): the axis
            /// that indexes samples, the only one not averaged away.
            pub fn batch_axis(mut self, axis: isize) -> Self {
                self.batch_axis = axis;
                self
            }
        }

        impl Default for $loss {
            fn default() -> Self {
                $loss::new()
            }
        }
    };
}
pub(crate) use weight_and_batch_axis;

/// A Gluon axis (negative counts from the end) as an index into `rank` axes.
pub(crate) fn resolve_axis(who: &str, what: &str, axis: isize, rank: usize) -> Result<usize> {
    let resolved = if axis < 0 {
        rank.checked_sub(axis.unsigned_abs())
    } else {
        Some(axis.unsigned_abs()).filter(|&a| a < rank)
    };
    resolved.ok_or_else(|| {
        NnError::invalid(
            who,
            format!("{what} {axis} is out of range for a prediction with {rank} axes"),
        )
    })
}

/// Checks that `pred` has an axis and an element, and returns its batch axis.
pub(crate) fn check_pred<T: Float>(who: &str, pred: &Var<T>, batch_axis: isize) -> Result<usize> {
    if pred.dims().is_empty() {
        return Err(NnError::invalid(
            who,
            "the prediction is a scalar; it needs a batch axis",
        ));
    }
    if pred.value().numel() == 0 {
        return Err(NnError::invalid(
            who,
            format!(
                "empty batch or empty axis: the prediction has shape {}",
                pred.shape()
            ),
        ));
    }
    resolve_axis(who, "batch_axis", batch_axis, pred.dims().len())
}

/// The multi-index of flat position `flat` in `shape`.
pub(crate) fn unravel(shape: &Shape, flat: usize) -> Vec<usize> {
    shape
        .strides()
        .iter()
        .zip(shape.iter())
        .map(|(s, d)| (flat / s) % d)
        .collect()
}

/// An error naming the first label that fails `ok`, unless all pass (`expected` says what
/// a label should be, e.g. "in [0, 1]").
pub(crate) fn check_labels<T: Float>(
    who: &str,
    labels: &Tensor<T>,
    expected: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<()> {
    match labels.data().iter().position(|v| !ok(v.to_f64())) {
        None => Ok(()),
        Some(flat) => Err(NnError::invalid(
            who,
            format!(
                "label {} at {:?} is not {expected} (labels of shape {})",
                labels.data()[flat],
                unravel(labels.shape(), flat),
                labels.shape()
            ),
        )),
    }
}

/// Gluon's `_reshape_like(label, pred)`: a tensor of targets with as many elements as
/// `pred`, under pred's shape, every one finite.
pub(crate) fn targets_like<T: Float>(
    who: &str,
    pred: &Var<T>,
    labels: LabelsRef<'_, T>,
) -> Result<Var<T>> {
    let label = labels.expect_targets(who)?;
    if label.value().numel() != pred.value().numel() {
        return Err(NnError::invalid(
            who,
            format!(
                "prediction {} and label {} do not have the same number of elements",
                pred.shape(),
                label.shape()
            ),
        ));
    }
    check_labels(who, label.value(), "finite", f64::is_finite)?;
    Ok(label.reshape(pred.shape().clone())?)
}

/// Gluon's `_apply_weighting(loss, weight)`: `loss · weight` when a weight is given.
pub(crate) fn apply_weighting<T: Float>(loss: Var<T>, weight: Option<f64>) -> Result<Var<T>> {
    match weight {
        Some(w) => Ok(loss.mul_scalar(T::from_f64(w))?),
        None => Ok(loss),
    }
}

/// Every axis of `loss` but `batch_axis`.
fn other_axes<T: Float>(loss: &Var<T>, batch_axis: usize) -> Vec<usize> {
    (0..loss.dims().len())
        .filter(|&a| a != batch_axis)
        .collect()
}

/// Gluon's `mean(loss, axis=batch_axis, exclude=True)`: one value per sample.
pub(crate) fn batch_mean<T: Float>(loss: Var<T>, batch_axis: usize) -> Result<Var<T>> {
    let axes = other_axes(&loss, batch_axis);
    Ok(loss.mean_compensated(&axes, false)?)
}

/// Gluon's `sum(loss, axis=batch_axis, exclude=True)`: one value per sample.
pub(crate) fn batch_sum<T: Float>(loss: Var<T>, batch_axis: usize) -> Result<Var<T>> {
    let axes = other_axes(&loss, batch_axis);
    Ok(loss.sum_compensated(&axes, false)?)
}

/// |x| as relu(x) + relu(−x): exact, with MXNet's gradient of `abs`, sign(x) (0 at 0).
pub(crate) fn abs<T: Float>(x: &Var<T>) -> Result<Var<T>> {
    Ok(x.relu()?.add(&x.neg()?.relu()?)?)
}
