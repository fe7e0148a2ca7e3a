//! Gluon's optimizers behind one [`Optimizer`] trait that the [`Trainer`](crate::Trainer)
//! drives, each in its own file with the formula of the MXNet 1.x kernel it follows, and
//! `gluon.utils.clip_global_norm`.
//!
//! # How MXNet hands hyper-parameters to its kernels
//!
//! Gluon computes the learning rate of a parameter in Python, in double precision
//! (`Optimizer._get_lrs`: the schedule's or the optimizer's rate times the parameter's
//! `lr_mult`; `_get_wds`: `wd · wd_mult`), then passes it, with every other
//! hyper-parameter, to a C++ operator whose parameter struct holds `float` fields
//! (`SGDParam`, `AdamParam`, … in `src/operator/optimizer_op-inl.h`); the kernel casts them
//! to the weight's type. So a hyper-parameter enters a kernel rounded to float32, even for
//! float64 weights: [`kernel_param`]. AdaGrad and AdaDelta are written in Python with
//! NDArray arithmetic instead, whose scalars are doubles cast straight to the array's type:
//! [`scalar_param`]. For float32 training the two agree.

mod adadelta;
mod adagrad;
mod adam;
mod adamw;
mod clip_global_norm;
mod nag;
mod rmsprop;
mod sgd;

pub use adadelta::AdaDelta;
pub use adagrad::AdaGrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use clip_global_norm::clip_global_norm;
pub use nag::Nag;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use kiln_tensor::{Float, Tensor};
use std::fmt;

/// What the trainer hands an optimizer for one update of one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateArgs {
    /// The learning rate of this parameter at this update: the schedule's rate (or the
    /// optimizer's own) times the parameter's `lr_mult`, in f64 (Gluon's `_get_lrs`).
    pub lr: f64,
    /// The weight decay of this parameter: the optimizer's `wd` times the parameter's
    /// `wd_mult`, in f64 (Gluon's `_get_wds`).
    pub wd: f64,
    /// The factor gradients are multiplied by first: `1 / batch_size` (Gluon's
    /// `rescale_grad`, which `trainer.step(batch_size)` sets).
    pub rescale_grad: f64,
    /// How many updates this parameter has had, this one included (Gluon's
    /// `_index_update_count[index]`): the `t` of Adam's bias correction.
    pub t: u64,
}

/// An optimizer as the [`Trainer`](crate::Trainer) drives it: hyper-parameters, the names
/// of the tensors it keeps per parameter, and the elementwise update of one parameter.
///
/// Implement it to bring your own optimizer; the trainer does the rest (checks, the
/// learning-rate schedule, `lr_mult`/`wd_mult`, update counts, state creation, saving and
/// loading the state).
pub trait Optimizer<T: Float>: fmt::Debug {
    /// The name used in messages and saved with the training state (`"Adam"`).
    fn name(&self) -> &'static str;

    /// The learning rate (used when the trainer has no schedule).
    fn learning_rate(&self) -> f64;

    /// Changes the learning rate.
    fn set_learning_rate(&mut self, lr: f64);

    /// The weight decay, before each parameter's `wd_mult`.
    fn weight_decay(&self) -> f64;

    /// Checks the hyper-parameters; the message names the optimizer and the value.
    fn validate(&self) -> Result<(), String>;

    /// The names of the tensors kept per parameter, each shaped like the parameter and
    /// zero before its first update (`["momentum"]`, `["mean", "var"]`, or none).
    fn state_names(&self) -> &'static [&'static str];

    /// How many parameters Gluon updates at once: their update counts advance together
    /// before the learning rate is read (SGD's `aggregate_num`, 4); 1 for one at a time.
    fn aggregate_num(&self) -> usize {
        1
    }

    /// One update of one parameter: `weight`, its gradient `grad` (as the backward left
    /// it, not yet rescaled) and its `state` tensors (in [`Optimizer::state_names`]
    /// order, shaped like `weight`).
    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]);
}

/// The optimizer state of one parameter: what `save_training_state` keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamState<T: Float> {
    /// Updates applied to the parameter so far; `None` before the first.
    pub count: Option<u64>,
    /// The optimizer's tensors, named by [`Optimizer::state_names`]; empty before the
    /// first update.
    pub tensors: Vec<Tensor<T>>,
}

/// A hyper-parameter as an MXNet optimizer kernel receives it: a `float` field of the
/// operator's parameter struct, cast to the weight's type (float32 first, even for f64).
pub fn kernel_param<T: Float>(x: f64) -> T {
    T::from_f64(x as f32 as f64)
}

