//! The book's training loop (D2L's `train_ch5`) and `evaluate_accuracy`, with the checks a
//! long run needs: a NaN or infinite loss stops the epoch before any weight is touched.

use crate::block::Block;
use crate::data::Batch;
use crate::error::{NnError, Result};
use crate::loss::SoftmaxCrossEntropyLoss;
use crate::metric::correct_count;
use crate::trainer::Trainer;
use kiln_autograd::{Tape, Var};
use kiln_tensor::Float;

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

/// Trains `net` for one pass over `batches`, as the book does: per batch, record the
/// forward pass, sum the per-sample softmax cross-entropy, backward, and
/// `trainer.step(batch_size)` (the configured size, also for a short last batch).
/// `on_step` is called after every step with the number of steps done.
///
/// A batch with NaN or infinite pixels, or a loss that is not finite, is an error naming
/// the step; the weights are then as they were after the previous step.
pub fn train_epoch<T: Float, B: Block<T>>(
    net: &B,
    batches: impl Iterator<Item = Batch<T>>,
    trainer: &mut Trainer<T>,
    batch_size: usize,
    mut on_step: impl FnMut(usize),
) -> Result<EpochStats> {
    let loss_fn = SoftmaxCrossEntropyLoss;
    let (mut loss_sum, mut correct, mut samples, mut steps) = (0.0, 0, 0, 0);
    let tape = Tape::new();
    for batch in batches {
        steps += 1;
        if !batch.images.all_finite() {
            return Err(NnError::invalid(
                "train_epoch",
                format!("batch {steps} has NaN or infinite pixels"),
            ));
        }
        let scores = match net.forward(&tape.constant(batch.images)) {
            // the batch was finite, so a non-finite activation comes from the weights
            Err(e @ NnError::Layer { .. }) if matches!(e.root(), NnError::NonFinite { .. }) => {
                tape.clear();
                return Err(NnError::Diverged {
                    step: steps,
                    what: e.to_string(),
                });
            }
            other => other?,
        };
        let loss = loss_fn.forward(&scores, &batch.labels)?.sum()?;
        let value = loss.value().item()?.to_f64();
        if !value.is_finite() {
            tape.clear();
            return Err(NnError::Diverged {
                step: steps,
                what: format!("the loss is {value}"),
            });
        }
        loss.backward()?;
        trainer.step(batch_size).map_err(|e| match e {
            NnError::Invalid { ref message, .. } if message.contains("NaN or infinite") => {
                NnError::Diverged {
                    step: steps,
                    what: e.to_string(),
                }
            }
            other => other,
        })?;
        loss_sum += value;
        correct += correct_count(scores.value(), &batch.labels)?;
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
pub fn evaluate_accuracy<T: Float, B: Block<T>>(
    net: &B,
    batches: impl Iterator<Item = Batch<T>>,
) -> Result<f64> {
    let (mut correct, mut samples) = (0, 0);
    for batch in batches {
        let scores = net.forward(&Var::constant(batch.images))?;
        correct += correct_count(scores.value(), &batch.labels)?;
        samples += batch.labels.len();
    }
    if samples == 0 {
        return Err(NnError::invalid(
            "evaluate_accuracy",
            "no batches to evaluate",
        ));
    }
    Ok(correct as f64 / samples as f64)
}
