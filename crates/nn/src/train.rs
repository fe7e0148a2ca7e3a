//! The book's training loop (D2L's `train_ch5`) and `evaluate_accuracy`, with the checks a
//! long run needs: a NaN or infinite loss stops the epoch before any weight is touched.

use crate::block::Block;
use crate::data::Batch;
use crate::error::{NnError, Result};
use crate::loss::SoftmaxCrossEntropyLoss;
use crate::metric::correct_count;
use crate::trainer::Trainer;
use kiln_autograd::{Tape, Var};
use kiln_tensor::{Float, Tensor};

/// What one training epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// Mean softmax cross-entropy per sample.
    pub loss: f64,
    /// Fraction of training samples predicted correctly (while training).
    pub train_acc: f64,
    /// Samples seen.
    pub samples: usize,
    /// Steps (batches) taken.
    pub steps: usize,
}

/// What the forward and backward pass of one batch measured; the gradient itself is left
/// in the network's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchOutcome {
    /// Summed softmax cross-entropy of the batch (not finite if the network diverged; no
    /// backward ran then).
    pub loss: f64,
    /// Samples predicted correctly.
    pub correct: usize,
}

/// Records the forward pass of one batch, sums its softmax cross-entropy and runs
/// backward, leaving the gradient in `net`'s parameters (the body of the book's loop, up
/// to `trainer.step`). A loss that is not finite skips the backward.
pub fn batch_gradient<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    images: Tensor<T>,
    labels: &[usize],
) -> Result<BatchOutcome> {
    let tape = Tape::new();
    let scores = net.forward(&tape.constant(images))?;
    let loss = SoftmaxCrossEntropyLoss.forward(&scores, labels)?.sum()?;
    let value = loss.value().item()?.to_f64();
    if value.is_finite() {
        loss.backward()?;
    } else {
        tape.clear();
    }
    Ok(BatchOutcome {
        loss: value,
        correct: correct_count(scores.value(), labels)?,
    })
}

/// Trains `net` for one pass over `batches`, as the book does: per batch, record the
/// forward pass, sum the per-sample softmax cross-entropy, backward, and
/// `trainer.step(batch_size)` (the configured size, also for a short last batch).
/// `on_step` is called after every step with the number of steps done.
///
/// A batch with NaN or infinite pixels, or a loss that is not finite, is an error naming
/// the step; the weights are then as they were after the previous step.
pub fn train_epoch<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    batches: impl Iterator<Item = Batch<T>>,
    trainer: &mut Trainer<T>,
    batch_size: usize,
    on_step: impl FnMut(usize),
) -> Result<EpochStats> {
    run_epoch(batches, trainer, batch_size, on_step, |images, labels| {
        batch_gradient(net, images, labels)
    })
}

/// The loop of [`train_epoch`] around any way of computing a batch's gradient
/// (`gradient(images, labels)`), with its checks.
pub(crate) fn run_epoch<T: Float>(
    batches: impl Iterator<Item = Batch<T>>,
    trainer: &mut Trainer<T>,
    batch_size: usize,
    mut on_step: impl FnMut(usize),
    mut gradient: impl FnMut(Tensor<T>, &[usize]) -> Result<BatchOutcome>,
) -> Result<EpochStats> {
    let (mut loss_sum, mut correct, mut samples, mut steps) = (0.0, 0, 0, 0);
    for batch in batches {
        steps += 1;
        if !batch.images.all_finite() {
            return Err(NnError::invalid(
                "train_epoch",
                format!("batch {steps} has NaN or infinite pixels"),
            ));
        }
        let outcome = gradient(batch.images, &batch.labels).map_err(|e| match e {
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
        loss_sum += outcome.loss;
        correct += outcome.correct;
        samples += batch.labels.len();
        on_step(steps);
    }
    if samples == 0 {
        return Err(NnError::invalid("train_epoch", "the epoch had no batches"));
    }
    Ok(EpochStats {
        loss: loss_sum / samples as f64,
        train_acc: correct as f64 / samples as f64,
        samples,
        steps,
    })
}

/// Accuracy of `net` over `batches` in predict mode, recording nothing.
pub fn evaluate_accuracy<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    batches: impl Iterator<Item = Batch<T>>,
) -> Result<f64> {
    run_evaluation(batches, |images, labels| {
        correct_count(net.forward(&Var::constant(images))?.value(), labels)
    })
}

/// The loop of [`evaluate_accuracy`] around any way of counting a batch's correct
/// predictions (`correct(images, labels)`).
pub(crate) fn run_evaluation<T: Float>(
    batches: impl Iterator<Item = Batch<T>>,
    mut correct: impl FnMut(Tensor<T>, &[usize]) -> Result<usize>,
) -> Result<f64> {
    let (mut right, mut samples) = (0, 0);
    for batch in batches {
        right += correct(batch.images, &batch.labels)?;
        samples += batch.labels.len();
    }
    if samples == 0 {
        return Err(NnError::invalid(
            "evaluate_accuracy",
            "no batches to evaluate",
        ));
    }
    Ok(right as f64 / samples as f64)
}
