//! Metrics (Gluon's `mx.metric.EvalMetric`: `update`, `get`, `reset`) behind two traits:
//! [`Metric`] reads and resets one, [`MetricUpdate`] feeds it a batch of one element type.
//! Each metric computes what MXNet 1.9's `python/mxnet/metric.py` computes, including
//! how it counts instances: per sample for the classification metrics and the loss, per
//! `update` call for [`MAE`], [`MSE`], [`RMSE`] and (by default) [`F1`].
//!
//! MXNet sums a batch in its own precision: NumPy's pairwise sum where `update` works on
//! `asnumpy()` arrays, the NDArray's Kahan-compensated sum where it stays in NDArrays;
//! each metric says which, and so do these, in the batch's element type. Running totals
//! are Python floats, here `f64`.

mod accuracy;
mod composite;
mod f1;
mod loss;
mod probability;
mod regression;
mod sums;

pub use accuracy::{accuracy, correct_count, Accuracy, TopKAccuracy};
pub use composite::CompositeEvalMetric;
pub use f1::{F1Average, F1};
pub use loss::Loss;
pub use probability::{CrossEntropy, Perplexity};
pub use regression::{MAE, MSE, RMSE};

use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};
use std::borrow::Cow;

/// A running evaluation over batches (Gluon's `EvalMetric`): its name and value. Metrics
/// are fed through [`MetricUpdate`]; this trait has no element type, so `acc.get()` needs
/// no annotation.
pub trait Metric {
    /// Gluon's name of the value, e.g. `accuracy`.
    fn name(&self) -> String;

    /// The value so far (NaN before any update).
    fn get(&self) -> f64;

    /// Forgets every update.
    fn reset(&mut self);

    /// (name, value) pairs: one for a plain metric, several for a composite one (Gluon's
    /// `get_name_value`).
    fn name_values(&self) -> Vec<(String, f64)> {
        vec![(self.name(), self.get())]
    }
}

/// Feeding a [`Metric`] with batches of element type `T`. Training loops update one with
/// each batch's labels and outputs, in batch order (and, under [`crate::DataParallel`],
/// in shard order), so its value does not depend on threads.
pub trait MetricUpdate<T: Float>: Metric {
    /// Counts a batch: its labels and the network's outputs (N, …), in Gluon's argument
    /// order.
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()>;
}

/// A metric that takes batches of either element type: what a [`CompositeEvalMetric`]
/// holds. Every metric of this module is one.
pub trait EvalMetric: MetricUpdate<f32> + MetricUpdate<f64> + Send {}

impl<M: MetricUpdate<f32> + MetricUpdate<f64> + Send> EvalMetric for M {}

/// The class index of each of `n` samples for the metric `who`: a slice of `n` indices,
/// or a tensor of `n` integers ((n) or (n, 1)), each below `classes`. MXNet casts labels
/// with `astype('int32')` and never checks them; here a label that is not a class is an
/// error.
pub(crate) fn class_labels<'a, T: Float>(
    who: &str,
    labels: LabelsRef<'a, T>,
    n: usize,
    classes: usize,
) -> Result<Cow<'a, [usize]>> {
    let indices: Cow<'a, [usize]> = match labels {
        LabelsRef::Classes(c) => Cow::Borrowed(c),
        LabelsRef::Targets(t) if t.rank() == 1 || (t.rank() == 2 && t.dims()[1] == 1) => {
            if let Some((i, v)) = t
                .data()
                .iter()
                .map(|v| v.to_f64())
                .enumerate()
                .find(|(_, v)| !(*v >= 0.0 && v.fract() == 0.0))
            {
                return Err(NnError::invalid(
                    who,
                    format!("label {v} of sample {i} is not a class index"),
                ));
            }
            Cow::Owned(t.data().iter().map(|v| v.to_f64() as usize).collect())
        }
        LabelsRef::Targets(t) => {
            return Err(NnError::invalid(
                who,
                format!(
                    "needs one class index per sample, got targets of shape {}",
                    t.shape()
                ),
            ))
        }
    };
    if indices.len() != n {
        return Err(NnError::invalid(
            who,
            format!("{} labels for {n} predictions", indices.len()),
        ));
    }
    if let Some((i, &l)) = indices.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(NnError::invalid(
            who,
            format!("label {l} of sample {i} is not a class (the predictions have {classes})"),
        ));
    }
    Ok(indices)
}

/// The (N, C) scores of `preds` for the metric `who`, as (N, C).
pub(crate) fn score_rows<T: Float>(who: &str, preds: &Tensor<T>) -> Result<(usize, usize)> {
    match *preds.dims() {
        [n, c] if c > 0 => Ok((n, c)),
        _ => Err(NnError::invalid(
            who,
            format!(
                "needs (N, C) scores, one row of classes per sample, got shape {}",
                preds.shape()
            ),
        )),
    }
}
