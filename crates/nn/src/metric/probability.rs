//! Metrics of predicted probabilities: [`CrossEntropy`] and [`Perplexity`], both the
//! negative log-probability of the label, counted per sample.

use super::sums::{mxnet_sum, numpy_sum};
use super::{class_labels, score_rows, Metric, MetricUpdate};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};

/// Mean cross-entropy of predicted probabilities (Gluon's `mx.metric.CrossEntropy`, named
/// `cross-entropy`), as MXNet 1.9 computes it: per update, with p the (N, C)
/// probabilities (e.g. a softmax's output, not logits) and ε = 1e-12,
///
/// ```text
/// sum_metric += Σ_n −ln(p[n, label_n] + ε)    in the batch's precision (NumPy's pairwise sum)
/// num_inst   += N
/// value       = sum_metric / num_inst
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropy {
    eps: f64,
    sum_metric: f64,
    num_inst: usize,
}

impl Default for CrossEntropy {
    fn default() -> Self {
        CrossEntropy::new()
    }
}

impl CrossEntropy {
    /// The metric with Gluon's ε = 1e-12.
    pub fn new() -> Self {
        CrossEntropy {
            eps: 1e-12,
            sum_metric: 0.0,
            num_inst: 0,
        }
    }

    /// The constant added to each probability before its logarithm (rounded to the
    /// batch's element type).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
}

impl Metric for CrossEntropy {
    fn name(&self) -> String {
        "cross-entropy".to_string()
    }

    fn get(&self) -> f64 {
        self.sum_metric / self.num_inst as f64
    }

    fn reset(&mut self) {
        (self.sum_metric, self.num_inst) = (0.0, 0);
    }
}

impl<T: Float> MetricUpdate<T> for CrossEntropy {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let (n, c) = score_rows("cross-entropy", preds)?;
        let classes = class_labels("cross-entropy", labels, n, c)?;
        let eps = T::from_f64(self.eps);
        let terms: Vec<T> = preds
            .data()
            .chunks(c)
            .zip(classes.iter())
            .map(|(row, &l)| -(row[l] + eps).ln())
            .collect();
        self.sum_metric += numpy_sum(&terms).to_f64();
        self.num_inst += n;
        Ok(())
    }
}

/// Perplexity of predicted probabilities (Gluon's `mx.metric.Perplexity`, named
/// `perplexity`): e to the mean negative log-probability of the labels, as MXNet 1.9
/// computes it. Per update, with p the probabilities of each label (picked along the last
/// axis) and the ignored labels' p replaced by 1 (`p·(1 − ignore) + ignore`),
///
/// ```text
/// sum_metric += −Σ ln(max(1e-10, p))    in the batch's precision (the NDArray's Kahan sum)
/// num_inst   += (number of labels) − (number ignored)
/// value       = exp(sum_metric / num_inst)
/// ```
///
/// (`max(1e-10, NaN)` is NaN: MXNet's `maximum` passes a NaN on.) Gluon's `ignore_label`
/// is a required argument; here it defaults to none.
///
/// # Shapes
/// preds (…, C) probabilities; labels one class index per row of C: a slice, or a tensor
/// with that many integers (an ignored label may be any integer, e.g. −1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Perplexity {
    ignore_label: Option<i64>,
    sum_metric: f64,
    num_inst: usize,
}

impl Perplexity {
    /// The metric ignoring no label.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves out of the count every sample whose label is `label` (e.g. padding).
    pub fn ignore_label(mut self, label: i64) -> Self {
        self.ignore_label = Some(label);
        self
    }

    /// The label of each row as an integer; an error unless integral.
    fn labels_as_integers<T: Float>(labels: LabelsRef<'_, T>, rows: usize) -> Result<Vec<i64>> {
        let values: Vec<i64> = match labels {
            LabelsRef::Classes(c) => c.iter().map(|&l| l as i64).collect(),
            LabelsRef::Targets(t) => {
                if let Some((i, v)) = t
                    .data()
                    .iter()
                    .map(|v| v.to_f64())
                    .enumerate()
                    .find(|(_, v)| v.fract() != 0.0 || v.abs() > i64::MAX as f64)
                {
                    return Err(NnError::invalid(
                        "perplexity",
                        format!("label {v} of sample {i} is not a class index"),
                    ));
                }
                t.data().iter().map(|v| v.to_f64() as i64).collect()
            }
        };
        if values.len() != rows {
            return Err(NnError::invalid(
                "perplexity",
                format!("{} labels for {rows} rows of probabilities", values.len()),
            ));
        }
        Ok(values)
    }
}

impl Metric for Perplexity {
    fn name(&self) -> String {
        "perplexity".to_string()
    }

    fn get(&self) -> f64 {
        if self.num_inst == 0 {
            f64::NAN
        } else {
            (self.sum_metric / self.num_inst as f64).exp()
        }
    }

    fn reset(&mut self) {
        (self.sum_metric, self.num_inst) = (0.0, 0);
    }
}

impl<T: Float> MetricUpdate<T> for Perplexity {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let c = match preds.dims().last() {
            Some(&c) if c > 0 && preds.rank() >= 2 => c,
            _ => {
                return Err(NnError::invalid(
                    "perplexity",
                    format!(
                        "needs probabilities (…, C) with the classes last, got shape {}",
                        preds.shape()
                    ),
                ))
            }
        };
        let rows = preds.numel() / c;
        let labels = Self::labels_as_integers(labels, rows)?;
        let (floor, mut ignored) = (T::from_f64(1e-10), 0);
        let mut logs = Vec::with_capacity(rows);
        for (i, (row, &l)) in preds.data().chunks(c).zip(&labels).enumerate() {
            let ignore = self.ignore_label == Some(l);
            let p = if ignore {
                ignored += 1;
                // MXNet's pick clips the index; the value is then replaced by 1
                row[l.clamp(0, c as i64 - 1) as usize] * T::ZERO + T::ONE
            } else if (0..c as i64).contains(&l) {
                row[l as usize] * T::ONE + T::ZERO
            } else {
                return Err(NnError::invalid(
                    "perplexity",
                    format!("label {l} of sample {i} is not a class (the predictions have {c})"),
                ));
            };
            logs.push(if p.is_nan() || p > floor { p } else { floor }.ln());
        }
        self.sum_metric += -mxnet_sum(&logs).to_f64();
        self.num_inst += rows - ignored;
        Ok(())
    }
}
