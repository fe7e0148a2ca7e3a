//! [`DistDataParallel`]: one network trained by several processes, each computing some
//! shards of every batch (on threads of its own, through [`DataParallel`]), with results
//! bit-identical to one process's for any number of them.
//!
//! Every rank holds the whole network and the whole optimizer state, and takes the same
//! step. At the start, rank 0's weights are broadcast, and the ranks check that they run
//! the same network, shard count and reduction. At each step, each batch (the same on
//! every rank: the shuffle is global and seeded) is cut into shards as `DataParallel`
//! cuts it ([`Layout`]); each rank reads and computes only its own run of shards, the
//! ranks exchange each shard's loss, scores and labels and any error, and the shards'
//! gradients and states are summed in shard order (see [`Reduction`]). A rank's failure
//! at a step reaches every rank at that step, as an error naming it.

use crate::comm::{gather_bytes, Communicator, Element};
use crate::error::{DistError, Result};
use crate::layout::Layout;
use crate::reduce::{allreduce, shard_order, Flat, Reduction, Slot};
use crate::wire::{decode, encode, Message, Report, ShardReport};
use kiln_autograd::RandomKey;
use kiln_nn::{Block, BlockExt, DataParallel, Labels, NnError, Parameter, ShardGradient};
use kiln_tensor::{Float, Tensor};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a [`DistDataParallel`] shares the work: the shard count (which fixes the
/// arithmetic), the threads of each rank, and the reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DistConfig {
    shards: usize,
    threads: usize,
    reduction: Reduction,
}

impl DistConfig {
    /// `shards` shards per batch (as `DataParallel`'s), one thread per rank, summed in
    /// shard order.
    pub fn new(shards: usize) -> Self {
        DistConfig {
            shards,
            threads: 1,
            reduction: Reduction::ShardOrder,
        }
    }

    /// Threads per rank (they change no bit).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// How gradients are summed across ranks.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// This rank's part of one batch: the samples of its shards, and the size of the whole
/// batch (which fixes the shards).
#[derive(Clone, Debug, PartialEq)]
pub struct Part<T: Float> {
    /// The images of this rank's shards, `[m, …]` (m may be 0).
    pub images: Tensor<T>,
    /// Their labels.
    pub labels: Labels<T>,
    /// The number of samples in the whole batch.
    pub batch_len: usize,
}

/// What one step gave for the whole batch, on every rank.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutcome<T: Float> {
    /// The summed loss of the batch, added shard by shard in order from 0 (as
    /// `DataParallel` adds it).
    pub loss: f64,
    /// The network's outputs for the whole batch, shards joined in order.
    pub scores: Tensor<T>,
    /// The whole batch's labels, in the same order.
    pub labels: Labels<T>,
}

/// Where the steps' time went on this rank, summed since the last
/// [`DistDataParallel::reset_step_times`]: to see what a step costs beyond its shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepTimes {
    /// Steps counted.
    pub steps: u64,
    /// Computing this rank's shards (forward and backward).
    pub compute: Duration,
    /// Exchanging the shards' losses, scores and labels: includes waiting for the
    /// slowest rank to finish its shards.
    pub exchange: Duration,
    /// Summing the gradients across ranks (all-to-all and all-gather, or allreduce).
    pub reduce: Duration,
    /// Setting the summed gradients and states into the parameters.
    pub apply: Duration,
}

