//! The book's training loop and evaluation across ranks: each rank reads only its shards
//! of every batch ([`PartSource`]), and every rank ends each step with the whole batch's
//! loss, scores and labels, so the metrics and the epoch's numbers are those of one
//! process. A rank that cannot read its part, or whose batches run out before the
//! others', stops every rank at that step; a stop request (Ctrl-C) ends the loop on every
//! rank after the same step.

use crate::comm::{Communicator, Element};
use crate::ddp::{outcome, DistDataParallel, Part};
use crate::error::{DistError, Result};
use crate::wire::Report;
use kiln_nn::data::{Batch, Batches, Dataset, TryBatches};
use kiln_nn::metric::{Accuracy, Metric, MetricUpdate};
use kiln_nn::train::{EpochStats, StepReport};
use kiln_nn::{Block, NnError, Trainer};
use kiln_tensor::Float;
use std::ops::Range;

/// Where a rank's parts of the batches come from: the next batch's size and the samples
/// `part(n)` of it, or why they could not be read.
pub trait PartSource<T: Float> {
    /// The size `n` of the next batch and its samples `part(n)`, or the error that kept
    /// them from being read (`None` at the end). An error is every rank's at that step.
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, kiln_nn::Result<Batch<T>>)>;
}

/// The batches of [`kiln_nn::data::DataLoader::try_epoch`]: a sample that cannot be read
/// stops every rank at that batch with its error.
impl<D: Dataset, T: Float> PartSource<T> for TryBatches<'_, D, T> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, kiln_nn::Result<Batch<T>>)> {
        TryBatches::next_part(self, part)
    }
}

/// The batches of [`kiln_nn::data::DataLoader::epoch`], which end at a sample that cannot
/// be read (the loader keeps the error): the other ranks then stop, told that this rank's
/// batches ran out. Use `try_epoch` to give every rank the error itself.
impl<D: Dataset, T: Float> PartSource<T> for Batches<'_, D, T> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, kiln_nn::Result<Batch<T>>)> {
        Batches::next_part(self, part).map(|(n, batch)| (n, Ok(batch)))
    }
}

/// Whole batches from any iterator, each cut to the rank's part (every rank then reads
/// every sample: for data made in memory, such as a benchmark's batch).
pub struct WholeBatches<I>(pub I);

impl<T: Float, I: Iterator<Item = Batch<T>>> PartSource<T> for WholeBatches<I> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, kiln_nn::Result<Batch<T>>)> {
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
        Some((n, Ok(cut.unwrap_or(batch))))
    }
}

/// The batches of `source` after its first `skip`, which are passed over without reading
/// their samples (beyond one, for the shape): to resume an epoch in its middle, at the
/// batch a training state's `progress.batches` names. Every rank skips the same batches.
pub struct SkipBatches<S> {
    source: S,
    skip: usize,
}

impl<S> SkipBatches<S> {
    /// `source` without its first `skip` batches.
    pub fn new(source: S, skip: usize) -> Self {
        SkipBatches { source, skip }
    }
}

impl<T: Float, S: PartSource<T>> PartSource<T> for SkipBatches<S> {
    fn next_part(
        &mut self,
        part: &mut dyn FnMut(usize) -> Range<usize>,
    ) -> Option<(usize, kiln_nn::Result<Batch<T>>)> {
        while self.skip > 0 {
            self.skip -= 1;
            if let (n, Err(e)) = self.source.next_part(&mut |_| 0..0)? {
                self.skip = 0;
                return Some((n, Err(e)));
            }
        }
        self.source.next_part(part)
    }
}

impl<T: Float + Element, B: Block<T>, C: Communicator> DistDataParallel<'_, '_, T, B, C> {
    /// This rank's part of the next batch of `source`, or the error that kept it from
    /// being read (`None` at the end).
    pub fn next_part(&self, source: &mut impl PartSource<T>) -> Option<Result<Part<T>>> {
        let (shards, ranks, rank) = (self.shards(), self.comm.size(), self.comm.rank());
        let mut range = |n| crate::Layout::new(n, shards, ranks).samples_of(rank);
        source.next_part(&mut range).map(|(batch_len, batch)| {
            batch.map_err(DistError::from).map(|batch| Part {
                images: batch.images,
                labels: batch.labels,
                batch_len,
            })
        })
    }

    /// Tells the other ranks that this rank's batches have run out, and returns once
    /// theirs have too (an error if not: the ranks would wait for each other).
    fn end_of_batches(&self) -> Result<()> {
        match self.exchange(None, None)? {
            None => Ok(()),
            Some(_) => Err(DistError::comm(
                "exchange",
                "a rank sent a batch at the end",
            )),
        }
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
    /// with the same shards; an error on one rank (its step's, or its data's) stops every
    /// rank at that step.
    ///
    /// Once a rank's stop request reaches the ranks ([`DistDataParallel::stopping`]), the
    /// epoch ends after that step on every rank, and the stats are those of the steps
    /// taken (`steps` says how many; none if the stop was agreed before the first).
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
        while !self.stopping() {
            let Some(part) = self.next_part(&mut batches) else {
                self.end_of_batches()?;
                break;
            };
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
        if samples == 0 && !self.stopping() {
            return Err(NnError::invalid("train_epoch", "the epoch had no batches").into());
        }
        Ok(EpochStats {
            loss: loss_sum / samples.max(1) as f64,
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
    /// with the whole batch, in shard order. A stop request does not end it.
    pub fn evaluate(
        &self,
        mut batches: impl PartSource<T>,
        metric: &mut dyn MetricUpdate<T>,
    ) -> Result<Vec<(String, f64)>> {
        metric.reset();
        let mut samples = 0;
        while let Some(part) = self.next_part(&mut batches) {
            let (local, layout) = match part {
                Ok(part) => {
                    let layout = self.layout(part.batch_len);
                    (self.local_scores(&part, &layout), Some(layout))
                }
                Err(e) => (Err(e), None),
            };
            let report: Report<T> = local
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string);
            let reports = match (local, self.exchange(Some(report), layout.as_ref())) {
                (Err(own), _) => return Err(own),
                (Ok(_), Err(e)) => return Err(e),
                (Ok(_), Ok(Some(reports))) => reports,
                (Ok(_), Ok(None)) => {
                    return Err(DistError::comm("evaluate", "the ranks' batches ran out"))
                }
            };
            let whole = outcome(reports)?;
            metric.update(whole.labels.as_ref(), &whole.scores)?;
            samples += whole.labels.len();
        }
        self.end_of_batches()?;
        if samples == 0 {
            return Err(DistError::Nn(NnError::invalid(
                "evaluate",
                "no batches to evaluate",
            )));
        }
        Ok(metric.name_values())
    }
}
