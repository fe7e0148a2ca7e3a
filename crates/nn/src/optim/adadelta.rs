//! [`AdaDelta`], as Gluon's `'adadelta'` computes it: NDArray arithmetic in
//! `AdaDelta.update` (MXNet 1.x's `python/mxnet/optimizer/optimizer.py`), which uses no
//! learning rate.

use super::{
    check_epsilon, check_unit, clip, common_options, kernel_param, scalar_param, Optimizer,
    UpdateArgs,
};
use kiln_tensor::{Float, Tensor};

/// AdaDelta (Zeiler), as Gluon's `Trainer(params, 'adadelta', {...})`.
///
/// MXNet 1.x updates in Python, one NDArray operation at a time, each rounded to the
/// weight's type; its scalars (`rescale_grad = 1/batch_size`, `ρ`, `1 − ρ` computed in
/// double, `ε`, `wd`) are doubles cast to that type, and the clipping bounds float32:
///
/// ```text
/// g' = g·rescale_grad                    (then clip(g', ±c))
/// a  ← a·ρ + (g'·(1 − ρ))·g'
/// d  = (√(δ + ε) / √(a + ε))·g'
/// δ  ← δ·ρ + (d·(1 − ρ))·d
/// w  ← w − (d + w·wd)
/// ```
///
/// The learning rate takes no part (so neither does a schedule nor `lr_mult`): MXNet's
/// kernel ignores it, whatever its docstring's `clip(grad·rescale_grad + wd·weight)`
/// suggests; the weight decay is subtracted from the weight directly, unscaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaDelta {
    /// Decay of both running averages, in `[0, 1)` (Gluon's default 0.9).
    pub rho: f64,
    /// Added under both square roots (1e-5).
    pub epsilon: f64,
    /// Unused by the update (MXNet's), kept so that a schedule or `set_learning_rate`
    /// has somewhere to go; 0.01 as Gluon's base optimizer.
    pub learning_rate: f64,
    /// Weight decay, subtracted as `wd·w`.
    pub wd: f64,
    /// Bound of the rescaled gradient, if any.
    pub clip_gradient: Option<f64>,
}

impl Default for AdaDelta {
    fn default() -> Self {
        AdaDelta::new()
    }
}

impl AdaDelta {
    /// AdaDelta with Gluon's defaults: ρ 0.9, ε 1e-5.
    pub fn new() -> Self {
        AdaDelta {
            rho: 0.9,
            epsilon: 1e-5,
            learning_rate: 0.01,
            wd: 0.0,
            clip_gradient: None,
        }
    }

    /// Sets ρ.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets ε.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }
}

common_options!(AdaDelta);

impl<T: Float> Optimizer<T> for AdaDelta {
    fn name(&self) -> &'static str {
        "AdaDelta"
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
        self.check_common("AdaDelta")?;
        check_unit("AdaDelta", "rho", self.rho)?;
        check_epsilon("AdaDelta", self.epsilon)
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["acc_g", "acc_delta"]
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let rescale: T = scalar_param(args.rescale_grad);
        let rho: T = scalar_param(self.rho);
        let one_rho: T = scalar_param(1.0 - self.rho);
        let epsilon: T = scalar_param(self.epsilon);
        let wd: T = scalar_param(args.wd);
        let bound = self.clip_gradient.map(kernel_param::<T>);
        let [acc_g, acc_delta] = state else {
            unreachable!("the trainer gives AdaDelta the state it asked for")
        };
        let accs = acc_g.data_mut().iter_mut().zip(acc_delta.data_mut());
        for ((w, &g), (a, ad)) in weight.iter_mut().zip(grad).zip(accs) {
            let mut g = g * rescale;
            if let Some(c) = bound {
                g = clip(g, c);
            }
            *a = *a * rho + g * one_rho * g;
            let delta = (*ad + epsilon).sqrt() / (*a + epsilon).sqrt() * g;
            *ad = *ad * rho + delta * one_rho * delta;
            *w -= delta + *w * wd;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_by_hand() {
        // ρ 0.5, ε 1, g = 2, w = 1, wd 0.25: a = 0.5·4 = 2; d = (√1/√3)·2;
        // δ = 0.5·d²; w = 1 − (d + 0.25)
        let opt = AdaDelta::new().rho(0.5).epsilon(1.0).wd(0.25);
        let mut w = [1.0f64];
        let mut state = [Tensor::zeros([1]), Tensor::zeros([1])];
        let args = UpdateArgs {
            lr: 123.0,
            wd: 0.25,
            rescale_grad: 1.0,
            t: 1,
        };
        Optimizer::<f64>::update(&opt, &args, &mut w, &[2.0], &mut state);
        let d = (1.0 / 3.0f64.sqrt()) * 2.0;
        assert_eq!(state[0].data(), &[2.0]);
        assert_eq!(state[1].data(), &[d * 0.5 * d]);
        assert_eq!(
            w,
            [1.0 - (d + 0.25)],
            "the learning rate (123) takes no part"
        );
    }
}
