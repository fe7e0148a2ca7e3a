//! [`Trainer`] with [`Sgd`]: Gluon's `gluon.Trainer(params, 'sgd', …)` and
//! `trainer.step(batch_size)`, with the same update formulas as MXNet's SGD kernels.

use crate::block::ParameterDict;
use crate::error::{NnError, Result};
use crate::parameter::Parameter;
use kiln_tensor::{Float, Tensor};

/// Stochastic gradient descent with optional momentum and weight decay, as MXNet's:
///
/// - without momentum: `w ← (1 − lr·wd)·w − lr·(g / batch_size)`;
/// - with momentum: `m ← momentum·m − lr·wd·w − lr·(g / batch_size)`, then `w ← w + m`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum (0 for plain SGD).
    pub momentum: f64,
    /// Weight decay (L2 penalty), scaled by the learning rate.
    pub wd: f64,
}

impl Sgd {
    /// Plain SGD at `learning_rate`.
    pub fn new(learning_rate: f64) -> Self {
        Sgd {
            learning_rate,
            momentum: 0.0,
            wd: 0.0,
        }
    }

    /// Sets the momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }

    /// Sets the weight decay.
    pub fn wd(mut self, wd: f64) -> Self {
        self.wd = wd;
        self
    }
}

/// Applies an optimizer to a network's parameters.
///
/// The book's loop, in kiln:
///
/// ```no_run
/// # use kiln_nn::*; use kiln_autograd::Tape; use kiln_tensor::Tensor;
/// # fn demo(net: &Sequential<f32>, x: Tensor<f32>, y: &[usize]) -> Result<()> {
/// let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.9));
/// let tape = Tape::new();                                        // autograd.record()
/// let l = SoftmaxCrossEntropyLoss.forward(&net.forward(&tape.constant(x))?, y)?.sum()?;
/// l.backward()?;
/// trainer.step(y.len())?;                                        // gradients / batch size
/// # Ok(()) }
/// ```
pub struct Trainer<T: Float> {
    params: Vec<Parameter<T>>,
    sgd: Sgd,
    /// Momentum buffers, created at the first step that needs them.
    state: Vec<Option<Tensor<T>>>,
    ignore_stale_grad: bool,
    /// Steps taken (Gluon's `optimizer.num_update`).
    num_update: u64,
}

impl<T: Float> Trainer<T> {
    /// A trainer for `params` (usually `net.collect_params()`).
    pub fn new(params: ParameterDict<T>, sgd: Sgd) -> Self {
        let params = params.into_params();
        let state = params.iter().map(|_| None).collect();
        Trainer {
            params,
            sgd,
            state,
            ignore_stale_grad: false,
            num_update: 0,
        }
    }

    /// The number of steps taken (Gluon's `optimizer.num_update`); training loops key
    /// their random draws (dropout) by it, so a resumed run draws as the original did.
    pub fn num_update(&self) -> u64 {
        self.num_update
    }

    /// The key of this step's random draws: the process-wide seed and
    /// [`Trainer::num_update`] (see [`kiln_autograd::random`]).
    pub fn random_key(&self) -> kiln_autograd::RandomKey {
        kiln_autograd::RandomKey::for_step(self.num_update)
    }

    /// Sets the step count (when resuming a run).
    pub fn set_num_update(&mut self, n: u64) {
        self.num_update = n;
    }

    /// With `true`, `step` skips parameters no backward has reached since the last step
    /// instead of refusing (Gluon's `ignore_stale_grad=True`).
    pub fn ignore_stale_grad(mut self, on: bool) -> Self {
        self.ignore_stale_grad = on;
        self
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.sgd.learning_rate
    }

