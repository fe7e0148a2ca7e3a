//! Numerically stable softmax and log-softmax along one axis: the maximum is subtracted
//! before exponentiating, so no input overflows.

use crate::error::{Result, TensorError};
use crate::float::Float;
use crate::tensor::Tensor;

/// Applies `f(values, out)` to each lane along `axis`, gathering strided lanes into a
/// scratch buffer when the axis is not the last one.
fn per_lane<T: Float>(
    op: &'static str,
    x: &Tensor<T>,
    axis: usize,
    f: impl Fn(&[T], &mut [T]),
) -> Result<Tensor<T>> {
    if axis >= x.rank() {
        return Err(TensorError::Axis {
            op,
            axis,
            shape: x.shape().clone(),
        });
    }
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let mut out = Tensor::zeros(x.shape().clone());
    let (mut lane_in, mut lane_out) = (vec![T::ZERO; len], vec![T::ZERO; len]);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            for (j, v) in lane_in.iter_mut().enumerate() {
                *v = x.data()[at(j)];
            }
            f(&lane_in, &mut lane_out);
            for (j, &v) in lane_out.iter().enumerate() {
                out.data_mut()[at(j)] = v;
            }
        }
    }
    Ok(out)
}

/// (m, ln Σ e^(x − m)) over a lane, with m the lane maximum: log Σ e^x = m + the second.
/// Working with x − m keeps every exponent ≤ 0 and, unlike subtracting the full
/// log-sum-exp, loses no precision for large x.
pub fn max_and_log_sum_exp<T: Float>(lane: &[T]) -> (T, T) {
    let m = lane
        .iter()
        .fold(T::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    if !m.is_finite() {
        return (m, T::ZERO);
    }
    (m, lane.iter().map(|&v| (v - m).exp()).sum::<T>().ln())
}

impl<T: Float> Tensor<T> {
    /// e^x / Σ e^x along `axis`.
    pub fn softmax(&self, axis: usize) -> Result<Tensor<T>> {
        per_lane("softmax", self, axis, |lane, out| {
            let (m, _) = max_and_log_sum_exp(lane);
            let mut sum = T::ZERO;
            for (o, &v) in out.iter_mut().zip(lane) {
                *o = (v - m).exp();
                sum += *o;
            }
            out.iter_mut().for_each(|o| *o /= sum);
        })
    }

    /// x − log Σ e^x along `axis`.
    pub fn log_softmax(&self, axis: usize) -> Result<Tensor<T>> {
        per_lane("log_softmax", self, axis, |lane, out| {
            let (m, log_sum) = max_and_log_sum_exp(lane);
            for (o, &v) in out.iter_mut().zip(lane) {
                *o = (v - m) - log_sum;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let x = Tensor::<f32>::from_f64s(&[1000., 1001., 1002., -5., 0., 5.], [2, 3]).unwrap();
        let p = x.softmax(1).unwrap();
        // scipy.special.softmax([0, 1, 2]) = [0.09003057, 0.24472847, 0.66524096]
        assert!((p.data()[0] - 0.090_030_57).abs() < 1e-6);
        assert!((p.data()[2] - 0.665_240_96).abs() < 1e-6);
        for row in p.data().chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let lp = x.log_softmax(1).unwrap();
        assert!((lp.data()[2] - (-0.407_605_96)).abs() < 1e-5);
        assert!(lp.all_finite());
    }

    #[test]
    fn softmax_along_first_axis() {
        let x = Tensor::<f64>::from_f64s(&[0., 0., 1., 3.], [2, 2]).unwrap();
        let p = x.softmax(0).unwrap();
        assert!((p.data()[0] + p.data()[2] - 1.0).abs() < 1e-15);
        assert!(x.softmax(2).is_err());
    }
}
