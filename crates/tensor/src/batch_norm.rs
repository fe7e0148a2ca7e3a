//! Batch normalization over one axis (MXNet's `BatchNorm` operator, `src/operator/nn/
//! batch_norm.cc`): the forward pass with batch or running statistics, its backward pass
//! for the input, gamma and beta in one sweep, and the update of the running statistics.
//!
//! A tensor is seen as (outer, C, inner) around the channel axis; channel `c` is
//! normalized over its `outer · inner` values. Sums are taken per channel in a fixed
//! order (accumulated in f64), so results do not depend on the number of threads.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::parallel::worth_splitting;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Per-channel statistics a normalization used: the mean and `invstd = 1 / √(var + eps)`
/// (what MXNet saves for the backward pass instead of the variance).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormStats<T: Float> {
    /// The mean of each channel.
    pub mean: Vec<T>,
    /// 1 / √(var + eps) of each channel.
    pub invstd: Vec<T>,
}

/// The sizes of a normalization of `x` over `axis`, checked against gamma and beta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormGeometry {
    /// Product of the axes before the channel axis.
    pub outer: usize,
    /// Channels.
    pub channels: usize,
    /// Product of the axes after it.
    pub inner: usize,
}

impl BatchNormGeometry {
    /// Values per channel: `outer · inner`.
    pub fn per_channel(&self) -> usize {
        self.outer * self.inner
    }

    /// The sizes of `x` (at least 2-d) normalized over `axis`, whose channel count gamma,
    /// beta and the statistics (`params`, by name) must have.
    pub fn new(x: &Shape, axis: usize, params: &[(&str, &Shape)]) -> Result<Self> {
        let op = "batch_norm";
        if x.rank() < 2 {
            return Err(TensorError::invalid(
                op,
                format!("input must have a batch axis and a channel axis, got shape {x}"),
            ));
        }
        if axis >= x.rank() {
            return Err(TensorError::Axis {
                op,
                axis,
                shape: x.clone(),
            });
        }
        let (outer, channels, inner) = x.split_at_axis(axis);
        for (name, shape) in params {
            if shape.dims() != [channels] {
                return Err(TensorError::invalid(
                    op,
                    format!(
                        "{name} has shape {shape} but the input has {channels} channels on axis {axis} (input {x})"
                    ),
                ));
            }
        }
        Ok(BatchNormGeometry {
            outer,
            channels,
            inner,
        })
    }

    /// The values of channel `c`: `outer` runs of `inner` elements, `channels · inner`
    /// apart.
    fn runs<'a, T>(&self, data: &'a [T], c: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let (ch, inner) = (self.channels, self.inner);
        (0..self.outer).map(move |o| &data[(o * ch + c) * inner..][..inner])
    }
}

/// MXNet's `VARIANCE_TO_INVSTD`: `1.0 / sqrt(var + eps)`, the square root taken in the
/// element type and the division in f64 (MXNet writes `1.0/std::sqrt(...)`, a double
/// literal), rounded back to the element type.
pub fn invstd_of<T: Float>(var: T, eps: f64) -> T {
    T::from_f64(1.0 / (var + T::from_f64(eps)).sqrt().to_f64())
}

/// MXNet's `INVSTD_TO_VARIANCE`: `1.0 / (invstd · invstd) − eps`, the product in the
/// element type, the rest in f64: the variance MXNet's running average receives (the
/// batch variance, round-tripped through `invstd`).
pub fn variance_of<T: Float>(invstd: T, eps: f64) -> T {
    T::from_f64(1.0 / (invstd * invstd).to_f64() - eps)
}

/// `f(c)` for every channel, on the thread pool when the tensor is large: each channel's
/// result is computed by one thread in a fixed order, so the split changes nothing.
fn per_channel<T: Send>(g: &BatchNormGeometry, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    if worth_splitting(g.channels * g.per_channel()) {
        (0..g.channels).into_par_iter().map(f).collect()
    } else {
        (0..g.channels).map(f).collect()
    }
}

/// Fills `out` (laid out as the input) row by row: `f(c, x_run, out_run)` for each run of
/// channel `c`; rows of `channels · inner` elements run on the thread pool when large.
fn per_run<T: Float>(
    g: &BatchNormGeometry,
    out: &mut [T],
    f: impl Fn(usize, usize, &mut [T]) + Sync + Send,
) {
    use rayon::prelude::*;
    let row = (g.channels * g.inner).max(1);
    let body = |(o, out_row): (usize, &mut [T])| {
        for (c, run) in out_row.chunks_exact_mut(g.inner.max(1)).enumerate() {
            f(c, (o * g.channels + c) * g.inner, run);
        }
    };
    if worth_splitting(out.len()) {
        out.par_chunks_mut(row).enumerate().for_each(body);
    } else {
        out.chunks_mut(row).enumerate().for_each(body);
    }
}

