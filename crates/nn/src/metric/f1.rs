//! The binary F1 score (Gluon's `mx.metric.F1`), averaged over updates ("macro", the
//! default) or computed once over every sample ("micro").

use super::{class_labels, score_rows, Metric, MetricUpdate};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};

/// How [`F1`] aggregates across updates (Gluon's `average`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum F1Average {
    /// The mean of each update's F1 score (Gluon's default, `"macro"`).
    #[default]
    Macro,
    /// One F1 score over the counts of every update (`"micro"`).
    Micro,
}

/// The F1 score of a binary classification (Gluon's `mx.metric.F1`, named `f1`), as MXNet
/// 1.9 computes it. A sample is predicted positive when the first maximum of its (N, 2)
/// score row is class 1; labels are 0 or 1. From the counts of true and false positives
/// and negatives:
///
/// ```text
/// precision = tp / (tp + fp)   (0 when tp + fp = 0)
/// recall    = tp / (tp + fn)   (0 when tp + fn = 0)
/// f1        = 2 · precision · recall / (precision + recall)   (0 when that sum is 0)
/// ```
///
/// With [`F1Average::Macro`] (the default) each `update` adds its own batch's f1 and
/// counts one instance, so the value is the mean over updates (under
/// [`crate::DataParallel`], over shards); with [`F1Average::Micro`] the counts
/// accumulate and the value is `(f1 · n) / n` over all n samples so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct F1 {
    average: F1Average,
    /// (tp, fp, fn, tn) since the last reset (macro: of the current update only).
    counts: [usize; 4],
    sum_metric: f64,
    num_inst: usize,
}

impl F1 {
    /// The metric with Gluon's default, macro averaging.
    pub fn new() -> Self {
        Self::default()
    }

    /// How to aggregate across updates.
    pub fn average(mut self, average: F1Average) -> Self {
        self.average = average;
        self
    }

    /// MXNet's `fscore` of the current counts.
    fn fscore(&self) -> f64 {
        let [tp, fp, fn_, _] = self.counts.map(|c| c as f64);
        let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
        if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        }
    }
}

impl Metric for F1 {
    fn name(&self) -> String {
        "f1".to_string()
    }

    fn get(&self) -> f64 {
        if self.num_inst == 0 {
            f64::NAN
        } else {
            self.sum_metric / self.num_inst as f64
        }
    }

    fn reset(&mut self) {
        *self = F1::new().average(self.average);
    }
}

impl<T: Float> MetricUpdate<T> for F1 {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let (n, c) = score_rows("f1", preds)?;
        if c != 2 {
            return Err(NnError::invalid(
                "f1",
                format!(
                    "F1 is binary: needs (N, 2) scores, got shape {}",
                    preds.shape()
                ),
            ));
        }
        let classes = class_labels("f1", labels, n, 2)?;
        let predicted = preds.argmax(1, false)?;
        for (p, &label) in predicted.data().iter().zip(classes.iter()) {
            let (pred_true, label_true) = (p.to_f64() == 1.0, label == 1);
            let slot = match (pred_true, label_true) {
                (true, true) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (false, false) => 3,
            };
            self.counts[slot] += 1;
        }
        match self.average {
            F1Average::Macro => {
                self.sum_metric += self.fscore();
                self.num_inst += 1;
                self.counts = [0; 4];
            }
            F1Average::Micro => {
                let total: usize = self.counts.iter().sum();
                self.sum_metric = self.fscore() * total as f64;
                self.num_inst = total;
            }
        }
        Ok(())
    }
}
