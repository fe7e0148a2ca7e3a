//! [`AdaGrad`], as Gluon's `'adagrad'` computes it on dense gradients: NDArray
//! arithmetic in `AdaGrad.update` (MXNet 1.x's `python/mxnet/optimizer/optimizer.py`).

use super::{
    check_epsilon, clip, common_options, kernel_param, scalar_param, Optimizer, UpdateArgs,
};
use kiln_tensor::{Float, Tensor};

/// AdaGrad (Duchi et al.), as Gluon's `Trainer(params, 'adagrad', {...})`.
///
/// MXNet 1.x updates dense gradients in Python, one NDArray operation at a time, each
/// rounded to the weight's type; its scalars (`rescale_grad = 1/batch_size`, `ε`, `wd`,
/// `lr`) are doubles cast to that type, and the clipping bounds of `clip` are float32:
///
/// ```text
/// g' = g·rescale_grad                    (then clip(g', ±c))
/// h  ← h + g'·g'
/// w  ← w + (g' / √(h + ε) + w·wd)·(−lr)
/// ```
///
/// So ε (Gluon's `eps`, default 1e-7) sits inside the square root, and the weight decay
/// is added after the division, outside the accumulated history (and unclipped).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaGrad {
    /// Learning rate (Gluon's default 0.01).
    pub learning_rate: f64,
    /// Added to the history under the square root (Gluon's `eps`, 1e-7).
    pub epsilon: f64,
    /// Weight decay, added to the step as `wd·w`.
    pub wd: f64,
    /// Bound of the rescaled gradient, if any.
    pub clip_gradient: Option<f64>,
}

impl Default for AdaGrad {
    /// Gluon's defaults: learning rate 0.01, ε 1e-7.
    fn default() -> Self {
        AdaGrad::new(0.01)
    }
}

impl AdaGrad {
    /// AdaGrad at `learning_rate` with ε 1e-7.
    pub fn new(learning_rate: f64) -> Self {
        AdaGrad {
            learning_rate,
            epsilon: 1e-7,
            wd: 0.0,
            clip_gradient: None,
        }
    }

    /// Sets ε (Gluon's `eps`).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }
}

common_options!(AdaGrad);

impl<T: Float> Optimizer<T> for AdaGrad {
    fn name(&self) -> &'static str {
        "AdaGrad"
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
        self.check_common("AdaGrad")?;
        check_epsilon("AdaGrad", self.epsilon)
    }

    fn state_names(&self) -> &'static [&'static str] {
        &["history"]
    }

    fn update(&self, args: &UpdateArgs, weight: &mut [T], grad: &[T], state: &mut [Tensor<T>]) {
        let rescale: T = scalar_param(args.rescale_grad);
        let epsilon: T = scalar_param(self.epsilon);
        let wd: T = scalar_param(args.wd);
        let neg_lr: T = scalar_param(-args.lr);
        let bound = self.clip_gradient.map(kernel_param::<T>);
        let [history] = state else {
            unreachable!("the trainer gives AdaGrad the state it asked for")
        };
        for ((w, &g), h) in weight.iter_mut().zip(grad).zip(history.data_mut()) {
            let mut g = g * rescale;
            if let Some(c) = bound {
                g = clip(g, c);
            }
            *h += g * g;
            let div = g / (*h + epsilon).sqrt();
            *w += (div + *w * wd) * neg_lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_by_hand() {
        // g = 3 (batch 1), h = 0 + 9, ε 7: div = 3/√16 = 0.75; wd 0.5, w = 2:
        // w = 2 + (0.75 + 1)·(−0.5) = 1.125
        let opt = AdaGrad::new(0.5).epsilon(7.0).wd(0.5);
        let mut w = [2.0f64];
        let mut state = [Tensor::zeros([1])];
        let args = UpdateArgs {
            lr: 0.5,
            wd: 0.5,
            rescale_grad: 1.0,
            t: 1,
        };
        Optimizer::<f64>::update(&opt, &args, &mut w, &[3.0], &mut state);
        assert_eq!(state[0].data(), &[9.0]);
        assert_eq!(w, [1.125]);
    }
}
