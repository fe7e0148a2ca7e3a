//! [`Sgd`]: stochastic gradient descent with momentum and weight decay, as Gluon's `'sgd'`
//! computes it (MXNet 1.x's `multi_sgd_update` and `multi_sgd_mom_update`).

use super::{check_unit, common_options, kernel_param, Optimizer, UpdateArgs};
use kiln_tensor::{Float, Tensor};

/// Stochastic gradient descent with optional momentum, weight decay and gradient
/// clipping, as Gluon's `Trainer(params, 'sgd', {...})`.
///
/// Gluon hands SGD updates to MXNet four parameters at a time
/// (`MXNET_OPTIMIZER_AGGREGATION_SIZE`), through `multi_sgd_update` /
/// `multi_sgd_mom_update`, whose kernel (`MultiSGDKernel` in
/// `src/operator/optimizer_op-inl.h`) computes, with `lr`, `wd`, `momentum`,
/// `rescale_grad = 1/batch_size` and `c = clip_gradient` each rounded to float32 and then
/// to the weight's type, and `m = 0` when there is no momentum:
///
/// ```text
/// m ← momentum·m − (lr·wd)·w − (lr·rescale_grad)·g              without clip_gradient
/// m ← momentum·m − (lr·wd)·w − lr·clip(rescale_grad·g, ±c)      with clip_gradient
/// w ← w + m
/// ```
///
/// So the weight decay enters the step (scaled by `lr`) but is not clipped, the clip
/// applies to the rescaled gradient, and the momentum buffer holds `−lr·(…)`, not the
/// gradient sum of the docstring. `m` is kept per parameter only with momentum > 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum, in `[0, 1)` (0: plain SGD, no state).
    pub momentum: f64,
    /// Weight decay (L2 penalty), scaled by the learning rate.
    pub wd: f64,
    /// Bound of the rescaled gradient, if any (Gluon's `clip_gradient`).
    pub clip_gradient: Option<f64>,
}

impl Default for Sgd {
    /// Gluon's defaults: learning rate 0.01, no momentum, no weight decay.
    fn default() -> Self {
        Sgd::new(0.01)
    }
}

impl Sgd {
    /// Plain SGD at `learning_rate`.
    pub fn new(learning_rate: f64) -> Self {
        Sgd {
            learning_rate,
            momentum: 0.0,
            wd: 0.0,
            clip_gradient: None,
        }
    }

    /// Sets the momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
}

common_options!(Sgd);

impl<T: Float> Optimizer<T> for Sgd {
    fn name(&self) -> &'static str {
        "SGD"
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
        self.check_common("SGD")?;
        check_unit("SGD", "momentum", self.momentum)
    }

    fn state_names(&self) -> &'static [&'static str] {
        if self.momentum > 0.0 {
            &["momentum"]
        } else {
            &[]
        }
    }

    fn aggregate_num(&self) -> usize {
        4
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let lr: T = kernel_param(args.lr);
        let lr_wd = lr * kernel_param(args.wd);
        let rescale: T = kernel_param(args.rescale_grad);
        let lr_rescale = lr * rescale;
        let clip = self.clip_gradient.map(kernel_param::<T>);
        match state {
            [] => {
                // MultiSGDKernel without momentum: m = 0·0 − (lr·wd)·w − …, w = w + m
                for (w, &g) in weight.iter_mut().zip(grad) {
                    let m = T::ZERO - lr_wd * *w;
                    let m = match clip {
                        None => m - lr_rescale * g,
                        Some(c) => m - lr * super::clip(rescale * g, c),
                    };
                    *w += m;
                }
            }
            [mom] => {
                let momentum: T = kernel_param(self.momentum);
                for ((w, m), &g) in weight.iter_mut().zip(mom.data_mut()).zip(grad) {
                    let decayed = momentum * *m - lr_wd * *w;
                    *m = match clip {
                        None => decayed - lr_rescale * g,
                        Some(c) => decayed - lr * super::clip(rescale * g, c),
                    };
                    *w += *m;
                }
            }
            _ => unreachable!("the trainer gives SGD the state it asked for"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(lr: f64, wd: f64, rescale_grad: f64) -> UpdateArgs {
        UpdateArgs {
            lr,
            wd,
            rescale_grad,
            t: 1,
        }
    }

    #[test]
    fn plain_step_by_hand() {
        // w = 2, g = 4, batch 2, lr 0.5, wd 0.25 (all exact in float32):
        // m = −0.5·0.25·2 − 0.5·0.5·4 = −0.25 − 1 = −1.25, w = 0.75
        let mut w = [2.0f64];
        Optimizer::<f64>::update(
            &Sgd::new(0.5).wd(0.25),
            &args(0.5, 0.25, 0.5),
            &mut w,
            &[4.0],
            &mut [],
        );
        assert_eq!(w, [0.75]);
    }

    #[test]
    fn clip_bounds_the_rescaled_gradient_not_the_decay() {
        // g·rs = 4·0.5 = 2 clipped to 1: m = −0.5·0.25·2 − 0.5·1 = −0.75, w = 1.25
        let mut w = [2.0f64];
        let sgd = Sgd::new(0.5).wd(0.25).clip_gradient(1.0);
        Optimizer::<f64>::update(&sgd, &args(0.5, 0.25, 0.5), &mut w, &[4.0], &mut []);
        assert_eq!(w, [1.25]);
    }

    #[test]
    fn no_weight_decay_is_the_plain_step_bit_for_bit() {
        // with wd = 0, w + (0 − 0·w − c·g) is w − c·g exactly: what kiln computed before
        // the Optimizer trait, so LeNet's numbers do not move
        let c = 0.9f32 / 256.0;
        for (w0, g) in [(0.123f32, 4.56f32), (-7.5e-3, 1e-7), (3.0, -2.5)] {
            let mut w = [w0];
            let sgd = Sgd::new(0.9);
            Optimizer::<f32>::update(&sgd, &args(0.9, 0.0, 1.0 / 256.0), &mut w, &[g], &mut []);
            assert_eq!(w[0].to_bits(), (w0 - c * g).to_bits());
        }
    }
}
