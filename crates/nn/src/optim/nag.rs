//! [`Nag`]: Nesterov accelerated gradient, as Gluon's `'nag'` computes it (MXNet 1.x's
//! `nag_mom_update`, or `sgd_update` without momentum).

use super::{check_unit, clip, common_options, kernel_param, Optimizer, UpdateArgs};
use kiln_tensor::{Float, Tensor};

/// Nesterov accelerated gradient, as Gluon's `Trainer(params, 'nag', {...})`.
///
/// With momentum, MXNet 1.x's `nag_mom_update` (`NAGMomKernel` in
/// `src/operator/optimizer_op-inl.h`) computes, with `lr`, `wd`, `momentum`,
/// `rescale_grad = 1/batch_size` and `c = clip_gradient` rounded to float32, and
/// `g' = rescale_grad·g` (or `clip(rescale_grad·g, ±c)`: the clip does not touch the
/// weight decay):
///
/// ```text
/// m  ← momentum·m
/// w' = (w − m) + (momentum + 1)·(m − lr·(g' + wd·w))
/// m  ← m − lr·(g' + wd·w')
/// w  ← w'
/// ```
///
/// The second line of the momentum update reads the *new* weight `w'`: Gluon calls the
/// kernel with `out=weight`, so the kernel's weight input and output are one buffer and
/// the weight is already overwritten when the momentum is finished. (The docstring's
/// `state = momentum·state + grad + wd·weight` keeps a differently scaled state; the
/// kernel wins.) Without weight decay the two readings agree.
///
/// Without momentum Gluon calls `sgd_update` (`SGDKernel`), one parameter at a time:
/// `w ← (1 − lr·wd)·w − (lr·rescale_grad)·g`, or `(1 − lr·wd)·w − lr·clip(rescale_grad·g, ±c)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nag {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum, in `[0, 1)` (Gluon's default 0).
    pub momentum: f64,
    /// Weight decay, scaled by the learning rate.
    pub wd: f64,
    /// Bound of the rescaled gradient, if any.
    pub clip_gradient: Option<f64>,
}

impl Default for Nag {
    /// Gluon's defaults: learning rate 0.01, no momentum.
    fn default() -> Self {
        Nag::new(0.01)
    }
}

impl Nag {
    /// NAG at `learning_rate`, without momentum until [`Nag::momentum`] sets it.
    pub fn new(learning_rate: f64) -> Self {
        Nag {
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

common_options!(Nag);

impl<T: Float> Optimizer<T> for Nag {
    fn name(&self) -> &'static str {
        "NAG"
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
        self.check_common("NAG")?;
        check_unit("NAG", "momentum", self.momentum)
    }

    fn state_names(&self) -> &'static [&'static str] {
        if self.momentum > 0.0 {
            &["momentum"]
        } else {
            &[]
        }
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let lr: T = kernel_param(args.lr);
        let wd: T = kernel_param(args.wd);
        let rescale: T = kernel_param(args.rescale_grad);
        let bound = self.clip_gradient.map(kernel_param::<T>);
        match state {
            [] => {
                // SGDKernel
                let keep = T::ONE - lr * wd;
                let lr_rescale = lr * rescale;
                for (w, &g) in weight.iter_mut().zip(grad) {
                    *w = match bound {
                        None => keep * *w - lr_rescale * g,
                        Some(c) => keep * *w - lr * clip(rescale * g, c),
                    };
                }
            }
            [mom] => {
                // NAGMomKernel, with the weight buffer updated in place
                let momentum: T = kernel_param(self.momentum);
                for ((w, m), &g) in weight.iter_mut().zip(mom.data_mut()).zip(grad) {
                    let g = match bound {
                        None => rescale * g,
                        Some(c) => clip(rescale * g, c),
                    };
                    *m = momentum * *m;
                    *w = *w - *m + (momentum + T::ONE) * (*m - lr * (g + wd * *w));
                    *m -= lr * (g + wd * *w);
                }
            }
            _ => unreachable!("the trainer gives NAG the state it asked for"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_step_reads_the_new_weight() {
        // w = 1, m = 0.5, g = 2, batch 1, lr 0.5, momentum 0.5, wd 0.25:
        // m = 0.25; w' = (1 − 0.25) + 1.5·(0.25 − 0.5·(2 + 0.25)) = 0.75 − 1.3125 = −0.5625
        // m = 0.25 − 0.5·(2 + 0.25·(−0.5625)) = 0.25 − 0.9296875 = −0.6796875
        let nag = Nag::new(0.5).momentum(0.5).wd(0.25);
        let mut w = [1.0f64];
        let mut state = [Tensor::from_f64s(&[0.5], [1]).unwrap()];
        let args = UpdateArgs {
            lr: 0.5,
            wd: 0.25,
            rescale_grad: 1.0,
            t: 1,
        };
        Optimizer::<f64>::update(&nag, &args, &mut w, &[2.0], &mut state);
        assert_eq!(w, [-0.5625]);
        assert_eq!(state[0].data(), &[-0.6796875]);
    }
}
