//! Classification accuracy: [`Accuracy`] (the first maximum is the prediction) and
//! [`TopKAccuracy`] (the label is among the k highest scores).

use super::{class_labels, score_rows, Metric, MetricUpdate};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};

/// Running accuracy over batches (Gluon's `mx.metric.Accuracy`): correct / total, counted
/// per sample. A sample is correct when the first maximum of its (N, C) score row is at
/// its class; predictions of shape (N), as many as the labels, are taken as predicted
/// classes (MXNet skips the argmax when pred and label shapes agree, and truncates both
/// with `astype('int32')`). Labels are class indices (a slice, or a tensor of N integers)
/// or one-hot/probability rows, whose first maximum is taken as the class. A label that
/// is not a class of the scores is an error (MXNet counts it as wrong).
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
        if preds.rank() == 1 {
            // predicted classes, compared as MXNet's int32 casts compare them
            let n = preds.dims()[0];
            let classes = class_labels("accuracy", labels, n, usize::MAX)?;
            self.correct += preds
                .data()
                .iter()
                .zip(classes.iter())
                .filter(|(p, &l)| p.to_f64().trunc() == l as f64)
                .count();
            self.total += n;
            return Ok(());
        }
        let (n, c) = score_rows("accuracy", preds)?;
        let classes = match labels {
            LabelsRef::Targets(t) if t.rank() == 2 && t.dims()[1] > 1 => {
                if t.dims() != preds.dims() {
                    return Err(NnError::invalid(
                        "accuracy",
                        format!(
                            "label rows of shape {} for scores of shape {}",
                            t.shape(),
                            preds.shape()
                        ),
                    ));
                }
                t.argmax(1, false)?
                    .data()
                    .iter()
                    .map(|v| v.to_f64() as usize)
                    .collect()
            }
            _ => class_labels("accuracy", labels, n, c)?.into_owned(),
        };
        self.correct += correct_count(preds, &classes)?;
        self.total += n;
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

/// Running top-k accuracy (Gluon's `mx.metric.TopKAccuracy`): the fraction of samples
/// whose label is among the k highest of its (N, C) scores, counted per sample. Named
/// `top_k_accuracy_{k}`.
///
/// Scores that tie are ranked by class index, lower first (as a stable sort from the
/// highest score would; MXNet's `numpy.argpartition` leaves the choice among ties
/// unspecified), and NaN ranks above every number (NumPy's sort order). MXNet asserts
/// k > 1 and, for k ≥ C, counts every sample correct; here both are errors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopKAccuracy {
    k: usize,
    correct: usize,
    total: usize,
}

impl TopKAccuracy {
    /// A top-`k` metric with nothing counted.
    pub fn new(k: usize) -> Self {
        TopKAccuracy {
            k,
            correct: 0,
            total: 0,
        }
    }

    /// Samples whose label was among the top k so far.
    pub fn correct(&self) -> usize {
        self.correct
    }

    /// Samples seen so far.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// `a` ranks above `b`: larger, or NaN against a number.
fn ranks_above<T: Float>(a: T, b: T) -> bool {
    (a.is_nan() && !b.is_nan()) || a > b
}

impl Metric for TopKAccuracy {
    fn name(&self) -> String {
        format!("top_k_accuracy_{}", self.k)
    }

    fn get(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }

    fn reset(&mut self) {
        (self.correct, self.total) = (0, 0);
    }
}

impl<T: Float> MetricUpdate<T> for TopKAccuracy {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let who = self.name();
        let (n, c) = score_rows(&who, preds)?;
        if self.k <= 1 || self.k >= c {
            return Err(NnError::invalid(
                who,
                format!(
                    "k = {} must be above 1 (use Accuracy for 1) and below the {c} classes of the scores {}",
                    self.k,
                    preds.shape()
                ),
            ));
        }
        let classes = class_labels(&who, labels, n, c)?;
        for (row, &label) in preds.data().chunks(c).zip(classes.iter()) {
            let s = row[label];
            // the label's place in a stable descending sort: scores above it, and equal
            // scores of lower classes
            let rank = row
                .iter()
                .enumerate()
                .filter(|&(j, &v)| {
                    ranks_above(v, s) || (j < label && (v == s || (v.is_nan() && s.is_nan())))
                })
                .count();
            if rank < self.k {
                self.correct += 1;
            }
        }
        self.total += n;
        Ok(())
    }
}