/// Trains one network across the ranks of `comm`.
///
/// Every rank holds the whole network and optimizer state and takes the same step. At
/// the start the ranks check that they run the same network, shard count and reduction,
/// and take rank 0's weights. Each batch, the same on every rank (the shuffle is global
/// and seeded), is cut into shards as `DataParallel` cuts it ([`Layout`]); each rank
/// reads and computes only its own run of shards, the ranks exchange each shard's loss,
/// scores, labels and any error, and the gradients and states are summed in shard order
/// (see [`Reduction`]). A rank's failure at a step reaches every rank at that step.
///
/// ```
/// use kiln_dist::{DistConfig, DistDataParallel, Local, Part};
/// use kiln_nn::{zoo::lenet, Activation, BlockExt, Init, Labels, Sgd, Trainer};
/// use kiln_tensor::Tensor;
/// let make = || lenet::<f32>(Activation::Relu);
/// let net = make();
/// net.initialize(&Init::xavier(), 0)?;
/// net.predict(&Tensor::zeros([1, 1, 28, 28]))?; // every shape known
/// let dist = DistDataParallel::new(&Local, &net, make, DistConfig::new(4))?;
/// let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
/// let part = Part {
///     images: Tensor::full([8, 1, 28, 28], 0.5),
///     labels: Labels::Classes(vec![0, 1, 2, 3, 4, 5, 6, 7]),
///     batch_len: 8, // one rank: its part is the whole batch
/// };
/// let outcome = dist.gradient(part, trainer.random_key())?;
/// trainer.step(8)?;
/// assert_eq!(outcome.scores.dims(), &[8, 10]);
/// # Ok::<(), kiln_dist::DistError>(())
/// ```
pub struct DistDataParallel<'n, 'c, T: Float + Element, B: Block<T>, C: Communicator> {
    pub(crate) comm: &'c C,
    pub(crate) net: &'n B,
    pub(crate) parallel: DataParallel<'n, T, B>,
    pub(crate) params: Vec<Parameter<T>>,
    flat: Flat,
    config: DistConfig,
    times: Cell<StepTimes>,
    /// This rank's stop request, read at every step (see `stop_on`).
    stop_flag: Cell<Option<&'static AtomicBool>>,
    /// Whether some rank's stop request reached every rank (the same on all of them).
    stopping: Cell<bool>,
}

impl<'n, 'c, T: Float + Element, B: Block<T>, C: Communicator> DistDataParallel<'n, 'c, T, B, C> {
    /// Prepares `net` (initialized, every shape known) for training across the ranks of
    /// `comm`: `replica` builds the network again for the threads of this rank (as for
    /// [`DataParallel::new`]). A collective: every rank calls it. The ranks check that
    /// they run the same network (parameter names and shapes), element type, shard count
    /// and reduction, then take rank 0's weights.
    pub fn new<N, F>(comm: &'c C, net: &'n B, replica: F, config: DistConfig) -> Result<Self>
    where
        N: Block<T> + 'static,
        F: Fn() -> N + Send + Sync + 'static,
    {
        let local = (|| {
            let dict = net.collect_params();
            if let Some((key, p)) = dict.iter().find(|(_, p)| !p.is_initialized()) {
                return Err(DistError::invalid(
                    "DistDataParallel",
                    format!(
                        "parameter '{key}' ({}, shape {}) has no values yet: initialize the \
                         network and run one forward pass (e.g. `net.predict` of one sample) \
                         so that every shape is known",
                        p.name(),
                        p.shape()
                    ),
                ));
            }
            let parallel = DataParallel::new(net, replica, config.shards, config.threads)?;
            Ok((dict, parallel))
        })();
        let (dict, parallel) = crate::comm::agree(comm, "starting", local)?;
        let description: Vec<String> = dict
            .iter()
            .map(|(k, p)| format!("{k}{}{}", p.shape(), if p.is_state() { "s" } else { "" }))
            .collect();
        let network = format!(
            "{} parameters, fingerprint {:016x}",
            description.len(),
            fnv1a(description.join(";").as_bytes())
        );
        crate::comm::check_same(
            comm,
            &[
                ("the element type", &T::DTYPE.name()),
                ("the network", &network),
                ("the shard count", &config.shards),
                ("the reduction", &config.reduction.name()),
            ],
        )?;
        let params = dict.into_params();
        let sizes: Vec<(usize, bool)> = params
            .iter()
            .map(|p| Ok((p.data()?.data().len(), p.is_state())))
            .collect::<std::result::Result<_, NnError>>()?;
        let dist = DistDataParallel {
            comm,
            net,
            parallel,
            params,
            flat: Flat::new(&sizes),
            config,
            times: Cell::new(StepTimes::default()),
            stop_flag: Cell::new(None),
            stopping: Cell::new(false),
        };
        dist.broadcast_parameters()?;
        Ok(dist)
    }

