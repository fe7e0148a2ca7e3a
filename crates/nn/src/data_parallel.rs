//! [`DataParallel`]: one network trained on several threads, the way Gluon trains on
//! several devices (`split_and_load`, one replica per device, gradients summed before
//! `trainer.step`).
//!
//! Each extra thread owns a replica of the network, built by a function the caller gives
//! (a network is made of `Rc`s and never crosses threads; only plain tensors do). A batch
//! is cut into a fixed number of shards; before each batch the replicas receive the
//! network's current weights, the threads take shards from a shared queue as they free
//! up (so a thread on a busier core computes fewer), and the shards' gradients are
//! summed **in shard order** into the network's own parameters, where the [`Trainer`]
//! finds them. A shard's gradient does not depend on which thread computed it, and the
//! number of shards, not of threads, fixes the order of the sums: results are
//! bit-identical whether one thread runs all shards or several share them. Inside a
//! shard the kernels stay on their thread, so a step costs one hand-off per thread
//! instead of one per kernel.

use crate::block::{Block, BlockExt};
use crate::data::Batch;
use crate::error::{NnError, Result};
use crate::metric::correct_count;
use crate::parameter::Parameter;
use crate::train::{batch_gradient, run_epoch, run_evaluation, BatchOutcome, EpochStats};
use crate::trainer::Trainer;
use kiln_autograd::Var;
use kiln_tensor::parallel::serial;
use kiln_tensor::{Float, Tensor};
use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One shard of a batch: images `[n, …]` and their labels (empty when predicting).
struct Shard<T: Float> {
    index: usize,
    images: Tensor<T>,
    labels: Vec<usize>,
}

/// The network's weights in parameter order, shared by the replicas for one batch.
type Weights<T> = Arc<Vec<Tensor<T>>>;

/// A batch's shards not yet taken: every thread takes the next one until none is left,
/// so a thread that runs faster (or whose core is less busy) computes more of them.
type Queue<T> = Arc<Mutex<VecDeque<Shard<T>>>>;

/// What a thread is asked to do with the shards it takes, under the given weights.
enum Job<T: Float> {
    Gradient(Weights<T>, Queue<T>),
    Predict(Weights<T>, Queue<T>),
}

/// The next shard of `queue`, if any is left.
fn take<T: Float>(queue: &Queue<T>) -> Option<Shard<T>> {
    // a thread that panicked never does so while holding the lock
    queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
}

/// A shard's gradient: the outcome, and per parameter the gradient a backward wrote
/// (`None` for parameters the backward did not reach).
struct ShardGradient<T: Float> {
    outcome: BatchOutcome,
    grads: Vec<Option<Tensor<T>>>,
}

/// A thread's answer: that its replica is built and matches, or per shard (by shard
/// index) what it computed.
enum Done<T: Float> {
    Ready,
    Gradients(Vec<(usize, Result<ShardGradient<T>>)>),
    Scores(Vec<(usize, Result<Tensor<T>>)>),
}

/// A thread that owns a replica.
struct Worker<T: Float> {
    jobs: Option<Sender<Job<T>>>,
    done: Receiver<Result<Done<T>>>,
    thread: Option<JoinHandle<()>>,
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
/// let outcome = parallel.gradient(images, &[0, 1, 2, 3, 4, 5, 6, 7])?;
/// trainer.step(8)?;
/// assert!(outcome.loss.is_finite());
/// # Ok::<(), kiln_nn::NnError>(())
/// ```
pub struct DataParallel<'n, T: Float, B: Block<T>> {
    net: &'n B,
    params: Vec<Parameter<T>>,
    shards: usize,
    workers: Vec<Worker<T>>,
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
        let replica = Arc::new(replica);
        let mut workers = Vec::new();
        for t in 1..threads.min(shards) {
            let (jobs, job_rx) = channel();
            let (done_tx, done) = channel();
            let (replica, names) = (Arc::clone(&replica), names.clone());
            let thread = std::thread::Builder::new()
                .name(format!("kiln-replica-{t}"))
                .spawn(move || serve(replica.as_ref(), &names, job_rx, done_tx))
                .map_err(|e| {
                    NnError::invalid("DataParallel", format!("could not start thread {t}: {e}"))
                })?;
            let worker = Worker {
                jobs: Some(jobs),
                done,
                thread: Some(thread),
            };
            // the replica reports whether it matches before any work is sent
            worker.receive(t)?;
            workers.push(worker);
        }
        Ok(DataParallel {
            net,
            params,
            shards,
            workers,
        })
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
    /// gradients, ready for `trainer.step(batch_size)`. The outcome's loss and correct
    /// count are sums over the shards.
    pub fn gradient(&self, images: Tensor<T>, labels: &[usize]) -> Result<BatchOutcome> {
        let results = self.run_shards(
            images,
            Some(labels),
            Job::Gradient,
            |net, params, shard| shard_gradient(net, params, shard.images, &shard.labels),
            |done| match done {
                Done::Gradients(rs) => rs,
                _ => unreachable!("a gradient job is answered with gradients"),
            },
        )?;
        self.reduce(results)
    }

