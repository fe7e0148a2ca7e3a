//! Learning-rate schedules as `mxnet.lr_scheduler` (MXNet 1.9,
//! `python/mxnet/lr_scheduler.py`) defines them, each with warmup, as pure functions of
//! the update count so that a resumed run follows the same schedule.
//!
//! # Which update count
//!
//! Gluon's optimizer first counts the update (`Optimizer._update_count`), then asks the
//! schedule for the rate (`_get_lrs` → `lr_scheduler(num_update)`): the first step uses
//! `learning_rate(1)`, the n-th `learning_rate(n)`. `learning_rate(0)` is what
//! `trainer.learning_rate()` reports before any step.
//!
//! # MXNet's state, and kiln's functions
//!
//! MXNet's schedules are objects that change as they are called: `FactorScheduler` and
//! `MultiFactorScheduler` multiply their `base_lr` by the factor each time the count
//! passes a step, and `PolyScheduler`/`CosineScheduler` return the last rate they
//! computed once the count passes `max_update`. Called with counts that never decrease
//! (as a trainer calls them), their values are functions of the count alone; kiln computes
//! those functions, the repeated multiplications included, so the rates are MXNet's and
//! a run resumed at any count gets them too.
//!
//! kiln's schedules own their base rate: a trainer with a schedule ignores its
//! optimizer's learning rate. (MXNet copies an optimizer's `learning_rate` over the
//! schedule's `base_lr` when both are given, Adam's default 0.001 included, but not over
//! the warmup's target or the base of `PolyScheduler`/`CosineScheduler`, which keep the
//! value the schedule was built with.)

use crate::error::{NnError, Result};
use std::cell::Cell;
use std::fmt;

/// A learning rate as a function of the update count.
pub trait LrScheduler: fmt::Debug {
    /// The schedule's name, for messages (`"FactorScheduler"`).
    fn name(&self) -> &'static str;

    /// The learning rate at update `num_update` (the first step is update 1).
    fn learning_rate(&self, num_update: u64) -> f64;

    /// Checks the settings; the error names the schedule and the value.
    fn validate(&self) -> Result<()>;
}

/// How the rate rises during warmup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarmupMode {
    /// From `warmup_begin_lr` to the base rate in equal increments (MXNet's `'linear'`).
    Linear,
    /// `warmup_begin_lr` throughout the warmup (MXNet's `'constant'`).
    Constant,
}

/// The warmup every schedule has (MXNet's `LRScheduler` base class): for
/// `num_update < steps`, linear: `begin_lr + ((base_lr − begin_lr)·n) / steps`;
/// constant: `begin_lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmup {
    /// Updates before the schedule proper starts (0: no warmup).
    pub steps: u64,
    /// The rate warmup starts from (default 0).
    pub begin_lr: f64,
    /// Linear (default) or constant.
    pub mode: WarmupMode,
}

impl Default for Warmup {
    fn default() -> Self {
        Warmup {
            steps: 0,
            begin_lr: 0.0,
            mode: WarmupMode::Linear,
        }
    }
}

impl Warmup {
    /// The warmup rate at `n < steps`, rising to `final_lr` (`get_warmup_lr`).
    fn learning_rate(&self, n: u64, final_lr: f64) -> Option<f64> {
        (n < self.steps).then(|| match self.mode {
            WarmupMode::Linear => {
                self.begin_lr + (final_lr - self.begin_lr) * n as f64 / self.steps as f64
            }
            WarmupMode::Constant => self.begin_lr,
        })
    }

    /// MXNet's checks of the base class, plus finite numbers.
    fn validate(&self, name: &str, base_lr: f64) -> Result<()> {
        non_negative(name, "base_lr", base_lr)?;
        non_negative(name, "warmup_begin_lr", self.begin_lr)?;
        if self.begin_lr > base_lr {
            return Err(NnError::invalid(
                name,
                format!(
                    "warmup_begin_lr ({}) must not exceed base_lr ({base_lr})",
                    self.begin_lr
                ),
            ));
        }
        Ok(())
    }
}

