//! [`Trainer`]: Gluon's `gluon.Trainer(params, optimizer)` and `trainer.step(batch_size)`,
//! driving any [`Optimizer`] and, if given one, a learning-rate schedule, with the update
//! counts Gluon keeps.

use crate::block::ParameterDict;
use crate::error::{NnError, Result};
use crate::lr_scheduler::LrScheduler;
use crate::optim::{Optimizer, ParamState, UpdateArgs};
use crate::parameter::Parameter;
use kiln_tensor::{Float, Tensor};

pub use crate::optim::Sgd;

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
///
/// With another optimizer and a schedule (Gluon's
/// `Trainer(params, 'adam', {'lr_scheduler': CosineScheduler(1000, base_lr=0.001)})`):
///
/// ```
/// # use kiln_nn::*;
/// let net = Dense::<f32>::new(10);
/// let schedule = CosineScheduler::new(1000).base_lr(0.001).warmup(100, 0.0, WarmupMode::Linear);
/// let trainer = Trainer::new(net.collect_params(), Adam::default()).lr_scheduler(schedule)?;
/// assert_eq!(trainer.learning_rate(), 0.0);   // the rate at update 0; the first step uses 1
/// # Ok::<(), NnError>(())
/// ```
///
/// # Update counts
///
/// As Gluon's optimizer, the trainer counts the updates of each parameter (Adam's `t`)
/// and keeps [`Trainer::num_update`], the largest of them. A step first counts the update
/// of a parameter (SGD: of each group of four, as Gluon aggregates them), then reads the
/// learning rate at the new `num_update`: the first step uses the schedule's rate at 1.
pub struct Trainer<T: Float> {
    /// Structural paths (`0.weight`), as the training state keys them.
    keys: Vec<String>,
    params: Vec<Parameter<T>>,
    optimizer: Box<dyn Optimizer<T>>,
    scheduler: Option<Box<dyn LrScheduler>>,
    /// Per parameter: its update count and the optimizer's tensors.
    states: Vec<ParamState<T>>,
    ignore_stale_grad: bool,
    /// Gluon's `optimizer.num_update`: the largest update count of any parameter.
    num_update: u64,
    /// Gluon's `begin_num_update`: where the count of a parameter not updated yet starts.
    begin_num_update: u64,
}

impl<T: Float> Trainer<T> {
    /// A trainer for `params` (usually `net.collect_params()`) with `optimizer`, e.g.
    /// `Sgd::new(0.1).momentum(0.9)` or `Adam::default()`. Its settings are checked at
    /// every [`Trainer::step`], before anything changes.
    pub fn new(params: ParameterDict<T>, optimizer: impl Optimizer<T> + 'static) -> Self {
        let (keys, params): (Vec<String>, Vec<Parameter<T>>) = params
            .iter()
            .map(|(k, p)| (k.to_string(), p.clone()))
            .unzip();
        let states = params.iter().map(|_| ParamState::default()).collect();
        Trainer {
            keys,
            params,
            optimizer: Box::new(optimizer),
            scheduler: None,
            states,
            ignore_stale_grad: false,
            num_update: 0,
            begin_num_update: 0,
        }
    }

    /// Takes the learning rate from `scheduler` (Gluon's `lr_scheduler`), which owns its
    /// base rate: the optimizer's own learning rate is then not used. An error if the
    /// schedule's settings are not valid.
    pub fn lr_scheduler(mut self, scheduler: impl LrScheduler + 'static) -> Result<Self> {
        scheduler.validate()?;
        self.scheduler = Some(Box::new(scheduler));
        Ok(self)
    }

    /// The schedule, if the trainer has one.
    pub fn scheduler(&self) -> Option<&dyn LrScheduler> {
        self.scheduler.as_deref()
    }

    /// Gluon's `optimizer.num_update`: the largest number of updates any parameter has
    /// had (the number of steps, unless a step updated nothing). Training loops key their
    /// random draws (dropout) by it, so a resumed run draws as the original did.
    pub fn num_update(&self) -> u64 {
        self.num_update
    }

