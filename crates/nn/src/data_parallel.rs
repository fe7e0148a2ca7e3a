//! [`DataParallel`]: one network trained on several threads, the way Gluon trains on
//! several devices (`split_and_load`, one replica per device, gradients summed before
//! `trainer.step`).
//!
//! Each extra thread owns a replica of the network, built by a function the caller gives
//! (a network is made of `Rc`s and never crosses threads; only plain tensors do). A batch
//! is cut into a fixed number of shards; before each batch the replicas receive the
//! network's current weights, the threads take shards as they free up (so a thread on a
//! busier core computes fewer), and the shards' gradients are summed **in shard order**
//! into the network's own parameters, where the [`Trainer`] finds them. A shard's
//! gradient does not depend on which thread computed it, and the number of shards, not
//! of threads, fixes the order of the sums: results are bit-identical whether one thread
//! runs all shards or several share them.
//!
//! What only one thread can do is kept short, since the others wait meanwhile: each
//! thread copies the shards it takes out of the shared batch itself, sends each shard's
//! gradient as soon as it has it, and the caller adds those in between its own shards,
//! so that when the last shard is in only its own sum is left. Inside a shard the
//! kernels stay on their thread, so a step costs one hand-off per thread instead of one
//! per kernel, and a thread waiting for the next hand-off polls for a moment before it
//! sleeps, since waking a sleeping thread takes longer than a short wait.

use crate::block::{Block, BlockExt};
use crate::data::IntoBatch;
use crate::error::{NnError, Result};
use crate::labels::{Labels, LabelsRef};
use crate::loss::{Loss, SoftmaxCrossEntropyLoss};
use crate::metric::{Accuracy, Metric, MetricUpdate};
use crate::parameter::Parameter;
use crate::train::{batch_gradient, run_epoch, run_evaluation, BatchOutcome, EpochStats};
use crate::trainer::Trainer;
use kiln_autograd::{RandomKey, Var};
use kiln_tensor::parallel::serial;
use kiln_tensor::{Float, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One batch, shared by the threads while they compute its shards: each thread takes
/// the next shard index and copies that shard's images itself, so cutting the batch
/// costs the caller nothing.
struct Work<T: Float> {
    images: Arc<Tensor<T>>,
    /// The labels, or none when predicting.
    labels: Option<Labels<T>>,
    /// Images per shard (the last shard may have fewer).
    size: usize,
    /// Number of shards.
    count: usize,
    /// The next shard index not yet taken.
    next: AtomicUsize,
}

/// One shard of a batch: images `[n, …]`, their labels (none when predicting), and the
/// index of its first image in the batch.
struct Shard<T: Float> {
    images: Tensor<T>,
    labels: Option<Labels<T>>,
    start: usize,
}

impl<T: Float> Work<T> {
    /// The index of the next shard not yet taken, if any: every thread takes shards until
    /// none is left, so a thread that runs faster (or whose core is less busy) computes
    /// more of them.
    fn take(&self) -> Option<usize> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        (index < self.count).then_some(index)
    }

    /// Shard `index`: a copy of its images and labels.
    fn shard(&self, index: usize) -> Result<Shard<T>> {
        let n = self.images.dims()[0];
        let (start, end) = (index * self.size, ((index + 1) * self.size).min(n));
        Ok(Shard {
            images: self.images.slice_axis(0, start, end)?,
            labels: self
                .labels
                .as_ref()
                .map(|l| l.as_ref().slice(start, end))
                .transpose()?,
            start,
        })
    }
}

/// Results that arrive in any order, handed to `fold` in shard order as soon as every
/// earlier shard's result is in: the sums are always taken in the same order.
struct InOrder<R, F: FnMut(Result<R>)> {
    waiting: Vec<Option<Result<R>>>,
    next: usize,
    fold: F,
}

impl<R, F: FnMut(Result<R>)> InOrder<R, F> {
    fn new(count: usize, fold: F) -> Self {
        InOrder {
            waiting: (0..count).map(|_| None).collect(),
            next: 0,
            fold,
        }
    }

