//! The book's training loop (D2L's `train_ch5`) and `evaluate_accuracy`, for any loss and
//! metric, with the checks a long run needs: a NaN or infinite loss stops the epoch before
//! any weight is touched.

use crate::block::Block;
use crate::data::IntoBatch;
use crate::error::{NnError, Result};
use crate::labels::LabelsRef;
use crate::loss::{Loss, SoftmaxCrossEntropyLoss};
use crate::metric::{Accuracy, Metric, MetricUpdate};
use crate::trainer::Trainer;
use kiln_autograd::{RandomKey, Tape, Var};
use kiln_tensor::{Float, Tensor};

/// What one training epoch measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// Mean loss per sample.
    pub loss: f64,
    /// The metric's (name, value) pairs on the training batches, as they were trained
    /// (Gluon's `metric.get_name_value()`).
    pub metrics: Vec<(String, f64)>,
    /// Samples seen.
    pub samples: usize,
    /// Steps (batches) taken.
    pub steps: usize,
}

impl EpochStats {
    /// The value of the metric called `name`, if the epoch measured one.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    /// The training accuracy (the book's `train acc`), NaN if no accuracy was measured.
    pub fn train_acc(&self) -> f64 {
        self.metric("accuracy").unwrap_or(f64::NAN)
    }
}

/// Where an epoch is, after each step: what a progress bar shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// Steps (batches) done in this epoch.
    pub steps: usize,
    /// Samples trained on in this epoch.
    pub samples: usize,
    /// Mean loss per sample so far in this epoch.
    pub loss: f64,
}

/// What the forward and backward pass of one batch gave; the gradient itself is left in
/// the network's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchOutcome<T: Float> {
    /// Summed loss of the batch (not finite if the network diverged; no backward ran
    /// then).
    pub loss: f64,
    /// The network's outputs, for the metrics.
    pub scores: Tensor<T>,
}

/// Records the forward pass of one batch, sums its per-sample `loss` and runs backward,
/// leaving the gradient in `net`'s parameters (the body of the book's loop, up to
/// `trainer.step`). Random layers (dropout) draw from `key` (usually
/// [`Trainer::random_key`]). A loss that is not finite skips the backward.
pub fn batch_gradient<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    loss: &dyn Loss<T>,
    images: Tensor<T>,
    labels: LabelsRef<'_, T>,
    key: RandomKey,
) -> Result<BatchOutcome<T>> {
    let tape = Tape::with_key(key);
    let scores = net.forward(&tape.constant(images))?;
    // a loss's errors name the loss
    let total = loss.loss(&scores, labels)?.sum()?;
    let value = total.value().item()?.to_f64();
    if value.is_finite() {
        total.backward()?;
    } else {
        tape.clear();
    }
    let scores = scores.value().clone();
    Ok(BatchOutcome {
        loss: value,
        scores,
    })
}

/// Trains `net` for one pass over `batches` as the book does, with softmax cross-entropy
/// and accuracy: see [`train_epoch_with`].
pub fn train_epoch<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    batches: impl Iterator<Item = impl IntoBatch<T>>,
    trainer: &mut Trainer<T>,
    batch_size: usize,
    on_step: impl FnMut(&StepReport),
) -> Result<EpochStats> {
    train_epoch_with(
        net,
        batches,
        trainer,
        batch_size,
        &SoftmaxCrossEntropyLoss,
        &mut Accuracy::new(),
        on_step,
    )
}

/// Trains `net` for one pass over `batches` (batches, or `Result`s of batches such as
/// `DataLoader::try_epoch` yields, whose first error stops the epoch): per batch, record the forward pass, sum the
/// per-sample `loss`, backward, `trainer.step(batch_size)` (the configured size, also for
/// a short last batch), and update `metric` with the batch's outputs. `on_step` is called
/// after every step with where the epoch is ([`StepReport`]). The metric is reset first.
///
/// A batch with NaN or infinite pixels, or a loss that is not finite, is an error naming
/// the step; the weights are then as they were after the previous step.
pub fn train_epoch_with<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    batches: impl Iterator<Item = impl IntoBatch<T>>,
    trainer: &mut Trainer<T>,
    batch_size: usize,
    loss: &dyn Loss<T>,
    metric: &mut dyn MetricUpdate<T>,
    on_step: impl FnMut(&StepReport),
) -> Result<EpochStats> {
    run_epoch(
        batches,
        trainer,
        batch_size,
        metric,
        on_step,
        |images, labels, key| batch_gradient(net, loss, images, labels, key),
    )
}