fn non_negative(name: &str, what: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(NnError::invalid(
            name,
            format!("{what} must be a finite number ≥ 0, got {v}"),
        ))
    }
}

fn check_factor(name: &str, factor: f64) -> Result<()> {
    if (0.0..=1.0).contains(&factor) {
        Ok(())
    } else {
        Err(NnError::invalid(
            name,
            format!("factor must be in [0, 1] so that the rate decreases, got {factor}"),
        ))
    }
}

/// The builder methods of warmup, shared by the four schedules.
macro_rules! warmup_options {
    ($ty:ident) => {
        impl $ty {
            /// Sets the base learning rate (default 0.01).
            pub fn base_lr(mut self, lr: f64) -> Self {
                self.base_lr = lr;
                self.reset();
                self
            }

            /// Warms up over the first `steps` updates from `begin_lr` (MXNet's
            /// `warmup_steps`, `warmup_begin_lr`, `warmup_mode`).
            pub fn warmup(mut self, steps: u64, begin_lr: f64, mode: WarmupMode) -> Self {
                self.warmup = Warmup {
                    steps,
                    begin_lr,
                    mode,
                };
                self.reset();
                self
            }
        }
    };
}

/// `base_lr · factorᵏ` with `k` growing by one every `step` updates, floored at
/// `stop_factor_lr` (MXNet's `FactorScheduler`).
///
/// MXNet's loop multiplies its `base_lr` by `factor` while `num_update > count + step`
/// (then `count += step`), and sets it to `stop_factor_lr` whenever it falls below. So at
/// update `n` the rate has been multiplied `k = (n − 1) div step` times (n ≥ 1), one
/// multiplication at a time, each followed by the floor. The count starts at 0, warmup
/// included: the decay does not wait for the warmup to end.
#[derive(Clone, Debug)]
pub struct FactorScheduler {
    step: u64,
    factor: f64,
    stop_factor_lr: f64,
    base_lr: f64,
    warmup: Warmup,
    /// The last (k, rate) computed: later calls continue from it.
    cache: Cell<(u64, f64)>,
}

impl FactorScheduler {
    /// Multiplies the rate by `factor` every `step` updates (MXNet's `step`, `factor`),
    /// from base rate 0.01, floored at 1e-8, without warmup.
    pub fn new(step: u64, factor: f64) -> Self {
        FactorScheduler {
            step,
            factor,
            stop_factor_lr: 1e-8,
            base_lr: 0.01,
            warmup: Warmup::default(),
            cache: Cell::new((0, 0.01)),
        }
    }

    /// Sets the floor of the rate (default 1e-8).
    pub fn stop_factor_lr(mut self, lr: f64) -> Self {
        self.stop_factor_lr = lr;
        self.reset();
        self
    }

    fn reset(&mut self) {
        self.cache.set((0, self.base_lr));
    }
}

warmup_options!(FactorScheduler);

impl LrScheduler for FactorScheduler {
    fn name(&self) -> &'static str {
        "FactorScheduler"
    }

    fn learning_rate(&self, n: u64) -> f64 {
        if let Some(lr) = self.warmup.learning_rate(n, self.base_lr) {
            return lr;
        }
        let k = n.saturating_sub(1) / self.step.max(1);
        let (mut done, mut lr) = self.cache.get();
        if done > k {
            (done, lr) = (0, self.base_lr);
        }
        while done < k {
            // `base_lr *= factor`, then the floor
            let product = lr * self.factor;
            let next = if product < self.stop_factor_lr {
                self.stop_factor_lr
            } else {
                product
            };
            if next == lr {
                // floored (or factor 1): every later multiplication gives it again
                done = k;
                break;
            }
            lr = next;
            done += 1;
        }
        self.cache.set((done, lr));
        lr
    }

    fn validate(&self) -> Result<()> {
        let name = self.name();
        self.warmup.validate(name, self.base_lr)?;
        if self.step < 1 {
            return Err(NnError::invalid(name, "step must be ≥ 1, got 0"));
        }
        check_factor(name, self.factor)?;
        non_negative(name, "stop_factor_lr", self.stop_factor_lr)
    }
}

