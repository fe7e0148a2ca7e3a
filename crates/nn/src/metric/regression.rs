//! Regression metrics: [`MAE`], [`MSE`] and [`RMSE`], each the mean over updates of one
//! batch's value (MXNet counts one instance per update, not per sample).

use super::sums::numpy_mean;
use super::{Metric, MetricUpdate};
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};

/// MXNet's shape handling: 1-d labels and predictions become (N, 1); they must then
/// agree (MXNet would broadcast (N, 1) against (N, C)).
fn paired<'a, T: Float>(
    who: &str,
    labels: LabelsRef<'a, T>,
    preds: &'a Tensor<T>,
) -> Result<(&'a [T], &'a [T])> {
    let label = labels.targets().ok_or_else(|| {
        NnError::invalid(
            who,
            "needs a tensor of targets, got class indices (regression metrics compare values)",
        )
    })?;
    let as_2d = |t: &Tensor<T>| -> Vec<usize> {
        match t.dims() {
            [n] => vec![*n, 1],
            d => d.to_vec(),
        }
    };
    if as_2d(label) != as_2d(preds) {
        return Err(NnError::invalid(
            who,
            format!(
                "labels of shape {} do not match predictions of shape {}",
                label.shape(),
                preds.shape()
            ),
        ));
    }
    if label.numel() == 0 {
        return Err(NnError::invalid(who, "the batch is empty"));
    }
    Ok((label.data(), preds.data()))
}

/// The running mean over updates of each batch's value, `sum_metric / num_inst`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct PerUpdate {
    sum_metric: f64,
    num_inst: usize,
}

impl PerUpdate {
    fn add(&mut self, value: f64) {
        self.sum_metric += value;
        self.num_inst += 1;
    }

    fn get(&self) -> f64 {
        if self.num_inst == 0 {
            f64::NAN
        } else {
            self.sum_metric / self.num_inst as f64
        }
    }
}

/// Mean absolute error (Gluon's `mx.metric.MAE`, named `mae`): per update
/// `numpy.abs(label − pred).mean()` in the batch's precision (NumPy's pairwise sum,
/// divided by the element count), then the mean of those over updates.
///
/// # Shapes
/// labels a tensor of pred's shape ((N) and (N, 1) are the same).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MAE {
    running: PerUpdate,
}

impl MAE {
    /// A metric with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for MAE {
    fn name(&self) -> String {
        "mae".to_string()
    }

    fn get(&self) -> f64 {
        self.running.get()
    }

    fn reset(&mut self) {
        self.running = PerUpdate::default();
    }
}

impl<T: Float> MetricUpdate<T> for MAE {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let (label, pred) = paired("mae", labels, preds)?;
        let errors: Vec<T> = label
            .iter()
            .zip(pred)
            .map(|(&l, &p)| (l - p).abs())
            .collect();
        self.running.add(numpy_mean(&errors).to_f64());
        Ok(())
    }
}

/// Mean squared error (Gluon's `mx.metric.MSE`, named `mse`): per update
/// `((label − pred)**2).mean()` in the batch's precision, then the mean of those over
/// updates.
///
/// # Shapes
/// labels a tensor of pred's shape ((N) and (N, 1) are the same).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MSE {
    running: PerUpdate,
}

impl MSE {
    /// A metric with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for MSE {
    fn name(&self) -> String {
        "mse".to_string()
    }

    fn get(&self) -> f64 {
        self.running.get()
    }

    fn reset(&mut self) {
        self.running = PerUpdate::default();
    }
}

impl<T: Float> MetricUpdate<T> for MSE {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let (label, pred) = paired("mse", labels, preds)?;
        self.running
            .add(numpy_mean(&squared_errors(label, pred)).to_f64());
        Ok(())
    }
}

/// Root mean squared error (Gluon's `mx.metric.RMSE`, named `rmse`): per update
/// `numpy.sqrt(((label − pred)**2).mean())` in the batch's precision, then the mean of
/// those over updates (not the root of the overall mean).
///
/// # Shapes
/// labels a tensor of pred's shape ((N) and (N, 1) are the same).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RMSE {
    running: PerUpdate,
}

impl RMSE {
    /// A metric with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for RMSE {
    fn name(&self) -> String {
        "rmse".to_string()
    }

    fn get(&self) -> f64 {
        self.running.get()
    }

    fn reset(&mut self) {
        self.running = PerUpdate::default();
    }
}

impl<T: Float> MetricUpdate<T> for RMSE {
    fn update(&mut self, labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        let (label, pred) = paired("rmse", labels, preds)?;
        self.running
            .add(numpy_mean(&squared_errors(label, pred)).sqrt().to_f64());
        Ok(())
    }
}

/// (label − pred)², as NumPy's `** 2.0` (a square) computes it.
fn squared_errors<T: Float>(label: &[T], pred: &[T]) -> Vec<T> {
    label
        .iter()
        .zip(pred)
        .map(|(&l, &p)| (l - p) * (l - p))
        .collect()
}