/// The loop of [`train_epoch_with`] around any way of computing a batch's gradient
/// (`gradient(images, labels, key)`), with its checks.
pub(crate) fn run_epoch<T: Float>(
    batches: impl Iterator<Item = impl IntoBatch<T>>,
    trainer: &mut Trainer<T>,
    batch_size: usize,
    metric: &mut dyn MetricUpdate<T>,
    mut on_step: impl FnMut(&StepReport),
    mut gradient: impl FnMut(Tensor<T>, LabelsRef<'_, T>, RandomKey) -> Result<BatchOutcome<T>>,
) -> Result<EpochStats> {
    metric.reset();
    let (mut loss_sum, mut samples, mut steps) = (0.0, 0, 0);
    for batch in batches {
        let batch = batch.into_batch()?;
        steps += 1;
        if !batch.images.all_finite() {
            return Err(NnError::invalid(
                "train_epoch",
                format!("batch {steps} has NaN or infinite pixels"),
            ));
        }
        let labels = batch.labels.as_ref();
        let outcome =
            gradient(batch.images, labels, trainer.random_key()).map_err(|e| match e {
                // the batch was finite, so a non-finite activation comes from the weights
                e @ NnError::Layer { .. } if matches!(e.root(), NnError::NonFinite { .. }) => {
                    NnError::Diverged {
                        step: steps,
                        what: e.to_string(),
                    }
                }
                other => other,
            })?;
        if !outcome.loss.is_finite() {
            return Err(NnError::Diverged {
                step: steps,
                what: format!("the loss is {}", outcome.loss),
            });
        }
        trainer.step(batch_size).map_err(|e| match e {
            NnError::Invalid { ref message, .. } if message.contains("NaN or infinite") => {
                NnError::Diverged {
                    step: steps,
                    what: e.to_string(),
                }
            }
            other => other,
        })?;
        metric.update(labels, &outcome.scores)?;
        loss_sum += outcome.loss;
        samples += labels.len();
        on_step(&StepReport {
            steps,
            samples,
            loss: loss_sum / samples as f64,
        });
    }
    if samples == 0 {
        return Err(NnError::invalid("train_epoch", "the epoch had no batches"));
    }
    Ok(EpochStats {
        loss: loss_sum / samples as f64,
        metrics: metric.name_values(),
        samples,
        steps,
    })
}

/// Accuracy of `net` over `batches` in predict mode, recording nothing.
pub fn evaluate_accuracy<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    batches: impl Iterator<Item = impl IntoBatch<T>>,
) -> Result<f64> {
    let mut acc = Accuracy::new();
    evaluate(net, batches, &mut acc)?;
    Ok(acc.get())
}

/// Updates `metric` (reset first) with `net`'s outputs over `batches` in predict mode,
/// recording nothing; returns its (name, value) pairs.
pub fn evaluate<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    batches: impl Iterator<Item = impl IntoBatch<T>>,
    metric: &mut dyn MetricUpdate<T>,
) -> Result<Vec<(String, f64)>> {
    run_evaluation(batches, metric, |images| {
        Ok(net.forward(&Var::constant(images))?.value().clone())
    })
}

/// The loop of [`evaluate`] around any way of computing a batch's outputs.
pub(crate) fn run_evaluation<T: Float>(
    batches: impl Iterator<Item = impl IntoBatch<T>>,
    metric: &mut dyn MetricUpdate<T>,
    mut scores: impl FnMut(Tensor<T>) -> Result<Tensor<T>>,
) -> Result<Vec<(String, f64)>> {
    metric.reset();
    let mut samples = 0;
    for batch in batches {
        let batch = batch.into_batch()?;
        let out = scores(batch.images)?;
        metric.update(batch.labels.as_ref(), &out)?;
        samples += batch.labels.len();
    }
    if samples == 0 {
        return Err(NnError::invalid("evaluate", "no batches to evaluate"));
    }
    Ok(metric.name_values())
}
