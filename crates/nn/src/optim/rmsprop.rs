//! [`RmsProp`], as Gluon's `'rmsprop'` computes it: MXNet 1.x's `rmsprop_update`
//! (Tieleman & Hinton) or, centered, `rmspropalex_update` (Graves).

use super::{
    check_bound, check_epsilon, check_unit, clip, common_options, kernel_param, Optimizer,
    UpdateArgs,
};
use kiln_tensor::{Float, Tensor};

/// RMSProp with Gluon's `gamma1`, `gamma2`, `centered` and `clip_weights` options.
///
/// With `lr`, `wd`, `γ₁`, `γ₂`, `ε`, `rescale_grad = 1/batch_size`, `c = clip_gradient`
/// and `cw = clip_weights` rounded to float32, and
/// `g' = rescale_grad·g + wd·w` (then `clip(g', ±c)`: the clip includes the decay):
///
/// not centered, `RMSPropUpdateKernel` (`src/operator/optimizer_op-inl.h`):
///
/// ```text
/// n ← (1 − γ₁)·(g'·g') + γ₁·n
/// w ← w − lr·(g' / √(n + ε))                      (then clip(w, ±cw))
/// ```
///
/// centered, `RMSPropAlexUpdateKernel` (states `n`, `g`, `delta`):
///
/// ```text
/// n ← ((1 − γ₁)·g')·g' + γ₁·n
/// g ← (1 − γ₁)·g' + γ₁·g
/// δ ← γ₂·δ − (lr·g') / √((n − g·g) + ε)
/// w ← w + δ                                       (then clip(w, ±cw))
/// ```
///
/// ε sits inside the square root (unlike Adam's), and `γ₂` is used only when centered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsProp {
    /// Learning rate (Gluon's default 0.001).
    pub learning_rate: f64,
    /// Decay of the moving average of squared gradients, in `[0, 1)` (0.9).
    pub gamma1: f64,
    /// The momentum of the centered version, in `[0, 1)` (0.9).
    pub gamma2: f64,
    /// Added under the square root (1e-8).
    pub epsilon: f64,
    /// Graves's centered version (default false: Tieleman & Hinton's).
    pub centered: bool,
    /// Bound of the updated weights, if any (Gluon's `clip_weights`).
    pub clip_weights: Option<f64>,
    /// Weight decay, added to the gradient as `wd·w`.
    pub wd: f64,
    /// Bound of the rescaled, decayed gradient, if any.
    pub clip_gradient: Option<f64>,
}

impl Default for RmsProp {
    /// Gluon's defaults: learning rate 0.001, γ₁ 0.9, γ₂ 0.9, ε 1e-8, not centered.
    fn default() -> Self {
        RmsProp::new(0.001)
    }
}

impl RmsProp {
    /// RMSProp at `learning_rate` with γ₁ 0.9, γ₂ 0.9, ε 1e-8, not centered.
    pub fn new(learning_rate: f64) -> Self {
        RmsProp {
            learning_rate,
            gamma1: 0.9,
            gamma2: 0.9,
            epsilon: 1e-8,
            centered: false,
            clip_weights: None,
            wd: 0.0,
            clip_gradient: None,
        }
    }

    /// Sets γ₁.
    pub fn gamma1(mut self, gamma1: f64) -> Self {
        self.gamma1 = gamma1;
        self
    }

    /// Sets γ₂ (used when centered).
    pub fn gamma2(mut self, gamma2: f64) -> Self {
        self.gamma2 = gamma2;
        self
    }

    /// Sets ε.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// With `true`, Graves's centered version.
    pub fn centered(mut self, on: bool) -> Self {
        self.centered = on;
        self
    }

    /// Clips the updated weights to `[−bound, bound]`.
    pub fn clip_weights(mut self, bound: f64) -> Self {
        self.clip_weights = Some(bound);
        self
    }
}

common_options!(RmsProp);