    /// Changes the learning rate (between epochs, for a schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.sgd.learning_rate = lr;
    }

    /// The optimizer's settings.
    pub fn optimizer(&self) -> &Sgd {
        &self.sgd
    }

    /// The momentum buffers in parameter order (`None` before the first step), for saving
    /// training state.
    pub fn momentum_buffers(&self) -> &[Option<Tensor<T>>] {
        &self.state
    }

    /// Restores momentum buffers saved from [`Trainer::momentum_buffers`].
    pub fn set_momentum_buffers(&mut self, buffers: Vec<Option<Tensor<T>>>) -> Result<()> {
        if buffers.len() != self.params.len() {
            return Err(NnError::invalid(
                "Trainer",
                format!(
                    "{} momentum buffers for {} parameters",
                    buffers.len(),
                    self.params.len()
                ),
            ));
        }
        self.state = buffers;
        Ok(())
    }

    /// One update with gradients divided by `batch_size`, as Gluon's `step`. Every
    /// parameter is checked before any changes: a parameter without values, or whose
    /// gradient no backward refreshed since the last step, is an error naming it.
    pub fn step(&mut self, batch_size: usize) -> Result<()> {
        if batch_size == 0 {
            return Err(NnError::invalid("Trainer.step", "batch_size must be ≥ 1"));
        }
        let Sgd {
            learning_rate,
            momentum,
            wd,
        } = self.sgd;
        if !(learning_rate.is_finite()
            && learning_rate >= 0.0
            && (0.0..1.0).contains(&momentum)
            && wd.is_finite()
            && wd >= 0.0)
        {
            return Err(NnError::invalid(
                "Trainer.step",
                format!("SGD needs a finite learning rate ≥ 0, momentum in [0, 1) and weight decay ≥ 0, got {:?}", self.sgd),
            ));
        }
        let mut update = Vec::with_capacity(self.params.len());
        for p in &self.params {
            if !p.is_trainable() {
                // frozen weights and state (BatchNorm's running statistics): no step
                update.push(false);
                continue;
            }
            let fresh = p.with_leaf(|l| l.is_fresh() && l.grad().is_some()).ok_or_else(|| {
                NnError::invalid(
                    "Trainer.step",
                    format!("parameter {} is not initialized: run initialize() and a forward pass first", p.name()),
                )
            })?;
            if !fresh && !self.ignore_stale_grad {
                return Err(NnError::invalid(
                    "Trainer.step",
                    format!(
                        "the gradient of parameter {} was not refreshed by a backward since the last step; \
                         if the model uses only some of its parameters on purpose, call \
                         ignore_stale_grad(true) to skip them",
                        p.name()
                    ),
                ));
            }
            if fresh && p.with_leaf(|l| l.grad().is_some_and(|g| !g.all_finite())) == Some(true) {
                return Err(NnError::invalid(
                    "Trainer.step",
                    format!(
                        "the gradient of parameter {} holds NaN or infinite values; no parameter was \
                         updated (a lower learning rate may help)",
                        p.name()
                    ),
                ));
            }
            update.push(fresh);
        }
        let decay = T::from_f64(self.sgd.learning_rate * self.sgd.wd);
        let lr_rescaled = T::from_f64(self.sgd.learning_rate / batch_size as f64);
        let momentum = T::from_f64(self.sgd.momentum);
        for ((p, state), fresh) in self.params.iter().zip(&mut self.state).zip(update) {
            if !fresh {
                continue;
            }
            p.with_leaf(|leaf| {
                leaf.update_with_grad(|w, g| {
                    let g = g.expect("checked above: the gradient is fresh");
                    if self.sgd.momentum == 0.0 {
                        for (w, &g) in w.data_mut().iter_mut().zip(g.data()) {
                            *w = (T::ONE - decay) * *w - lr_rescaled * g;
                        }
                    } else {
                        let m = state.get_or_insert_with(|| Tensor::zeros(w.shape().clone()));
                        for ((w, m), &g) in w.data_mut().iter_mut().zip(m.data_mut()).zip(g.data())
                        {
                            *m = momentum * *m - decay * *w - lr_rescaled * g;
                            *w += *m;
                        }
                    }
                });
                leaf.mark_stale();
            });
        }
        self.num_update += 1;
        Ok(())
    }
}
