//! Metrics (Gluon's `mx.metric.EvalMetric`: `update`, `get`, `reset`) behind two traits:
//! [`Metric`] reads and resets one, [`MetricUpdate`] feeds it a batch of one element type.
//! [`Accuracy`] is the fraction of samples whose highest score is the label.

use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};

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

/// Running accuracy over batches (Gluon's `mx.metric.Accuracy`): correct / total, where a
/// sample is correct when its first maximum score is at its class (one class index per
/// sample, or a one-hot/probability row whose first maximum is taken as the class).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Accuracy {
    /// Samples predicted correctly so far.
    pub correct: usize,
    /// Samples seen so far.
    pub total: usize,
}

impl Accuracy {
    /// A metric with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for Accuracy {
    fn name(&self) -> String {
        "accuracy".to_string()
    }

    fn get(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }

    fn reset(&mut self) {
        *self = Accuracy::default();
    }
}

impl<T: Float> MetricUpdate<T> for Accuracy {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let classes = match labels {
            LabelsRef::Classes(c) => c.to_vec(),
            LabelsRef::Targets(t) if t.rank() == 2 => t
                .argmax(1, false)?
                .data()
                .iter()
                .map(|v| v.to_f64() as usize)
                .collect(),
            LabelsRef::Targets(t) => {
                return Err(NnError::invalid(
                    "accuracy",
                    format!(
                        "needs class indices or (N, C) rows, got targets of shape {}",
                        t.shape()
                    ),
                ))
            }
        };
        self.correct += correct_count(preds, &classes)?;
        self.total += classes.len();
        Ok(())
    }
}

/// How many rows of `scores` (N, C) have their first maximum at the label.
pub fn correct_count<T: Float>(scores: &Tensor<T>, labels: &[usize]) -> Result<usize> {
    if scores.rank() != 2 || scores.dims()[0] != labels.len() {
        return Err(NnError::invalid(
            "accuracy",
            format!(
                "scores of shape {} do not match {} labels",
                scores.shape(),
                labels.len()
            ),
        ));
    }
    let predicted = scores.argmax(1, false)?;
    Ok(predicted
        .data()
        .iter()
        .zip(labels)
        .filter(|(p, &l)| p.to_f64() as usize == l)
        .count())
}

/// The accuracy of one batch.
pub fn accuracy<T: Float>(scores: &Tensor<T>, labels: &[usize]) -> Result<f64> {
    Ok(correct_count(scores, labels)? as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_maximum() {
        let s = Tensor::<f32>::from_f64s(&[0.1, 0.9, 0.5, 0.5, 2.0, 1.0], [3, 2]).unwrap();
        assert_eq!(correct_count(&s, &[1, 0, 0]).unwrap(), 3);
        let mut acc = Accuracy::new();
        acc.update((&[0, 1, 0]).into(), &s).unwrap();
        assert_eq!((acc.correct, acc.total), (1, 3));
        assert!(MetricUpdate::<f32>::update(&mut acc, (&[0]).into(), &s).is_err());
        // one-hot rows: classes 1, 1, 0 → rows 0 and 2 right
        let onehot = Tensor::<f32>::from_f64s(&[0., 1., 0., 1., 1., 0.], [3, 2]).unwrap();
        acc.reset();
        acc.update(LabelsRef::Targets(&onehot), &s).unwrap();
        assert_eq!((acc.correct, acc.total), (2, 3));
        assert_eq!(acc.get(), 2.0 / 3.0);
    }
}