/// The batch statistics of `x` over every axis but `axis`: the mean, and `invstd` from
/// the biased variance `Σ (x − mean)² / m` (m values per channel), as MXNet's training
/// forward computes them. A channel of one value has variance 0.
pub fn batch_statistics<T: Float>(
    x: &Tensor<T>,
    g: &BatchNormGeometry,
    eps: f64,
) -> BatchNormStats<T> {
    let m = g.per_channel().max(1) as f64;
    let data = x.data();
    let stats = per_channel(g, |c| {
        let sum: f64 = g
            .runs(data, c)
            .map(|run| run.iter().map(|v| v.to_f64()).sum::<f64>())
            .sum();
        let mean = T::from_f64(sum / m);
        let squares: f64 = g
            .runs(data, c)
            .map(|run| {
                run.iter()
                    .map(|&v| {
                        let d = (v - mean).to_f64();
                        d * d
                    })
                    .sum::<f64>()
            })
            .sum();
        (mean, invstd_of(T::from_f64(squares / m), eps))
    });
    let (mean, invstd) = stats.into_iter().unzip();
    BatchNormStats { mean, invstd }
}

/// `y = ((x − mean) · invstd) · gamma + beta` per channel (MXNet's output formula, in
/// this order); with `fix_gamma`, gamma is taken as 1 (MXNet's `fix_gamma`, Gluon's
/// `scale=False`).
pub fn batch_norm_apply<T: Float>(
    x: &Tensor<T>,
    g: &BatchNormGeometry,
    stats: &BatchNormStats<T>,
    gamma: &Tensor<T>,
    beta: &Tensor<T>,
    fix_gamma: bool,
) -> Tensor<T> {
    let (xd, gd, bd) = (x.data(), gamma.data(), beta.data());
    let mut out = vec![T::ZERO; xd.len()];
    per_run(g, &mut out, |c, start, run| {
        let (mean, invstd, b) = (stats.mean[c], stats.invstd[c], bd[c]);
        let x_run = &xd[start..start + run.len()];
        if fix_gamma {
            for (y, &v) in run.iter_mut().zip(x_run) {
                *y = (v - mean) * invstd + b;
            }
        } else {
            let w = gd[c];
            for (y, &v) in run.iter_mut().zip(x_run) {
                *y = ((v - mean) * invstd) * w + b;
            }
        }
    });
    Tensor::from_parts(out, x.shape().clone())
}

/// The statistics of inference (and of `use_global_stats`): the running mean, and
/// `invstd` of the running variance.
pub fn running_statistics<T: Float>(
    running_mean: &Tensor<T>,
    running_var: &Tensor<T>,
    eps: f64,
) -> BatchNormStats<T> {
    BatchNormStats {
        mean: running_mean.data().to_vec(),
        invstd: running_var
            .data()
            .iter()
            .map(|&v| invstd_of(v, eps))
            .collect(),
    }
}

/// The gradients of a normalization: dx, dgamma, dbeta.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormGrads<T: Float> {
    /// Gradient of the input (same shape).
    pub x: Tensor<T>,
    /// Gradient of gamma (C); zeros under `fix_gamma`, as MXNet writes.
    pub gamma: Tensor<T>,
    /// Gradient of beta (C).
    pub beta: Tensor<T>,
}

/// The backward pass of [`batch_norm_apply`], as MXNet's `BatchNormBackwardImpl`. Per
/// channel, with m values, `w` = gamma (1 under `fix_gamma`), `Σdy` and
/// `dot = Σ (x − mean)·dy` taken in one pass:
///
/// - with batch statistics (`batch_stats`, training): the statistics depend on x, so
///   `dx = (dy − Σdy/m − (x − mean)·k) · invstd·w` with `k = dot · invstd² / m`;
/// - with running statistics (inference, `use_global_stats`): they are constants, so
///   `dx = dy · invstd·w`;
/// - always `dgamma = dot · invstd` (0 under `fix_gamma`) and `dbeta = Σdy`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: Float>(
    dy: &Tensor<T>,
    x: &Tensor<T>,
    g: &BatchNormGeometry,
    stats: &BatchNormStats<T>,
    gamma: &Tensor<T>,
    fix_gamma: bool,
    batch_stats: bool,
) -> Result<BatchNormGrads<T>> {
    if dy.shape() != x.shape() {
        return Err(TensorError::invalid(
            "batch_norm_backward",
            format!(
                "output gradient has shape {}, the input {}",
                dy.shape(),
                x.shape()
            ),
        ));
    }
    let (xd, dyd) = (x.data(), dy.data());
    let sums = per_channel(g, |c| {
        let mean = stats.mean[c];
        let (mut sum, mut dot) = (0.0f64, 0.0f64);
        for (x_run, dy_run) in g.runs(xd, c).zip(g.runs(dyd, c)) {
            for (&v, &d) in x_run.iter().zip(dy_run) {
                sum += d.to_f64();
                dot += (v - mean).to_f64() * d.to_f64();
            }
        }
        (T::from_f64(sum), T::from_f64(dot))
    });
    let m = T::from_usize(g.per_channel().max(1));
    let w = |c: usize| {
        if fix_gamma {
            T::ONE
        } else {
            gamma.data()[c]
        }
    };
    let mut dx = vec![T::ZERO; xd.len()];
    per_run(g, &mut dx, |c, start, run| {
        let (mean, invstd) = (stats.mean[c], stats.invstd[c]);
        let (sum, dot) = sums[c];
        let iw = invstd * w(c);
        let x_run = &xd[start..start + run.len()];
        let dy_run = &dyd[start..start + run.len()];
        if batch_stats {
            let k = dot * invstd * invstd / m;
            let grad_mean = sum / m;
            for ((o, &v), &d) in run.iter_mut().zip(x_run).zip(dy_run) {
                *o = (d - grad_mean - (v - mean) * k) * iw;
            }
        } else {
            for (o, &d) in run.iter_mut().zip(dy_run) {
                *o = d * iw;
            }
        }
    });
    let channels = Shape::from([g.channels]);
    let dgamma = sums
        .iter()
        .zip(&stats.invstd)
        .map(|(&(_, dot), &invstd)| if fix_gamma { T::ZERO } else { dot * invstd })
        .collect();
    let dbeta = sums.iter().map(|&(sum, _)| sum).collect();
    Ok(BatchNormGrads {
        x: Tensor::from_parts(dx, x.shape().clone()),
        gamma: Tensor::from_parts(dgamma, channels.clone()),
        beta: Tensor::from_parts(dbeta, channels),
    })
}

