//! Batch normalization as one op (MXNet's `BatchNorm`): the forward pass normalizes with
//! the batch's statistics (training) or the running ones (inference, `use_global_stats`);
//! the backward pass gives the input, gamma and beta their gradients in one sweep and, in
//! training, updates the running statistics — there, as MXNet 1.x does (both its native
//! kernel and its oneDNN one update them in the backward pass, not the forward one).

use crate::leaf::Leaf;
use crate::tape::{Backward, Grads};
use crate::{AutogradError, Result, Var};
use kiln_tensor::batch_norm::{
    batch_norm_apply, batch_norm_backward, batch_statistics, running_statistics, update_running,
    BatchNormGeometry, BatchNormStats,
};
use kiln_tensor::{Float, Tensor};
use smallvec::smallvec;
use std::rc::Rc;

/// The options of a batch normalization (MXNet's `BatchNorm` parameters; Gluon's
/// `BatchNorm` layer passes `fix_gamma = !scale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// The channel axis (1 for NCHW and for (N, C)).
    pub axis: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Weight of the old running value in the update (entered as float32, as MXNet).
    pub momentum: f64,
    /// Take gamma as 1 (and give it gradient 0).
    pub fix_gamma: bool,
    /// Normalize with the running statistics in training too (and never update them).
    pub use_global_stats: bool,
}

impl Default for BatchNormOptions {
    /// Gluon's defaults: axis 1, eps 1e-5, momentum 0.9, gamma used, batch statistics.
    fn default() -> Self {
        BatchNormOptions {
            axis: 1,
            eps: 1e-5,
            momentum: 0.9,
            fix_gamma: false,
            use_global_stats: false,
        }
    }
}

/// y = ((x − mean) · invstd) · gamma + beta per channel. The derivation of the backward
/// rule (m values per channel, x̂ = (x − mean)·invstd, w = gamma):
/// - d y / d beta = 1, so dbeta = Σ dy;
/// - d y / d gamma = x̂, so dgamma = Σ dy·x̂ = invstd · Σ (x − mean)·dy;
/// - with batch statistics, mean and invstd depend on x: d mean / d x = 1/m and
///   d invstd / d x = −invstd³ (x − mean)/m, which gives
///   dx = w·invstd · (dy − Σdy/m − (x − mean)·invstd²·Σ(x − mean)dy / m);
/// - with running statistics they are constants: dx = w·invstd·dy.
struct BatchNorm<T: Float> {
    x: Rc<Tensor<T>>,
    gamma: Rc<Tensor<T>>,
    geometry: BatchNormGeometry,
    stats: BatchNormStats<T>,
    options: BatchNormOptions,
    /// The running statistics to update, when the batch's were used.
    running: Option<(Leaf<T>, Leaf<T>)>,
}

impl<T: Float> Backward<T> for BatchNorm<T> {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn backward(&self, grad: Tensor<T>, needs: &[bool]) -> Result<Grads<T>> {
        let o = &self.options;
        let grads = batch_norm_backward(
            &grad,
            &self.x,
            &self.geometry,
            &self.stats,
            &self.gamma,
            o.fix_gamma,
            self.running.is_some(),
        )?;
        if let Some((mean, var)) = &self.running {
            mean.update(|m| var.update(|v| update_running(m, v, &self.stats, o.momentum, o.eps)));
        }
        Ok(smallvec![
            needs[0].then_some(grads.x),
            needs[1].then_some(grads.gamma),
            needs[2].then_some(grads.beta),
        ])
    }
}