/// A hyper-parameter as MXNet's NDArray scalar arithmetic receives it (`grad * 0.5`): a
/// double cast to the array's type.
pub fn scalar_param<T: Float>(x: f64) -> T {
    T::from_f64(x)
}

/// MXNet's `mshadow_op::clip`: `x` limited to `[−bound, bound]` (NaN passes through).
pub(crate) fn clip<T: Float>(x: T, bound: T) -> T {
    if x > bound {
        bound
    } else if x < -bound {
        -bound
    } else {
        x
    }
}

/// Refuses a value that is not a finite number ≥ 0.
pub(crate) fn check_non_negative(optimizer: &str, what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{optimizer}: {what} must be a finite number ≥ 0, got {v}"
        ))
    }
}

/// Refuses a decay rate outside `[0, 1)`.
pub(crate) fn check_unit(optimizer: &str, what: &str, v: f64) -> Result<(), String> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{optimizer}: {what} must be in [0, 1), got {v}"))
    }
}

/// Refuses an epsilon that is not a finite number > 0 (also in float32, the precision in
/// which it reaches MXNet's kernels).
pub(crate) fn check_epsilon(optimizer: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && (v as f32) > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{optimizer}: epsilon must be a finite number > 0 (also in float32), got {v}"
        ))
    }
}

/// Refuses a clipping bound that is not > 0 (MXNet clips only with a bound > 0).
pub(crate) fn check_bound(optimizer: &str, what: &str, v: Option<f64>) -> Result<(), String> {
    match v {
        Some(b) if b.is_nan() || b <= 0.0 => Err(format!(
            "{optimizer}: {what} must be > 0 (or unset for no clipping), got {b}"
        )),
        _ => Ok(()),
    }
}

/// The builder methods and checks every optimizer shares: Gluon's `wd` and
/// `clip_gradient` arguments, over the fields `learning_rate`, `wd` and `clip_gradient`.
macro_rules! common_options {
    ($ty:ident) => {
        impl $ty {
            /// Sets the weight decay (Gluon's `wd`), multiplied per parameter by its
            /// `wd_mult`.
            pub fn wd(mut self, wd: f64) -> Self {
                self.wd = wd;
                self
            }

            /// Clips each rescaled gradient element to `[−bound, bound]` (Gluon's
            /// `clip_gradient`; where in the formula is said above).
            pub fn clip_gradient(mut self, bound: f64) -> Self {
                self.clip_gradient = Some(bound);
                self
            }

            /// Checks the learning rate, weight decay and clipping bound.
            fn check_common(&self, name: &str) -> Result<(), String> {
                $crate::optim::check_non_negative(name, "learning rate", self.learning_rate)?;
                $crate::optim::check_non_negative(name, "weight decay", self.wd)?;
                $crate::optim::check_bound(name, "clip_gradient", self.clip_gradient)
            }
        }
    };
}
pub(crate) use common_options;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_parameters_enter_kernels_in_float32() {
        // 0.1 is not a float32: the kernel sees 0.100000001490116119384765625
        // = 13421773 / 2^27
        assert_eq!(kernel_param::<f64>(0.1), 13_421_773.0 / 134_217_728.0);
        assert_eq!(kernel_param::<f32>(0.1), 0.1f32);
        assert_eq!(scalar_param::<f64>(0.1), 0.1);
        assert_eq!(clip(3.0, 2.0), 2.0);
        assert_eq!(clip(-3.0, 2.0), -2.0);
        assert_eq!(clip(1.5, 2.0), 1.5);
        assert!(clip(f64::NAN, 2.0).is_nan());
    }

    #[test]
    fn checks_name_the_optimizer_and_the_value() {
        assert_eq!(
            check_unit("Adam", "beta1", 1.0).unwrap_err(),
            "Adam: beta1 must be in [0, 1), got 1"
        );
        assert!(check_unit("Adam", "beta1", f64::NAN).is_err());
        assert!(check_epsilon("Adam", 1e-50).is_err(), "0 in float32");
        assert!(check_epsilon("Adam", -1e-8).is_err());
        assert!(check_bound("SGD", "clip_gradient", Some(0.0)).is_err());
        assert!(check_bound("SGD", "clip_gradient", Some(f64::NAN)).is_err());
        assert!(check_bound("SGD", "clip_gradient", None).is_ok());
        assert!(check_non_negative("SGD", "learning rate", f64::INFINITY).is_err());
    }
}