    /// The key of this step's random draws: the process-wide seed and
    /// [`Trainer::num_update`] (see [`kiln_autograd::random`]).
    pub fn random_key(&self) -> kiln_autograd::RandomKey {
        kiln_autograd::RandomKey::for_step(self.num_update)
    }

    /// Sets the update count (when resuming a run by hand), as Gluon's
    /// `begin_num_update`: parameters not updated yet will count from `n` too. (A state
    /// loaded with `load_training_state` brings its own counts.)
    pub fn set_num_update(&mut self, n: u64) {
        self.num_update = n;
        self.begin_num_update = n;
    }

    /// With `true`, `step` skips parameters no backward has reached since the last step
    /// instead of refusing (Gluon's `ignore_stale_grad=True`).
    pub fn ignore_stale_grad(mut self, on: bool) -> Self {
        self.ignore_stale_grad = on;
        self
    }

    /// The learning rate: the schedule's at the current [`Trainer::num_update`] (the rate
    /// of the last step), or the optimizer's (Gluon's `trainer.learning_rate`).
    pub fn learning_rate(&self) -> f64 {
        match &self.scheduler {
            Some(s) => s.learning_rate(self.num_update),
            None => self.optimizer.learning_rate(),
        }
    }

    /// Changes the optimizer's learning rate (between epochs, for a hand-made schedule).
    /// An error with a schedule (as in Gluon) or for a rate that is not a finite number ≥ 0.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        if let Some(s) = &self.scheduler {
            return Err(NnError::invalid(
                "Trainer.set_learning_rate",
                format!(
                    "the trainer takes its learning rate from its {}; set the rate there",
                    s.name()
                ),
            ));
        }
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(NnError::invalid(
                "Trainer.set_learning_rate",
                format!(
                    "{}: the learning rate must be a finite number ≥ 0, got {lr}",
                    self.optimizer.name()
                ),
            ));
        }
        self.optimizer.set_learning_rate(lr);
        Ok(())
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer<T> {
        self.optimizer.as_ref()
    }

    /// The structural paths of the parameters trained, in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The optimizer state of each parameter, in order (for saving training state).
    pub fn states(&self) -> &[ParamState<T>] {
        &self.states
    }

    /// Gluon's `begin_num_update` (see [`Trainer::set_num_update`]).
    pub fn begin_num_update(&self) -> u64 {
        self.begin_num_update
    }

    /// Restores state saved from [`Trainer::states`], with the counts `num_update` and
    /// `begin_num_update`. Each parameter's tensors must be those this optimizer keeps
    /// ([`Optimizer::state_names`], shaped like the parameter) if it was updated, none
    /// if not; nothing changes unless all of it fits.
    pub fn set_states(
        &mut self,
        states: Vec<ParamState<T>>,
        num_update: u64,
        begin_num_update: u64,
    ) -> Result<()> {
        self.check_states(&states)
            .map_err(|m| NnError::invalid("Trainer.set_states", m))?;
        self.states = states;
        self.num_update = num_update;
        self.begin_num_update = begin_num_update;
        Ok(())
    }

    /// Why `states` does not fit this trainer, if it does not.
    pub(crate) fn check_states(&self, states: &[ParamState<T>]) -> std::result::Result<(), String> {
        if states.len() != self.params.len() {
            return Err(format!(
                "{} parameter states for {} parameters",
                states.len(),
                self.params.len()
            ));
        }
        let (name, names) = (self.optimizer.name(), self.optimizer.state_names());
        for ((key, p), s) in self.keys.iter().zip(&self.params).zip(states) {
            let expected = if s.count.is_some() { names.len() } else { 0 };
            if s.tensors.len() != expected {
                return Err(format!(
                    "parameter '{key}' ({}) has {} state tensors, but {name} keeps {expected} \
                     ({names:?}) for a parameter updated {} times",
                    p.name(),
                    s.tensors.len(),
                    s.count.unwrap_or(0)
                ));
            }
            let declared = p.shape();
            for t in &s.tensors {
                let fits = declared.rank() == t.rank()
                    && declared
                        .iter()
                        .zip(t.dims())
                        .all(|(&d, &v)| d == 0 || d == v);
                if !fits {
                    return Err(format!(
                        "the {name} state of parameter '{key}' ({}) has shape {}, the parameter {declared}",
                        p.name(),
                        t.shape()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Restores the optimizer's own learning rate (training state).
    pub(crate) fn restore_optimizer_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    /// One update with gradients multiplied by `rescale_grad = 1/batch_size`, as Gluon's
    /// `step`. Everything is checked before anything changes: the optimizer's settings,
    /// and every parameter: one without values, or whose gradient no backward refreshed
    /// since the last step, or whose gradient holds NaN or ±∞, is an error naming it.
    /// Frozen parameters and state (`grad_req` `Null`) are skipped.
    pub fn step(&mut self, batch_size: usize) -> Result<()> {
        if batch_size == 0 {
            return Err(NnError::invalid("Trainer.step", "batch_size must be ≥ 1"));
        }
        self.optimizer
            .validate()
            .map_err(|m| NnError::invalid("Trainer.step", m))?;
        let chosen = self.check_parameters()?;
        let rescale_grad = 1.0 / batch_size as f64;
        let names = self.optimizer.state_names();
        let optimizer = self.optimizer.as_ref();
        for group in chosen.chunks(optimizer.aggregate_num().max(1)) {
            // Gluon's `_update_count`, then `_get_lrs` at the new `num_update`
            for &i in group {
                let count = self.states[i].count.unwrap_or(self.begin_num_update) + 1;
                self.states[i].count = Some(count);
                self.num_update = self.num_update.max(count);
            }
            let lr = match &self.scheduler {
                Some(s) => s.learning_rate(self.num_update),
                None => optimizer.learning_rate(),
            };
            for &i in group {
                let (p, state) = (&self.params[i], &mut self.states[i]);
                let args = UpdateArgs {
                    lr: lr * p.lr_mult(),
                    wd: optimizer.weight_decay() * p.wd_mult(),
                    rescale_grad,
                    t: state.count.expect("counted above"),
                };
                p.with_leaf(|leaf| {
                    leaf.update_with_grad(|w, g| {
                        let g = g.expect("checked: the gradient is fresh");
                        if state.tensors.len() != names.len() {
                            // the first update: Gluon's `create_state`
                            state.tensors = names
                                .iter()
                                .map(|_| Tensor::zeros(w.shape().clone()))
                                .collect();
                        }
                        optimizer.update(&args, w.data_mut(), g.data(), &mut state.tensors);
                    });
                    leaf.mark_stale();
                });
            }
        }
        Ok(())
    }

    /// The indices of the parameters this step updates, after checking them all.
    fn check_parameters(&self) -> Result<Vec<usize>> {
        let mut chosen = Vec::with_capacity(self.params.len());
        for (i, (p, state)) in self.params.iter().zip(&self.states).enumerate() {
            if !p.is_trainable() {
                // frozen weights and state (BatchNorm's running statistics): no step
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
            if !fresh {
                continue;
            }
            if p.with_leaf(|l| l.grad().is_some_and(|g| !g.all_finite())) == Some(true) {
                return Err(NnError::invalid(
                    "Trainer.step",
                    format!(
                        "the gradient of parameter {} holds NaN or infinite values; no parameter was \
                         updated (a lower learning rate may help)",
                        p.name()
                    ),
                ));
            }
            for (what, mult) in [("lr_mult", p.lr_mult()), ("wd_mult", p.wd_mult())] {
                if !mult.is_finite() {
                    return Err(NnError::invalid(
                        "Trainer.step",
                        format!(
                            "parameter {} has {what} {mult}; it must be finite",
                            p.name()
                        ),
                    ));
                }
            }
            let shape = p.shape();
            if let Some(t) = state.tensors.iter().find(|t| t.shape() != &shape) {
                return Err(NnError::invalid(
                    "Trainer.step",
                    format!(
                        "the {} state of parameter {} has shape {}, the parameter {shape}",
                        self.optimizer.name(),
                        p.name(),
                        t.shape()
                    ),
                ));
            }
            chosen.push(i);
        }
        Ok(chosen)
    }
}