/// `base_lr · factorᵏ` where `k` is the number of `steps` the update count has passed
/// (MXNet's `MultiFactorScheduler`).
///
/// MXNet multiplies its rate by `factor` when `num_update > steps[k]`: at `n = steps[k]`
/// the rate has not changed yet (its docstring says `steps[k] ≤ num_update`; the code
/// wins). The steps must increase strictly and be ≥ 1.
#[derive(Clone, Debug)]
pub struct MultiFactorScheduler {
    steps: Vec<u64>,
    factor: f64,
    base_lr: f64,
    warmup: Warmup,
}

impl MultiFactorScheduler {
    /// Multiplies the rate by `factor` after each of `steps`, from base rate 0.01,
    /// without warmup.
    pub fn new(steps: impl Into<Vec<u64>>, factor: f64) -> Self {
        MultiFactorScheduler {
            steps: steps.into(),
            factor,
            base_lr: 0.01,
            warmup: Warmup::default(),
        }
    }

    fn reset(&mut self) {}
}

warmup_options!(MultiFactorScheduler);

impl LrScheduler for MultiFactorScheduler {
    fn name(&self) -> &'static str {
        "MultiFactorScheduler"
    }

    fn learning_rate(&self, n: u64) -> f64 {
        if let Some(lr) = self.warmup.learning_rate(n, self.base_lr) {
            return lr;
        }
        let passed = self.steps.iter().take_while(|&&s| n > s).count();
        (0..passed).fold(self.base_lr, |lr, _| lr * self.factor)
    }

    fn validate(&self) -> Result<()> {
        let name = self.name();
        self.warmup.validate(name, self.base_lr)?;
        if self.steps.is_empty() {
            return Err(NnError::invalid(name, "needs at least one step"));
        }
        if let Some(i) = (1..self.steps.len()).find(|&i| self.steps[i] <= self.steps[i - 1]) {
            return Err(NnError::invalid(
                name,
                format!(
                    "steps must increase strictly, but steps[{i}] = {} follows steps[{}] = {} \
                     (steps {:?})",
                    self.steps[i],
                    i - 1,
                    self.steps[i - 1],
                    self.steps
                ),
            ));
        }
        if self.steps[0] < 1 {
            return Err(NnError::invalid(
                name,
                format!("steps must be ≥ 1, got {:?}", self.steps),
            ));
        }
        check_factor(name, self.factor)
    }
}

/// The decay window shared by [`PolyScheduler`] and [`CosineScheduler`]: after warmup,
/// the fraction `(n − warmup_steps) / (max_update − warmup_steps)` of the way from
/// `base_lr` to `final_lr`; past `max_update`, the rate at `max_update`.
fn decay_progress(n: u64, warmup_steps: u64, max_update: u64) -> (f64, f64) {
    let n = n.min(max_update);
    (
        n.saturating_sub(warmup_steps) as f64,
        max_update.saturating_sub(warmup_steps) as f64,
    )
}

fn check_window(name: &str, max_update: u64, warmup_steps: u64, final_lr: f64) -> Result<()> {
    if max_update < 1 {
        return Err(NnError::invalid(name, "max_update must be ≥ 1, got 0"));
    }
    if warmup_steps >= max_update {
        return Err(NnError::invalid(
            name,
            format!(
                "warmup_steps ({warmup_steps}) must be below max_update ({max_update}): \
                 the decay needs at least one update"
            ),
        ));
    }
    non_negative(name, "final_lr", final_lr)
}