    fn put(&mut self, index: usize, result: Result<R>) {
        self.waiting[index] = Some(result);
        while let Some(result) = self.waiting.get_mut(self.next).and_then(Option::take) {
            (self.fold)(result);
            self.next += 1;
        }
    }

    fn complete(&self) -> bool {
        self.next == self.waiting.len()
    }
}

/// The network's weights in parameter order, for the replicas to load for one batch.
type Weights<T> = Arc<Vec<Tensor<T>>>;

/// What a thread computes for each shard it takes.
#[derive(Clone, Copy)]
enum Task {
    Gradient,
    Predict,
}

/// A batch for a thread: the shards to take from `work`, and what to compute for each
/// under `weights`, with which loss and random key.
struct Job<T: Float> {
    task: Task,
    weights: Weights<T>,
    work: Arc<Work<T>>,
    loss: Arc<dyn Loss<T>>,
    key: RandomKey,
}

/// What one shard's forward and backward pass gave, before any sum (see
/// [`DataParallel::shard_gradients`]).
#[derive(Debug)]
pub struct ShardGradient<T: Float> {
    /// The shard's summed loss and its scores.
    pub outcome: BatchOutcome<T>,
    /// Per parameter of `net.collect_params()`, in its order, the gradient the backward
    /// wrote, or `None` for a parameter it did not reach (all of them when the loss was
    /// not finite, since no backward ran then).
    pub grads: Vec<Option<Tensor<T>>>,
    /// The values the forward pass left in the state parameters (BatchNorm's running
    /// statistics): one per parameter of `net.collect_params()` that
    /// [`Parameter::is_state`], in its order.
    pub states: Vec<Tensor<T>>,
}

/// A thread's messages: that its replica is built and matches; each shard's result as
/// soon as it is computed (so the caller sums while the thread works on); and that it
/// found no shard left.
enum Done<T: Float> {
    Ready,
    Gradient(usize, Result<ShardGradient<T>>),
    Scores(usize, Result<Tensor<T>>),
    Finished,
}

/// A thread that owns a replica.
struct Worker<T: Float> {
    jobs: Option<Sender<Job<T>>>,
    done: Receiver<Result<Done<T>>>,
    thread: Option<JoinHandle<()>>,
}

/// How long a thread that waits for the other side polls before it sleeps. A sleeping
/// thread takes tens of microseconds to wake (more in a virtual machine), a sizeable
/// part of a step that lasts a few milliseconds; polling through the short gaps
/// between shards and batches costs only the waiting thread's own core.
const POLL: Duration = Duration::from_millis(2);

/// The next message of `rx`: polled for up to [`POLL`] when `poll`, then waited for.
fn receive_soon<M>(rx: &Receiver<M>, poll: bool) -> std::result::Result<M, RecvError> {
    if poll {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                match rx.try_recv() {
                    Ok(m) => return Ok(m),
                    Err(TryRecvError::Disconnected) => return Err(RecvError),
                    Err(TryRecvError::Empty) => std::hint::spin_loop(),
                }
            }
            if start.elapsed() > POLL {
                break;
            }
        }
    }
    rx.recv()
}

/// Trains and evaluates `net` with its batches split into `shards` shards spread over
/// `threads` threads (see the [module docs](self)).
///
/// ```
/// use kiln_nn::{zoo::lenet, Activation, BlockExt, DataParallel, Init, Sgd, Trainer};
/// use kiln_tensor::Tensor;
/// let make = || lenet::<f32>(Activation::Relu);
/// let net = make();
/// net.initialize(&Init::xavier(), 0)?;
/// // two shards on two threads: the same numbers as two shards on one thread
/// let parallel = DataParallel::new(&net, make, 2, 2)?;
/// let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
/// let images = Tensor::<f32>::full([8, 1, 28, 28], 0.5);
/// let outcome = parallel.gradient(images, &[0, 1, 2, 3, 4, 5, 6, 7], trainer.random_key())?;
/// trainer.step(8)?;
/// assert!(outcome.loss.is_finite());
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub struct DataParallel<'n, T: Float, B: Block<T>> {
    net: &'n B,
    params: Vec<Parameter<T>>,
    /// Indices (into `params`) of the state the forward pass writes.
    states: Vec<usize>,
    loss: Arc<dyn Loss<T>>,
    shards: usize,
    workers: Vec<Worker<T>>,
    /// Whether a waiting thread polls before it sleeps: only when every thread has a
    /// core of its own.
    poll: bool,
}

