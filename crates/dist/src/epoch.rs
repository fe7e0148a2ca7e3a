//! The book's training loop and evaluation across ranks: each rank reads only its shards
//! of every batch ([`PartSource`]), and every rank ends each step with the whole batch's
//! loss, scores and labels, so the metrics and the epoch's numbers are those of one
//! process.

use crate::comm::{Communicator, Element};
use crate::ddp::{outcome, DistDataParallel, Part};
use crate::error::{DistError, Result};
use crate::wire::Report;
use kiln_nn::data::{Batch, Batches, Dataset};
use kiln_nn::metric::{Accuracy, Metric, MetricUpdate};
use kiln_nn::train::{EpochStats, StepReport};
use kiln_nn::{Block, NnError, Trainer};
use kiln_tensor::Float;
use std::ops::Range;

/// Where a rank's parts of the batches come from: the next batch's size and the samples
/// `part(n)` of it.
pub trait PartSource<T: Float> {
    /// The size `n` of the next batch and its samples `part(n)` (`None` at the end).
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, Batch<T>)>;
}

impl<D: Dataset, T: Float> PartSource<T> for Batches<'_, D, T> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, Batch<T>)> {
        Batches::next_part(self, part)
    }
}

/// Whole batches from any iterator, each cut to the rank's part (every rank then reads
/// every sample: for data made in memory, such as a benchmark's batch).
pub struct WholeBatches<I>(pub I);

impl<T: Float, I: Iterator<Item = Batch<T>>> PartSource<T> for WholeBatches<I> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, Batch<T>)> {
        let batch = self.0.next()?;
        let n = batch.labels.len();
        let range = part(n);
        let cut = (|| {
            Ok::<_, NnError>(Batch {
                images: batch.images.slice_axis(0, range.start, range.end)?,
                labels: batch.labels.as_ref().slice(range.start, range.end)?,
            })
        })();
        // a batch whose images and labels disagree in number is passed on whole, for
        // the step to refuse on every rank
        Some((n, cut.unwrap_or(batch)))
    }
}

impl<T: Float + Element, B: Block<T>, C: Communicator> DistDataParallel<'_, '_, T, B, C> {
    /// This rank's part of the next batch of `source`.
    pub fn next_part(&self, source: &mut impl PartSource<T>) -> Option<Part<T>> {
        let (shards, ranks, rank) = (self.shards(), self.comm.size(), self.comm.rank());
        let mut range = |n| crate::Layout::new(n, shards, ranks).samples_of(rank);
        source.next_part(&mut range).map(|(batch_len, batch)| Part {
            images: batch.images,
            labels: batch.labels,
            batch_len,
        })
    }

    /// Trains for one pass over `batches` as the book does, with accuracy as the metric
    /// (see [`DistDataParallel::train_epoch_with`]).
    pub fn train_epoch(
        &self,
        batches: impl PartSource<T>,
        trainer: &mut Trainer<T>,
        batch_size: usize,
        on_step: impl FnMut(&StepReport),
    ) -> Result<EpochStats> {
        self.train_epoch_with(batches, trainer, batch_size, &mut Accuracy::new(), on_step)
    }

    /// [`kiln_nn::train::train_epoch_with`] across the ranks (a collective): per batch,
    /// [`DistDataParallel::gradient`] under the trainer's random key,
    /// `trainer.step(batch_size)` on every rank, and `metric` updated with the whole
    /// batch. The same numbers, checks and errors as `DataParallel::train_epoch_with`
    /// with the same shards; an error on one rank stops every rank at that step.
    pub fn train_epoch_with(
        &self,
        mut batches: impl PartSource<T>,
        trainer: &mut Trainer<T>,
        batch_size: usize,
        metric: &mut dyn MetricUpdate<T>,
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<EpochStats> {
        metric.reset();
        let (mut loss_sum, mut samples, mut steps) = (0.0, 0, 0);
        while let Some(part) = self.next_part(&mut batches) {
            steps += 1;
            let outcome = self.step(part, trainer.random_key(), Some(steps))?;
            if !outcome.loss.is_finite() {
                return Err(NnError::Diverged {
                    step: steps,
                    what: format!("the loss is {}", outcome.loss),
                }
                .into());
            }
            // every rank holds the same gradients: the same step, or the same error
            trainer.step(batch_size).map_err(|e| match e {
                NnError::Invalid { ref message, .. } if message.contains("NaN or infinite") => {
                    NnError::Diverged {
                        step: steps,
                        what: e.to_string(),
                    }
                }
                other => other,
            })?;
            metric.update(outcome.labels.as_ref(), &outcome.scores)?;
            loss_sum += outcome.loss;
            samples += outcome.labels.len();
            on_step(&StepReport {
                steps,
                samples,
                loss: loss_sum / samples as f64,
            });
        }
        if samples == 0 {
            return Err(NnError::invalid("train_epoch", "the epoch had no batches").into());
        }
        Ok(EpochStats {
            loss: loss_sum / samples as f64,
            metrics: metric.name_values(),
            samples,
            steps,
        })
    }

    /// Accuracy over `batches` in predict mode, each rank predicting its shards.
    pub fn evaluate_accuracy(&self, batches: impl PartSource<T>) -> Result<f64> {
        let mut acc = Accuracy::new();
        self.evaluate(batches, &mut acc)?;
        Ok(acc.get())
    }

    /// [`kiln_nn::train::evaluate`] across the ranks (a collective): each rank predicts
    /// its shards of every batch, and `metric` (reset first) is updated on every rank
    /// with the whole batch, in shard order.
    pub fn evaluate(
        &self,
        mut batches: impl PartSource<T>,
        metric: &mut dyn MetricUpdate<T>,
    ) -> Result<Vec<(String, f64)>> {
        metric.reset();
        let mut samples = 0;
        while let Some(part) = self.next_part(&mut batches) {
            let layout = self.layout(part.batch_len);
            let local = self.local_scores(&part, &layout);
            let report: Report<T> = local
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string);
            let reports = match (local, self.exchange(&report, &layout)) {
                (Err(own), _) => return Err(own),
                (Ok(_), Err(e)) => return Err(e),
                (Ok(_), Ok(reports)) => reports,
            };
            let whole = outcome(reports)?;
            metric.update(whole.labels.as_ref(), &whole.scores)?;
            samples += whole.labels.len();
        }
        if samples == 0 {
            return Err(DistError::Nn(NnError::invalid(
                "evaluate",
                "no batches to evaluate",
            )));
        }
        Ok(metric.name_values())
    }
}
