//! [`AdamW`]: Adam with decoupled weight decay, through MXNet 1.9's `contrib.adamw_update`
//! kernel, driven as MXNet's `AdamW` optimizer drives it.

use super::adam::bias_correction;
use super::{check_epsilon, check_unit, clip, common_options, kernel_param, Optimizer, UpdateArgs};
use kiln_tensor::{Float, Tensor};

/// Adam with decoupled weight decay (Loshchilov & Hutter).
///
/// MXNet 1.9 has no AdamW optimizer class, only the operator `mx.nd.contrib.adamw_update`
/// (`AdamWUpdate` in `src/operator/contrib/adamw-inl.h`); the optimizers that wrap it
/// (MXNet 2.0's `mxnet.optimizer.AdamW`, GluonNLP's `BERTAdam`) call it with `lr = 1`,
/// `eta` = the learning rate and `wd` = the weight decay. kiln does the same, with MXNet
/// 2.0's bias correction (on by default; `correct_bias(false)` gives `BERTAdam`), computed
/// in double precision as `(lr·√(1 − β₂ᵗ)) / (1 − β₁ᵗ)` with this parameter's update
/// count `t`. The kernel then computes, with `eta`, `wd`, `β₁`, `β₂`, `ε`,
/// `rescale_grad = 1/batch_size` and `c = clip_gradient` rounded to float32 (and
/// `1 − β` computed in float32):
///
/// ```text
/// g' = rescale_grad·g                    (then clip(g', ±c))
/// m  ← β₁·m + (1 − β₁)·g'
/// v  ← β₂·v + (1 − β₂)·(g'·g')
/// w  ← w − eta·(m / (√v + ε) + wd·w)
/// ```
///
/// So the decay never enters the moments, it is scaled by the (bias-corrected) learning
/// rate, and ε sits outside the square root. (MXNet 2.0 groups parameters into
/// `multi_adamw_update` by default, whose kernel writes `m ← β₁·(m − g') + g'`: the same
/// value up to rounding; kiln follows the one-parameter operator.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    /// Learning rate (default 0.001).
    pub learning_rate: f64,
    /// Decay of the first-moment estimate, in `[0, 1)` (0.9).
    pub beta1: f64,
    /// Decay of the second-moment estimate, in `[0, 1)` (0.999).
    pub beta2: f64,
    /// Added to `√v` (1e-6, MXNet's `AdamW` default).
    pub epsilon: f64,
    /// Decoupled weight decay: `w ← w − eta·wd·w` each step.
    pub wd: f64,
    /// Bound of the rescaled gradient, if any.
    pub clip_gradient: Option<f64>,
    /// Fold Adam's bias correction into the learning rate (default true).
    pub correct_bias: bool,
}

impl Default for AdamW {
    /// MXNet's `AdamW` defaults: learning rate 0.001, β₁ 0.9, β₂ 0.999, ε 1e-6.
    fn default() -> Self {
        AdamW::new(0.001)
    }
}

impl AdamW {
    /// AdamW at `learning_rate` with β₁ 0.9, β₂ 0.999, ε 1e-6, bias correction on, and no
    /// weight decay until [`AdamW::wd`] sets it.
    pub fn new(learning_rate: f64) -> Self {
        AdamW {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-6,
            wd: 0.0,
            clip_gradient: None,
            correct_bias: true,
        }
    }

    /// Sets β₁.
    pub fn beta1(mut self, beta1: f64) -> Self {
        self.beta1 = beta1;
        self
    }

    /// Sets β₂.
    pub fn beta2(mut self, beta2: f64) -> Self {
        self.beta2 = beta2;
        self
    }

    /// Sets ε.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// With `false`, no bias correction (GluonNLP's `BERTAdam`).
    pub fn correct_bias(mut self, on: bool) -> Self {
        self.correct_bias = on;
        self
    }
}

common_options!(AdamW);

impl<T: Float> Optimizer<T> for AdamW {
    fn name(&self) -> &'static str {
        "AdamW"
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.learning_rate = lr;
    }

    fn weight_decay(&self) -> f64 {
        self.wd
    }

    fn validate(&self) -> Result<(), String> {
        self.check_common("AdamW")?;
        check_unit("AdamW", "beta1", self.beta1)?;
        check_unit("AdamW", "beta2", self.beta2)?;
        check_epsilon("AdamW", self.epsilon)
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["mean", "var"]
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let eta = if self.correct_bias {
            let (coef1, coef2) = bias_correction(self.beta1, self.beta2, args.t);
            args.lr * coef2.sqrt() / coef1
        } else {
            args.lr
        };
        let eta: T = kernel_param(eta);
        let wd: T = kernel_param(args.wd);
        let rescale: T = kernel_param(args.rescale_grad);
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let (beta1, beta2): (T, T) = (T::from_f64(b1 as f64), T::from_f64(b2 as f64));
        // `scalar<DType>(1.f - param.beta1)`: the complement is taken in float32
        let (one_beta1, one_beta2): (T, T) = (
            T::from_f64((1.0 - b1) as f64),
            T::from_f64((1.0 - b2) as f64),
        );
        let epsilon: T = kernel_param(self.epsilon);
        let bound = self.clip_gradient.map(kernel_param::<T>);
        let [mean, var] = state else {
            unreachable!("the trainer gives AdamW the state it asked for")
        };
        let moments = mean.data_mut().iter_mut().zip(var.data_mut());
        for ((w, &g), (m, v)) in weight.iter_mut().zip(grad).zip(moments) {
            let mut g = rescale * g;
            if let Some(c) = bound {
                g = clip(g, c);
            }
            *m = beta1 * *m + one_beta1 * g;
            *v = beta2 * *v + one_beta2 * (g * g);
            // the kernel's `lr·m` with lr = 1 is m exactly
            *w = *w - eta * (*m / (v.sqrt() + epsilon) + wd * *w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_is_decoupled_from_the_moments() {
        // t = 1, β₁ 0.5, β₂ 0.75, ε 0.0625, lr 0.125, wd 0.5, g = 2, w = 1:
        // eta = 0.125·√0.25/0.5 = 0.125; m = 1; v = 0.25·4 = 1;
        // w = 1 − 0.125·(1/1.0625 + 0.5·1)
        let opt = AdamW::new(0.125)
            .beta1(0.5)
            .beta2(0.75)
            .epsilon(0.0625)
            .wd(0.5);
        let mut w = [1.0f64];
        let mut state = [Tensor::zeros([1]), Tensor::zeros([1])];
        let args = UpdateArgs {
            lr: 0.125,
            wd: 0.5,
            rescale_grad: 1.0,
            t: 1,
        };
        Optimizer::<f64>::update(&opt, &args, &mut w, &[2.0], &mut state);
        assert_eq!(state[0].data(), &[1.0], "the decay is not in the mean");
        assert_eq!(w, [1.0 - 0.125 * (1.0 / 1.0625 + 0.5)]);
    }
}