    /// The network's scores for `images` in predict mode, the shards computed in
    /// parallel and joined in order.
    pub fn predict(&self, images: Tensor<T>) -> Result<Tensor<T>> {
        let scores = self
            .run_shards(
                images,
                None,
                Job::Predict,
                |net, _, shard| predict(net, shard.images),
                |done| match done {
                    Done::Scores(rs) => rs,
                    _ => unreachable!("a predict job is answered with scores"),
                },
            )?
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let parts: Vec<&Tensor<T>> = scores.iter().collect();
        Ok(Tensor::concat(&parts, 0)?)
    }

    /// Splits a batch into shards, puts them in a queue that the workers (given the
    /// current weights) and the caller (computing with `local`) take from, and returns
    /// every shard's result in shard order. Which thread computed a shard does not
    /// change its result. Every worker that was sent work is heard from before an error
    /// returns, so the next batch starts in step.
    fn run_shards<R>(
        &self,
        images: Tensor<T>,
        labels: Option<&[usize]>,
        job: fn(Weights<T>, Queue<T>) -> Job<T>,
        local: impl Fn(&B, &[Parameter<T>], Shard<T>) -> Result<R>,
        unpack: impl Fn(Done<T>) -> Vec<(usize, Result<R>)>,
    ) -> Result<Vec<Result<R>>> {
        let n = check_batch(&images, labels.map(<[usize]>::len))?;
        let shards = self.split(images, labels.unwrap_or_default(), n)?;
        let count = shards.len();
        let helpers = self.workers.len().min(count - 1);
        let weights = if helpers > 0 {
            Some(self.weights(&shards[0])?)
        } else {
            None
        };
        let queue: Queue<T> = Arc::new(Mutex::new(shards.into()));
        let mut sent = Vec::new();
        if let Some(weights) = weights {
            for (t, worker) in self.workers.iter().take(helpers).enumerate() {
                worker.send(job(Arc::clone(&weights), Arc::clone(&queue)))?;
                sent.push(t);
            }
        }
        let mut results: Vec<Option<Result<R>>> = (0..count).map(|_| None).collect();
        let parallel = !sent.is_empty();
        while let Some(shard) = take(&queue) {
            let index = shard.index;
            results[index] = Some(run_serial(parallel, || {
                local(self.net, &self.params, shard)
            }));
        }
        let mut failure = None;
        for t in sent {
            match self.workers[t].receive(t + 1) {
                Ok(done) => unpack(done)
                    .into_iter()
                    .for_each(|(i, r)| results[i] = Some(r)),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every shard was computed"))
            .collect())
    }

    /// [`crate::train::train_epoch`] with each batch's gradient computed by
    /// [`DataParallel::gradient`]; the same checks and errors.
    pub fn train_epoch(
        &self,
        batches: impl Iterator<Item = Batch<T>>,
        trainer: &mut Trainer<T>,
        batch_size: usize,
        on_step: impl FnMut(usize),
    ) -> Result<EpochStats> {
        run_epoch(batches, trainer, batch_size, on_step, |images, labels| {
            self.gradient(images, labels)
        })
    }

    /// [`crate::train::evaluate_accuracy`] with scores from [`DataParallel::predict`].
    pub fn evaluate_accuracy(&self, batches: impl Iterator<Item = Batch<T>>) -> Result<f64> {
        run_evaluation(batches, |images, labels| {
            correct_count(&self.predict(images)?, labels)
        })
    }

    /// Cuts a batch of `n` into at most `self.shards` shards of ⌈n / shards⌉ images.
    fn split(&self, images: Tensor<T>, labels: &[usize], n: usize) -> Result<Vec<Shard<T>>> {
        let size = n.div_ceil(self.shards);
        if size == n {
            return Ok(vec![Shard {
                index: 0,
                images,
                labels: labels.to_vec(),
            }]);
        }
        (0..n.div_ceil(size))
            .map(|i| {
                let (start, end) = (i * size, ((i + 1) * size).min(n));
                Ok(Shard {
                    index: i,
                    images: images.slice_axis(0, start, end)?,
                    labels: labels.get(start..end).unwrap_or_default().to_vec(),
                })
            })
            .collect()
    }

    /// A copy of the network's current weights for the replicas. Parameters still
    /// waiting for their shape get it from a predict-mode forward of the first image of
    /// `first`.
    fn weights(&self, first: &Shard<T>) -> Result<Weights<T>> {
        if self.params.iter().any(|p| !p.is_initialized()) {
            self.net
                .forward(&Var::constant(first.images.slice_axis(0, 0, 1)?))?;
        }
        let values = self
            .params
            .iter()
            .map(|p| Ok(p.data()?.as_ref().clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(values))
    }

    /// Sums the shards' gradients in shard order into the network's parameters. The
    /// first error, by shard order, wins.
    fn reduce(&self, results: Vec<Result<ShardGradient<T>>>) -> Result<BatchOutcome> {
        let mut total = BatchOutcome {
            loss: 0.0,
            correct: 0,
        };
        let mut sums: Vec<Option<Tensor<T>>> = self.params.iter().map(|_| None).collect();
        for result in results {
            let ShardGradient { outcome, grads } = result?;
            total.loss += outcome.loss;
            total.correct += outcome.correct;
            for (sum, grad) in sums.iter_mut().zip(grads) {
                match (sum.as_mut(), grad) {
                    (_, None) => {}
                    (None, Some(g)) => *sum = Some(g),
                    (Some(s), Some(g)) => {
                        for (s, g) in s.data_mut().iter_mut().zip(g.data()) {
                            *s += *g;
                        }
                    }
                }
            }
        }
        for (p, sum) in self.params.iter().zip(sums) {
            if let Some(g) = sum {
                p.with_leaf(|leaf| leaf.set_grad(g));
            }
        }
        Ok(total)
    }
}

impl<T: Float> Worker<T> {
    fn send(&self, job: Job<T>) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| NnError::invalid("DataParallel", "a replica thread has stopped"))
    }