impl<T: Float> Optimizer<T> for RmsProp {
    fn name(&self) -> &'static str {
        "RMSProp"
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
        self.check_common("RMSProp")?;
        check_unit("RMSProp", "gamma1", self.gamma1)?;
        check_unit("RMSProp", "gamma2", self.gamma2)?;
        check_epsilon("RMSProp", self.epsilon)?;
        check_bound("RMSProp", "clip_weights", self.clip_weights)
    }

    fn state_names(&self) -> &'static [&'static str] {
        if self.centered {
            &["n", "g", "delta"]
        } else {
            &["n"]
        }
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let lr: T = kernel_param(args.lr);
        let wd: T = kernel_param(args.wd);
        let rescale: T = kernel_param(args.rescale_grad);
        let gamma1: T = kernel_param(self.gamma1);
        let epsilon: T = kernel_param(self.epsilon);
        let bound = self.clip_gradient.map(kernel_param::<T>);
        let weight_bound = self.clip_weights.map(kernel_param::<T>);
        let rescaled = |g: T, w: T| {
            let g = rescale * g + wd * w;
            bound.map_or(g, |c| clip(g, c))
        };
        let clip_weight = |w: T| weight_bound.map_or(w, |c| clip(w, c));
        match state {
            [n] => {
                for ((w, &g), n) in weight.iter_mut().zip(grad).zip(n.data_mut()) {
                    let g = rescaled(g, *w);
                    *n = (T::ONE - gamma1) * (g * g) + gamma1 * *n;
                    *w = clip_weight(*w - lr * (g / (*n + epsilon).sqrt()));
                }
            }
            [n, mean, delta] => {
                let gamma2: T = kernel_param(self.gamma2);
                let states = n.data_mut().iter_mut().zip(mean.data_mut());
                let states = states.zip(delta.data_mut());
                for ((w, &g), ((n, mean), delta)) in weight.iter_mut().zip(grad).zip(states) {
                    let g = rescaled(g, *w);
                    *n = (T::ONE - gamma1) * g * g + gamma1 * *n;
                    *mean = (T::ONE - gamma1) * g + gamma1 * *mean;
                    *delta = gamma2 * *delta - lr * g / (*n - *mean * *mean + epsilon).sqrt();
                    *w = clip_weight(*w + *delta);
                }
            }
            _ => unreachable!("the trainer gives RMSProp the state it asked for"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> UpdateArgs {
        UpdateArgs {
            lr: 0.25,
            wd: 0.0,
            rescale_grad: 1.0,
            t: 1,
        }
    }

    #[test]
    fn epsilon_sits_under_the_root() {
        // γ₁ 0.75, g = 2, ε 0.5: n = 0.25·4 = 1; w = 1 − 0.25·2/√1.5
        let opt = RmsProp::new(0.25).gamma1(0.75).epsilon(0.5);
        let mut w = [1.0f64];
        let mut state = [Tensor::zeros([1])];
        Optimizer::<f64>::update(&opt, &args(), &mut w, &[2.0], &mut state);
        assert_eq!(state[0].data(), &[1.0]);
        assert_eq!(w, [1.0 - 0.25 * (2.0 / 1.5f64.sqrt())]);
    }

    #[test]
    fn centered_subtracts_the_squared_mean() {
        // γ₁ 0.75, γ₂ 0.5, g = 2, ε 0.5: n = 1, g = 0.5, δ = −0.25·2/√(1 − 0.25 + 0.5)
        let opt = RmsProp::new(0.25)
            .gamma1(0.75)
            .gamma2(0.5)
            .epsilon(0.5)
            .centered(true);
        let mut w = [1.0f64];
        let mut state = [Tensor::zeros([1]), Tensor::zeros([1]), Tensor::zeros([1])];
        Optimizer::<f64>::update(&opt, &args(), &mut w, &[2.0], &mut state);
        let delta = -(0.25 * 2.0) / 1.25f64.sqrt();
        assert_eq!(state[1].data(), &[0.5]);
        assert_eq!(state[2].data(), &[delta]);
        assert_eq!(w, [1.0 + delta]);
    }
}