    /// The communicator.
    pub fn comm(&self) -> &'c C {
        self.comm
    }

    /// The number of shards each batch is cut into.
    pub fn shards(&self) -> usize {
        self.config.shards
    }

    /// The threads of this rank that compute shards.
    pub fn threads(&self) -> usize {
        self.parallel.threads()
    }

    /// How gradients are summed across ranks.
    pub fn reduction(&self) -> Reduction {
        self.config.reduction
    }

    /// Where the time of the steps since the last reset went on this rank.
    pub fn step_times(&self) -> StepTimes {
        self.times.get()
    }

    /// Starts counting [`DistDataParallel::step_times`] afresh.
    pub fn reset_step_times(&self) {
        self.times.set(StepTimes::default());
    }

    /// Makes the training loops end on every rank after the same step once `flag` is set
    /// on any rank (by a signal handler, say: under `mpirun`, Ctrl-C reaches the ranks as
    /// SIGTERM, one rank at a time). Each step's exchange carries this rank's flag, so
    /// the ranks agree on the step to stop after without another message; the flag is
    /// only read, never cleared.
    pub fn stop_on(&self, flag: &'static AtomicBool) {
        self.stop_flag.set(Some(flag));
    }

    /// Whether a rank's stop request (see [`DistDataParallel::stop_on`]) reached this
    /// rank in a step or in [`DistDataParallel::agree_to_stop`]: the same on every rank,
    /// and once true, true for good. [`DistDataParallel::train_epoch_with`] ends after
    /// the step that made it true.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Whether any rank's stop flag is set or a stop was agreed already (a collective:
    /// one value is summed across the ranks). Every rank gets the same answer; call it
    /// where the loop could stop between steps, such as at the end of an epoch, since
    /// a signal may have reached the ranks at different moments.
    pub fn agree_to_stop(&self) -> Result<bool> {
        let mine = self.stopping.get() || self.stop_flag_set();
        let any = self.comm.allreduce_sum(vec![mine as u64])?[0] > 0;
        if any {
            self.stopping.set(true);
        }
        Ok(any)
    }

    fn stop_flag_set(&self) -> bool {
        self.stop_flag
            .get()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// The layout of a batch of `n` samples over the ranks.
    pub fn layout(&self, n: usize) -> Layout {
        Layout::new(n, self.config.shards, self.comm.size())
    }

    /// Rank 0's values of every parameter (and state) on every rank.
    pub fn broadcast_parameters(&self) -> Result<()> {
        let mut flat = Vec::with_capacity(self.flat.len);
        if self.comm.rank() == 0 {
            for p in &self.params {
                flat.extend_from_slice(p.data()?.data());
            }
        } else {
            flat.resize(self.flat.len, T::ZERO);
        }
        let flat = self.comm.broadcast(0, flat)?;
        if self.comm.rank() != 0 {
            let mut at = 0;
            for p in &self.params {
                let shape = p.data()?.shape().clone();
                let n = shape.iter().product::<usize>();
                p.set_data(Tensor::from_vec(flat[at..at + n].to_vec(), shape)?)?;
                at += n;
            }
        }
        Ok(())
    }

    /// The forward and backward pass of one batch across the ranks, from this rank's
    /// `part` of it (a collective: every rank calls it with its own part of the same
    /// batch). Afterwards each parameter holds the sum, in shard order, of the shards'
    /// gradients and each state the mean of the shards' states, exactly as after
    /// [`DataParallel::gradient`] of the whole batch with the same shards, and the outcome
    /// is the whole batch's. Random layers draw from `key` by each sample's index in the
    /// whole batch. A rank's error is every rank's: its own, or [`DistError::Peer`].
    pub fn gradient(&self, part: Part<T>, key: RandomKey) -> Result<StepOutcome<T>> {
        self.step(Ok(part), key, None)
    }

    /// [`DistDataParallel::gradient`] of this rank's part, or of the error that kept it
    /// from reading it (which becomes every rank's), with errors naming `step` when
    /// known (the training loop's).
    pub(crate) fn step(
        &self,
        part: Result<Part<T>>,
        key: RandomKey,
        step: Option<usize>,
    ) -> Result<StepOutcome<T>> {
        let part = match part {
            Ok(part) => part,
            Err(own) => {
                // the others are told at this step's exchange, then this rank returns
                let _ = self.exchange(Some(Err(own.to_string())), None);
                return Err(own);
            }
        };
        let layout = self.layout(part.batch_len);
        let mut times = self.times.get();
        let mut clock = Instant::now();
        let mut lap = |d: &mut Duration| {
            let now = Instant::now();
            *d += now - clock;
            clock = now;
        };
        let local = self.local_gradients(&part, &layout, key, step);
        lap(&mut times.compute);
        // whatever happened here, the others hear of it: no rank returns before the
        // exchange, so none is left waiting in it
        let report: Report<T> = match &local {
            Ok(shards) => {
                reports(shards, &part.labels, layout.shard_size()).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let (mine, reports) = match (local, self.exchange(Some(report), Some(&layout))) {
            (Err(own), _) => return Err(own),
            (Ok(_), Err(e)) => return Err(e),
            (Ok(mine), Ok(Some(reports))) => (mine, reports),
            (Ok(_), Ok(None)) => {
                return Err(DistError::comm("gradient", "the ranks' batches ran out"))
            }
        };
        let presence: Vec<Vec<bool>> = reports.iter().map(|r| r.present.clone()).collect();
        if presence.iter().any(|p| p.len() != self.params.len()) {
            return Err(DistError::comm(
                "gradient",
                "a rank reported another number of parameters",
            ));
        }
        let outcome = outcome(reports)?;
        lap(&mut times.exchange);
        if outcome.loss.is_finite() {
            let sum = match self.config.reduction {
                Reduction::ShardOrder => {
                    let held: Vec<_> = (0..self.comm.size()).map(|q| layout.shards_of(q)).collect();
                    shard_order(self.comm, &self.flat, &mine, &held, &presence)?
                }
                Reduction::Allreduce => allreduce(self.comm, &self.flat, &mine)?,
            };
            recycle(mine);
            lap(&mut times.reduce);
            self.apply(&sum, &presence, layout.count())?;
            lap(&mut times.apply);
        }
        times.steps += 1;
        self.times.set(times);
        Ok(outcome)
    }

    /// This rank's shards' gradients, after checking its part.
    fn local_gradients(
        &self,
        part: &Part<T>,
        layout: &Layout,
        key: RandomKey,
        step: Option<usize>,
    ) -> Result<Vec<ShardGradient<T>>> {
        let samples = layout.samples_of(self.comm.rank());
        check_part(part, samples.len())?;
        if !part.images.all_finite() {
            let batch = step.map_or("the batch".to_string(), |s| format!("batch {s}"));
            return Err(NnError::invalid(
                "train_epoch",
                format!("{batch} has NaN or infinite pixels"),
            )
            .into());
        }
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let key = key.offset(samples.start as u64);
        self.parallel
            .shard_gradients(
                part.images.clone(),
                part.labels.as_ref(),
                layout.shard_size(),
                key,
            )
            .map_err(|e| match (e, step) {
                // the batch was finite, so a non-finite activation comes from the weights
                (e @ NnError::Layer { .. }, Some(step))
                    if matches!(e.root(), NnError::NonFinite { .. }) =>
                {
                    NnError::Diverged {
                        step,
                        what: e.to_string(),
                    }
                    .into()
                }
                (other, _) => other.into(),
            })
    }

    /// Every rank's reports, in shard order, from this rank's `report` of its part of a
    /// batch laid out as `layout` (`None`: its batches have run out), and notes whether
    /// any rank asked to stop. An error when a rank failed ([`DistError::Peer`] naming the
    /// first, this one included), or when some ranks' batches ran out and others' did
    /// not; `Ok(None)` when every rank's ran out.
    pub(crate) fn exchange(
        &self,
        report: Option<Report<T>>,
        layout: Option<&Layout>,
    ) -> Result<Option<Vec<ShardReport<T>>>> {
        let message = Message {
            report,
            stop: self.stop_flag_set(),
        };
        let all = gather_bytes(self.comm, encode(&message))?;
        let mut messages = Vec::with_capacity(all.len());
        for (q, bytes) in all.iter().enumerate() {
            messages.push(decode::<T>(bytes).ok_or_else(|| {
                DistError::comm(
                    "exchange",
                    format!("rank {q} sent a message that cannot be read"),
                )
            })?);
        }
        if messages.iter().any(|m| m.stop) {
            self.stopping.set(true);
        }
        // a failure first: it says why
        for (q, m) in messages.iter_mut().enumerate() {
            if let Some(Err(message)) = &mut m.report {
                let message = std::mem::take(message);
                return Err(DistError::Peer { rank: q, message });
            }
        }
        let out = messages.iter().position(|m| m.report.is_none());
        let more = messages.iter().position(|m| m.report.is_some());
        let (layout, out) = match (out, more, layout) {
            (Some(_), None, _) => return Ok(None),
            (Some(out), Some(more), _) => {
                return Err(DistError::comm(
                    "exchange",
                    format!(
                        "rank {out}'s batches ran out before rank {more}'s: every rank must \
                         read as many batches of the same sizes (the same data and batch size)"
                    ),
                ))
            }
            (None, _, Some(layout)) => (layout, messages),
            (None, _, None) => {
                return Err(DistError::invalid(
                    "exchange",
                    "a report of a batch needs its layout",
                ))
            }
        };
        let mut shards = Vec::with_capacity(layout.count());
        for (q, m) in out.into_iter().enumerate() {
            let Some(Ok(list)) = m.report else {
                return Err(DistError::comm("exchange", "a report changed while read"));
            };
            if list.len() != layout.shards_of(q).len() {
                return Err(DistError::comm(
                    "exchange",
                    format!(
                        "rank {q} computed {} shards of a batch of {}, expected {} (shards {:?})",
                        list.len(),
                        layout.len(),
                        layout.shards_of(q).len(),
                        layout.shards_of(q)
                    ),
                ));
            }
            shards.extend(list);
        }
        Ok(Some(shards))
    }

    /// Sets the gradients and states from the flat sum of `count` shards.
    fn apply(&self, sum: &[T], presence: &[Vec<bool>], count: usize) -> Result<()> {
        let count = T::from_usize(count);
        for ((slot, range), p) in self.flat.segments.iter().zip(&self.params) {
            let shape = p.data()?.shape().clone();
            match *slot {
                Slot::Grad(i) => {
                    if presence.iter().any(|s| s[i]) {
                        let g = Tensor::from_vec(sum[range.clone()].to_vec(), shape)?;
                        p.leaf()?.set_grad(g).map_err(NnError::from)?;
                    }
                }
                Slot::State(_) => {
                    let mean: Vec<T> = sum[range.clone()].iter().map(|&v| v / count).collect();
                    p.set_data(Tensor::from_vec(mean, shape)?)?;
                }
            }
        }
        Ok(())
    }

    /// This rank's shards' scores for its `part` (predict mode), joined in order.
    pub(crate) fn local_scores(
        &self,
        part: &Part<T>,
        layout: &Layout,
    ) -> Result<Vec<ShardReport<T>>> {
        let samples = layout.samples_of(self.comm.rank());
        check_part(part, samples.len())?;
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let scores = self
            .parallel
            .predict_in_shards(part.images.clone(), layout.shard_size())?;
        let size = layout.shard_size();
        let mut out = Vec::new();
        for start in (0..samples.len()).step_by(size) {
            let end = (start + size).min(samples.len());
            out.push(ShardReport {
                loss: 0.0,
                present: Vec::new(),
                scores: scores.slice_axis(0, start, end)?,
                labels: slice_labels(&part.labels, start, end)?,
            });
        }
        Ok(out)
    }
}

/// An error unless `part` holds `n` images and as many labels.
fn check_part<T: Float>(part: &Part<T>, n: usize) -> Result<()> {
    let images = part.images.dims().first().copied().unwrap_or(0);
    if images != n || part.labels.len() != n {
        return Err(DistError::invalid(
            "DistDataParallel",
            format!(
                "this rank's part of a batch of {} should hold {n} samples, it holds {images} images \
                 and {} labels",
                part.batch_len,
                part.labels.len()
            ),
        ));
    }
    Ok(())
}

/// The reports of this rank's shards (cut from its labels).
fn reports<T: Float>(
    shards: &[ShardGradient<T>],
    labels: &Labels<T>,
    size: usize,
) -> Result<Vec<ShardReport<T>>> {
    shards
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let (start, end) = (k * size, ((k + 1) * size).min(labels.len()));
            Ok(ShardReport {
                loss: s.outcome.loss,
                present: s.grads.iter().map(Option::is_some).collect(),
                scores: s.outcome.scores.clone(),
                labels: slice_labels(labels, start, end)?,
            })
        })
        .collect()
}