    fn receive(&self, thread: usize) -> Result<Done<T>> {
        self.done.recv().map_err(|_| {
            NnError::invalid(
                "DataParallel",
                format!("replica thread {thread} stopped (it panicked)"),
            )
        })?
    }
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
/// jobs until the channel closes.
fn serve<T: Float, N: Block<T>>(
    replica: &(dyn Fn() -> N + Send + Sync),
    names: &[String],
    jobs: Receiver<Job<T>>,
    done: Sender<Result<Done<T>>>,
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
    while let Ok(job) = jobs.recv() {
        let answer = serial(|| match job {
            Job::Gradient(weights, queue) => load(&params, &weights).map(|()| {
                Done::Gradients(
                    std::iter::from_fn(|| take(&queue))
                        .map(|s| (s.index, shard_gradient(&net, &params, s.images, &s.labels)))
                        .collect(),
                )
            }),
            Job::Predict(weights, queue) => load(&params, &weights).map(|()| {
                Done::Scores(
                    std::iter::from_fn(|| take(&queue))
                        .map(|s| (s.index, predict(&net, s.images)))
                        .collect(),
                )
            }),
        });
        if done.send(answer).is_err() {
            return;
        }
    }
}

/// Gives a replica the network's weights.
fn load<T: Float>(params: &[Parameter<T>], weights: &[Tensor<T>]) -> Result<()> {
    params
        .iter()
        .zip(weights)
        .try_for_each(|(p, w)| p.set_data(w.clone()))
}

/// One shard's forward and backward; the gradients are taken out of the parameters.
fn shard_gradient<T: Float, B: Block<T> + ?Sized>(
    net: &B,
    params: &[Parameter<T>],
    images: Tensor<T>,
    labels: &[usize],
) -> Result<ShardGradient<T>> {
    let outcome = batch_gradient(net, images, labels)?;
    let grads = params.iter().map(Parameter::take_fresh_grad).collect();
    Ok(ShardGradient { outcome, grads })
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