/// `final_lr + (base_lr − final_lr)·(1 − (n − w)/(max_update − w))^pwr` after `w` warmup
/// updates, and `final_lr` from `max_update` on (MXNet's `PolyScheduler`, default
/// `pwr = 2`, `final_lr = 0`).
#[derive(Clone, Debug)]
pub struct PolyScheduler {
    max_update: u64,
    pwr: f64,
    final_lr: f64,
    base_lr: f64,
    warmup: Warmup,
}

impl PolyScheduler {
    /// Decays from base rate 0.01 to 0 over `max_update` updates with power 2, without
    /// warmup.
    pub fn new(max_update: u64) -> Self {
        PolyScheduler {
            max_update,
            pwr: 2.0,
            final_lr: 0.0,
            base_lr: 0.01,
            warmup: Warmup::default(),
        }
    }

    /// Sets the power of the decay (default 2).
    pub fn pwr(mut self, pwr: f64) -> Self {
        self.pwr = pwr;
        self
    }

    /// Sets the rate reached at `max_update` (default 0).
    pub fn final_lr(mut self, lr: f64) -> Self {
        self.final_lr = lr;
        self
    }

    fn reset(&mut self) {}
}

warmup_options!(PolyScheduler);

impl LrScheduler for PolyScheduler {
    fn name(&self) -> &'static str {
        "PolyScheduler"
    }

    fn learning_rate(&self, n: u64) -> f64 {
        if let Some(lr) = self.warmup.learning_rate(n, self.base_lr) {
            return lr;
        }
        let (done, total) = decay_progress(n, self.warmup.steps, self.max_update);
        self.final_lr + (self.base_lr - self.final_lr) * (1.0 - done / total).powf(self.pwr)
    }

    fn validate(&self) -> Result<()> {
        let name = self.name();
        self.warmup.validate(name, self.base_lr)?;
        check_window(name, self.max_update, self.warmup.steps, self.final_lr)?;
        if !(self.pwr.is_finite() && self.pwr > 0.0) {
            return Err(NnError::invalid(
                name,
                format!("pwr must be a finite number > 0, got {}", self.pwr),
            ));
        }
        Ok(())
    }
}

/// `final_lr + (base_lr − final_lr)·(1 + cos(π·(n − w)/(max_update − w)))/2` after `w`
/// warmup updates, and `final_lr` from `max_update` on (MXNet's `CosineScheduler`).
#[derive(Clone, Debug)]
pub struct CosineScheduler {
    max_update: u64,
    final_lr: f64,
    base_lr: f64,
    warmup: Warmup,
}

impl CosineScheduler {
    /// Decays from base rate 0.01 to 0 over `max_update` updates, without warmup.
    pub fn new(max_update: u64) -> Self {
        CosineScheduler {
            max_update,
            final_lr: 0.0,
            base_lr: 0.01,
            warmup: Warmup::default(),
        }
    }

    /// Sets the rate reached at `max_update` (default 0).
    pub fn final_lr(mut self, lr: f64) -> Self {
        self.final_lr = lr;
        self
    }

    fn reset(&mut self) {}
}

warmup_options!(CosineScheduler);

impl LrScheduler for CosineScheduler {
    fn name(&self) -> &'static str {
        "CosineScheduler"
    }

    fn learning_rate(&self, n: u64) -> f64 {
        if let Some(lr) = self.warmup.learning_rate(n, self.base_lr) {
            return lr;
        }
        let (done, total) = decay_progress(n, self.warmup.steps, self.max_update);
        let cos = (std::f64::consts::PI * done / total).cos();
        self.final_lr + (self.base_lr - self.final_lr) * (1.0 + cos) / 2.0
    }

    fn validate(&self) -> Result<()> {
        let name = self.name();
        self.warmup.validate(name, self.base_lr)?;
        check_window(name, self.max_update, self.warmup.steps, self.final_lr)
    }
}