fn slice_labels<T: Float>(labels: &Labels<T>, start: usize, end: usize) -> Result<Labels<T>> {
    Ok(labels.as_ref().slice(start, end)?)
}

/// The whole batch's outcome from every shard's report, in order.
pub(crate) fn outcome<T: Float>(reports: Vec<ShardReport<T>>) -> Result<StepOutcome<T>> {
    let loss = reports.iter().fold(0.0, |l, r| l + r.loss);
    let scores: Vec<&Tensor<T>> = reports.iter().map(|r| &r.scores).collect();
    let scores = Tensor::concat(&scores, 0)?;
    let labels = join_labels(reports.into_iter().map(|r| r.labels))?;
    Ok(StepOutcome {
        loss,
        scores,
        labels,
    })
}

/// Labels joined in order (all classes, or all targets).
fn join_labels<T: Float>(parts: impl Iterator<Item = Labels<T>>) -> Result<Labels<T>> {
    let mut classes = Vec::new();
    let mut targets = Vec::new();
    for labels in parts {
        match labels {
            Labels::Classes(c) => classes.extend(c),
            Labels::Targets(t) => targets.push(t),
        }
    }
    match (classes.is_empty(), targets.is_empty()) {
        (_, true) => Ok(Labels::Classes(classes)),
        (true, false) => {
            let parts: Vec<&Tensor<T>> = targets.iter().collect();
            Ok(Labels::Targets(Tensor::concat(&parts, 0)?))
        }
        (false, false) => Err(DistError::invalid(
            "DistDataParallel",
            "some ranks' labels are classes and others' targets",
        )),
    }
}

/// Gives the shards' gradient buffers back for the next step's backward.
fn recycle<T: Float>(shards: Vec<ShardGradient<T>>) {
    for s in shards {
        s.grads.into_iter().flatten().for_each(Tensor::recycle);
    }
}

/// FNV-1a 64 of `bytes`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
