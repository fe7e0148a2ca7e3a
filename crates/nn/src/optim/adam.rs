//! [`Adam`], as Gluon's `'adam'` computes it: the bias correction folded into the
//! learning rate in double precision, then MXNet 1.x's `adam_update` kernel.

use super::{check_epsilon, check_unit, clip, common_options, kernel_param, Optimizer, UpdateArgs};
use kiln_tensor::{Float, Tensor};

/// Adam (Kingma & Ba), as Gluon's `Trainer(params, 'adam', {...})`.
///
/// Gluon's `Adam.update` (`python/mxnet/optimizer/optimizer.py`) corrects the bias in the
/// learning rate, in double precision, with this parameter's own update count `t` and the
/// double-precision betas:
///
/// ```text
/// lr_t = lr · (√(1 − β₂ᵗ) / (1 − β₁ᵗ))
/// ```
///
/// and calls `adam_update` (`AdamUpdateKernel` in `src/operator/optimizer_op-inl.h`) with
/// `lr_t`, `wd`, `β₁`, `β₂`, `ε`, `rescale_grad = 1/batch_size` and `c = clip_gradient`
/// rounded to float32:
///
/// ```text
/// g' = g·rescale_grad + w·wd             (then clip(g', ±c): the clip includes the decay)
/// m  ← β₁·m + (1 − β₁)·g'
/// v  ← β₂·v + ((1 − β₂)·g')·g'
/// w  ← w − (lr_t·m) / (√v + ε)
/// ```
///
/// So ε sits outside the square root and is not bias-corrected, and the weight decay
/// enters the gradient (L2, not decoupled: see [`AdamW`](super::AdamW)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate (Gluon's default 0.001).
    pub learning_rate: f64,
    /// Decay of the first-moment estimate, in `[0, 1)` (0.9).
    pub beta1: f64,
    /// Decay of the second-moment estimate, in `[0, 1)` (0.999).
    pub beta2: f64,
    /// Added to `√v` (1e-8).
    pub epsilon: f64,
    /// Weight decay, added to the gradient as `wd·w`.
    pub wd: f64,
    /// Bound of the rescaled, decayed gradient, if any.
    pub clip_gradient: Option<f64>,
}

impl Default for Adam {
    /// Gluon's defaults: learning rate 0.001, β₁ 0.9, β₂ 0.999, ε 1e-8.
    fn default() -> Self {
        Adam::new(0.001)
    }
}

impl Adam {
    /// Adam at `learning_rate` with β₁ 0.9, β₂ 0.999, ε 1e-8.
    pub fn new(learning_rate: f64) -> Self {
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            wd: 0.0,
            clip_gradient: None,
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
}

common_options!(Adam);

/// `(1 − β₁ᵗ, 1 − β₂ᵗ)` as Python computes them: `beta**t` is C's `pow` of doubles.
pub(crate) fn bias_correction(beta1: f64, beta2: f64, t: u64) -> (f64, f64) {
    let coef1 = 1.0 - beta1.powf(t as f64);
    let coef2 = 1.0 - beta2.powf(t as f64);
    (coef1, coef2)
}

impl<T: Float> Optimizer<T> for Adam {
    fn name(&self) -> &'static str {
        "Adam"
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
        self.check_common("Adam")?;
        check_unit("Adam", "beta1", self.beta1)?;
        check_unit("Adam", "beta2", self.beta2)?;
        check_epsilon("Adam", self.epsilon)
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["mean", "var"]
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let (coef1, coef2) = bias_correction(self.beta1, self.beta2, args.t);
        let lr: T = kernel_param(args.lr * (coef2.sqrt() / coef1));
        let wd: T = kernel_param(args.wd);
        let rescale: T = kernel_param(args.rescale_grad);
        let (beta1, beta2): (T, T) = (kernel_param(self.beta1), kernel_param(self.beta2));
        let epsilon: T = kernel_param(self.epsilon);
        let bound = self.clip_gradient.map(kernel_param::<T>);
        let [mean, var] = state else {
            unreachable!("the trainer gives Adam the state it asked for")
        };
        let moments = mean.data_mut().iter_mut().zip(var.data_mut());
        for ((w, &g), (m, v)) in weight.iter_mut().zip(grad).zip(moments) {
            let mut g = g * rescale + *w * wd;
            if let Some(c) = bound {
                g = clip(g, c);
            }
            *m = beta1 * *m + (T::ONE - beta1) * g;
            *v = beta2 * *v + (T::ONE - beta2) * g * g;
            *w -= lr * *m / (v.sqrt() + epsilon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_about_the_learning_rate() {
        // t = 1, β₁ 0.5, β₂ 0.75 (exact in float32), g = 2, w = 1, lr 0.125:
        // lr_t = 0.125·√0.25/0.5 = 0.125; m = 0.5·2 = 1; v = 0.25·2·2 = 1;
        // w = 1 − 0.125·1/(1 + ε)
        let adam = Adam::new(0.125).beta1(0.5).beta2(0.75).epsilon(0.0625);
        let mut w = [1.0f64];
        let mut state = [Tensor::zeros([1]), Tensor::zeros([1])];
        let args = UpdateArgs {
            lr: 0.125,
            wd: 0.0,
            rescale_grad: 1.0,
            t: 1,
        };
        Optimizer::<f64>::update(&adam, &args, &mut w, &[2.0], &mut state);
        assert_eq!(state[0].data(), &[1.0]);
        assert_eq!(state[1].data(), &[1.0]);
        assert_eq!(w, [1.0 - 0.125 / 1.0625]);
    }
}