impl<T: Float> Var<T> {
    /// Batch normalization over every axis but `options.axis` (MXNet's `BatchNorm`).
    ///
    /// In training mode (`self.is_training()`) without `use_global_stats`, each channel is
    /// normalized with its batch mean and biased variance `Σ(x − mean)²/m`, and the backward
    /// pass then updates the running statistics:
    /// `running_mean ← running_mean·momentum + mean·(1 − momentum)`, likewise the variance.
    /// Otherwise the running statistics normalize and are left alone. Output:
    /// `((x − mean) · invstd) · gamma + beta` with `invstd = 1/√(var + eps)`.
    ///
    /// # Shapes
    /// x (…, C, …) with C on `options.axis`; gamma, beta, running_mean, running_var (C) →
    /// the shape of x.
    ///
    /// # Errors
    /// Training on one value per channel (an (N, C) input with N = 1): its batch variance is
    /// 0, so every output would be beta and every input gradient 0; MXNet computes that
    /// silently, kiln refuses it.
    pub fn batch_norm(
        &self,
        gamma: &Var<T>,
        beta: &Var<T>,
        running_mean: &Leaf<T>,
        running_var: &Leaf<T>,
        options: &BatchNormOptions,
    ) -> Result<Var<T>> {
        let (rm, rv) = (running_mean.value(), running_var.value());
        let g = BatchNormGeometry::new(
            self.shape(),
            options.axis,
            &[
                ("gamma", gamma.shape()),
                ("beta", beta.shape()),
                ("running_mean", rm.shape()),
                ("running_var", rv.shape()),
            ],
        )?;
        let valid =
            options.eps.is_finite() && options.eps > 0.0 && (0.0..=1.0).contains(&options.momentum);
        if !valid {
            return Err(AutogradError::invalid(
                "batch_norm",
                format!(
                    "epsilon must be > 0 and momentum in [0, 1], got epsilon {} and momentum {}",
                    options.eps, options.momentum
                ),
            ));
        }
        let batch_stats = self.is_training() && !options.use_global_stats;
        if batch_stats && g.per_channel() == 1 {
            return Err(AutogradError::invalid(
                "batch_norm",
                format!(
                    "training needs more than one value per channel to estimate a variance, \
                     got input {} (a batch of one sample)",
                    self.shape()
                ),
            ));
        }
        let stats = if batch_stats {
            batch_statistics(self.value(), &g, options.eps)
        } else {
            running_statistics(&rm, &rv, options.eps)
        };
        let y = batch_norm_apply(
            self.value(),
            &g,
            &stats,
            gamma.value(),
            beta.value(),
            options.fix_gamma,
        );
        Var::record("batch_norm", &[self, gamma, beta], y, |_| BatchNorm {
            x: Rc::clone(self.value_rc()),
            gamma: Rc::clone(gamma.value_rc()),
            geometry: g,
            stats,
            options: *options,
            running: batch_stats.then(|| (running_mean.clone(), running_var.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_grads, leaf};
    use crate::Tape;

    fn stats_leaves(c: usize) -> (Leaf<f64>, Leaf<f64>) {
        let mean =
            Leaf::new(Tensor::from_vec((0..c).map(|i| i as f64 * 0.1).collect(), [c]).unwrap());
        let var = Leaf::new(
            Tensor::from_vec((0..c).map(|i| 1.0 + i as f64 * 0.5).collect(), [c]).unwrap(),
        );
        (mean, var)
    }

    #[test]
    fn gradcheck_training_over_the_whole_batch() {
        // NCHW and (N, C): the batch statistics depend on every input
        for (shape, c) in [(&[3usize, 2, 3, 2][..], 2), (&[5, 4][..], 4)] {
            let (x, gamma, beta) = (leaf(shape, 1), leaf(&[c], 2), leaf(&[c], 3));
            let (rm, rv) = stats_leaves(c);
            let o = BatchNormOptions::default();
            assert_grads(&[&x, &gamma, &beta], |t| {
                t.leaf(&x)
                    .batch_norm(&t.leaf(&gamma), &t.leaf(&beta), &rm, &rv, &o)?
                    .square()
            });
        }
    }

    #[test]
    fn gradcheck_global_stats_fix_gamma_and_inference() {
        let (x, gamma, beta) = (leaf(&[2, 3, 2, 2], 4), leaf(&[3], 5), leaf(&[3], 6));
        let (rm, rv) = stats_leaves(3);
        for o in [
            BatchNormOptions {
                use_global_stats: true,
                ..Default::default()
            },
            BatchNormOptions {
                fix_gamma: true,
                ..Default::default()
            },
        ] {
            assert_grads(&[&x, &beta], |t| {
                t.leaf(&x)
                    .batch_norm(&t.leaf(&gamma), &t.leaf(&beta), &rm, &rv, &o)?
                    .tanh()
            });
        }
        // predict mode on a tape: the running statistics, as constants
        let o = BatchNormOptions::default();
        assert_grads(&[&x, &gamma, &beta], |t| {
            t.set_training(false);
            t.leaf(&x)
                .batch_norm(&t.leaf(&gamma), &t.leaf(&beta), &rm, &rv, &o)?
                .tanh()
        });
    }

    #[test]
    fn the_backward_pass_updates_the_running_statistics_once() {
        // one channel: values 1, 2, 3, 6 → mean 3, biased variance 3.5
        let x = Leaf::new(Tensor::<f64>::from_f64s(&[1.0, 2.0, 3.0, 6.0], [4, 1]).unwrap());
        let (gamma, beta) = (Leaf::new(Tensor::ones([1])), Leaf::new(Tensor::zeros([1])));
        let (rm, rv) = (Leaf::new(Tensor::zeros([1])), Leaf::new(Tensor::ones([1])));
        let o = BatchNormOptions::default();
        let tape = Tape::new();
        let y = tape
            .leaf(&x)
            .batch_norm(&tape.leaf(&gamma), &tape.leaf(&beta), &rm, &rv, &o)
            .unwrap();
        assert_eq!(
            rm.value().data(),
            &[0.0],
            "the forward pass changes nothing"
        );
        y.sum().unwrap().backward().unwrap();
        let m = 0.9f32 as f64;
        assert!((rm.value().data()[0] - 3.0 * (1.0 - m)).abs() < 1e-12);
        assert!((rv.value().data()[0] - (m + 3.5 * (1.0 - m))).abs() < 1e-9);
        // Σ of a normalized channel is 0 whatever x: dx = 0, dbeta = 4, dgamma = Σ x̂ = 0
        assert!(x.grad().unwrap().data().iter().all(|v| v.abs() < 1e-12));
        assert_eq!(beta.grad().unwrap().data(), &[4.0]);
        // use_global_stats: no update
        let before = rm.value();
        let tape = Tape::new();
        let o = BatchNormOptions {
            use_global_stats: true,
            ..o
        };
        let y = tape
            .leaf(&x)
            .batch_norm(&tape.leaf(&gamma), &tape.leaf(&beta), &rm, &rv, &o)
            .unwrap();
        // normalized with the running statistics: (1 − 0.3)/√(rv + 1e-5)
        let expected = (1.0 - before.data()[0]) / (rv.value().data()[0] + 1e-5).sqrt();
        assert!((y.value().data()[0] - expected).abs() < 1e-12);
        y.sum().unwrap().backward().unwrap();
        assert_eq!(*rm.value(), *before);
    }

    #[test]
    fn bad_input_is_refused() {
        let (rm, rv) = stats_leaves(3);
        let o = BatchNormOptions::default();
        let tape = Tape::new();
        let g = tape.constant(Tensor::ones([3]));
        let b = tape.constant(Tensor::zeros([3]));
        let x = tape.constant(Tensor::<f64>::zeros([1, 3]));
        let err = x.batch_norm(&g, &b, &rm, &rv, &o).unwrap_err().to_string();
        assert!(err.contains("more than one value per channel"), "{err}");
        // in predict mode one sample is fine
        assert!(Var::constant(Tensor::<f64>::zeros([1, 3]))
            .batch_norm(&g, &b, &rm, &rv, &o)
            .is_ok());
        let x4 = tape.constant(Tensor::<f64>::zeros([2, 4, 2, 2]));
        let err = x4.batch_norm(&g, &b, &rm, &rv, &o).unwrap_err().to_string();
        assert!(
            err.contains("gamma has shape [3] but the input has 4 channels"),
            "{err}"
        );
        let axis = BatchNormOptions { axis: 4, ..o };
        assert!(x4.batch_norm(&g, &b, &rm, &rv, &axis).is_err());
        let eps = BatchNormOptions { eps: 0.0, ..o };
        assert!(x.batch_norm(&g, &b, &rm, &rv, &eps).is_err());
    }
}