impl<'n, T: Float, B: Block<T>> DataParallel<'n, T, B> {
    /// Splits the work of `net` over `threads` threads (at most `shards` are used):
    /// `replica` builds, on each extra thread, a network of the same architecture (the
    /// function that built `net`). An error if `shards` or `threads` is 0, or if a
    /// replica's parameters differ from `net`'s by name.
    pub fn new<N, F>(net: &'n B, replica: F, shards: usize, threads: usize) -> Result<Self>
    where
        N: Block<T> + 'static,
        F: Fn() -> N + Send + Sync + 'static,
    {
        if shards == 0 || threads == 0 {
            return Err(NnError::invalid(
                "DataParallel",
                format!("needs at least one shard and one thread, got {shards} shards and {threads} threads"),
            ));
        }
        let dict = net.collect_params();
        let names: Vec<String> = dict.iter().map(|(k, _)| k.to_string()).collect();
        let params = dict.into_params();
        let states = state_indices(&params);
        let replica = Arc::new(replica);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let poll = threads.min(shards) <= cores;
        let mut workers = Vec::new();
        for t in 1..threads.min(shards) {
            let (jobs, job_rx) = channel();
            let (done_tx, done) = channel();
            let (replica, names) = (Arc::clone(&replica), names.clone());
            let thread = std::thread::Builder::new()
                .name(format!("kiln-replica-{t}"))
                .spawn(move || serve(replica.as_ref(), &names, job_rx, done_tx, poll))
                .map_err(|e| {
                    NnError::invalid("DataParallel", format!("could not start thread {t}: {e}"))
                })?;
            let worker = Worker {
                jobs: Some(jobs),
                done,
                thread: Some(thread),
            };
            // the replica reports whether it matches before any work is sent
            worker.receive(t, false)?;
            workers.push(worker);
        }
        Ok(DataParallel {
            net,
            params,
            states,
            loss: Arc::new(SoftmaxCrossEntropyLoss),
            shards,
            workers,
            poll,
        })
    }

    /// Trains with `loss` instead of the default softmax cross-entropy.
    pub fn with_loss(mut self, loss: impl Loss<T> + 'static) -> Self {
        self.loss = Arc::new(loss);
        self
    }

    /// The number of shards each batch is cut into.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The number of threads that compute shards (the caller's included).
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// The forward and backward pass of one batch, as [`batch_gradient`] but spread over
    /// the threads: afterwards each parameter of the network holds the sum of the shards'
    /// gradients, ready for `trainer.step(batch_size)`, and each piece of state the
    /// forward pass writes (BatchNorm's running statistics) holds the mean, in shard
    /// order, of what the shards wrote, each shard starting from the batch's starting
    /// state (Gluon keeps one copy per device and averages them when saving: the same
    /// numbers, since the update is linear). The outcome's loss is the sum over the
    /// shards and its scores are theirs joined in order. Random layers draw from `key`
    /// (usually [`Trainer::random_key`]), each sample by its index in the whole batch.
    ///
    /// `images` is a tensor, or an `Arc` of one to train on the same batch again
    /// without copying it.
    pub fn gradient<'l>(
        &self,
        images: impl Into<Arc<Tensor<T>>>,
        labels: impl Into<LabelsRef<'l, T>>,
        key: RandomKey,
    ) -> Result<BatchOutcome<T>> {
        let mut loss = 0.0;
        let mut scores = Vec::new();
        let mut sums: Vec<Option<Tensor<T>>> = self.params.iter().map(|_| None).collect();
        let mut state_sums: Vec<Option<Tensor<T>>> = self.states.iter().map(|_| None).collect();
        let mut failure = None;
        self.run_gradients(
            images.into(),
            labels.into(),
            None,
            key,
            |result| match result {
                Err(e) => {
                    failure.get_or_insert(e);
                }
                Ok(_) if failure.is_some() => {}
                Ok(ShardGradient {
                    outcome,
                    grads,
                    states,
                }) => {
                    loss += outcome.loss;
                    scores.push(outcome.scores);
                    add_grads(&mut sums, grads);
                    add_grads(&mut state_sums, states.into_iter().map(Some).collect());
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        for (p, sum) in self.params.iter().zip(sums) {
            if let Some(g) = sum {
                p.with_leaf(|leaf| leaf.set_grad(g)).transpose()?;
            }
        }
        let count = T::from_usize(scores.len());
        for (&i, sum) in self.states.iter().zip(state_sums) {
            if let Some(mut sum) = sum {
                sum.data_mut().iter_mut().for_each(|v| *v /= count);
                self.params[i].set_data(sum)?;
            }
        }
        let parts: Vec<&Tensor<T>> = scores.iter().collect();
        Ok(BatchOutcome {
            loss,
            scores: Tensor::concat(&parts, 0)?,
        })
    }

    /// Each shard's forward and backward pass, as [`DataParallel::gradient`] computes
    /// them before it sums, returned in shard order and not summed, for a caller that
    /// sums them elsewhere (`kiln-dist` sums the shards of several processes in shard
    /// order). `images` is cut into shards of `shard_size` images (the last may have
    /// fewer): pass ⌈n / shards⌉ of the whole batch of n when `images` is a run of its
    /// shards. Each shard starts from the network's current state and draws from `key`
    /// offset by the index of its first image in `images` (so offset `key` by where
    /// `images` starts in the whole batch). Afterwards no parameter holds a fresh
    /// gradient and the state is as it was. An error if `shard_size` is 0.
    pub fn shard_gradients<'l>(
        &self,
        images: impl Into<Arc<Tensor<T>>>,
        labels: impl Into<LabelsRef<'l, T>>,
        shard_size: usize,
        key: RandomKey,
    ) -> Result<Vec<ShardGradient<T>>> {
        if shard_size == 0 {
            return Err(NnError::invalid(
                "DataParallel.shard_gradients",
                "shard_size must be ≥ 1",
            ));
        }
        let start: Vec<Tensor<T>> = self.state_values()?;
        let mut shards = Vec::new();
        let mut failure = None;
        self.run_gradients(
            images.into(),
            labels.into(),
            Some(shard_size),
            key,
            |result| match result {
                Ok(shard) => shards.push(shard),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            },
        )?;
        if !start.is_empty() {
            restore(&self.params, &self.states, &start)?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(shards),
        }
    }

    /// The forward and backward pass of every shard of `images` (of `shard_size`, or
    /// ⌈n / shards⌉), each from the batch's starting state, handed to `fold` in shard
    /// order.
    fn run_gradients(
        &self,
        images: Arc<Tensor<T>>,
        labels: LabelsRef<'_, T>,
        shard_size: Option<usize>,
        key: RandomKey,
        fold: impl FnMut(Result<ShardGradient<T>>),
    ) -> Result<()> {
        self.ensure_initialized(&images)?;
        let start = self.state_values()?;
        let job = JobSpec {
            task: Task::Gradient,
            loss: Arc::clone(&self.loss),
            key,
        };
        self.run_shards(
            images,
            Some(labels),
            shard_size,
            job,
            |net, params, shard| {
                restore(params, &self.states, &start)?;
                shard_gradient(net, params, &self.states, &*self.loss, shard, key)
            },
            |done| match done {
                Done::Gradient(index, result) => (index, result),
                _ => unreachable!("a gradient job is answered with gradients"),
            },
            fold,
        )
    }

    /// The current values of the state parameters.
    fn state_values(&self) -> Result<Vec<Tensor<T>>> {
        self.states
            .iter()
            .map(|&i| Ok(self.params[i].data()?.as_ref().clone()))
            .collect()
    }

    /// The network's scores for `images` in predict mode, the shards computed in
    /// parallel and joined in order. `images` is a tensor or an `Arc` of one.
    pub fn predict(&self, images: impl Into<Arc<Tensor<T>>>) -> Result<Tensor<T>> {
        self.predict_shards(images, None)
    }

    /// [`DataParallel::predict`] with `images` cut into shards of `shard_size` images
    /// (the last may have fewer) instead of ⌈n / shards⌉: the scores of a run of the
    /// shards of a larger batch, as `predict` of the whole batch computes them. An error
    /// if `shard_size` is 0.
    pub fn predict_in_shards(
        &self,
        images: impl Into<Arc<Tensor<T>>>,
        shard_size: usize,
    ) -> Result<Tensor<T>> {
        if shard_size == 0 {
            return Err(NnError::invalid(
                "DataParallel.predict_in_shards",
                "shard_size must be ≥ 1",
            ));
        }
        self.predict_shards(images, Some(shard_size))
    }

    fn predict_shards(
        &self,
        images: impl Into<Arc<Tensor<T>>>,
        shard_size: Option<usize>,
    ) -> Result<Tensor<T>> {
        let images = images.into();
        self.ensure_initialized(&images)?;
        let mut parts = Vec::new();
        let mut failure = None;
        let job = JobSpec {
            task: Task::Predict,
            loss: Arc::clone(&self.loss),
            key: RandomKey::for_step(0),
        };
        self.run_shards(
            images,
            None,
            shard_size,
            job,
            |net, _, shard| predict(net, shard.images),
            |done| match done {
                Done::Scores(index, result) => (index, result),
                _ => unreachable!("a predict job is answered with scores"),
            },
            |result| match result {
                Ok(scores) => parts.push(scores),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        let parts: Vec<&Tensor<T>> = parts.iter().collect();
        Ok(Tensor::concat(&parts, 0)?)
    }

    /// Cuts a batch of `n` into shards of `size` images (by default ⌈n / shards⌉, at
    /// most `self.shards` shards), which the workers (given the current weights and
    /// `job`) and the caller (computing with `local`) take in turn, and hands every
    /// shard's result to `fold` in shard order, as soon as the earlier ones are in.
    /// Which thread computed a shard does not change its result. An error here is a
    /// thread's, not a shard's: every worker that was sent work is heard from before it
    /// returns, so the next batch starts in step.
    #[allow(clippy::too_many_arguments)]
    fn run_shards<R>(
        &self,
        images: Arc<Tensor<T>>,
        labels: Option<LabelsRef<'_, T>>,
        size: Option<usize>,
        job: JobSpec<T>,
        local: impl Fn(&B, &[Parameter<T>], Shard<T>) -> Result<R>,
        unpack: impl Fn(Done<T>) -> (usize, Result<R>),
        fold: impl FnMut(Result<R>),
    ) -> Result<()> {
        let n = check_batch(&images, labels.map(|l| l.len()))?;
        let size = size.unwrap_or_else(|| n.div_ceil(self.shards));
        let count = n.div_ceil(size);
        let mut order = InOrder::new(count, fold);
        if count == 1 {
            // the whole batch is the one shard: no copy, no other thread
            let images = Arc::try_unwrap(images).unwrap_or_else(|shared| shared.as_ref().clone());
            let shard = Shard {
                images,
                labels: labels.map(|l| l.to_owned()),
                start: 0,
            };
            order.put(0, local(self.net, &self.params, shard));
            return Ok(());
        }
        let helpers = self.workers.len().min(count - 1);
        let mut weights = match helpers {
            0 => None,
            _ => Some(self.weights()?),
        };
        let work = Arc::new(Work {
            images,
            labels: labels.map(|l| l.to_owned()),
            size,
            count,
            next: AtomicUsize::new(0),
        });
        // the workers sent this batch: heard from until each says it is finished, even
        // when another could not be sent it, so that no message is left for the next
        let mut listening = Vec::new();
        let mut failure = None;
        for (t, worker) in self.workers.iter().take(helpers).enumerate() {
            // the last helper gets the caller's handle, so that it can take the tensors
            // without copying them once the others are done with theirs
            let shared = match t + 1 == helpers {
                true => weights.take(),
                false => weights.clone(),
            };
            let shared = shared.expect("the weights are copied when there are helpers");
            let message = Job {
                task: job.task,
                weights: shared,
                work: Arc::clone(&work),
                loss: Arc::clone(&job.loss),
                key: job.key,
            };
            match worker.send(message) {
                Ok(()) => listening.push(t),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        let parallel = !listening.is_empty();
        // takes in a worker's message; false once the worker has no more for this batch
        let mut hear = |message: Result<Done<T>>, order: &mut InOrder<R, _>| match message {
            Ok(Done::Finished) => false,
            Ok(Done::Ready) => unreachable!("a replica reports ready once, before any job"),
            Ok(done) => {
                let (index, result) = unpack(done);
                order.put(index, result);
                true
            }
            Err(e) => {
                failure.get_or_insert(e);
                false
            }
        };
        while let Some(index) = work.take() {
            let result = run_serial(parallel, || {
                local(self.net, &self.params, work.shard(index)?)
            });
            order.put(index, result);
            // sum what the other threads have sent meanwhile
            listening.retain(|&t| loop {
                match self.workers[t].try_receive(t + 1) {
                    None => break true,
                    Some(message) => {
                        if !hear(message, &mut order) {
                            break false;
                        }
                    }
                }
            });
        }
        for t in listening {
            while hear(self.workers[t].receive(t + 1, self.poll), &mut order) {}
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if !order.complete() {
            return Err(NnError::invalid(
                "DataParallel",
                "a shard's result was lost",
            ));
        }
        Ok(())
    }

    /// [`crate::train::train_epoch`] with each batch's gradient computed by
    /// [`DataParallel::gradient`] under this trainer's [`Trainer::random_key`], and
    /// accuracy as the metric; the same checks and errors.
    pub fn train_epoch(
        &self,
        batches: impl Iterator<Item = impl IntoBatch<T>>,
        trainer: &mut Trainer<T>,
        batch_size: usize,
        on_step: impl FnMut(&crate::train::StepReport),
    ) -> Result<EpochStats> {
        self.train_epoch_with(batches, trainer, batch_size, &mut Accuracy::new(), on_step)
    }

    /// [`DataParallel::train_epoch`] with any metric, updated shard by shard in order.
    pub fn train_epoch_with(
        &self,
        batches: impl Iterator<Item = impl IntoBatch<T>>,
        trainer: &mut Trainer<T>,
        batch_size: usize,
        metric: &mut dyn MetricUpdate<T>,
        on_step: impl FnMut(&crate::train::StepReport),
    ) -> Result<EpochStats> {
        run_epoch(
            batches,
            trainer,
            batch_size,
            metric,
            on_step,
            |images, labels, key| self.gradient(images, labels, key),
        )
    }

    /// [`crate::train::evaluate_accuracy`] with scores from [`DataParallel::predict`].
    pub fn evaluate_accuracy(
        &self,
        batches: impl Iterator<Item = impl IntoBatch<T>>,
    ) -> Result<f64> {
        let mut acc = Accuracy::new();
        self.evaluate(batches, &mut acc)?;
        Ok(acc.get())
    }

    /// [`crate::train::evaluate`] with scores from [`DataParallel::predict`].
    pub fn evaluate(
        &self,
        batches: impl Iterator<Item = impl IntoBatch<T>>,
        metric: &mut dyn MetricUpdate<T>,
    ) -> Result<Vec<(String, f64)>> {
        run_evaluation(batches, metric, |images| self.predict(images))
    }

    /// Fixes the shapes of parameters still waiting for them by a predict-mode forward
    /// of the first image of `images` (which writes no state).
    fn ensure_initialized(&self, images: &Tensor<T>) -> Result<()> {
        if self.params.iter().any(|p| !p.is_initialized()) && images.dims().first() > Some(&0) {
            self.net
                .forward(&Var::constant(images.slice_axis(0, 0, 1)?))?;
        }
        Ok(())
    }

    /// A copy of the network's current weights and state for the replicas.
    fn weights(&self) -> Result<Weights<T>> {
        let values = self
            .params
            .iter()
            .map(|p| Ok(p.data()?.as_ref().clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(values))
    }
}

/// What every thread computes for the shards of one batch.
struct JobSpec<T: Float> {
    task: Task,
    loss: Arc<dyn Loss<T>>,
    key: RandomKey,
}

/// The positions of the state parameters (those the forward pass writes) in `params`.
fn state_indices<T: Float>(params: &[Parameter<T>]) -> Vec<usize> {
    (0..params.len())
        .filter(|&i| params[i].is_state())
        .collect()
}

/// Puts the state parameters back to the values they had when the batch started, so that
/// every shard starts from the same state whichever thread runs it, and in whatever order.
fn restore<T: Float>(params: &[Parameter<T>], states: &[usize], start: &[Tensor<T>]) -> Result<()> {
    for (&i, value) in states.iter().zip(start) {
        params[i].set_data(value.clone())?;
    }
    Ok(())
}

/// Adds a shard's gradients to the running sums, parameter by parameter (the first
/// shard's become the sums).
fn add_grads<T: Float>(sums: &mut [Option<Tensor<T>>], grads: Vec<Option<Tensor<T>>>) {
    for (sum, grad) in sums.iter_mut().zip(grads) {
        match (sum.as_mut(), grad) {
            (_, None) => {}
            (None, Some(g)) => *sum = Some(g),
            (Some(s), Some(g)) => {
                for (s, g) in s.data_mut().iter_mut().zip(g.data()) {
                    *s += *g;
                }
                // the next step's gradients of this size reuse its memory
                g.recycle();
            }
        }
    }
}

impl<T: Float> Worker<T> {
    fn send(&self, job: Job<T>) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| NnError::invalid("DataParallel", "a replica thread has stopped"))
    }

    /// The thread's next message (polling first when `poll`).
    fn receive(&self, thread: usize, poll: bool) -> Result<Done<T>> {
        receive_soon(&self.done, poll).map_err(|_| stopped(thread))?
    }

    /// The thread's next message if one has arrived.
    fn try_receive(&self, thread: usize) -> Option<Result<Done<T>>> {
        match self.done.try_recv() {
            Ok(message) => Some(message),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(stopped(thread))),
        }
    }
}

fn stopped(thread: usize) -> NnError {
    NnError::invalid(
        "DataParallel",
        format!("replica thread {thread} stopped (it panicked)"),
    )
}

impl<T: Float> Drop for Worker<T> {
    fn drop(&mut self) {
        // closing the channel ends the thread's loop
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A replica thread: builds its network, says whether it matches `names`, then answers
/// jobs until the channel closes: it loads the weights, sends each shard's result as
/// soon as it has it, and says when no shard is left (or sends the error that stopped
/// it from loading).
fn serve<T: Float, N: Block<T>>(
    replica: &(dyn Fn() -> N + Send + Sync),
    names: &[String],
    jobs: Receiver<Job<T>>,
    done: Sender<Result<Done<T>>>,
    poll: bool,
) {
    let net = replica();
    let dict = net.collect_params();
    let own: Vec<String> = dict.iter().map(|(k, _)| k.to_string()).collect();
    if own != names {
        let _ = done.send(Err(NnError::invalid(
            "DataParallel",
            format!("the replica's parameters {own:?} differ from the network's {names:?}"),
        )));
        return;
    }
    if done.send(Ok(Done::Ready)).is_err() {
        return;
    }
    let params = dict.into_params();
    let states = state_indices(&params);
    while let Ok(job) = receive_soon(&jobs, poll) {
        let Job {
            task,
            weights,
            work,
            loss,
            key,
        } = job;
        let start: Vec<Tensor<T>> = states.iter().map(|&i| weights[i].clone()).collect();
        if let Err(e) = load(&params, weights) {
            if done.send(Err(e)).is_err() {
                return;
            }
            continue;
        }
        let delivered = serial(|| {
            while let Some(index) = work.take() {
                let shard = work.shard(index);
                let message = match task {
                    Task::Gradient => Done::Gradient(
                        index,
                        shard.and_then(|s| {
                            restore(&params, &states, &start)?;
                            shard_gradient(&net, &params, &states, &*loss, s, key)
                        }),
                    ),
                    Task::Predict => {
                        Done::Scores(index, shard.and_then(|s| predict(&net, s.images)))
                    }
                };
                if done.send(Ok(message)).is_err() {
                    return false;
                }
            }
            done.send(Ok(Done::Finished)).is_ok()
        });
        if !delivered {
            return;
        }
    }
}

/// Gives a replica the network's weights, taking the tensors when no other thread
/// holds them.
fn load<T: Float>(params: &[Parameter<T>], weights: Weights<T>) -> Result<()> {
    match Arc::try_unwrap(weights) {
        Ok(owned) => params
            .iter()
            .zip(owned)
            .try_for_each(|(p, w)| p.set_data(w)),
        Err(shared) => params
            .iter()
            .zip(shared.iter())
            .try_for_each(|(p, w)| p.set_data(w.clone())),
    }
}

/// One shard's forward and backward, its random draws keyed by the shard's place in the
/// batch; the gradients are taken out of the parameters, and the state's new values
/// copied out.
fn shard_gradient<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    params: &[Parameter<T>],
    states: &[usize],
    loss: &dyn Loss<T>,
    shard: Shard<T>,
    key: RandomKey,
) -> Result<ShardGradient<T>> {
    let labels = shard
        .labels
        .ok_or_else(|| NnError::invalid("DataParallel", "a gradient needs labels"))?;
    let key = key.offset(shard.start as u64);
    let outcome = batch_gradient(net, loss, shard.images, labels.as_ref(), key)?;
    let grads = params.iter().map(Parameter::take_fresh_grad).collect();
    let states = states
        .iter()
        .map(|&i| Ok(params[i].data()?.as_ref().clone()))
        .collect::<Result<_>>()?;
    Ok(ShardGradient {
        outcome,
        grads,
        states,
    })
}

fn predict<T: Float, B: Block<T> + ?Sized>(net: &B, images: Tensor<T>) -> Result<Tensor<T>> {
    let scores = net.forward(&Var::constant(images))?;
    Ok(scores.value().clone())
}

/// Runs `f` with the kernels kept on this thread when other threads are busy too.
fn run_serial<R>(parallel: bool, f: impl FnOnce() -> R) -> R {
    if parallel {
        serial(f)
    } else {
        f()
    }
}

/// The batch size of `images` (`[n, …]`, n ≥ 1), which must match `labels` if given.
fn check_batch<T: Float>(images: &Tensor<T>, labels: Option<usize>) -> Result<usize> {
    let n = images.dims().first().copied().unwrap_or(0);
    if n == 0 || labels.is_some_and(|l| l != n) {
        return Err(NnError::invalid(
            "DataParallel",
            format!(
                "a batch of images {} needs at least one image{}",
                images.shape(),
                labels
                    .map(|l| format!(" and one label per image, got {l} labels"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_folded_in_shard_order_whatever_order_they_arrive_in() {
        let mut folded = Vec::new();
        let mut order = InOrder::new(5, |r: Result<usize>| folded.push(r.unwrap()));
        for index in [3, 1, 0, 4, 2] {
            assert!(!order.complete());
            order.put(index, Ok(index * 10));
        }
        assert!(order.complete());
        drop(order);
        assert_eq!(folded, [0, 10, 20, 30, 40]);
    }

    #[test]
    fn a_shard_is_its_slice_of_the_batch_and_the_last_may_be_short() {
        let work = Work {
            images: Arc::new(Tensor::<f32>::arange(7 * 2).reshape([7, 2]).unwrap()),
            labels: Some(Labels::Classes((0..7).collect())),
            size: 3,
            count: 3,
            next: AtomicUsize::new(0),
        };
        let taken: Vec<usize> = std::iter::from_fn(|| work.take()).collect();
        assert_eq!(taken, [0, 1, 2]);
        let last = work.shard(2).unwrap();
        assert_eq!(last.images.data(), &[12.0, 13.0]);
        assert_eq!(last.labels, Some(Labels::Classes(vec![6])));
        assert_eq!(last.start, 6);
        let first = work.shard(0).unwrap();
        assert_eq!(first.images.dims(), &[3, 2]);
        assert_eq!(first.labels, Some(Labels::Classes(vec![0, 1, 2])));
    }
}