/// MXNet's update of the running statistics from a training batch's `stats`:
/// `running_mean ← running_mean · momentum + mean · (1 − momentum)` and
/// `running_var ← running_var · momentum + var · (1 − momentum)`, where `var` is the
/// biased batch variance as MXNet recovers it from `invstd` ([`variance_of`]) and
/// `momentum` enters as a float32 (MXNet's parameter type).
pub fn update_running<T: Float>(
    running_mean: &mut Tensor<T>,
    running_var: &mut Tensor<T>,
    stats: &BatchNormStats<T>,
    momentum: f64,
    eps: f64,
) {
    let momentum = T::from_f64(momentum as f32 as f64);
    let rest = T::ONE - momentum;
    for (r, &m) in running_mean.data_mut().iter_mut().zip(&stats.mean) {
        *r = *r * momentum + m * rest;
    }
    for (r, &invstd) in running_var.data_mut().iter_mut().zip(&stats.invstd) {
        *r = *r * momentum + variance_of(invstd, eps) * rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_channels_have_mean_zero_and_biased_variance_one() {
        // (N, C, H, W) = (3, 2, 2, 2): channel 0 holds 0..12 spread over images
        let x = Tensor::<f64>::from_vec(
            (0..24).map(|i| ((i * 7) % 24) as f64 * 0.5 - 3.0).collect(),
            [3, 2, 2, 2],
        )
        .unwrap();
        let g = BatchNormGeometry::new(x.shape(), 1, &[]).unwrap();
        assert_eq!((g.outer, g.channels, g.inner), (3, 2, 4));
        let stats = batch_statistics(&x, &g, 0.0);
        let y = batch_norm_apply(
            &x,
            &g,
            &stats,
            &Tensor::ones([2]),
            &Tensor::zeros([2]),
            false,
        );
        for c in 0..2 {
            let vals: Vec<f64> = g.runs(y.data(), c).flatten().copied().collect();
            let mean = vals.iter().sum::<f64>() / 12.0;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
            assert!(mean.abs() < 1e-12, "channel {c}: mean {mean}");
            assert!((var - 1.0).abs() < 1e-6, "channel {c}: var {var}");
        }
    }

    #[test]
    fn running_update_is_mxnets_formula() {
        // one channel of values 1, 2, 3, 6: mean 3, biased variance (4 + 1 + 0 + 9)/4 = 3.5
        let x = Tensor::<f64>::from_f64s(&[1.0, 2.0, 3.0, 6.0], [4, 1]).unwrap();
        let g = BatchNormGeometry::new(x.shape(), 1, &[]).unwrap();
        let eps = 1e-5;
        let stats = batch_statistics(&x, &g, eps);
        assert_eq!(stats.mean, [3.0]);
        assert!((stats.invstd[0] - 1.0 / (3.5f64 + eps).sqrt()).abs() < 1e-15);
        let (mut rm, mut rv) = (Tensor::zeros([1]), Tensor::ones([1]));
        update_running(&mut rm, &mut rv, &stats, 0.9, eps);
        // momentum 0.9 as float32 is 0.89999997615814208984375
        let m = 0.9f32 as f64;
        assert!((rm.data()[0] - 3.0 * (1.0 - m)).abs() < 1e-12);
        assert!((rv.data()[0] - (m + 3.5 * (1.0 - m))).abs() < 1e-9);
    }

    #[test]
    fn shapes_are_checked() {
        let x = Shape::from([4, 3, 2, 2]);
        assert!(BatchNormGeometry::new(&x, 4, &[]).is_err());
        let err = BatchNormGeometry::new(&x, 1, &[("gamma", &Shape::from([2]))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "batch_norm: gamma has shape [2] but the input has 3 channels on axis 1 (input [4, 3, 2, 2])"
        );
        assert!(BatchNormGeometry::new(&Shape::from([5]), 0, &[]).is_err());
    }
}
