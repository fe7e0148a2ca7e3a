//! Gluon's `mx.metric.Loss`: the running mean of loss values.

use super::sums::mxnet_sum;
use super::{Metric, MetricUpdate};
use crate::error::Result;
use crate::labels::LabelsRef;
use kiln_tensor::{Float, Tensor};

/// The running mean of loss values (Gluon's `mx.metric.Loss`, named `loss`), as MXNet 1.9
/// computes it: per update, `sum_metric += ndarray.sum(losses)` (the NDArray's Kahan sum,
/// in the losses' precision) and `num_inst += losses.size`, so the value is the mean per
/// element over every update.
///
/// Its `update` ignores the labels and takes the losses as `preds`, as Gluon's does
/// (`update(_, preds)`); [`Loss::update_losses`] says so in its name. Inside a training
/// loop that updates its metric with the network's outputs, it would average those
/// instead: feed it the loss yourself.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Loss {
    sum_metric: f64,
    num_inst: usize,
}

impl Loss {
    /// A metric with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a batch of loss values (any shape).
    pub fn update_losses<T: Float>(&mut self, losses: &Tensor<T>) {
        self.sum_metric += mxnet_sum(losses.data()).to_f64();
        self.num_inst += losses.numel();
    }
}

impl Metric for Loss {
    fn name(&self) -> String {
        "loss".to_string()
    }

    fn get(&self) -> f64 {
        self.sum_metric / self.num_inst as f64
    }

    fn reset(&mut self) {
        *self = Loss::default();
    }
}

impl<T: Float> MetricUpdate<T> for Loss {
    fn update(&mut self, _labels: LabelsRef<'_, T>, preds: &Tensor<T>) -> Result<()> {
        self.update_losses(preds);
        Ok(())
    }
}
